//! Debian's chromium, headless, as the tests' real browser: loads a page, lets its script run,
//! and hands back the DOM it built (`--dump-dom`); or, driven through chromedriver (WebDriver,
//! the `fantoccini` crate), clicks and reads a live page.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver`, built from the same source as the browser, so their versions match.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver may take to listen, and a page element to reach a wanted state: chromium's
/// first start on a loaded 2-core machine takes a few seconds; an election takes about one.
const WAIT: Duration = Duration::from_secs(20);

/// True when chromium is installed. Without it a browser test is skipped locally, but under CI
/// (env `CI` set) its absence is a failure: scripts/test.sh installs it.
pub fn chromium_available() -> bool {
    let ok = std::path::Path::new(CHROMIUM).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium missing under CI: scripts/test.sh installs it"
        );
        eprintln!("skipping: chromium not installed (apt-get install chromium)");
    }
    ok
}

/// The DOM of `url` after its script ran, from a fresh profile; chromium must exit cleanly. Blocking: call it off the
/// async threads. The flags keep chromium off the (closed) network and out of the sandbox it
/// cannot have as root.
pub fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("temp profile dir");
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A headless chromium under chromedriver, for tests that click. Dropping it kills chromedriver
/// (and with it the browser); `quit` closes the session first.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

/// A browser, or `None` (skip) when chromium or chromedriver is missing outside CI.
pub async fn webdriver() -> Option<Browser> {
    if !chromium_available() {
        return None;
    }
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver missing under CI: scripts/test.sh installs chromium-driver"
        );
        eprintln!("skipping: chromedriver not installed (apt-get install chromium-driver)");
        return None;
    }
    let port = super::procs::free_ports(1)[0];
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let started = tokio::time::Instant::now();
    // The driver is not listening at once; a refused connect is retried until `WAIT`.
    let client = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < WAIT => {
                tracing::debug!(error = %e, "chromedriver not ready");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no chromedriver session within {WAIT:?}: {e}"),
        }
    };
    Some(Browser { client, driver })
}

impl Browser {
    /// Clicks the element with this id. The admin page redraws its rows on every event, so a
    /// found button can be replaced before the click lands: a stale element is looked up again.
    pub async fn click(&self, id: &str) {
        let started = tokio::time::Instant::now();
        loop {
            let res = match self.client.find(Locator::Id(id)).await {
                Ok(el) => el.click().await,
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return,
                Err(e) if started.elapsed() < WAIT => {
                    tracing::debug!(error = %e, id, "click retried");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("could not click #{id}: {e}"),
            }
        }
    }

    /// The text of the element with this id, read from the live DOM.
    pub async fn text(&self, id: &str) -> Option<String> {
        let el = self.client.find(Locator::Id(id)).await.ok()?;
        el.text().await.ok()
    }

    /// Polls `#id`'s text until `want` accepts it, for at most `WAIT`; returns that text.
    pub async fn wait_text(&self, id: &str, want: impl Fn(&str) -> bool) -> String {
        let started = tokio::time::Instant::now();
        loop {
            let text = self.text(id).await;
            if let Some(t) = text.as_deref().filter(|t| want(t)) {
                return t.to_string();
            }
            assert!(
                started.elapsed() < WAIT,
                "#{id} never reached the wanted text; last: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (closing chromium); dropping `self` then stops chromedriver.
    pub async fn quit(self) {
        self.client
            .clone()
            .close()
            .await
            .expect("the WebDriver session closes");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
