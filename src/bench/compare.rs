//! `quorum bench compare`: a 3-member etcd and a 3-member Quorum, both running on this machine
//! with the same flags, measured by the same workloads; the results as a table (printed, and
//! written between markers into a Markdown file) and a chart (SVG).
//!
//! A shared machine's speed drifts by tens of percent within minutes, more than most changes
//! move a figure. So every case runs in rounds, each round measuring both systems back to back
//! (which goes first alternates), and the table reports the median round, with the spread of
//! Quorum's advantage over all rounds beside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fanout::{self, FanoutReport, FanoutSpec};
use super::load::{self, LoadReport, LoadSpec, Workload};
use crate::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::proto::etcdserverpb::StatusRequest;

/// Which member a case's clients talk to.
#[derive(Debug, Clone, Copy)]
enum Target {
    Leader,
    Follower,
    /// Spread over all members.
    All,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Load {
        workload: Workload,
        clients: usize,
        connections: usize,
        target: Target,
    },
    Fanout {
        watchers: usize,
        connections: usize,
        puts_per_sec: u64,
    },
}

/// One measured situation, with the goals the performance issue set for it.
struct Case {
    name: &'static str,
    kind: Kind,
    /// Quorum's average latency at most this fraction of etcd's.
    avg_goal: Option<f64>,
    /// Quorum's throughput at least this multiple of etcd's.
    throughput_goal: Option<f64>,
    /// Quorum's p99 latency at most etcd's.
    p99_goal: bool,
}

const fn load(workload: Workload, clients: usize, connections: usize, target: Target) -> Kind {
    Kind::Load {
        workload,
        clients,
        connections,
        target,
    }
}

const CASES: &[Case] = &[
    Case {
        name: "put, 1 client, leader",
        kind: load(Workload::Put, 1, 1, Target::Leader),
        avg_goal: Some(0.7),
        throughput_goal: None,
        p99_goal: false,
    },
    Case {
        name: "put, 1 client, follower",
        kind: load(Workload::Put, 1, 1, Target::Follower),
        avg_goal: Some(0.7),
        throughput_goal: None,
        p99_goal: false,
    },
    Case {
        name: "put, 100 clients, 10 conns",
        kind: load(Workload::Put, 100, 10, Target::All),
        avg_goal: None,
        throughput_goal: Some(1.5),
        p99_goal: true,
    },
    Case {
        name: "put, 1000 clients, 100 conns",
        kind: load(Workload::Put, 1000, 100, Target::All),
        avg_goal: None,
        throughput_goal: Some(1.5),
        p99_goal: true,
    },
    Case {
        name: "get, 1 client",
        kind: load(Workload::GetLinearizable, 1, 1, Target::Leader),
        avg_goal: None,
        throughput_goal: Some(2.0),
        p99_goal: false,
    },
    Case {
        name: "get, 100 clients, 10 conns",
        kind: load(Workload::GetLinearizable, 100, 10, Target::All),
        avg_goal: None,
        throughput_goal: Some(2.0),
        p99_goal: false,
    },
    Case {
        name: "serializable get, 1 client",
        kind: load(Workload::GetSerializable, 1, 1, Target::Leader),
        avg_goal: None,
        throughput_goal: Some(2.0),
        p99_goal: false,
    },
    Case {
        name: "serializable get, 100 clients",
        kind: load(Workload::GetSerializable, 100, 10, Target::All),
        avg_goal: None,
        throughput_goal: Some(2.0),
        p99_goal: false,
    },
    Case {
        name: "watch, 1000 watchers, 1000 puts/s",
        kind: Kind::Fanout {
            watchers: 1000,
            connections: 10,
            puts_per_sec: 1000,
        },
        avg_goal: None,
        throughput_goal: None,
        p99_goal: true,
    },
];

