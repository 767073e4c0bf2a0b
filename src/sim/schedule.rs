//! Faults as data: a seed expands into an explicit, printable schedule; a schedule can also be
//! written by hand, one event per line (`<ms> <action> [args]`), and replayed.
//!
//! Actions: `partition 1,2|3` (cut every link between the two groups), `isolate-leader`,
//! `oneway 1>2` (drop 1's messages to 2), `heal`, `crash 2`, `power-loss 2` (crash and drop
//! writes never synced), `restart 2`, `delay 2 80` (add 80 ms to 2's links), `power-loss-all`,
//! `restart-all`, `bridge 1|3|2` (1 and 2 cut, 3 talks to both), `pause 2` / `resume 2` (2
//! stops: its messages are held and its clock stands still; on resume the clock jumps by the
//! time it was stopped, as a monotonic clock does after a process pause, so overdue timers fire
//! at once), `pause-leader` (pause whoever leads then), `resume-all`, `skew 2 1.08` (2's clock
//! runs at 1.08 times true time from now on).
//!
//! Leader-relative actions, for scenarios that must not depend on which member an election
//! happened to pick: `crash-leader`, `isolate-follower` (the lowest-numbered member not
//! leading), `skew-leader 1.5`, `isolate-client` (the client host cut from every member; `heal`
//! repairs it). For the control-plane election workload (`elector`): `pause-holder` (a long GC
//! pause of the controller that believes it leads), `resume-holders`, and `isolate-holder` (the
//! member that controller talks through, cut from the other members).
//!
//! Disk faults: `torn-power-loss 2` (a power cut mid-write: the first half of 2's unsynced
//! batches survive, the rest is lost), `disk-fail 2` / `disk-fail-leader` (every write and
//! sync answers EIO from then on: the member must stop, never acknowledge; `restart 2` swaps
//! the disk back in after a power cut), `slow-disk 2 40` (each of 2's log syncs takes 40 ms;
//! `slow-disk 2 0` ends it).
//!
//! Membership, applied by the operator (`operator`) through the Cluster and Maintenance APIs as
//! an etcd admin would, each retried on another member until it succeeds or the safety phase
//! ends: `add-learner 4` (MemberAdd as a learner, then host 4 starts with
//! `--initial-cluster-state existing` on an empty disk; a member number beyond the run's
//! members names a spare host that is no member until added), `promote 4`, `remove 2` (its
//! host stops), `replace 2` (the runbook for a lost or broken member: remove it, wipe its
//! disk, add it back as a learner, start it, promote it), `move-leader 2`, and `lose-data 2`
//! (2 crashes and its data dir is lost; a later `restart 2` starts it on the empty disk with
//! its old id and `new` state).
//!
//! Backups: `backup` (the operator saves a snapshot through Maintenance.Snapshot, as
//! `etcdctl snapshot save` does) and `restore-all` (every member's data dir is lost, and each is
//! restored from the last backup with its own flags, then started).
//!
//! Workload: `quiet 5000` (the clients hold their writes for 5 s, reads go on, and a DELETE
//! made at the head is compacted at once: a cluster resting on a compacted head, see `quiet`).

