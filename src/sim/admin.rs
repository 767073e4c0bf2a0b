//! The admin in the client host: takes the operator's posted call off the `Desk` and makes it
//! through the Cluster or Maintenance gRPC API, as `etcdctl member ...` / `move-leader` would,
//! trying each member's client URL in turn (a down or cut-off member fails or times out, a
//! follower that cannot reach the leader fails, MoveLeader is refused by a non-leader) until
//! one succeeds or the desk closes.
//!
//! An answer that says the change is already made ("already exists", "not found") counts as
//! success only once a linearizable member list from the same member confirms it: a call
//! that timed out may still have committed, but a cut-off member that still believes it leads
//! answers from a stale membership (seed 48 on 5 members with `--membership` met one that
//! still listed a member removed in a later term). Runs on simulated time inside the client
//! host; no wall clock, no hash map.

use std::time::Duration;

use crate::proto::etcdserverpb::cluster_client::ClusterClient;
use crate::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::proto::etcdserverpb::{
    MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MoveLeaderRequest, SnapshotRequest,
};
use crate::transport::frames::FrameChannel;

use crate::sim::net::client_channel;
use crate::sim::operator::{Call, DeskLink};
use crate::sim::run::name;

/// One attempt's bound: longer than a member's own bound on a membership change (10 s) would
/// keep a partitioned member's call hanging; a call cut short may still commit, which the
/// retry then learns.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between failed attempts, as a script's retry loop would.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// How often an idle admin looks at the desk.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// Every member's peer and client URL, by host index.
pub fn peer_url(member: usize) -> String {
    format!("http://{}:2380", name(member))
}

/// Serves the desk until the client host ends. `ids` maps host index to member id.
pub async fn admin_loop(desk: DeskLink, ids: Vec<u64>) {
    let channels: Vec<FrameChannel> = (0..ids.len())
        .map(|i| client_channel(&format!("http://{}:2379", name(i))))
        .collect();
    let mut handled: Option<u64> = None;
    loop {
        let posted = desk.borrow().posted.clone();
        let Some((number, call)) = posted.filter(|(n, _)| Some(*n) != handled) else {
            if desk.borrow().closed {
                return;
            }
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        };
        handled = Some(number);
        let mut failed = 0usize;
        for member in (0..channels.len()).cycle() {
            if desk.borrow().closed {
                return;
            }
            let channel = channels[member].clone();
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, make(channel.clone(), &call, &ids));
            let outcome = match attempt.await {
                Ok(Ok(file)) => {
                    if let Some(file) = file {
                        desk.borrow_mut().backup = Some(file);
                    }
                    Ok(())
                }
                Ok(Err(status)) if already_done(&call, status.message()) => {
                    let check =
                        tokio::time::timeout(ATTEMPT_TIMEOUT, confirm(channel, &call, &ids));
                    match check.await {
                        Ok(Ok(true)) => Ok(()),
                        Ok(Ok(false)) => Err(format!(
                            "{}, but its linearizable member list disagrees",
                            status.message()
                        )),
                        Ok(Err(e)) => Err(format!(
                            "{}, unconfirmed: {}",
                            status.message(),
                            e.message()
                        )),
                        Err(_) => Err(format!("{}, unconfirmed in time", status.message())),
                    }
                }
                Ok(Err(status)) => Err(status.message().to_string()),
                Err(_) => Err("no answer in time".to_string()),
            };
            match outcome {
                Ok(()) => {
                    desk.borrow_mut().answers.push((number, member, failed));
                    break;
                }
                Err(why) => {
                    failed += 1;
                    desk.borrow_mut().notes.push(format!(
                        "{} via {} failed: {why}",
                        call.request_text(),
                        name(member)
                    ));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

/// Whether an error answer means an earlier attempt already made the change.
fn already_done(call: &Call, message: &str) -> bool {
    match call {
        Call::AddLearner(_) => message.contains("Peer URLs already exists"),
        Call::Remove(_) => message.contains("member not found"),
        // etcd's "... which is in sync with leader" is a refusal, not this.
        Call::Promote(_) => message.ends_with("can only promote a learner member"),
        Call::MoveLeader(_) | Call::Backup => false,
    }
}

/// Whether a linearizable member list through `channel` shows `call`'s change made.
async fn confirm(channel: FrameChannel, call: &Call, ids: &[u64]) -> Result<bool, tonic::Status> {
    let id = call.member().map_or(0, |m| ids[m]);
    let members = ClusterClient::new(channel)
        .member_list(MemberListRequest { linearizable: true })
        .await?
        .into_inner()
        .members;
    let member = members.iter().find(|m| m.id == id);
    Ok(match call {
        // Added as a learner: listed, and still a learner (a voter there is an older life).
        Call::AddLearner(_) => member.is_some_and(|m| m.is_learner),
        Call::Remove(_) => member.is_none(),
        Call::Promote(_) => member.is_some_and(|m| !m.is_learner),
        Call::MoveLeader(_) | Call::Backup => false,
    })
}

/// Makes `call`; a backup answers with the snapshot file.
async fn make(
    channel: FrameChannel,
    call: &Call,
    ids: &[u64],
) -> Result<Option<Vec<u8>>, tonic::Status> {
    let id = call.member().map_or(0, |m| ids[m]);
    match call {
        Call::AddLearner(m) => {
            let req = MemberAddRequest {
                peer_ur_ls: vec![peer_url(*m)],
                is_learner: true,
            };
            ClusterClient::new(channel).member_add(req).await?;
        }
        Call::Remove(_) => {
            ClusterClient::new(channel)
                .member_remove(MemberRemoveRequest { id })
                .await?;
        }
        Call::Promote(_) => {
            ClusterClient::new(channel)
                .member_promote(MemberPromoteRequest { id })
                .await?;
        }
        Call::MoveLeader(_) => {
            MaintenanceClient::new(channel)
                .move_leader(MoveLeaderRequest { target_id: id })
                .await?;
        }
        Call::Backup => {
            let mut stream = MaintenanceClient::new(channel)
                .snapshot(SnapshotRequest {})
                .await?
                .into_inner();
            let mut file = Vec::new();
            while let Some(chunk) = stream.message().await? {
                file.extend_from_slice(&chunk.blob);
            }
            return Ok(Some(file));
        }
    }
    Ok(None)
}
