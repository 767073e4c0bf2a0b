//! A local cluster in one process: the embedding API for tests and `quorum cluster`.
//!
//! Members listen on loopback, each on its own thread and runtime (`runtime.rs`); `kill` drops a
//! member abruptly (its peers see connections die), `restart` brings it back from its data
//! directory, `pause`/`resume` freeze and thaw it with its sockets open, and `partition`/`heal`
//! cut and restore links between members while they run.

mod runtime;

use std::path::PathBuf;

use crate::config::{ClusterState, Config, TlsConfig};
use crate::node::{Node, StartError};
use crate::tls::{PkiFiles, TestPki};
use crate::transport::{Faults, Transport};

pub use runtime::MemberRuntime;

/// A running member and the thread it runs on.
struct Member {
    node: Node,
    runtime: MemberRuntime,
}

impl Member {
    async fn start(config: Config, faults: Faults) -> Result<Member, StartError> {
        let runtime = MemberRuntime::start(&config.name)?;
        let start = Node::start(config, Transport::with_faults(faults));
        let node = runtime
            .run(start)
            .await
            .ok_or_else(|| StartError::Raft("member runtime ended during start".into()))??;
        Ok(Member { node, runtime })
    }

    /// Runs the node's own kill or stop on its thread (released first if paused: a stopped
    /// process is killed all the same), then drops the runtime and whatever it still ran.
    async fn end(self, crash: bool) {
        let Member { node, mut runtime } = self;
        runtime.resume();
        let _ = match crash {
            true => runtime.run(node.kill()).await,
            false => runtime.run(node.stop()).await,
        };
        runtime.shut_down().await;
    }
}

/// Ports of member i (0-based), in etcd's customary local layout: clients 2379, 22379, 32379,
/// ...; peers 12380, 22380, 32380, ...
pub fn default_ports(i: usize) -> (u16, u16) {
    let step = (i as u16 + 1) * 10000;
    let client = if i == 0 { 2379 } else { step + 2379 };
    (client, step + 2380)
}

pub struct LocalCluster {
    configs: Vec<Config>,
    members: Vec<Option<Member>>,
    faults: Faults,
    /// The certificates members serve and clients present, when the cluster runs TLS.
    pki: Option<PkiFiles>,
    /// Kept so temporary data directories live as long as the cluster.
    _temp: Option<tempfile::TempDir>,
}

/// How to lay out a local cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// `None`: a fresh temporary directory, removed when the cluster drops.
    pub data_dir: Option<PathBuf>,
    /// Client and peer port of each member.
    pub ports: Vec<(u16, u16)>,
    pub token: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_every_entries: u64,
    /// Serve https on client and peer URLs with certificates from a throwaway CA (written
    /// under the data dir, `tls/`), clients and peers required to present one.
    pub tls: bool,
    /// Token TTL and bcrypt cost of every member.
    pub auth: crate::config::AuthConfig,
}

