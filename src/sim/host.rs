//! A member's host: the turmoil host that runs the unmodified `Node` on its own clock and
//! storage, and what decides how it starts. The run's members start at once with
//! `--initial-cluster-state new`; a spare host (a member number beyond them) stays empty until
//! the operator adds it, then starts with `existing`, as a member added to a live cluster does.
//!
//! A member that refuses to start (`Node::start_with_storage` returns an error, or the started
//! node later reports `refused`: a wiped member that its peers remember) is a fact of the run, not a harness failure: the host records
//! the refusal and stays down, and the nemesis logs it and counts the member as down. A member
//! the cluster removed stops by itself (`raft::removal`); its host records that and closes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::config::{ClusterState, Config};
use crate::node::Stopped;
use crate::storage::{MemberStorage, MemoryBackend, SharedBackend};
use crate::transport::Transport;
use crate::Node;
use turmoil::Sim;

use crate::sim::clocks::MemberClocks;
use crate::sim::net::TurmoilNetwork;
use crate::sim::observe::{self, Servers};
use crate::sim::run::{name, RunSpec};

/// How a host starts the next time turmoil (re)runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Whether a member process runs there at all (a spare not yet added does not).
    pub run: bool,
    pub state: ClusterState,
}

/// What the nemesis and the host factories share.
#[derive(Clone, Default)]
pub struct HostLink {
    pub plans: Rc<RefCell<Vec<Plan>>>,
    /// Members that refused to start since the nemesis last looked: (host, the error).
    pub refusals: Rc<RefCell<Vec<(usize, String)>>>,
    /// Members that stopped since the nemesis last looked because the cluster removed them.
    pub removals: Rc<RefCell<Vec<usize>>>,
}

/// Every run's `--initial-cluster-token`.
pub const CLUSTER_TOKEN: &str = "sim";

/// A member's configuration: the run's members form the initial cluster; a spare host lists
/// the initial cluster and itself, as an added member's `--initial-cluster` does.
pub fn member_config(i: usize, spec: &RunSpec) -> Config {
    let peer = |j: usize| format!("http://{}:2380", name(j));
    let client = format!("http://{}:2379", name(i));
    let mut initial_cluster: Vec<(String, Vec<String>)> =
        (0..spec.nodes).map(|j| (name(j), vec![peer(j)])).collect();
    if i >= spec.nodes {
        initial_cluster.push((name(i), vec![peer(i)]));
    }
    Config {
        name: name(i),
        data_dir: std::path::PathBuf::from("/nonexistent"),
        listen_client_urls: vec![client.clone()],
        advertise_client_urls: vec![client],
        listen_peer_urls: vec![peer(i)],
        listen_metrics_urls: Vec::new(),
        initial_advertise_peer_urls: vec![peer(i)],
        initial_cluster,
        initial_cluster_state: ClusterState::New,
        initial_cluster_token: CLUSTER_TOKEN.into(),
        heartbeat_interval_ms: 50,
        election_timeout_ms: 500,
        snapshot_every_entries: spec.snapshot_every_entries,
        snapshot_when_idle: false,
        quota_backend_bytes: crate::config::DEFAULT_QUOTA_BACKEND_BYTES,
        plants: spec.plants,
        tls: Default::default(),
        auth: Default::default(),
    }
}

/// Adds one host per entry of `backends`: the run's members, then the spares. A started
/// member's server appears in its slot of the returned `Servers`.
pub fn add_hosts(
    sim: &mut Sim<'_>,
    spec: &RunSpec,
    clocks: &MemberClocks,
    backends: &[Arc<MemoryBackend>],
) -> (Servers, HostLink) {
    let hosts = backends.len();
    let servers: Servers = Rc::new(RefCell::new(vec![None; hosts]));
    let link = HostLink::default();
    *link.plans.borrow_mut() = (0..hosts)
        .map(|i| Plan {
            run: i < spec.nodes,
            state: if i < spec.nodes {
                ClusterState::New
            } else {
                ClusterState::Existing
            },
        })
        .collect();
    for (i, backend) in backends.iter().enumerate() {
        let config = member_config(i, spec);
        let backend: SharedBackend = backend.clone();
        let slot = servers.clone();
        let link = link.clone();
        let seed = spec.seed.wrapping_mul(31).wrapping_add(i as u64 + 1);
        let clock = clocks.clock(i);
        sim.host(name(i), move || {
            let mut config = config.clone();
            let backend = backend.clone();
            let slot = slot.clone();
            let clock = clock.clone();
            let plan = link.plans.borrow()[i];
            let refusals = link.refusals.clone();
            let removals = link.removals.clone();
            async move {
                if !plan.run {
                    // A machine with no member process: connections to it are refused.
                    std::future::pending::<()>().await;
                }
                config.initial_cluster_state = plan.state;
                // Each start runs on a fresh runtime: bind the member's clock to it.
                crate::clock::bind_to_current_runtime(clock);
                let transport = Transport::new(Arc::new(TurmoilNetwork));
                let storage = MemberStorage::single(backend);
                match Node::start_with_storage(config, storage, transport, seed).await {
                    Ok(node) => {
                        slot.borrow_mut()[i] = Some(observe::server(&node));
                        // A start whose peers had not all answered goes on asking, and may
                        // still refuse once one says it heard from this member before; a
                        // member the cluster removed stops, and its host closes its ports.
                        let why = node.stopped().await;
                        slot.borrow_mut()[i] = None;
                        match why {
                            Stopped::Removed => {
                                removals.borrow_mut().push(i);
                                node.stop().await;
                            }
                            // The node stays as it is, its ports open, while the host waits.
                            Stopped::Refused(why) => refusals.borrow_mut().push((i, why)),
                        }
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        refusals.borrow_mut().push((i, e.to_string()));
                        std::future::pending::<()>().await;
                    }
                }
                Ok(())
            }
        });
    }
    (servers, link)
}