pub struct CompareSpec {
    /// Requests per load case and round, at least `per_client` per client.
    pub requests: usize,
    pub per_client: usize,
    /// How many times each case runs on each system.
    pub rounds: usize,
    /// Seconds of puts in the watch fan-out case.
    pub fanout_secs: u64,
    pub etcd: PathBuf,
    pub quorum: PathBuf,
    /// Markdown file whose results section is replaced, and the chart beside it.
    pub markdown: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    /// Only the cases whose name contains this.
    pub only: Option<String>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Load(LoadReport, Cpu),
    Fanout(FanoutReport),
}

/// CPU time per request during a load run, in µs: what the figures cost. The load generator
/// is this process; on two cores it competes with the members, so its share compresses every
/// throughput ratio. The window is the whole `load::run` (connecting and warm-up included)
/// and ends with the last answer, so work a member leaves for later (a snapshot pacing put
/// off) is not in it. Zero where `/proc` cannot tell.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    members: f64,
    generator: f64,
}

/// One table row: a metric of a case for both systems.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: String,
    pub metric: &'static str,
    pub quorum: f64,
    pub etcd: f64,
    /// True when more is better (throughput).
    pub higher_is_better: bool,
    pub goal: Option<String>,
    pub met: Option<bool>,
    /// The lowest and highest advantage over all rounds, when there was more than one.
    pub spread: Option<(f64, f64)>,
}

impl Row {
    /// How many times better Quorum did (above 1: better).
    pub fn advantage(&self) -> f64 {
        if self.quorum == 0.0 || self.etcd == 0.0 {
            return 0.0;
        }
        if self.higher_is_better {
            self.quorum / self.etcd
        } else {
            self.etcd / self.quorum
        }
    }
}