use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Partition(Vec<usize>, Vec<usize>),
    IsolateLeader,
    OneWay(usize, usize),
    Heal,
    Crash(usize),
    PowerLoss(usize),
    Restart(usize),
    Delay(usize, u64),
    /// Every member loses power at once (what a rack outage does).
    PowerLossAll,
    RestartAll,
    /// Two sides that cannot talk, and one member (the bridge) that talks to both.
    Bridge(Vec<usize>, usize, Vec<usize>),
    /// The member's messages, in and out, are held (a stopped process); `Resume` lets them go.
    Pause(usize),
    Resume(usize),
    /// Pauses the member that leads when the event fires (a GC pause on the leader).
    PauseLeader,
    ResumeAll,
    /// The member's clock runs at this many millionths of true time.
    Skew(usize, u64),
    /// Crashes the member that leads when the event fires.
    CrashLeader,
    /// Cuts the lowest-numbered member that does not lead from every other member.
    IsolateFollower,
    /// The leader's clock runs at this many millionths of true time.
    SkewLeader(u64),
    /// The client host cannot reach any member (`Heal` repairs it).
    IsolateClient,
    /// Stops the controller that believes it holds the election (a GC pause).
    PauseHolder,
    ResumeHolders,
    /// Cuts the member the election holder talks through from the other members.
    IsolateHolder,
    /// Power loss mid-write: a prefix of the unsynced batches survives.
    TornPowerLoss(usize),
    /// Every write and sync of the member's disk fails (EIO) until `Restart`.
    DiskFail(usize),
    DiskFailLeader,
    /// Each log sync of the member takes this many milliseconds.
    SlowDisk(usize, u64),
    /// The member crashes and its data dir is lost (everything, synced or not).
    LoseData(usize),
    /// Operator: MemberAdd as a learner, then the host starts on an empty disk.
    AddLearner(usize),
    /// Operator: MemberPromote.
    Promote(usize),
    /// Operator: MemberRemove, then the host stops.
    Remove(usize),
    /// Operator: remove, wipe, add back as a learner, start, promote.
    Replace(usize),
    /// Operator: MoveLeader to the member.
    MoveLeader(usize),
    /// Operator: Maintenance.Snapshot (`etcdctl snapshot save`); the file is kept.
    Backup,
    /// Every member's data dir is lost; each is restored from the last backup (`quorum
    /// snapshot restore` with its own flags) and started again.
    RestoreAll,
    /// The clients hold their writes for this many ms and a compacted DELETE is made the head
    /// (`quiet`).
    Quiet(u64),
}

impl Fault {
    /// Whether the operator applies it through the member APIs (not the nemesis directly).
    pub fn is_operator(&self) -> bool {
        matches!(
            self,
            Fault::AddLearner(_)
                | Fault::Promote(_)
                | Fault::Remove(_)
                | Fault::Replace(_)
                | Fault::MoveLeader(_)
                | Fault::Backup
        )
    }
}

/// The largest and smallest clock rates a generated schedule uses (±10%, far beyond real
/// quartz drift, so that skew-sensitive code shows itself).
pub const SKEW_MAX_PPM: u64 = 1_100_000;
pub const SKEW_MIN_PPM: u64 = 900_000;

fn rate_text(ppm: u64) -> String {
    let s = format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000);
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at_ms: u64,
    pub fault: Fault,
}

