//! etcd-compatible member configuration: the flags `quorum serve` takes and what they mean.
//!
//! Member and cluster ids are derived, as etcd derives them, from the peer URLs and the cluster
//! token, so every member computes the same ids from the same `--initial-cluster`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::raft::typ::Member;
use crate::tls::TlsFiles;

/// etcd's default `--quota-backend-bytes` (2 GiB), used when the flag is 0 or absent.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 << 30;

/// etcd 3.6's default `--snapshot-count` (etcd 3.2 to 3.5 take 100,000): a tenth of the Raft
/// log held in memory, and of the replay at a restart.
pub const DEFAULT_SNAPSHOT_EVERY_ENTRIES: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client_urls: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer_urls: Vec<String>,
    /// `--listen-metrics-urls`: extra URLs serving only `/metrics` and `/health`.
    pub listen_metrics_urls: Vec<String>,
    pub initial_advertise_peer_urls: Vec<String>,
    /// name -> peer URLs, in the order given.
    pub initial_cluster: Vec<(String, Vec<String>)>,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// Raft snapshots after this many entries (etcd's `--snapshot-count`), bounding the replay
    /// after a restart and letting the log be purged.
    pub snapshot_every_entries: u64,
    /// Writes a snapshot that pacing put off once writes pause (`server::idle_snapshot`). Off
    /// in the simulator, whose states never grow large enough for pacing to put one off, and
    /// where a task of its own would move every seed's schedule.
    pub snapshot_when_idle: bool,
    /// `--quota-backend-bytes`: past this, writes are refused and NOSPACE is raised.
    pub quota_backend_bytes: u64,
    /// Deliberate bugs for the simulator's checkers; always off outside tests.
    pub plants: crate::plant::Plants,
    /// etcd's TLS flags, client and peer side.
    pub tls: TlsConfig,
    /// etcd's auth flags.
    pub auth: AuthConfig,
}

/// `--auth-token-ttl` and `--bcrypt-cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthConfig {
    /// A simple token unused for this long is forgotten (etcd's default: 300 s).
    pub token_ttl: Duration,
    /// bcrypt's work factor for stored passwords: etcd's default 10 (tens of milliseconds per
    /// hash); tests lower it to bcrypt's minimum, 4, to stay fast.
    pub bcrypt_cost: u32,
}

/// bcrypt refuses costs outside 4..=31.
pub const BCRYPT_COST_MIN: u32 = 4;
pub const BCRYPT_COST_MAX: u32 = 31;

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl: Duration::from_secs(300),
            bcrypt_cost: 10,
        }
    }
}

/// etcd's TLS flags: `--cert-file ...` (client side), `--peer-cert-file ...` (peer side),
/// `--cipher-suites` (both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub client: TlsFiles,
    pub peer: TlsFiles,
    /// Go's names of the TLS 1.2 suites to allow; empty allows rustls' safe defaults.
    pub cipher_suites: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--initial-cluster has no member named {0:?} (this member's --name)")]
    NameNotInCluster(String),
    #[error("invalid --initial-cluster entry {0:?}: expected name=url")]
    BadClusterEntry(String),
    #[error("TLS key/cert ({flags}) must be provided for {side} url {url} with HTTPS scheme")]
    TlsNeedsCert {
        side: &'static str,
        flags: &'static str,
        url: String,
    },
    #[error("invalid URL {0:?}: {1}")]
    BadUrl(String, String),
    #[error("--initial-advertise-peer-urls {advertised:?} differ from --initial-cluster's {listed:?} for {name}")]
    PeerUrlMismatch {
        name: String,
        advertised: Vec<String>,
        listed: Vec<String>,
    },
    #[error("--election-timeout ({election}ms) must be at least 5x --heartbeat-interval ({heartbeat}ms)")]
    BadTimeouts { heartbeat: u64, election: u64 },
}