/// The members of one local 3-member cluster, killed on drop.
struct Cluster {
    children: Vec<Child>,
    endpoints: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter().map(Child::id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

fn start_cluster(program: &[String], base: u16) -> anyhow::Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let peer = |i: u16| format!("http://127.0.0.1:{}", base + 10 + i);
    let client = |i: u16| format!("http://127.0.0.1:{}", base + i);
    let initial: Vec<String> = (0..3).map(|i| format!("m{i}={}", peer(i))).collect();
    let mut children = Vec::new();
    for i in 0..3u16 {
        let log = std::fs::File::create(dir.path().join(format!("m{i}.log")))?;
        let child = Command::new(&program[0])
            .args(&program[1..])
            .arg(format!("--name=m{i}"))
            .arg(format!(
                "--data-dir={}",
                dir.path().join(format!("m{i}")).display()
            ))
            .arg(format!("--listen-client-urls={}", client(i)))
            .arg(format!("--advertise-client-urls={}", client(i)))
            .arg(format!("--listen-peer-urls={}", peer(i)))
            .arg(format!("--initial-advertise-peer-urls={}", peer(i)))
            .arg(format!("--initial-cluster={}", initial.join(",")))
            .arg("--initial-cluster-state=new")
            .arg("--initial-cluster-token=bench")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", program[0]))?;
        children.push(child);
    }
    Ok(Cluster {
        children,
        endpoints: (0..3).map(client).collect(),
        _dir: dir,
    })
}

/// Waits until every member answers Status and names the same leader; returns the leader's
/// and a follower's endpoint.
async fn wait_for_leader(endpoints: &[String]) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut leaders = Vec::new();
        for ep in endpoints {
            let status = async {
                let mut m = MaintenanceClient::connect(ep.clone()).await?;
                anyhow::Ok(m.status(StatusRequest {}).await?.into_inner())
            };
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(1), status).await {
                let id = s.header.map(|h| h.member_id).unwrap_or(0);
                leaders.push((ep.clone(), id, s.leader));
            }
        }
        let agreed = leaders.len() == endpoints.len()
            && leaders[0].2 != 0
            && leaders.iter().all(|l| l.2 == leaders[0].2);
        if agreed {
            let leader = leaders.iter().find(|l| l.1 == l.2).map(|l| l.0.clone());
            let follower = leaders.iter().find(|l| l.1 != l.2).map(|l| l.0.clone());
            if let (Some(l), Some(f)) = (leader, follower) {
                return Ok((l, f));
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no leader after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running cluster and where its leader and a follower answer.
struct Ready {
    cluster: Cluster,
    leader: String,
    follower: String,
}

async fn start_ready(program: &[String], base: u16) -> anyhow::Result<Ready> {
    let cluster = start_cluster(program, base)?;
    let (leader, follower) = wait_for_leader(&cluster.endpoints).await?;
    Ok(Ready {
        cluster,
        leader,
        follower,
    })
}

/// `/proc` counts CPU time in USER_HZ ticks, 100 a second on Linux whatever the kernel's HZ.
const TICK_US: f64 = 10_000.0;

/// CPU time the processes have used, in clock ticks (`/proc/PID/stat`); `None` off Linux or
/// when a process is gone.
fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .sum()
}

/// Waits until the members of both clusters have been nearly idle for a second (at most
/// `SETTLE_MAX`), so that what one system does after a case (writing a snapshot, compacting)
/// is not measured as the other's slowness.
async fn settle(pids: &[u32]) {
    const WINDOW: Duration = Duration::from_secs(1);
    const SETTLE_MAX: Duration = Duration::from_secs(60);
    // Ticks are 1/100 s: 5 per second is 5 % of one core over all six members.
    const IDLE_TICKS: u64 = 5;
    let deadline = Instant::now() + SETTLE_MAX;
    let Some(mut before) = cpu_ticks(pids) else {
        return;
    };
    loop {
        tokio::time::sleep(WINDOW).await;
        let Some(now) = cpu_ticks(pids) else {
            return;
        };
        if now.saturating_sub(before) <= IDLE_TICKS {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("the members are still busy after {SETTLE_MAX:?}; measuring anyway");
            return;
        }
        before = now;
    }
}

async fn measure(
    ready: &Ready,
    case: &Case,
    spec: &CompareSpec,
    label: &str,
) -> anyhow::Result<Outcome> {
    let outcome = match case.kind {
        Kind::Load {
            workload,
            clients,
            connections,
            target,
        } => {
            let endpoints = match target {
                Target::Leader => vec![ready.leader.clone()],
                Target::Follower => vec![ready.follower.clone()],
                Target::All => ready.cluster.endpoints.clone(),
            };
            let members: Vec<u32> = ready.cluster.pids().collect();
            let generator = [std::process::id()];
            let before = (cpu_ticks(&members), cpu_ticks(&generator));
            let report = load::run(LoadSpec {
                endpoints,
                clients,
                connections,
                requests: spec.requests.max(spec.per_client.max(5) * clients),
                value_bytes: 256,
                workload,
            })
            .await?;
            let after = (cpu_ticks(&members), cpu_ticks(&generator));
            let per_request = |b: Option<u64>, a: Option<u64>| match (b, a) {
                (Some(b), Some(a)) if report.requests_ok > 0 => {
                    a.saturating_sub(b) as f64 * TICK_US / report.requests_ok as f64
                }
                _ => 0.0,
            };
            let cpu = Cpu {
                members: per_request(before.0, after.0),
                generator: per_request(before.1, after.1),
            };
            println!(
                "{label:<7} {:<34} {} cpu/req: members={:.0}us generator={:.0}us",
                case.name,
                report.summary(),
                cpu.members,
                cpu.generator
            );
            Outcome::Load(report, cpu)
        }
        Kind::Fanout {
            watchers,
            connections,
            puts_per_sec,
        } => {
            let report = fanout::run(FanoutSpec {
                endpoints: ready.cluster.endpoints.clone(),
                watchers,
                connections,
                puts_per_sec,
                duration: Duration::from_secs(spec.fanout_secs),
                value_bytes: 256,
            })
            .await?;
            println!("{label:<7} {:<34} {}", case.name, report.summary());
            Outcome::Fanout(report)
        }
    };
    Ok(outcome)
}

/// The row a case's rounds are ranked by: its goal's figure (the p99 delivery for the
/// fan-out, whose other goal is all or nothing), throughput where it has none.
fn ranked_metric(case: &Case) -> &'static str {
    match case.kind {
        Kind::Fanout { .. } => P99_DELIVERY,
        Kind::Load { .. } if case.avg_goal.is_some() => AVERAGE,
        Kind::Load { .. } => THROUGHPUT,
    }
}

