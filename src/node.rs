//! One member: storage, Raft, state machine, lessor and the gRPC servers, wired and started.
//!
//! `Node::start` returns once the member listens on its client and peer URLs; the cluster may
//! still be electing. `Node::stop` shuts Raft down and closes the listeners; dropping a `Node`
//! without stopping it aborts its tasks (what a crash looks like to its peers).

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::SnapshotPolicy;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::cluster::ClusterService;
use crate::api::kv::KvService;
use crate::api::lease::LeaseService;
use crate::api::maintenance::MaintenanceService;
use crate::api::{auth, election, http, lock, too_large, watch as watch_api, MAX_GRPC_RECV_BYTES};
use crate::config::{ClusterState, Config};
use crate::lease::Lessor;
use crate::metrics::{Counted, Metrics};
use crate::peer::{NetworkFactory, PeerClients, PeerService, PEER_MESSAGE_MAX_BYTES};
use crate::proto::etcdserverpb::auth_server::AuthServer;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::proto::peer::peer_server::PeerServer;
use crate::proto::v3electionpb::election_server::ElectionServer;
use crate::proto::v3lockpb::lock_server::LockServer;
use crate::raft::heard::HeardFrom;
use crate::raft::log_store::LogStore;
use crate::raft::rejoin::{self, Admission};
use crate::raft::removal;
use crate::raft::state_machine::StateMachine;
use crate::raft::typ::{Raft, Runtime};
use crate::server::Server;
use crate::storage::MemberStorage;
use crate::transport::{AuthorityFix, Coalesce, Conn, Incoming, Transport};
use crate::watch::WatchHub;
use futures::{StreamExt, TryStreamExt};

pub struct Node {
    pub server: Arc<Server>,
    pub config: Config,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Set when the member stops taking part by itself after it started (`stopped`).
    stopped: watch::Receiver<Option<Stopped>>,
}

/// Why a started member stopped taking part by itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// Its data dir was lost and a peer remembers it (see `raft::rejoin`).
    #[error("{0}")]
    Refused(String),
    /// The cluster removed it (see `raft::removal`); etcd's words.
    #[error("the member has been permanently removed from the cluster")]
    Removed,
}

/// The rest of a start on an empty data dir, when its peers had not answered in time.
struct Later {
    raft: Raft,
    server: Arc<Server>,
    peers: Arc<PeerClients>,
    config: Config,
    admission: Arc<Admission>,
    stopped: Arc<watch::Sender<Option<Stopped>>>,
}

impl Later {
    async fn admit(self, others: BTreeMap<u64, crate::raft::Member>, poll: std::time::Duration) {
        let id = self.config.member_id();
        match rejoin::check(id, &self.peers, &others, poll).await {
            Ok(()) => {
                // Initialized before Raft messages are let in: a vote granted in between would
                // make openraft refuse to initialize, leaving a member that never campaigns.
                if let Err(e) = initialize(&self.raft, &self.config).await {
                    tracing::error!(error = %e, "initialize failed");
                }
                self.admission.admit();
            }
            Err(e) => {
                tracing::error!(error = %e, "refusing to go on");
                self.server.shutdown().await;
                self.stopped
                    .send_replace(Some(Stopped::Refused(e.to_string())));
            }
        }
    }
}

