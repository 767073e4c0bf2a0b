//! Control-plane controllers on the client host: each campaigns for one leadership as
//! client-go's leader election does, with the HA guide's knobs (lease 15 s, renew deadline
//! 10 s, retry 2 s), over the Lease and KV APIs: grant a lease, create the leader key bound to
//! it only if absent (a txn on its create revision), keep the lease alive every retry period,
//! and stop believing it leads when the lease is gone or no renewal succeeded for a whole renew
//! deadline. Controller `cK` talks only through member `nK`, as a stacked control plane does.
//!
//! A long GC pause is modelled by a gate each controller passes before every action: while
//! paused it does nothing and notices nothing, and it keeps believing it leads until the first
//! check after it resumes. What the harness wants to see is exactly that belief, so every change
//! of belief is recorded with the simulated time, for the narration and the overlap count.
//!
//! Everything runs on simulated time in the client host; no hash maps, no wall clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::kv_client::KvClient;
use crate::proto::etcdserverpb::lease_client::LeaseClient;
use crate::proto::etcdserverpb::request_op::Request as OpRequest;
use crate::proto::etcdserverpb::{
    Compare, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, PutRequest, RequestOp,
    TxnRequest,
};
use crate::transport::frames::FrameChannel;

use crate::sim::net::client_channel;
use crate::sim::run::name;

/// The HA guide's (and kube-controller-manager's) leader election parameters.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// How many controllers campaign: two is enough to show two leaders at once.
pub const CONTROLLERS: usize = 2;
/// Controllers start once the cluster had time to elect its first leader.
const START_AFTER: Duration = Duration::from_millis(2_000);
/// How often a paused controller looks whether it may run again (not an action: it sees
/// nothing of the world while paused).
const GATE_POLL: Duration = Duration::from_millis(10);
/// The key the controllers compete for.
const LEADER_KEY: &[u8] = b"controller-leader";

/// What the controllers share with the harness.
#[derive(Debug, Default)]
pub struct ControllerState {
    /// Per controller: whether it believes it leads now.
    pub leading: Vec<bool>,
    /// Per controller: stopped by a `pause-holder` fault.
    pub paused: Vec<bool>,
    /// Per controller: the member it talks through.
    pub member: Vec<usize>,
    /// Changes of belief not yet moved into the run's event log: (simulated ms, text).
    pub events: Vec<(u64, String)>,
}

impl ControllerState {
    /// The lowest-numbered controller that believes it leads.
    pub fn holder(&self) -> Option<usize> {
        self.leading.iter().position(|l| *l)
    }
}

pub type Controllers = Rc<RefCell<ControllerState>>;

/// Spawns the controllers inside the client host (call from within it).
pub fn start(controllers: &Controllers, nodes: usize) -> Vec<tokio::task::JoinHandle<()>> {
    {
        let mut c = controllers.borrow_mut();
        c.leading = vec![false; CONTROLLERS];
        c.paused = vec![false; CONTROLLERS];
        c.member = (0..CONTROLLERS).map(|k| k % nodes).collect();
    }
    (0..CONTROLLERS)
        .map(|k| tokio::task::spawn_local(controller_loop(k, controllers.clone())))
        .collect()
}

fn now_ms() -> u64 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64
}

/// Waits while the controller is paused: a stopped process runs no code.
async fn gate(state: &Controllers, k: usize) {
    while state.borrow().paused[k] {
        tokio::time::sleep(GATE_POLL).await;
    }
}

fn believe(state: &Controllers, k: usize, leading: bool, why: String) {
    let mut s = state.borrow_mut();
    s.leading[k] = leading;
    s.events.push((now_ms(), format!("c{} {why}", k + 1)));
}