/// The rows of the median round (ranked by the case's figure), each with the spread of its
/// advantage over all rounds.
fn median_rows(case: &Case, rounds: &[(Outcome, Outcome)]) -> Vec<Row> {
    let all: Vec<Vec<Row>> = rounds.iter().map(|(q, e)| rows(case, q, e)).collect();
    let metric = ranked_metric(case);
    let ranked = |round: &[Row]| {
        round
            .iter()
            .find(|r| r.metric == metric)
            .map_or(0.0, Row::advantage)
    };
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| ranked(&all[a]).total_cmp(&ranked(&all[b])));
    let Some(&median) = order.get(all.len() / 2) else {
        return Vec::new();
    };
    let mut chosen = all[median].clone();
    if all.len() > 1 {
        for (i, row) in chosen.iter_mut().enumerate() {
            let advantages = all.iter().filter_map(|r| r.get(i)).map(Row::advantage);
            let lo = advantages.clone().fold(f64::INFINITY, f64::min);
            let hi = advantages.fold(f64::NEG_INFINITY, f64::max);
            row.spread = Some((lo, hi));
        }
    }
    chosen
}

const THROUGHPUT: &str = "throughput (req/s)";
const AVERAGE: &str = "average latency (µs)";
const P99: &str = "p99 latency (µs)";
const DELIVERED: &str = "events delivered (%)";
const P99_DELIVERY: &str = "p99 delivery latency (µs)";
const MEMBERS_CPU: &str = "members' CPU per request (µs)";
/// Context for the rows above it, not a figure of either system: left out of the chart.
pub const GENERATOR_CPU: &str = "load generator's CPU per request (µs)";

fn rows(case: &Case, q: &Outcome, e: &Outcome) -> Vec<Row> {
    let row =
        |metric, quorum: f64, etcd: f64, higher_is_better, goal: Option<(String, bool)>| Row {
            case: case.name.to_string(),
            metric,
            quorum,
            etcd,
            higher_is_better,
            met: goal.as_ref().map(|g| g.1),
            goal: goal.map(|g| g.0),
            spread: None,
        };
    match (q, e) {
        (Outcome::Load(q, q_cpu), Outcome::Load(e, e_cpu)) => {
            let (qa, ea) = (q.latencies.mean_us(), e.latencies.mean_us());
            let (qp, ep) = (
                q.latencies.percentile_us(0.99) as f64,
                e.latencies.percentile_us(0.99) as f64,
            );
            let (qt, et) = (q.throughput(), e.throughput());
            vec![
                row(
                    THROUGHPUT,
                    qt,
                    et,
                    true,
                    case.throughput_goal
                        .map(|g| (format!("≥ {g} × etcd"), qt >= g * et)),
                ),
                row(
                    AVERAGE,
                    qa,
                    ea,
                    false,
                    case.avg_goal
                        .map(|g| (format!("≤ {g} × etcd"), qa <= g * ea)),
                ),
                row(
                    P99,
                    qp,
                    ep,
                    false,
                    case.p99_goal.then(|| ("≤ etcd".to_string(), qp <= ep)),
                ),
                row(MEMBERS_CPU, q_cpu.members, e_cpu.members, false, None),
                row(GENERATOR_CPU, q_cpu.generator, e_cpu.generator, false, None),
            ]
        }
        (Outcome::Fanout(q), Outcome::Fanout(e)) => {
            let (qp, ep) = (
                q.latencies.percentile_us(0.99) as f64,
                e.latencies.percentile_us(0.99) as f64,
            );
            let all = |r: &FanoutReport| r.delivered == r.expected && r.expected > 0;
            vec![
                row(
                    DELIVERED,
                    100.0 * q.delivered as f64 / q.expected.max(1) as f64,
                    100.0 * e.delivered as f64 / e.expected.max(1) as f64,
                    true,
                    Some(("every event".to_string(), all(q))),
                ),
                row(
                    P99_DELIVERY,
                    qp,
                    ep,
                    false,
                    case.p99_goal.then(|| ("≤ etcd".to_string(), qp <= ep)),
                ),
            ]
        }
        _ => Vec::new(),
    }
}

fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.replace(" Version:", "")))
        .unwrap_or_else(|| "an etcd of unknown version".into())
}

/// The results as a Markdown section.
pub fn markdown(rows: &[Row], etcd_version: &str, command: &str, rounds: usize) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let how = if rounds > 1 {
        format!(
            "each case ran {rounds} times on each system, back to back, alternating which went \
             first, each time once both clusters' members were idle (under 5 % of a core for a \
             second); shown is the median round by the case's goal (by throughput where it has \
             none), with the lowest and highest advantage of all rounds in brackets"
        )
    } else {
        "each case ran once on each system, back to back".to_string()
    };
    let mut s = format!(
        "Measured by `{command}` on a {cores}-core machine against {etcd_version}; 3 members \
         each, both clusters running, started with the same flags; keys of ~10 bytes, values \
         of 256 bytes; {how}. Advantage is how many times better Quorum did (throughput: \
         Quorum / etcd; latency and CPU: etcd / Quorum). CPU per request is all three \
         members' user and system time over the run, and the load generator's (one process, \
         on the same cores), from `/proc` in 10 ms ticks.\n\n\
         | workload | metric | Quorum | etcd | advantage | goal | met |\n\
         |---|---|---:|---:|---:|---|---|\n"
    );
    for r in rows {
        // The generator's CPU is context for the rows above it, not something either system
        // did better.
        let advantage = match r.spread {
            _ if r.metric == GENERATOR_CPU => String::new(),
            Some((lo, hi)) => format!("{:.2} ({lo:.2}–{hi:.2})", r.advantage()),
            None => format!("{:.2}", r.advantage()),
        };
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {advantage} | {} | {} |\n",
            r.case,
            r.metric,
            r.quorum,
            r.etcd,
            r.goal.as_deref().unwrap_or(""),
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        ));
    }
    s
}

const BEGIN: &str = "<!-- bench compare: begin -->";
const END: &str = "<!-- bench compare: end -->";

