//! Debian's chromium, headless, as the tests' real browser: loads a page, lets its script run,
//! and hands back the DOM it built (`--dump-dom`).

use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

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
