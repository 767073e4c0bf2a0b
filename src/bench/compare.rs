//! `quorum bench compare`: a 3-member etcd and a 3-member Quorum, started one after the other
//! on this machine with the same flags, each measured by the same workloads; the results as a
//! table (printed, and written between markers into a Markdown file) and a chart (SVG).

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
    /// Requests per load case (at least 5 per client).
    pub requests: usize,
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
    Load(LoadReport),
    Fanout(FanoutReport),
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

async fn measure(
    cluster: &Cluster,
    cases: &[&Case],
    spec: &CompareSpec,
    label: &str,
) -> anyhow::Result<Vec<Outcome>> {
    let (leader, follower) = wait_for_leader(&cluster.endpoints).await?;
    let mut out = Vec::new();
    for case in cases {
        let outcome = match case.kind {
            Kind::Load {
                workload,
                clients,
                connections,
                target,
            } => {
                let endpoints = match target {
                    Target::Leader => vec![leader.clone()],
                    Target::Follower => vec![follower.clone()],
                    Target::All => cluster.endpoints.clone(),
                };
                let report = load::run(LoadSpec {
                    endpoints,
                    clients,
                    connections,
                    requests: spec.requests.max(5 * clients),
                    value_bytes: 256,
                    workload,
                })
                .await?;
                println!("{label:<7} {:<34} {}", case.name, report.summary());
                Outcome::Load(report)
            }
            Kind::Fanout {
                watchers,
                connections,
                puts_per_sec,
            } => {
                let report = fanout::run(FanoutSpec {
                    endpoints: cluster.endpoints.clone(),
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
        out.push(outcome);
    }
    Ok(out)
}

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
        };
    match (q, e) {
        (Outcome::Load(q), Outcome::Load(e)) => {
            let (qa, ea) = (q.latencies.mean_us(), e.latencies.mean_us());
            let (qp, ep) = (
                q.latencies.percentile_us(0.99) as f64,
                e.latencies.percentile_us(0.99) as f64,
            );
            let (qt, et) = (q.throughput(), e.throughput());
            vec![
                row(
                    "throughput (req/s)",
                    qt,
                    et,
                    true,
                    case.throughput_goal
                        .map(|g| (format!("≥ {g} × etcd"), qt >= g * et)),
                ),
                row(
                    "average latency (µs)",
                    qa,
                    ea,
                    false,
                    case.avg_goal
                        .map(|g| (format!("≤ {g} × etcd"), qa <= g * ea)),
                ),
                row(
                    "p99 latency (µs)",
                    qp,
                    ep,
                    false,
                    case.p99_goal.then(|| ("≤ etcd".to_string(), qp <= ep)),
                ),
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
                    "events delivered (%)",
                    100.0 * q.delivered as f64 / q.expected.max(1) as f64,
                    100.0 * e.delivered as f64 / e.expected.max(1) as f64,
                    true,
                    Some(("every event".to_string(), all(q))),
                ),
                row(
                    "p99 delivery latency (µs)",
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
pub fn markdown(rows: &[Row], etcd_version: &str, command: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = format!(
        "Measured by `{command}` on a {cores}-core machine against {etcd_version}; 3 members \
         each, started with the same flags, one system at a time; keys of ~10 bytes, values \
         of 256 bytes. Advantage is how many times better Quorum did (throughput: Quorum / \
         etcd; latency: etcd / Quorum).\n\n\
         | workload | metric | Quorum | etcd | advantage | goal | met |\n\
         |---|---|---:|---:|---:|---|---|\n"
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {} |\n",
            r.case,
            r.metric,
            r.quorum,
            r.etcd,
            r.advantage(),
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
    let quorum = {
        let cluster = start_cluster(&quorum_cmd, 41000)?;
        measure(&cluster, &cases, &spec, "quorum").await?
    };
    let etcd = {
        let cluster = start_cluster(&etcd_cmd, 42000)?;
        measure(&cluster, &cases, &spec, "etcd").await?
    };
    let rows: Vec<Row> = cases
        .iter()
        .zip(quorum.iter().zip(&etcd))
        .flat_map(|(case, (q, e))| rows(case, q, e))
        .collect();
    let etcd_version = version(&spec.etcd);
    let command = format!(
        "quorum bench compare --requests {} --fanout-secs {}",
        spec.requests, spec.fanout_secs
    );
    let section = markdown(&rows, &etcd_version, &command);
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

    fn row(quorum: f64, etcd: f64, higher_is_better: bool) -> Row {
        Row {
            case: "c".into(),
            metric: "m",
            quorum,
            etcd,
            higher_is_better,
            goal: None,
            met: None,
        }
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