/// Replaces the results section of `path` (between the markers), or appends one.
fn write_markdown(path: &Path, section: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{section}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("{old}\n{block}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}

pub async fn run(spec: CompareSpec) -> anyhow::Result<Vec<Row>> {
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            spec.only
                .as_ref()
                .is_none_or(|o| c.name.contains(o.as_str()))
        })
        .collect();
    anyhow::ensure!(!cases.is_empty(), "no case matches");
    let quorum_cmd = vec![spec.quorum.display().to_string(), "serve".to_string()];
    let etcd_cmd = vec![spec.etcd.display().to_string()];
    let quorum = start_ready(&quorum_cmd, 41000).await?;
    let etcd = start_ready(&etcd_cmd, 42000).await?;
    let rounds = spec.rounds.max(1);
    let pids: Vec<u32> = [&quorum, &etcd]
        .iter()
        .flat_map(|r| r.cluster.pids())
        .collect();
    let mut rows = Vec::new();
    for case in &cases {
        let mut outcomes = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // Whoever goes first in a round meets the machine a minute earlier; alternate.
            let quorum_first = round % 2 == 0;
            let (one, two) = if quorum_first {
                ((&quorum, "quorum"), (&etcd, "etcd"))
            } else {
                ((&etcd, "etcd"), (&quorum, "quorum"))
            };
            settle(&pids).await;
            let first = measure(one.0, case, &spec, one.1).await?;
            settle(&pids).await;
            let second = measure(two.0, case, &spec, two.1).await?;
            let (q, e) = if quorum_first {
                (first, second)
            } else {
                (second, first)
            };
            outcomes.push((q, e));
        }
        rows.extend(median_rows(case, &outcomes));
    }
    drop((quorum, etcd));
    let etcd_version = version(&spec.etcd);
    let command = format!(
        "quorum bench compare --requests {} --per-client {} --rounds {} --fanout-secs {}",
        spec.requests, spec.per_client, rounds, spec.fanout_secs
    );
    let section = markdown(&rows, &etcd_version, &command, rounds);
    println!("\n{section}");
    if let Some(path) = &spec.markdown {
        write_markdown(path, &section)?;
    }
    if let Some(path) = &spec.svg {
        super::chart::write(path, &rows, &etcd_version)?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Latencies;

    fn row(quorum: f64, etcd: f64, higher_is_better: bool) -> Row {
        Row {
            case: "c".into(),
            metric: "m",
            quorum,
            etcd,
            higher_is_better,
            goal: None,
            met: None,
            spread: None,
        }
    }

    /// A load outcome of `ok` requests in one second, every latency `avg_us`.
    fn load_outcome(ok: usize, avg_us: u64) -> Outcome {
        Outcome::Load(
            LoadReport {
                requests_ok: ok,
                errors: 0,
                elapsed: Duration::from_secs(1),
                latencies: Latencies::new(vec![avg_us; 10]),
            },
            Cpu {
                members: 1_000_000.0 / ok as f64,
                generator: 10.0,
            },
        )
    }

    #[test]
    fn the_median_round_is_reported_with_the_spread_of_all_rounds() {
        // Goal: one slow or fast minute neither makes nor breaks a goal; the spread shows it.
        let case = CASES
            .iter()
            .find(|c| c.name.starts_with("put, 100"))
            .unwrap();
        let rounds = vec![
            (load_outcome(3000, 100), load_outcome(1000, 100)),
            (load_outcome(1200, 100), load_outcome(1000, 100)),
            (load_outcome(1800, 50), load_outcome(1000, 100)),
        ];
        let rows = median_rows(case, &rounds);
        let throughput = &rows[0];
        assert_eq!((throughput.quorum, throughput.etcd), (1800.0, 1000.0));
        assert_eq!(throughput.met, Some(true));
        assert_eq!(throughput.spread, Some((1.2, 3.0)));
        // The other rows come from the same round, their spreads from all three.
        let average = &rows[1];
        assert_eq!(average.quorum, 50.0);
        assert_eq!(average.spread, Some((1.0, 2.0)));
        // CPU per request comes from the same round too (here 1 s of members' CPU over it).
        let members = rows.iter().find(|r| r.metric == MEMBERS_CPU).unwrap();
        assert_eq!(
            (members.quorum, members.etcd),
            (1_000_000.0 / 1800.0, 1000.0)
        );
        let one = median_rows(case, &rounds[..1]);
        assert_eq!((one[0].quorum, one[0].spread), (3000.0, None));
    }

    #[test]
    fn advantage_reads_the_same_way_for_throughput_and_latency() {
        // Goal: above 1 always means Quorum did better.
        assert_eq!(row(200.0, 100.0, true).advantage(), 2.0);
        assert_eq!(row(50.0, 100.0, false).advantage(), 2.0);
        assert_eq!(row(0.0, 100.0, true).advantage(), 0.0);
    }

    #[test]
    fn the_results_section_is_replaced_in_place() {
        // Goal: rerunning the comparison rewrites only its own section of the page.
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("p.md");
        std::fs::write(&page, "# Title\n\nintro\n").unwrap();
        write_markdown(&page, "first\n").unwrap();
        std::fs::write(
            &page,
            std::fs::read_to_string(&page).unwrap() + "\n## After\n",
        )
        .unwrap();
        write_markdown(&page, "second\n").unwrap();
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(text.starts_with("# Title\n\nintro\n"), "{text}");
        assert!(text.contains("second") && !text.contains("first"), "{text}");
        assert!(text.trim_end().ends_with("## After"), "{text}");
    }
}