fn group(g: &[usize]) -> String {
    g.iter()
        .map(|n| (n + 1).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.at_ms)?;
        match &self.fault {
            Fault::Partition(a, b) => write!(f, "partition {}|{}", group(a), group(b)),
            Fault::IsolateLeader => write!(f, "isolate-leader"),
            Fault::OneWay(a, b) => write!(f, "oneway {}>{}", a + 1, b + 1),
            Fault::Heal => write!(f, "heal"),
            Fault::Crash(n) => write!(f, "crash {}", n + 1),
            Fault::PowerLoss(n) => write!(f, "power-loss {}", n + 1),
            Fault::Restart(n) => write!(f, "restart {}", n + 1),
            Fault::Delay(n, ms) => write!(f, "delay {} {}", n + 1, ms),
            Fault::PowerLossAll => write!(f, "power-loss-all"),
            Fault::RestartAll => write!(f, "restart-all"),
            Fault::Bridge(a, m, b) => write!(f, "bridge {}|{}|{}", group(a), m + 1, group(b)),
            Fault::Pause(n) => write!(f, "pause {}", n + 1),
            Fault::Resume(n) => write!(f, "resume {}", n + 1),
            Fault::PauseLeader => write!(f, "pause-leader"),
            Fault::ResumeAll => write!(f, "resume-all"),
            Fault::Skew(n, ppm) => write!(f, "skew {} {}", n + 1, rate_text(*ppm)),
            Fault::CrashLeader => write!(f, "crash-leader"),
            Fault::IsolateFollower => write!(f, "isolate-follower"),
            Fault::SkewLeader(ppm) => write!(f, "skew-leader {}", rate_text(*ppm)),
            Fault::IsolateClient => write!(f, "isolate-client"),
            Fault::PauseHolder => write!(f, "pause-holder"),
            Fault::ResumeHolders => write!(f, "resume-holders"),
            Fault::IsolateHolder => write!(f, "isolate-holder"),
            Fault::TornPowerLoss(n) => write!(f, "torn-power-loss {}", n + 1),
            Fault::DiskFail(n) => write!(f, "disk-fail {}", n + 1),
            Fault::DiskFailLeader => write!(f, "disk-fail-leader"),
            Fault::SlowDisk(n, ms) => write!(f, "slow-disk {} {}", n + 1, ms),
            Fault::LoseData(n) => write!(f, "lose-data {}", n + 1),
            Fault::AddLearner(n) => write!(f, "add-learner {}", n + 1),
            Fault::Promote(n) => write!(f, "promote {}", n + 1),
            Fault::Remove(n) => write!(f, "remove {}", n + 1),
            Fault::Replace(n) => write!(f, "replace {}", n + 1),
            Fault::MoveLeader(n) => write!(f, "move-leader {}", n + 1),
            Fault::Quiet(ms) => write!(f, "quiet {ms}"),
            Fault::Backup => write!(f, "backup"),
            Fault::RestoreAll => write!(f, "restore-all"),
        }
    }
}

/// Draws a schedule for the safety phase `[0, safety_ms)`: a fault, a pause, a repair, ...
/// so faults come and go and the cluster is stressed but not permanently broken.
pub fn generate(seed: u64, nodes: usize, safety_ms: u64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f00d);
    // Disk faults stand in for some crashes, power cuts and delays. They draw from a stream of
    // their own, so a seed keeps the times and targets it had before disks could fail.
    let mut disk = SmallRng::seed_from_u64(seed ^ 0xd15c_fa17);
    let mut out = Vec::new();
    // Half the runs have one member whose clock is off for the whole run.
    if rng.random_bool(0.5) {
        out.push(Event {
            at_ms: 0,
            fault: random_skew(&mut rng, nodes),
        });
    }
    let mut t = rng.random_range(1_000..3_000);
    while t < safety_ms {
        let fault = match rng.random_range(0..11) {
            0 | 1 => {
                let mut all: Vec<usize> = (0..nodes).collect();
                // A seeded shuffle, then a cut somewhere in the middle.
                for i in (1..all.len()).rev() {
                    all.swap(i, rng.random_range(0..=i));
                }
                let cut = rng.random_range(1..nodes);
                let (a, b) = all.split_at(cut);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort();
                b.sort();
                Fault::Partition(a, b)
            }
            2 => Fault::IsolateLeader,
            3 => {
                let a = rng.random_range(0..nodes);
                let b = (a + rng.random_range(1..nodes)) % nodes;
                Fault::OneWay(a, b)
            }
            4 => Fault::Crash(rng.random_range(0..nodes)),
            7 => Fault::PowerLossAll,
            8 => {
                let mut all: Vec<usize> = (0..nodes).collect();
                for i in (1..all.len()).rev() {
                    all.swap(i, rng.random_range(0..=i));
                }
                let bridge = all[0];
                let half = (nodes - 1) / 2;
                let mut a = all[1..1 + half].to_vec();
                let mut b = all[1 + half..].to_vec();
                a.sort();
                b.sort();
                Fault::Bridge(a, bridge, b)
            }
            9 => Fault::Pause(rng.random_range(0..nodes)),
            10 => random_skew(&mut rng, nodes),
            5 => Fault::PowerLoss(rng.random_range(0..nodes)),
            _ => Fault::Delay(rng.random_range(0..nodes), rng.random_range(20..200)),
        };
        let fault = as_disk_fault(fault, &mut disk);
        let repair = match &fault {
            Fault::Crash(n)
            | Fault::PowerLoss(n)
            | Fault::TornPowerLoss(n)
            | Fault::DiskFail(n) => Fault::Restart(*n),
            Fault::SlowDisk(n, _) => Fault::SlowDisk(*n, 0),
            Fault::PowerLossAll => Fault::RestartAll,
            Fault::Pause(n) => Fault::Resume(*n),
            Fault::Skew(n, _) => Fault::Skew(*n, 1_000_000),
            _ => Fault::Heal,
        };
        out.push(Event { at_ms: t, fault });
        t += rng.random_range(1_500..5_000);
        out.push(Event {
            at_ms: t.min(safety_ms),
            fault: repair,
        });
        t += rng.random_range(500..3_000);
    }
    out
}