/// Every initial member initializes with the same membership; openraft allows that and the
/// vote decides one leader. Only once the peers' answers allow it (a member refused later must
/// leave its data dir as empty as it found it), and before Raft messages are let in.
async fn initialize(raft: &Raft, config: &Config) -> Result<(), StartError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if config.initial_cluster_state == ClusterState::New && !initialized {
        if let Err(e) = raft.initialize(config.initial_members()).await {
            tracing::info!(error = %e, "initialize skipped");
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    DataDirLost(#[from] crate::raft::rejoin::DataDirLost),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A member's TLS, resolved from its flags: auto-TLS certificates made, configurations built
/// once at start. A side without certificate flags serves and dials plain http only.
#[derive(Default)]
struct MemberTls {
    client_listen: Option<Arc<rustls::ServerConfig>>,
    peer_listen: Option<Arc<rustls::ServerConfig>>,
    client_dial: Option<Arc<rustls::ClientConfig>>,
    peer_dial: Option<Arc<rustls::ClientConfig>>,
}

impl MemberTls {
    fn from_config(config: &Config) -> Result<MemberTls, crate::tls::TlsError> {
        let provider = crate::tls::provider(&config.tls.cipher_suites)?;
        let hosts = |urls: &[String]| -> Vec<String> {
            let mut hosts: Vec<String> = urls
                .iter()
                .filter_map(|u| crate::config::url_host_port(u).ok().map(|(h, _)| h))
                .collect();
            hosts.sort();
            hosts.dedup();
            hosts
        };
        let fixtures = config.data_dir.join("fixtures");
        let mut client = config.tls.client.clone();
        crate::tls::auto_tls(
            &mut client,
            &fixtures.join("client"),
            &hosts(&config.listen_client_urls),
        )?;
        let mut peer = config.tls.peer.clone();
        crate::tls::auto_tls(
            &mut peer,
            &fixtures.join("peer"),
            &hosts(&config.listen_peer_urls),
        )?;
        let mut tls = MemberTls::default();
        if client.has_identity() {
            tls.client_listen = Some(crate::tls::server_config(&client, &provider)?);
            tls.client_dial = Some(crate::tls::client_config(&client, &provider)?);
        }
        if peer.has_identity() {
            tls.peer_listen = Some(crate::tls::server_config(&peer, &provider)?);
            tls.peer_dial = Some(crate::tls::client_config(&peer, &provider)?);
        }
        Ok(tls)
    }
}

/// Listens on `url`, with TLS when it is `https://`.
async fn listen(
    transport: &Transport,
    url: &str,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<Incoming, StartError> {
    let incoming = transport.net.listen(url).await?;
    match (url.starts_with("https://"), tls) {
        (false, _) => Ok(incoming),
        (true, Some(tls)) => Ok(crate::tls::accept(incoming, tls.clone())),
        // `Config::validate` refuses https without a certificate.
        (true, None) => Err(StartError::Storage(std::io::Error::other(format!(
            "{url}: https without a certificate"
        )))),
    }
}

/// A member's sockets, bound before its data dir is loaded, as etcd binds its listeners
/// before opening its backend: a client dialing during a long load waits in the accept queue
/// instead of being refused (a refused gRPC client backs off for a second or more).
struct Listeners {
    tls: MemberTls,
    client: Vec<Incoming>,
    peer: Vec<Incoming>,
    metrics: Vec<Incoming>,
}

impl Listeners {
    async fn bind(config: &Config, transport: &Transport) -> Result<Listeners, StartError> {
        let tls = MemberTls::from_config(config)?;
        let mut client = Vec::new();
        for url in &config.listen_client_urls {
            client.push(listen(transport, url, tls.client_listen.as_ref()).await?);
        }
        let mut peer = Vec::new();
        for url in &config.listen_peer_urls {
            peer.push(listen(transport, url, tls.peer_listen.as_ref()).await?);
        }
        let mut metrics = Vec::new();
        for url in &config.listen_metrics_urls {
            metrics.push(listen(transport, url, tls.client_listen.as_ref()).await?);
        }
        Ok(Listeners {
            tls,
            client,
            peer,
            metrics,
        })
    }
}

impl Node {
    /// Starts a member on its data directory (`config.data_dir`).
    pub async fn start(config: Config, transport: Transport) -> Result<Node, StartError> {
        config.validate()?;
        let listeners = Listeners::bind(&config, &transport).await?;
        let storage = MemberStorage::open(&config.data_dir)?;
        Self::start_on(config, storage, transport, rand::random(), listeners).await
    }

    /// Starts a member on the given storage; `seed` drives Raft's election jitter.
    pub async fn start_with_storage(
        config: Config,
        storage: MemberStorage,
        transport: Transport,
        seed: u64,
    ) -> Result<Node, StartError> {
        config.validate()?;
        let listeners = Listeners::bind(&config, &transport).await?;
        Self::start_on(config, storage, transport, seed, listeners).await
    }

    async fn start_on(
        config: Config,
        storage: MemberStorage,
        transport: Transport,
        seed: u64,
        listeners: Listeners,
    ) -> Result<Node, StartError> {
        let Listeners {
            tls,
            client,
            peer,
            metrics: metrics_listeners,
        } = listeners;
        let mut transport = transport;
        transport.peer_tls = tls.peer_dial.clone();
        transport.client_tls = tls.client_dial.clone();
        let id = config.member_id();
        let hub = Arc::new(WatchHub::new().with_plants(config.plants));
        let lessor = Arc::new(Lessor::new());
        let metrics = Metrics::new();
        let sm = StateMachine::open(
            storage.snapshots.clone(),
            hub,
            lessor,
            Some(metrics.backend_commit_seconds.clone()),
        )?;
        let log = LogStore::new(storage.log.clone())
            .with_ack_before_sync(config.plants.ack_before_sync)
            .with_fsync_histogram(metrics.wal_fsync_seconds.clone());
        let raft_config = openraft::Config {
            cluster_name: config.initial_cluster_token.clone(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            install_snapshot_timeout: 10 * config.election_timeout_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
            // Keep as many entries as a snapshot spans: a briefly lagging member catches up
            // from the log, a long-gone one from a snapshot.
            max_in_snapshot_log_to_keep: config.snapshot_every_entries / 10,
            purge_batch_size: (config.snapshot_every_entries / 10).clamp(1, 256),
            enable_pre_vote: Some(true),
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let fresh = storage.is_empty()?;
        let admission = Arc::new(Admission::new(
            HeardFrom::open(storage.log.clone())?,
            !fresh,
        ));
        sm.forget_removed_into(admission.clone());
        let peers = Arc::new(PeerClients::new(id, transport.clone()));
        let network = NetworkFactory::new(
            id,
            peers.clone(),
            config.election_timeout(),
            admission.clone(),
        );
        // Raft's tasks inherit this seed; see `raft::typ::Runtime`.
        let raft: Raft = Runtime::scope(
            seed,
            Raft::new(id, Arc::new(raft_config), network, log, sm.clone()),
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        let server = Arc::new(Server::new(
            &config,
            raft.clone(),
            sm,
            storage,
            peers.clone(),
            metrics.clone(),
            admission.clone(),
        ));

        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        for incoming in client {
            let metrics = metrics.clone();
            let counted = incoming.map_ok(move |c| {
                // The count wraps the bytes; the TLS client's name stays on the connection.
                let cn = c.cert_cn();
                Conn::with_cert_cn(Counted::new(c, metrics.clone()), cn)
            });
            tasks.push(tokio::spawn(serve_clients(
                server.clone(),
                counted.boxed(),
                transport.net.frames(),
                shutdown.subscribe(),
            )));
        }
        for incoming in peer {
            tasks.push(tokio::spawn(serve_peers(
                server.clone(),
                incoming,
                transport.net.frames(),
                shutdown.subscribe(),
            )));
        }
        for incoming in metrics_listeners {
            tasks.push(tokio::spawn(serve_metrics(
                server.clone(),
                incoming,
                shutdown.subscribe(),
            )));
        }
        let (stopped_tx, stopped) = watch::channel(None);
        let stopped_tx = Arc::new(stopped_tx);
        if fresh {
            // Listening already, so peers starting at the same time can answer each other.
            let others: BTreeMap<_, _> = config
                .initial_members()
                .into_iter()
                .filter(|(peer, _)| *peer != id)
                .collect();
            let poll = config.election_timeout() / 2;
            let ask = rejoin::check(id, &peers, &others, poll);
            match crate::clock::timeout(config.election_timeout(), ask).await {
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "refusing to start");
                    let _ = shutdown.send(true);
                    server.shutdown().await;
                    tasks.iter().for_each(|t| t.abort());
                    return Err(e.into());
                }
                Ok(Ok(())) => {
                    initialize(&raft, &config).await?;
                    admission.admit();
                }
                Err(_) => {
                    // Undecided while fewer than a majority run: keep asking in the background,
                    // so members started one after another do not wait on each other.
                    let later = Later {
                        raft: raft.clone(),
                        server: server.clone(),
                        peers: peers.clone(),
                        config: config.clone(),
                        admission: admission.clone(),
                        stopped: stopped_tx.clone(),
                    };
                    tasks.push(tokio::spawn(later.admit(others, poll)));
                }
            }
        } else {
            initialize(&raft, &config).await?;
        }
        tasks.push(tokio::spawn(server.clone().lessor_loop()));
        tasks.push(tokio::spawn(server.clone().read_loop()));
        if config.snapshot_when_idle {
            let count = config.snapshot_every_entries;
            tasks.push(tokio::spawn(server.clone().idle_snapshot_loop(count)));
        }
        tasks.push(tokio::spawn(server.clone().leader_changes_loop()));
        tasks.push(tokio::spawn(
            server
                .clone()
                .publish_loop(config.advertise_client_urls.clone()),
        ));
        tasks.push(tokio::spawn(stop_when_removed(
            server.clone(),
            peers.clone(),
            config.election_timeout() / 2,
            stopped_tx,
        )));
        tracing::info!(name = %config.name, id = format!("{id:x}"), "member started");
        Ok(Node {
            server,
            config,
            shutdown,
            tasks,
            stopped,
        })
    }

    /// Waits until the member stops taking part by itself (its data dir was lost, see
    /// `raft::rejoin`; or the cluster removed it, see `raft::removal`) and says why. A member
    /// that goes on never returns from this.
    pub async fn stopped(&self) -> Stopped {
        let mut rx = self.stopped.clone();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn id(&self) -> u64 {
        self.server.id()
    }

    pub fn client_urls(&self) -> &[String] {
        &self.config.advertise_client_urls
    }

    /// Stops serving and shuts Raft down cleanly.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        self.server.shutdown().await;
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Node {
    /// Stops abruptly: listeners and background loops die at once, then Raft stops.
    pub async fn kill(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let _ = self.shutdown.send(true);
        self.server.shutdown().await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Shuts Raft down once the cluster confirms it removed this member, as etcd's member stops.
async fn stop_when_removed(
    server: Arc<Server>,
    peers: Arc<PeerClients>,
    poll: std::time::Duration,
    stopped: Arc<watch::Sender<Option<Stopped>>>,
) {
    let id = server.id();
    removal::watch(id, server.as_ref(), peers, poll).await;
    tracing::error!(
        id = format!("{id:x}"),
        "the member has been permanently removed from the cluster; its data dir must be \
         removed before this host joins again"
    );
    server.shutdown().await;
    stopped.send_replace(Some(Stopped::Removed));
}

async fn wait_shutdown(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            // The node was dropped: stop too.
            return;
        }
    }
}

/// `frames`: clients call in `transport::frames` (the simulator's), not over HTTP/2.
async fn serve_clients(
    server: Arc<Server>,
    incoming: Incoming,
    frames: bool,
    shutdown: watch::Receiver<bool>,
) {
    let kv = KvServer::new(KvService {
        server: server.clone(),
    })
    .max_decoding_message_size(MAX_GRPC_RECV_BYTES);
    let routes = tonic::service::Routes::new(kv)
        .add_service(
            WatchServer::new(watch_api::WatchService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            LeaseServer::new(LeaseService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            ClusterServer::new(ClusterService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            MaintenanceServer::new(MaintenanceService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            AuthServer::new(auth::AuthService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            ElectionServer::new(election::ElectionService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        )
        .add_service(
            LockServer::new(lock::LockService {
                server: server.clone(),
            })
            .max_decoding_message_size(MAX_GRPC_RECV_BYTES),
        );
    let router = routes
        .into_axum_router()
        .layer(axum::middleware::map_response(too_large::as_grpc_go))
        .merge(http::client_routes(server.clone()));
    if frames {
        return crate::transport::frames::serve(incoming, router, wait_shutdown(shutdown)).await;
    }
    let res = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(router.into())
        .serve_with_incoming_shutdown(
            // The wrapper keeps the client certificate's name for auth; writes are held
            // until h2 flushes, so a response leaves in one write (`transport::coalesce`).
            incoming.map_ok(|c| {
                let cn = c.cert_cn();
                Conn::with_cert_cn(AuthorityFix::new(Coalesce::new(c)), cn)
            }),
            wait_shutdown(shutdown),
        )
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "client server stopped");
    }
}

/// `--listen-metrics-urls`: `/health` and `/metrics` over HTTP/1.1 or h2.
async fn serve_metrics(server: Arc<Server>, incoming: Incoming, shutdown: watch::Receiver<bool>) {
    let router = http::metrics_routes(server);
    let res = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(router.into())
        .serve_with_incoming_shutdown(incoming, wait_shutdown(shutdown))
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "metrics server stopped");
    }
}

/// How much a peer may send on one call before the receiver takes it, and in what frames.
const PEER_STREAM_WINDOW_BYTES: u32 = 8 << 20;
const PEER_FRAME_BYTES: u32 = 256 << 10;

/// `frames`: peers call in `transport::frames` (the simulator), not over HTTP/2.
async fn serve_peers(
    server: Arc<Server>,
    incoming: Incoming,
    frames: bool,
    shutdown: watch::Receiver<bool>,
) {
    let svc = PeerServer::new(PeerService::new(server))
        .max_decoding_message_size(PEER_MESSAGE_MAX_BYTES)
        .max_encoding_message_size(PEER_MESSAGE_MAX_BYTES);
    if frames {
        return crate::transport::frames::serve(incoming, svc, wait_shutdown(shutdown)).await;
    }
    // A snapshot's chunks are 1 MiB: with h2's default windows (1 MiB) and frames (16 KiB) a
    // leader could send one chunk at a time, in 64 frames, each chunk waiting for the last to
    // be taken off the connection.
    let res = tonic::transport::Server::builder()
        .initial_stream_window_size(PEER_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(2 * PEER_STREAM_WINDOW_BYTES)
        .max_frame_size(PEER_FRAME_BYTES)
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, wait_shutdown(shutdown))
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "peer server stopped");
    }
}