async fn controller_loop(k: usize, state: Controllers) {
    tokio::time::sleep(START_AFTER).await;
    let member = state.borrow().member[k];
    let url = format!("http://{}:2379", name(member));
    let dial = || {
        let channel = client_channel(&url);
        (LeaseClient::new(channel.clone()), KvClient::new(channel))
    };
    let (mut leases, mut kv) = dial();
    loop {
        gate(&state, k).await;
        let Some((lease, fence)) = acquire(&mut leases, &mut kv, k).await else {
            // A fresh channel: a failed one may sit in tonic's reconnect backoff for seconds.
            (leases, kv) = dial();
            tokio::time::sleep(RETRY_PERIOD).await;
            continue;
        };
        believe(
            &state,
            k,
            true,
            format!(
                "starts leading via {} (fencing revision {fence})",
                name(member)
            ),
        );
        let mut last_renewed = tokio::time::Instant::now();
        let why = loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            gate(&state, k).await;
            match renew(&mut leases, lease).await {
                Some(ttl) if ttl > 0 => last_renewed = tokio::time::Instant::now(),
                Some(_) => break "stops leading: its lease is gone".to_string(),
                None => {}
            }
            if last_renewed.elapsed() >= RENEW_DEADLINE {
                break format!(
                    "stops leading: no renewal for {} s (the renew deadline)",
                    RENEW_DEADLINE.as_secs()
                );
            }
        };
        believe(&state, k, false, why);
    }
}

/// Grants a lease and creates the leader key with it if nobody holds it; returns the lease and
/// the key's create revision (the fencing token), or `None` (lease revoked again) if another
/// controller holds the key or the cluster did not answer.
async fn acquire(
    leases: &mut LeaseClient<FrameChannel>,
    kv: &mut KvClient<FrameChannel>,
    k: usize,
) -> Option<(i64, i64)> {
    let ttl = LEASE_DURATION.as_secs() as i64;
    let grant = leases.lease_grant(LeaseGrantRequest { ttl, id: 0 });
    let granted = tokio::time::timeout(RETRY_PERIOD, grant).await;
    let lease = granted.ok()?.ok()?.into_inner().id;
    let txn = kv.txn(TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Create as i32,
            key: LEADER_KEY.to_vec(),
            range_end: Vec::new(),
            target_union: Some(TargetUnion::CreateRevision(0)),
        }],
        success: vec![RequestOp {
            request: Some(OpRequest::RequestPut(PutRequest {
                key: LEADER_KEY.to_vec(),
                value: format!("c{}", k + 1).into_bytes(),
                lease,
                ..Default::default()
            })),
        }],
        failure: Vec::new(),
    });
    let answer = tokio::time::timeout(RETRY_PERIOD, txn).await;
    match answer {
        Ok(Ok(r)) if r.get_ref().succeeded => {
            Some((lease, r.get_ref().header.as_ref().map_or(0, |h| h.revision)))
        }
        _ => {
            let revoke = leases.lease_revoke(LeaseRevokeRequest { id: lease });
            let _ = tokio::time::timeout(RETRY_PERIOD, revoke).await;
            None
        }
    }
}

/// One keep-alive round trip, bounded by the retry period; `Some(ttl)` on an answer (0: the
/// lease is gone).
async fn renew(leases: &mut LeaseClient<FrameChannel>, lease: i64) -> Option<i64> {
    let req = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
    let call = async {
        let mut stream = leases.lease_keep_alive(req).await.ok()?.into_inner();
        stream.message().await.ok()?.map(|r| r.ttl)
    };
    tokio::time::timeout(RETRY_PERIOD, call).await.ok()?
}

/// The intervals during which each controller believed it led, from the run's event log lines
/// (`t=…ms cK starts leading…` / `t=…ms cK stops leading…`); an interval still open at the end
/// closes at `end_ms`. Sorted by start.
pub fn holdings(log: &[String], end_ms: u64) -> Vec<(usize, u64, u64)> {
    let mut open: Vec<Option<u64>> = vec![None; CONTROLLERS];
    let mut out = Vec::new();
    for line in log {
        let Some((t, rest)) = crate::sim::story::split_time(line) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('c') else {
            continue;
        };
        let Some((k, what)) = rest.split_once(' ') else {
            continue;
        };
        let Some(k) = k.parse::<usize>().ok().and_then(|k| k.checked_sub(1)) else {
            continue;
        };
        if k >= CONTROLLERS {
            continue;
        }
        if what.starts_with("starts leading") {
            open[k] = Some(t);
        } else if what.starts_with("stops leading") {
            if let Some(from) = open[k].take() {
                out.push((k, from, t));
            }
        }
    }
    for (k, from) in open.iter().enumerate() {
        if let Some(from) = from {
            out.push((k, *from, end_ms));
        }
    }
    out.sort_by_key(|h| (h.1, h.0));
    out
}
