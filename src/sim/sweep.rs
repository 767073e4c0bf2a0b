//! Many seeds: `quorum sim sweep` runs a range of seeds, several at once, each job slot through
//! a worker process that forks a child per seed (`fork.rs`; a new process per seed, starting and
//! building openraft's tables each time, cost a sweep 6–12 % more CPU), and `--shard K/N` takes
//! every N-th seed from the K-th (0-based, as a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`
//! or a CI matrix index), so N machines split a long sweep with no scheduler of ours. Each shard
//! can write a JSON summary; `quorum sim merge` joins them and lists the failing seeds with the
//! command that replays each.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// One sweep's parameters, as `quorum sim sweep` takes them.
pub struct SweepSpec {
    pub first_seed: u64,
    /// Exclusive.
    pub end_seed: u64,
    pub nodes: u64,
    pub duration_secs: u64,
    pub plant: Option<String>,
    /// Membership changes mixed into every seed's schedule (`--membership`).
    pub membership: bool,
    pub shard: Shard,
    /// Seeds run at once.
    pub jobs: usize,
    pub summary: Option<PathBuf>,
}

/// `K/N`: this shard takes the seeds whose offset in the range is `K` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s.split_once('/').ok_or("--shard takes K/N, e.g. 0/4")?;
        let index: u64 = k.parse().map_err(|_| format!("bad shard index {k:?}"))?;
        let count: u64 = n.parse().map_err(|_| format!("bad shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("--shard {s}: K must be in 0..N"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    fn takes(&self, first_seed: u64, seed: u64) -> bool {
        (seed - first_seed) % self.count == self.index
    }
}

/// A failing seed and how to replay it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub seed: u64,
    /// The run's last line (seed, speed, trace, violations).
    pub summary: String,
    /// The `VIOLATION` lines it printed.
    pub violations: Vec<String>,
    pub replay: String,
}

/// What one shard found: the JSON `--summary` writes and `merge` reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub shard: Shard,
    pub seeds: String,
    pub nodes: u64,
    pub duration_secs: u64,
    pub plant: Option<String>,
    pub runs: u64,
    pub failures: Vec<Failure>,
    pub simulated_secs: f64,
    pub wall_secs: f64,
}

impl SweepSpec {
    fn replay(&self, seed: u64) -> String {
        let plant = self
            .plant
            .as_ref()
            .map(|p| format!(" --plant {p}"))
            .unwrap_or_default();
        let membership = if self.membership { " --membership" } else { "" };
        format!(
            "quorum sim run --seed {seed} --nodes {} --duration {}{plant}{membership}",
            self.nodes, self.duration_secs
        )
    }

    /// The worker that runs this sweep's seeds (`quorum sim worker`).
    fn worker_command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        cmd.args(["sim", "worker"])
            .args(["--nodes", &self.nodes.to_string()])
            .args(["--duration", &self.duration_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(p) = &self.plant {
            cmd.args(["--plant", p]);
        }
        if self.membership {
            cmd.arg("--membership");
        }
        cmd
    }
}

/// The line a worker prints after each run's output, then `0` (passed) or `1` (failed).
pub const END_OF_RUN: &str = "END-OF-RUN";

/// What one seed's run printed, and whether it passed.
struct Ran {
    text: String,
    passed: bool,
}

/// A worker process and its pipes.
struct Worker {
    child: Child,
    seeds: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn start(spec: &SweepSpec, exe: &Path) -> std::io::Result<Worker> {
        let mut child = spec.worker_command(exe).spawn()?;
        let seeds = child.stdin.take().expect("stdin is piped");
        let output = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Worker {
            child,
            seeds,
            output,
        })
    }