impl ClusterSpec {
    pub fn new(nodes: usize) -> Self {
        ClusterSpec {
            nodes,
            data_dir: None,
            ports: (0..nodes).map(default_ports).collect(),
            token: "quorum-local".into(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_every_entries: crate::config::DEFAULT_SNAPSHOT_EVERY_ENTRIES,
            tls: false,
            auth: Default::default(),
        }
    }
}

impl LocalCluster {
    pub async fn start(spec: ClusterSpec) -> Result<LocalCluster, StartError> {
        let (base, temp) = match &spec.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let pki = match spec.tls {
            true => Some(TestPki::generate()?.write_to(&base.join("tls"))?),
            false => None,
        };
        let scheme = if spec.tls { "https" } else { "http" };
        let tls = match &pki {
            Some(files) => TlsConfig {
                client: files.member_tls(),
                peer: files.member_tls(),
                cipher_suites: Vec::new(),
            },
            None => TlsConfig::default(),
        };
        let peer_url = |p: u16| format!("{scheme}://127.0.0.1:{p}");
        let initial: Vec<(String, Vec<String>)> = spec
            .ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| (format!("n{}", i + 1), vec![peer_url(*p)]))
            .collect();
        let configs: Vec<Config> = spec
            .ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| {
                let client = format!("{scheme}://127.0.0.1:{c}");
                Config {
                    name: format!("n{}", i + 1),
                    data_dir: base.join(format!("n{}", i + 1)),
                    listen_client_urls: vec![client.clone()],
                    advertise_client_urls: vec![client],
                    listen_peer_urls: vec![peer_url(*p)],
                    listen_metrics_urls: Vec::new(),
                    initial_advertise_peer_urls: vec![peer_url(*p)],
                    initial_cluster: initial.clone(),
                    initial_cluster_state: ClusterState::New,
                    initial_cluster_token: spec.token.clone(),
                    heartbeat_interval_ms: spec.heartbeat_interval_ms,
                    election_timeout_ms: spec.election_timeout_ms,
                    snapshot_every_entries: spec.snapshot_every_entries,
                    snapshot_when_idle: true,
                    quota_backend_bytes: crate::config::DEFAULT_QUOTA_BACKEND_BYTES,
                    plants: Default::default(),
                    tls: tls.clone(),
                    auth: spec.auth,
                }
            })
            .collect();
        let faults = Faults::default();
        // All at once, as `quorum serve` processes would be: a member on an empty data dir
        // waits to hear from its peers before it takes part.
        let starts = configs
            .iter()
            .map(|c| Member::start(c.clone(), faults.clone()));
        let mut members = Vec::new();
        for m in futures::future::join_all(starts).await {
            members.push(Some(m?));
        }
        Ok(LocalCluster {
            configs,
            members,
            faults,
            pki,
            _temp: temp,
        })
    }

    /// Client endpoints, one per member, running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.configs
            .iter()
            .map(|c| c.advertise_client_urls[0].clone())
            .collect()
    }

    /// The certificate files, when the cluster runs TLS.
    pub fn pki(&self) -> Option<&PkiFiles> {
        self.pki.as_ref()
    }

    /// The etcdctl invocation that reaches this cluster (endpoints and, with TLS, the CA and
    /// client certificate flags), for a command to be appended.
    pub fn etcdctl(&self) -> String {
        let mut line = format!("etcdctl --endpoints={}", self.endpoints().join(","));
        if let Some(p) = &self.pki {
            line += &format!(
                " --cacert={} --cert={} --key={}",
                p.ca.display(),
                p.client_cert.display(),
                p.client_key.display()
            );
        }
        line
    }

    pub fn member_ids(&self) -> Vec<u64> {
        self.configs.iter().map(|c| c.member_id()).collect()
    }

    /// Member i, when it runs (paused or not).
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.members
            .get(i)
            .and_then(|m| m.as_ref())
            .map(|m| &m.node)
    }

    /// Whether member i is paused now.
    pub fn is_paused(&self, i: usize) -> bool {
        self.members
            .get(i)
            .and_then(|m| m.as_ref())
            .is_some_and(|m| m.runtime.is_paused())
    }

    /// Index of the member that currently leads, as running members see it. A paused member's
    /// view is the one it froze with, so it is not asked.
    pub fn leader(&self) -> Option<usize> {
        let ids = self.member_ids();
        self.members
            .iter()
            .flatten()
            .filter(|m| !m.runtime.is_paused())
            .find_map(|m| m.node.server.leader())
            .and_then(|l| ids.iter().position(|id| *id == l))
    }

    /// Stops member i abruptly, as a crash would: its listeners vanish first, then Raft stops
    /// without handing anything over, then its runtime is dropped with every task left on it.
    pub async fn kill(&mut self, i: usize) {
        if let Some(m) = self.members[i].take() {
            m.end(true).await;
        }
    }

    /// Stops member i cleanly.
    pub async fn stop(&mut self, i: usize) {
        if let Some(m) = self.members[i].take() {
            m.end(false).await;
        }
    }

    /// Freezes member i (every task and timer on its thread) with its sockets left open, as
    /// SIGSTOP or a long GC pause would; returns once it is frozen. No-op when it is down.
    pub async fn pause(&mut self, i: usize) {
        if let Some(m) = self.members[i].as_mut() {
            m.runtime.pause().await;
        }
    }

    /// Lets a paused member i run again. No-op when it is not paused.
    pub fn resume(&mut self, i: usize) {
        if let Some(m) = self.members[i].as_mut() {
            m.runtime.resume();
        }
    }

    /// Starts member i again from its data directory.
    pub async fn restart(&mut self, i: usize) -> Result<(), StartError> {
        self.stop(i).await;
        // The previous instance's storage handle may take a moment to be released.
        let mut attempt = 0;
        let member = loop {
            match Member::start(self.configs[i].clone(), self.faults.clone()).await {
                Ok(m) => break m,
                Err(StartError::Storage(e)) if attempt < 50 => {
                    tracing::debug!(error = %e, "storage still held, retrying");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.members[i] = Some(member);
        Ok(())
    }

    /// Cuts every link between the members in `a` and those in `b` (indices).
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        let ids = self.member_ids();
        let pick = |s: &[usize]| s.iter().map(|i| ids[*i]).collect::<Vec<_>>();
        self.faults.partition(&pick(a), &pick(b));
    }

    /// Cuts the one link from member `from` to member `to` (indices): `to` stops hearing from
    /// `from`, while its own calls to `from` still go through.
    pub fn cut(&self, from: usize, to: usize) {
        let ids = self.member_ids();
        self.faults.cut(ids[from], ids[to]);
    }

    pub fn heal(&self) {
        self.faults.heal();
    }

    /// Cuts member i off from every other member, both directions.
    pub fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.configs.len()).filter(|j| *j != i).collect();
        self.partition(&[i], &others);
    }

    /// Restores member i's links, leaving cuts between the other members in place.
    pub fn heal_member(&self, i: usize) {
        self.faults.heal_member(self.configs[i].member_id());
    }

    /// Member names (`n1`, `n2`, ...), by index.
    pub fn names(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.name.clone()).collect()
    }

    /// The directed links cut now, as (from, to) member indices.
    pub fn cut_links(&self) -> Vec<(usize, usize)> {
        let ids = self.member_ids();
        let index = |id: u64| ids.iter().position(|x| *x == id);
        self.faults
            .cut_links()
            .into_iter()
            .filter_map(|(a, b)| Some((index(a)?, index(b)?)))
            .collect()
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.members.len() {
            self.stop(i).await;
        }
    }
}