impl Config {
    /// A single member on loopback with etcd's default ports.
    pub fn single(name: &str, data_dir: PathBuf) -> Self {
        let peer = "http://127.0.0.1:2380".to_string();
        Config {
            name: name.to_string(),
            data_dir,
            listen_client_urls: vec!["http://127.0.0.1:2379".into()],
            advertise_client_urls: vec!["http://127.0.0.1:2379".into()],
            listen_peer_urls: vec![peer.clone()],
            listen_metrics_urls: Vec::new(),
            initial_advertise_peer_urls: vec![peer.clone()],
            initial_cluster: vec![(name.to_string(), vec![peer])],
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".into(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_every_entries: DEFAULT_SNAPSHOT_EVERY_ENTRIES,
            snapshot_when_idle: true,
            quota_backend_bytes: DEFAULT_QUOTA_BACKEND_BYTES,
            plants: Default::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // An https:// URL with no certificate to serve would fail every client with a
        // confusing handshake error; refuse it at start, as etcd does.
        let https = |urls: &[String]| urls.iter().find(|u| u.starts_with("https://")).cloned();
        if let Some(url) =
            https(&self.listen_client_urls).filter(|_| !self.tls.client.has_identity())
        {
            let flags = "--cert-file, --key-file";
            return Err(ConfigError::TlsNeedsCert {
                side: "client",
                flags,
                url,
            });
        }
        if let Some(url) =
            https(&self.listen_metrics_urls).filter(|_| !self.tls.client.has_identity())
        {
            let flags = "--cert-file, --key-file";
            return Err(ConfigError::TlsNeedsCert {
                side: "metrics",
                flags,
                url,
            });
        }
        if let Some(url) = https(&self.listen_peer_urls).filter(|_| !self.tls.peer.has_identity()) {
            let flags = "--peer-cert-file, --peer-key-file";
            return Err(ConfigError::TlsNeedsCert {
                side: "peer",
                flags,
                url,
            });
        }
        let listed = self
            .initial_cluster
            .iter()
            .filter(|(n, _)| *n == self.name)
            .flat_map(|(_, u)| u.clone())
            .collect::<Vec<_>>();
        if listed.is_empty() {
            return Err(ConfigError::NameNotInCluster(self.name.clone()));
        }
        let mut a = self.initial_advertise_peer_urls.clone();
        let mut b = listed.clone();
        a.sort();
        b.sort();
        if a != b {
            return Err(ConfigError::PeerUrlMismatch {
                name: self.name.clone(),
                advertised: self.initial_advertise_peer_urls.clone(),
                listed,
            });
        }
        for u in self
            .listen_client_urls
            .iter()
            .chain(&self.listen_peer_urls)
            .chain(&self.listen_metrics_urls)
            .chain(&self.advertise_client_urls)
        {
            url_host_port(u)?;
        }
        if self.election_timeout_ms < 5 * self.heartbeat_interval_ms {
            return Err(ConfigError::BadTimeouts {
                heartbeat: self.heartbeat_interval_ms,
                election: self.election_timeout_ms,
            });
        }
        Ok(())
    }

    pub fn member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
        )
    }

    /// Every initial member by id, as Raft's first membership.
    pub fn initial_members(&self) -> BTreeMap<u64, Member> {
        self.initial_cluster
            .iter()
            .map(|(name, urls)| {
                (
                    member_id(urls, &self.initial_cluster_token),
                    Member {
                        name: name.clone(),
                        peer_urls: urls.clone(),
                    },
                )
            })
            .collect()
    }

    /// The cluster's id. etcd hashes the initial members with the token; Quorum hashes the
    /// token alone, so a member added later (whose `--initial-cluster` also lists itself)
    /// computes the same id as the founders.
    pub fn cluster_id(&self) -> u64 {
        let mut h = Fnv::new();
        h.write(b"cluster:");
        h.write(self.initial_cluster_token.as_bytes());
        h.finish()
    }

    pub fn election_timeout(&self) -> Duration {
        Duration::from_millis(self.election_timeout_ms)
    }
}

/// Parses `a=http://h:1,b=http://h:2,a=http://h:3` (a name may repeat for several URLs).
pub fn parse_initial_cluster(s: &str) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::BadClusterEntry(part.to_string()))?;
        url_host_port(url)?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.to_string()),
            None => out.push((name.to_string(), vec![url.to_string()])),
        }
    }
    Ok(out)
}

/// `http://host:2379` -> (`host`, 2379), without resolving the host.
pub fn url_host_port(url: &str) -> Result<(String, u16), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::BadUrl(url.into(), "scheme must be http".into()))?;
    let host_port = rest.trim_end_matches('/');
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::BadUrl(url.into(), "missing port".into()))?;
    let port = port
        .parse()
        .map_err(|_| ConfigError::BadUrl(url.into(), "bad port".into()))?;
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
    ))
}

/// `http://127.0.0.1:2379` -> the socket address to bind or dial on the real network.
pub fn url_addr(url: &str) -> Result<SocketAddr, ConfigError> {
    let (host, port) = url_host_port(url)?;
    let host = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    use std::net::ToSocketAddrs;
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| ConfigError::BadUrl(url.into(), e.to_string()))?
        .next()
        .ok_or_else(|| ConfigError::BadUrl(url.into(), "no address".into()))
}

/// etcd derives a member id from its sorted peer URLs and the cluster token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Fnv::new();
    for u in &urls {
        h.write(u.as_bytes());
    }
    h.write(token.as_bytes());
    h.finish()
}

/// FNV-1a, 64-bit: small, stable across releases and platforms (std's hasher is not).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_parses_names_and_repeated_urls() {
        // Goal: etcd's `name=url,...` syntax, a name may carry several URLs.
        let c =
            parse_initial_cluster("a=http://127.0.0.1:1,b=http://127.0.0.1:2,a=http://127.0.0.1:3")
                .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].1.len(), 2);
        assert!(parse_initial_cluster("nonsense").is_err());
    }

    #[test]
    fn https_urls_need_a_certificate_or_auto_tls() {
        // Goal: etcd's refusal at start, naming the flags, instead of a handshake failure later.
        let mut c = Config::single("a", "/tmp/x".into());
        c.listen_client_urls = vec!["https://127.0.0.1:2379".into()];
        let err = c.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "TLS key/cert (--cert-file, --key-file) must be provided for client url \
             https://127.0.0.1:2379 with HTTPS scheme"
        );
        c.tls.client.auto_tls = true;
        c.validate().unwrap();
        c.listen_peer_urls = vec!["https://127.0.0.1:2380".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--peer-cert-file"));
        c.tls.peer.cert_file = Some("p.pem".into());
        c.tls.peer.key_file = Some("p-key.pem".into());
        c.validate().unwrap();
    }

    #[test]
    fn member_ids_are_stable_and_distinct() {
        // Goal: every member derives the same id for a peer, and peers differ.
        let a = member_id(&["http://127.0.0.1:1".into()], "t");
        let b = member_id(&["http://127.0.0.1:2".into()], "t");
        assert_ne!(a, b);
        assert_eq!(a, member_id(&["http://127.0.0.1:1".into()], "t"));
        assert_ne!(a, member_id(&["http://127.0.0.1:1".into()], "other"));
    }
}
