//! Members as separate processes: `quorum serve` or Debian's `etcd`, started with the same etcd
//! flags, plus an `etcdctl` runner. Processes are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use quorum::tls::PkiFiles;

/// True when etcd's binaries are installed. Without them a test is skipped locally, but under
/// CI (env `CI` set) their absence is a failure: the test command installs them.
pub fn etcd_available() -> bool {
    let have = |b: &str| Command::new(b).arg("--version").output().is_ok();
    let ok = have("etcd") && have("etcdctl");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcd/etcdctl missing under CI: scripts/test.sh installs etcd-server and etcd-client"
        );
        eprintln!("skipping: etcd/etcdctl not installed (apt-get install etcd-server etcd-client)");
    }
    ok
}

pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    ls.iter()
        .map(|l| l.local_addr().expect("bound socket has an address").port())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Quorum,
    Etcd,
}

pub struct Member {
    pub name: String,
    pub client_url: String,
    /// etcdctl's certificate flags for this member, when it serves TLS.
    pub etcdctl_tls: Vec<String>,
    args: Vec<String>,
    program: Program,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create member log");
        let mut cmd = match self.program {
            Program::Quorum => Command::new(env!("CARGO_BIN_EXE_quorum")),
            Program::Etcd => Command::new("etcd"),
        };
        if self.program == Program::Quorum {
            cmd.arg("serve");
        }
        let child = cmd
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn member");
        self.child = Some(child);
    }

    /// SIGKILL: no clean shutdown, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The value after `flag` in this member's arguments.
    pub fn arg(&self, flag: &str) -> Option<&str> {
        let i = self.args.iter().position(|a| a == flag)?;
        self.args.get(i + 1).map(String::as_str)
    }

    /// Sets the value after `flag` (for a restart with other flags).
    pub fn set_arg(&mut self, flag: &str, value: &str) {
        let i = self.args.iter().position(|a| a == flag).expect("flag");
        self.args[i + 1] = value.to_string();
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct ProcCluster {
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl ProcCluster {
    /// Starts `n` members of `program` with etcd's flags on fresh loopback ports.
    pub fn start(program: Program, n: usize) -> ProcCluster {
        Self::start_with(program, n, None)
    }

    /// As `start`; with `pki`, every URL is https and clients and peers must present
    /// certificates, with the flags of the HA guide's recipe.
    pub fn start_with(program: Program, n: usize, pki: Option<&PkiFiles>) -> ProcCluster {
        Self::start_with_args(program, n, pki, &[])
    }

    /// As `start_with`, passing `extra` flags (etcd's and Quorum's alike) to every member.
    pub fn start_with_args(
        program: Program,
        n: usize,
        pki: Option<&PkiFiles>,
        extra: &[&str],
    ) -> ProcCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(2 * n);
        let scheme = if pki.is_some() { "https" } else { "http" };
        let peer = |i: usize| format!("{scheme}://127.0.0.1:{}", ports[2 * i + 1]);
        let path = |p: &Path| p.display().to_string();
        let (tls_args, etcdctl_tls): (Vec<String>, Vec<String>) = match pki {
            None => (Vec::new(), Vec::new()),
            Some(p) => (
                vec![
                    format!("--cert-file={}", path(&p.server_cert)),
                    format!("--key-file={}", path(&p.server_key)),
                    format!("--trusted-ca-file={}", path(&p.ca)),
                    "--client-cert-auth".into(),
                    format!("--peer-cert-file={}", path(&p.server_cert)),
                    format!("--peer-key-file={}", path(&p.server_key)),
                    format!("--peer-trusted-ca-file={}", path(&p.ca)),
                    "--peer-client-cert-auth".into(),
                ],
                vec![
                    format!("--cacert={}", path(&p.ca)),
                    format!("--cert={}", path(&p.client_cert)),
                    format!("--key={}", path(&p.client_key)),
                ],
            ),
        };
        let initial: Vec<String> = (0..n).map(|i| format!("m{i}={}", peer(i))).collect();
        let members = (0..n)
            .map(|i| {
                let client = format!("{scheme}://127.0.0.1:{}", ports[2 * i]);
                let data: &Path = dir.path();
                let mut args = vec![
                    "--name".into(),
                    format!("m{i}"),
                    "--data-dir".into(),
                    data.join(format!("m{i}")).display().to_string(),
                    "--listen-client-urls".into(),
                    client.clone(),
                    "--advertise-client-urls".into(),
                    client.clone(),
                    "--listen-peer-urls".into(),
                    peer(i),
                    "--initial-advertise-peer-urls".into(),
                    peer(i),
                    "--initial-cluster".into(),
                    initial.join(","),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--initial-cluster-token".into(),
                    "it-cluster".into(),
                ];
                args.extend(tls_args.iter().cloned());
                args.extend(extra.iter().map(|a| a.to_string()));
                let mut m = Member {
                    name: format!("m{i}"),
                    client_url: client,
                    etcdctl_tls: etcdctl_tls.clone(),
                    args,
                    program,
                    child: None,
                    log: data.join(format!("m{i}.log")),
                };
                m.spawn();
                m
            })
            .collect();
        let c = ProcCluster { members, _dir: dir };
        c.wait_ready();
        c
    }

    /// Waits until a linearizable read succeeds through every member.
    pub fn wait_ready(&self) {
        for m in &self.members {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut args: Vec<&str> = m.etcdctl_tls.iter().map(String::as_str).collect();
                args.extend(["get", "ready-probe"]);
                let out = etcdctl(&m.client_url, &args, None);
                if out.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "member {} not ready: {}\n{}",
                    m.name,
                    String::from_utf8_lossy(&out.stderr),
                    m.log_tail()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Runs etcdctl (v3 API) against `endpoints` with an optional stdin.
pub fn etcdctl(endpoints: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn etcdctl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write etcdctl stdin");
    }
    child.wait_with_output().expect("etcdctl finishes")
}