/// A quarter of crashes become a failing disk, half of power cuts tear the last writes, and a
/// third of slow links become a slow disk instead.
fn as_disk_fault(fault: Fault, disk: &mut SmallRng) -> Fault {
    match fault {
        Fault::Crash(n) if disk.random_bool(0.25) => Fault::DiskFail(n),
        Fault::PowerLoss(n) if disk.random_bool(0.5) => Fault::TornPowerLoss(n),
        Fault::Delay(n, _) if disk.random_bool(0.3) => Fault::SlowDisk(n, disk.random_range(5..80)),
        other => other,
    }
}

fn random_skew(rng: &mut SmallRng, nodes: usize) -> Fault {
    // In steps of 1%, never exactly 1.0.
    let steps = (SKEW_MAX_PPM - 1_000_000) / 10_000;
    let off = rng.random_range(1..=steps) * 10_000;
    let ppm = if rng.random_bool(0.5) {
        1_000_000 + off
    } else {
        1_000_000 - off.min(1_000_000 - SKEW_MIN_PPM)
    };
    Fault::Skew(rng.random_range(0..nodes), ppm)
}

/// The largest member index a schedule names, if it names any: a scenario cannot run on
/// fewer members than that.
pub fn highest_member(events: &[Event]) -> Option<usize> {
    events
        .iter()
        .flat_map(|e| match &e.fault {
            Fault::Partition(a, b) => a.iter().chain(b).copied().collect(),
            Fault::Bridge(a, m, b) => a.iter().chain(b).chain([m]).copied().collect(),
            Fault::OneWay(a, b) => vec![*a, *b],
            Fault::Crash(n)
            | Fault::PowerLoss(n)
            | Fault::Restart(n)
            | Fault::Delay(n, _)
            | Fault::Pause(n)
            | Fault::Resume(n)
            | Fault::Skew(n, _)
            | Fault::TornPowerLoss(n)
            | Fault::DiskFail(n)
            | Fault::SlowDisk(n, _)
            | Fault::LoseData(n)
            | Fault::AddLearner(n)
            | Fault::Promote(n)
            | Fault::Remove(n)
            | Fault::Replace(n)
            | Fault::MoveLeader(n) => vec![*n],
            _ => Vec::new(),
        })
        .max()
}

/// How many hosts a run of `nodes` members needs for `events`: one more, a spare outside the
/// cluster until then, for every member number beyond `nodes` that an `add-learner` names.
pub fn hosts(events: &[Event], nodes: usize) -> usize {
    events
        .iter()
        .filter_map(|e| match e.fault {
            Fault::AddLearner(n) => Some(n + 1),
            _ => None,
        })
        .fold(nodes, usize::max)
}

