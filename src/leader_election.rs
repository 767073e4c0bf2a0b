//! A leader-election helper for Rust applications, with the Kubernetes control plane's knobs.
//!
//! `LeaderElector` campaigns through the Election service on any etcd-compatible endpoint
//! (Quorum or etcd), keeps its lease alive, and reports `StartedLeading` / `StoppedLeading` on
//! a channel. Defaults match kube-controller-manager: lease duration 15 s, renew deadline 10 s,
//! retry period 2 s.
//!
//! What it guarantees: leadership is an etcd key bound to a lease whose expiry is decided by the
//! cluster leader's clock. The elector renews every retry period and steps down by itself when
//! no renewal succeeded for a whole renew deadline, which is shorter than the lease duration; so
//! while clocks run at roughly the same *rate* and the process is not paused, it stops acting
//! before anyone else can be elected.
//!
//! What it cannot guarantee: a process that is paused (GC, SIGSTOP, a stalled VM) for longer than
//! `lease_duration - renew_deadline` can wake up still believing it leads, after another
//! candidate has taken over; and a local clock that runs much slower than the cluster's stretches
//! the renew deadline the same way. Absolute clock offsets do not matter, only rates. Guard
//! writes that must never come from two leaders with the fencing token in `StartedLeading`:
//! compare the leader key's create revision in the same transaction (`CREATE(key) == revision`).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::proto::etcdserverpb::lease_client::LeaseClient;
use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest};
use crate::proto::v3electionpb::election_client::ElectionClient;
use crate::proto::v3electionpb::{CampaignRequest, LeaderKey, ResignRequest};

/// Events buffered for a slow consumer; the elector waits rather than drop one.
const EVENTS_QUEUE_MAX: usize = 16;

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// The election's name (a key prefix).
    pub name: Vec<u8>,
    /// What this candidate writes as the leader value, e.g. its hostname.
    pub identity: Vec<u8>,
    /// The lease's TTL: how long the cluster keeps a silent leader's key.
    pub lease_duration: Duration,
    /// Step down when no renewal succeeded for this long. Must be shorter than the lease.
    pub renew_deadline: Duration,
    /// Time between renewals, and between campaign attempts after a failure.
    pub retry_period: Duration,
}

impl ElectionConfig {
    pub fn new(name: impl Into<Vec<u8>>, identity: impl Into<Vec<u8>>) -> Self {
        ElectionConfig {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadershipEvent {
    /// This candidate leads. `revision` is the fencing token: the leader key's create revision.
    StartedLeading { key: Vec<u8>, revision: i64 },
    /// This candidate no longer leads (renewals failed past the deadline, or the lease is gone).
    StoppedLeading,
}

pub struct LeaderElector {
    events: mpsc::Receiver<LeadershipEvent>,
    task: JoinHandle<()>,
}

impl LeaderElector {
    /// Starts campaigning over `channel` (a connection to any member).
    pub fn start(channel: Channel, config: ElectionConfig) -> Self {
        assert!(
            config.renew_deadline < config.lease_duration,
            "renew deadline must be shorter than the lease duration"
        );
        let (tx, events) = mpsc::channel(EVENTS_QUEUE_MAX);
        let task = tokio::spawn(elect_loop(channel, config, tx));
        LeaderElector { events, task }
    }

    pub async fn next_event(&mut self) -> Option<LeadershipEvent> {
        self.events.recv().await
    }

    /// Stops campaigning. A held lease is left to expire; call this after stopping work.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn elect_loop(channel: Channel, cfg: ElectionConfig, tx: mpsc::Sender<LeadershipEvent>) {
    let mut leases = LeaseClient::new(channel.clone());
    let mut election = ElectionClient::new(channel);
    let ttl_secs = cfg.lease_duration.as_secs().max(1) as i64;
    loop {
        let Some((lease, leader)) = campaign(&mut leases, &mut election, &cfg, ttl_secs).await
        else {
            tokio::time::sleep(cfg.retry_period).await;
            continue;
        };
        let started = LeadershipEvent::StartedLeading {
            key: leader.key.clone(),
            revision: leader.rev,
        };
        if tx.send(started).await.is_err() {
            return;
        }
        hold(&mut leases, lease, &cfg).await;
        if tx.send(LeadershipEvent::StoppedLeading).await.is_err() {
            return;
        }
        // Best effort: let the next candidate in at once instead of after the lease expires.
        let _ = tokio::time::timeout(
            cfg.retry_period,
            election.resign(ResignRequest {
                leader: Some(leader),
            }),
        )
        .await;
        let _ = tokio::time::timeout(
            cfg.retry_period,
            leases.lease_revoke(LeaseRevokeRequest { id: lease }),
        )
        .await;
    }
}

async fn campaign(
    leases: &mut LeaseClient<Channel>,
    election: &mut ElectionClient<Channel>,
    cfg: &ElectionConfig,
    ttl_secs: i64,
) -> Option<(i64, LeaderKey)> {
    let grant = tokio::time::timeout(
        cfg.retry_period,
        leases.lease_grant(LeaseGrantRequest {
            ttl: ttl_secs,
            id: 0,
        }),
    )
    .await
    .ok()?
    .ok()?
    .into_inner();
    // While queued behind another leader our lease must stay alive, or our key would vanish.
    let keeper = tokio::spawn(keep_alive_forever(
        leases.clone(),
        grant.id,
        cfg.retry_period,
    ));
    let resp = election
        .campaign(CampaignRequest {
            name: cfg.name.clone(),
            lease: grant.id,
            value: cfg.identity.clone(),
        })
        .await;
    keeper.abort();
    match resp {
        Ok(r) => r.into_inner().leader.map(|l| (grant.id, l)),
        Err(_) => None,
    }
}

async fn keep_alive_forever(mut leases: LeaseClient<Channel>, lease: i64, period: Duration) {
    loop {
        let _ = renew_once(&mut leases, lease, period).await;
        tokio::time::sleep(period).await;
    }
}

/// One keep-alive round trip; `Some(ttl)` on an answer (0 means the lease is gone).
async fn renew_once(
    leases: &mut LeaseClient<Channel>,
    lease: i64,
    timeout: Duration,
) -> Option<i64> {
    let req = futures::stream::iter([LeaseKeepAliveRequest { id: lease }]);
    let call = async {
        let mut stream = leases.lease_keep_alive(req).await.ok()?.into_inner();
        stream.message().await.ok()?.map(|r| r.ttl)
    };
    tokio::time::timeout(timeout, call).await.ok()?
}

/// Renews until the lease is gone or the renew deadline passes without a success.
async fn hold(leases: &mut LeaseClient<Channel>, lease: i64, cfg: &ElectionConfig) {
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(cfg.retry_period).await;
        match renew_once(leases, lease, cfg.retry_period).await {
            Some(ttl) if ttl > 0 => last_renewed = Instant::now(),
            Some(_) => return,
            None => {}
        }
        if last_renewed.elapsed() >= cfg.renew_deadline {
            return;
        }
    }
}