    /// Runs `seed`. The flag is false when the worker died during the run (a panic, a kill):
    /// the seed failed with what it printed, and this worker is spent.
    fn run(&mut self, seed: u64) -> (Ran, bool) {
        let mut text = String::new();
        if writeln!(self.seeds, "{seed}")
            .and_then(|_| self.seeds.flush())
            .is_ok()
        {
            let mut line = String::new();
            loop {
                line.clear();
                match self.output.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Some(status) = line.strip_prefix(END_OF_RUN) {
                    let passed = status.trim() == "0";
                    return (Ran { text, passed }, true);
                }
                text.push_str(&line);
            }
        }
        // The worker ended mid-run: the seed failed, and the slot needs a new worker.
        let status = self.child.wait();
        text.push_str(&format!(
            "the run ended without a summary: worker {}\n",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        ));
        (
            Ran {
                text,
                passed: false,
            },
            false,
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Dropped between runs, when the worker waits for its next seed and has no child.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the shard's seeds, `jobs` at a time, with a progress bar; returns what it found.
///
/// Each job slot is a thread that feeds its worker one seed after another and blocks on its
/// output, so a slot starts its next seed the moment a run ends (polling the children every
/// 20 ms had left a slot idle ~10 ms per seed, 7 % of a sweep of 30-second runs), and a run's
/// output is read while it runs, so no run can stall on a full pipe. A worker that dies fails
/// its seed and is replaced for the next.
pub fn sweep(spec: &SweepSpec) -> anyhow::Result<Summary> {
    let exe = std::env::current_exe()?;
    let seeds: Vec<u64> = (spec.first_seed..spec.end_seed)
        .filter(|s| spec.shard.takes(spec.first_seed, *s))
        .collect();
    let bar = indicatif::ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {msg} [{elapsed_precise}, eta {eta}]",
        )
        .context("progress bar template")?,
    );
    bar.set_message("0 failing");
    let started = Instant::now();
    let pending = Mutex::new(seeds.iter().copied());
    // Set when a run cannot be started: the slots finish the runs they have and stop.
    let stop = AtomicBool::new(false);
    let mut failures = Vec::new();
    let mut simulated_secs = 0.0;
    let mut first_error = None;
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(u64, std::io::Result<Ran>)>();
        for _ in 0..spec.jobs.max(1) {
            let done_tx = done_tx.clone();
            let (pending, stop, exe) = (&pending, &stop, &exe);
            scope.spawn(move || {
                let mut worker: Option<Worker> = None;
                while !stop.load(Ordering::Relaxed) {
                    let next = pending.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(seed) = next else { break };
                    let ran = match worker.as_mut() {
                        Some(w) => Ok(w),
                        None => Worker::start(spec, exe).map(|w| worker.insert(w)),
                    }
                    .map(|w| w.run(seed))
                    .map(|(ran, alive)| {
                        if !alive {
                            worker = None;
                        }
                        ran
                    });
                    if done_tx.send((seed, ran)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        for (seed, out) in done_rx {
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(
                        anyhow::Error::new(e).context(format!("starting seed {seed}")),
                    );
                    continue;
                }
            };
            let text = &out.text;
            let last = text.lines().last().unwrap_or("").to_string();
            simulated_secs += field(&last, "simulated=")
                .and_then(|v| v.trim_end_matches('s').parse::<f64>().ok())
                .unwrap_or(0.0);
            if !out.passed {
                let violations = text
                    .lines()
                    .filter(|l| l.starts_with("VIOLATION"))
                    .take(5)
                    .map(String::from)
                    .collect();
                bar.println(format!("seed {seed} FAILED: {last}"));
                failures.push(Failure {
                    seed,
                    summary: last,
                    violations,
                    replay: spec.replay(seed),
                });
                bar.set_message(format!("{} failing", failures.len()));
            }
            bar.inc(1);
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    bar.finish();
    failures.sort_by_key(|f| f.seed);
    let summary = Summary {
        shard: spec.shard,
        seeds: format!("{}..{}", spec.first_seed, spec.end_seed),
        nodes: spec.nodes,
        duration_secs: spec.duration_secs,
        plant: spec.plant.clone(),
        runs: seeds.len() as u64,
        failures,
        simulated_secs,
        wall_secs: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &spec.summary {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summary)
}

/// `key=value` out of a run's summary line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// Prints what `summaries` found together; errs (so the exit status says so) on any failure
/// or when the shards do not cover one sweep exactly once.
pub fn report(summaries: &[Summary]) -> anyhow::Result<()> {
    let runs: u64 = summaries.iter().map(|s| s.runs).sum();
    let simulated: f64 = summaries.iter().map(|s| s.simulated_secs).sum();
    let wall: f64 = summaries.iter().map(|s| s.wall_secs).sum();
    let mut failures: Vec<&Failure> = summaries.iter().flat_map(|s| &s.failures).collect();
    failures.sort_by_key(|f| f.seed);
    println!(
        "shards={} runs={runs} failing={} simulated={simulated:.0}s wall={wall:.0}s speed={:.0}x",
        summaries.len(),
        failures.len(),
        simulated / wall.max(1e-9)
    );
    for f in &failures {
        println!("seed {}: {}", f.seed, f.summary);
        for v in &f.violations {
            println!("  {v}");
        }
        println!("  replay: {}", f.replay);
    }
    if let Some(first) = summaries.first() {
        let mut shards: Vec<u64> = summaries.iter().map(|s| s.shard.index).collect();
        shards.sort_unstable();
        shards.dedup();
        let same_sweep = summaries
            .iter()
            .all(|s| s.seeds == first.seeds && s.shard.count == first.shard.count);
        if !same_sweep || shards.len() as u64 != first.shard.count {
            bail!(
                "the summaries do not cover one sweep once: shards {shards:?} of {}",
                first.shard.count
            );
        }
    }
    if !failures.is_empty() {
        bail!("{} failing seed(s)", failures.len());
    }
    Ok(())
}

/// Reads the summaries that shards wrote.
pub fn read_summaries(paths: &[PathBuf]) -> anyhow::Result<Vec<Summary>> {
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_a_range_into_disjoint_covering_parts() {
        // Goal: N shards run every seed of the range exactly once.
        let n = 4;
        let mut seen = Vec::new();
        for k in 0..n {
            let shard: Shard = format!("{k}/{n}").parse().unwrap();
            seen.extend((10..31).filter(|s| shard.takes(10, *s)));
        }
        seen.sort_unstable();
        assert_eq!(seen, (10..31).collect::<Vec<_>>());
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn merge_lists_failures_and_refuses_an_incomplete_set() {
        // Goal: a missing shard or a failing seed makes the merge fail, loudly.
        let summary = |index, failures| Summary {
            shard: Shard { index, count: 2 },
            seeds: "0..10".into(),
            nodes: 5,
            duration_secs: 30,
            plant: None,
            runs: 5,
            failures,
            simulated_secs: 10.0,
            wall_secs: 1.0,
        };
        assert!(report(&[summary(0, vec![]), summary(1, vec![])]).is_ok());
        assert!(report(&[summary(0, vec![])]).is_err());
        let failing = Failure {
            seed: 3,
            summary: "seed=3 violations=1".into(),
            violations: vec!["VIOLATION [log] ...".into()],
            replay: "quorum sim run --seed 3".into(),
        };
        assert!(report(&[summary(0, vec![]), summary(1, vec![failing])]).is_err());
    }
}