/// Refuses `events` that name a member a run of `nodes` members never has: one beyond them
/// that no `add-learner` brings in.
pub fn check_members(events: &[Event], nodes: usize) -> Result<(), String> {
    match highest_member(events) {
        Some(m) if m >= hosts(events, nodes) => Err(format!(
            "the schedule names member n{} but runs with {nodes} members (a member beyond them \
             must be added with add-learner first)",
            m + 1
        )),
        _ => Ok(()),
    }
}

/// Parses a hand-written schedule; blank lines and `#` comments are ignored.
pub fn parse(text: &str) -> Result<Vec<Event>, String> {
    let node = |s: &str| -> Result<usize, String> {
        let n: usize = s.parse().map_err(|_| format!("bad node {s:?}"))?;
        n.checked_sub(1)
            .ok_or_else(|| "nodes count from 1".to_string())
    };
    let nodes = |s: &str| -> Result<Vec<usize>, String> { s.split(',').map(node).collect() };
    let rate = |s: &str| -> Result<u64, String> {
        let rate: f64 = s.parse().map_err(|_| format!("bad clock rate {s:?}"))?;
        if !(0.0..=10.0).contains(&rate) {
            return Err(format!("clock rate {s} out of 0..10"));
        }
        Ok((rate * 1e6).round() as u64)
    };
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let at_ms: u64 = parts[0]
            .parse()
            .map_err(|_| format!("bad time in {line:?}"))?;
        let arg = |i: usize| {
            parts
                .get(i)
                .copied()
                .ok_or_else(|| format!("missing argument in {line:?}"))
        };
        let fault = match parts.get(1).copied() {
            Some("partition") => {
                let (a, b) = arg(2)?.split_once('|').ok_or("partition needs a|b")?;
                Fault::Partition(nodes(a)?, nodes(b)?)
            }
            Some("isolate-leader") => Fault::IsolateLeader,
            Some("pause-leader") => Fault::PauseLeader,
            Some("resume-all") => Fault::ResumeAll,
            Some("oneway") => {
                let (a, b) = arg(2)?.split_once('>').ok_or("oneway needs a>b")?;
                Fault::OneWay(node(a)?, node(b)?)
            }
            Some("heal") => Fault::Heal,
            Some("crash") => Fault::Crash(node(arg(2)?)?),
            Some("power-loss") => Fault::PowerLoss(node(arg(2)?)?),
            Some("restart") => Fault::Restart(node(arg(2)?)?),
            Some("power-loss-all") => Fault::PowerLossAll,
            Some("bridge") => {
                let parts: Vec<&str> = arg(2)?.split('|').collect();
                if parts.len() != 3 {
                    return Err(format!("bridge needs a|m|b in {line:?}"));
                }
                Fault::Bridge(nodes(parts[0])?, node(parts[1])?, nodes(parts[2])?)
            }
            Some("pause") => Fault::Pause(node(arg(2)?)?),
            Some("resume") => Fault::Resume(node(arg(2)?)?),
            Some("restart-all") => Fault::RestartAll,
            Some("skew") => Fault::Skew(node(arg(2)?)?, rate(arg(3)?)?),
            Some("skew-leader") => Fault::SkewLeader(rate(arg(2)?)?),
            Some("crash-leader") => Fault::CrashLeader,
            Some("isolate-follower") => Fault::IsolateFollower,
            Some("isolate-client") => Fault::IsolateClient,
            Some("pause-holder") => Fault::PauseHolder,
            Some("resume-holders") => Fault::ResumeHolders,
            Some("isolate-holder") => Fault::IsolateHolder,
            Some("torn-power-loss") => Fault::TornPowerLoss(node(arg(2)?)?),
            Some("disk-fail") => Fault::DiskFail(node(arg(2)?)?),
            Some("disk-fail-leader") => Fault::DiskFailLeader,
            Some("slow-disk") => Fault::SlowDisk(
                node(arg(2)?)?,
                arg(3)?.parse().map_err(|_| "bad sync time")?,
            ),
            Some("lose-data") => Fault::LoseData(node(arg(2)?)?),
            Some("add-learner") => Fault::AddLearner(node(arg(2)?)?),
            Some("promote") => Fault::Promote(node(arg(2)?)?),
            Some("remove") => Fault::Remove(node(arg(2)?)?),
            Some("replace") => Fault::Replace(node(arg(2)?)?),
            Some("move-leader") => Fault::MoveLeader(node(arg(2)?)?),
            Some("backup") => Fault::Backup,
            Some("restore-all") => Fault::RestoreAll,
            Some("quiet") => Fault::Quiet(arg(2)?.parse().map_err(|_| "bad quiet time")?),
            Some("delay") => {
                Fault::Delay(node(arg(2)?)?, arg(3)?.parse().map_err(|_| "bad delay")?)
            }
            other => return Err(format!("unknown action {other:?} in {line:?}")),
        };
        out.push(Event { at_ms, fault });
    }
    out.sort_by_key(|e| e.at_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_expands_to_the_same_schedule_and_it_round_trips() {
        // Goal: faults are data: same seed, same schedule; printing then parsing is lossless.
        let a = generate(7, 5, 30_000);
        assert_eq!(a, generate(7, 5, 30_000));
        assert_ne!(a, generate(8, 5, 30_000));
        let text: String = a.iter().map(|e| format!("{e}\n")).collect();
        assert_eq!(parse(&text).unwrap(), a);
    }

    #[test]
    fn leader_relative_actions_round_trip() {
        // Goal: the scenario-only actions print as they parse.
        let text = "100 crash-leader\n200 isolate-follower\n300 skew-leader 1.5\n\
                    400 isolate-client\n500 pause-holder\n600 resume-holders\n700 isolate-holder\n";
        let events = parse(text).unwrap();
        let printed: String = events.iter().map(|e| format!("{e}\n")).collect();
        assert_eq!(printed, text);
    }

    #[test]
    fn generated_schedules_fail_disks_and_always_repair_them() {
        // Goal: the random nemesis includes every disk fault, and each one is undone by the
        // event after it (a restart, or a healthy disk), so the liveness phase starts clean.
        let mut seen = [false; 3];
        for seed in 0..200 {
            let events = generate(seed, 5, 30_000);
            for pair in events.windows(2) {
                let (fault, next) = (&pair[0].fault, &pair[1].fault);
                match fault {
                    Fault::TornPowerLoss(n) | Fault::DiskFail(n) => {
                        seen[usize::from(matches!(fault, Fault::DiskFail(_)))] = true;
                        assert_eq!(next, &Fault::Restart(*n), "seed {seed}");
                    }
                    Fault::SlowDisk(n, ms) if *ms > 0 => {
                        seen[2] = true;
                        assert_eq!(next, &Fault::SlowDisk(*n, 0), "seed {seed}");
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn highest_member_names_the_largest_member_number_used() {
        let events = parse("1 partition 1,2|3,4\n2 crash 5\n3 heal\n").unwrap();
        assert_eq!(highest_member(&events), Some(4));
    }

    #[test]
    fn membership_actions_round_trip_and_an_added_member_gets_a_spare_host() {
        // Goal: the operator's actions print as they parse; `add-learner 4` in a 3-member run
        // asks for a fourth host, a crash of member 4 alone does not.
        let text = "100 add-learner 4\n200 promote 4\n300 remove 1\n400 replace 2\n\
                    500 move-leader 3\n600 lose-data 2\n";
        let events = parse(text).unwrap();
        let printed: String = events.iter().map(|e| format!("{e}\n")).collect();
        assert_eq!(printed, text);
        assert_eq!(hosts(&events, 3), 4);
        assert_eq!(hosts(&parse("1 crash 4\n").unwrap(), 3), 3);
        assert!(events[..5].iter().all(|e| e.fault.is_operator()));
        assert!(!events[5].fault.is_operator(), "lose-data is the nemesis's");
    }
}
