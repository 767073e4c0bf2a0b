//! `quorum sim run` and `quorum sim sweep`: the simulator's command line, part of the one
//! `quorum` binary. Shrinking starts this same binary again for each try; a sweep starts it
//! once per job slot as a worker that forks a child per seed, so every run starts from the same
//! untouched process, as `quorum sim run` does (tokio numbers tasks from a process-wide
//! counter, and a runtime's shutdown drops tasks in an order that follows those numbers: runs
//! one after another in one process replay differently). `tests/it/sim.rs` checks that a
//! sweep's runs give each seed's own trace.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;

use crate::plant::Plants;
use crate::sim::run::{run, RunSpec};
use crate::sim::sweep::{read_summaries, report, sweep, Shard, Summary, SweepSpec};

/// `quorum sim ...`.
#[derive(Subcommand)]
pub enum SimCmd {
    /// Run one seed and report.
    Run {
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
        nodes: u64,
        /// Length of the safety phase (with faults), in simulated seconds.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// A planted bug the checkers must catch.
        #[arg(long, value_parser = Plants::NAMES)]
        plant: Option<String>,
        /// Replay a hand-written schedule instead of the seed's.
        #[arg(long)]
        schedule: Option<std::path::PathBuf>,
        /// Print the full event log, every client operation included.
        #[arg(long)]
        verbose: bool,
        /// On a violation, do not try to shrink the schedule.
        #[arg(long)]
        no_shrink: bool,
        /// Length of the liveness phase (all healed), in simulated seconds.
        #[arg(long, default_value_t = crate::sim::run::LIVENESS_MS / 1000)]
        liveness: u64,
        /// Mix membership changes (add a learner, promote, remove, replace, move the leader,
        /// lose a data dir) into the seed's schedule, from a stream of their own.
        #[arg(long)]
        membership: bool,
    },
    /// Named, narrated scenarios (`sim/schedules/`).
    Scenario {
        #[command(subcommand)]
        cmd: crate::sim::scenario_cmd::ScenarioCmd,
    },
    /// Run a range of seeds, several at once, each from a process state of its own.
    Sweep {
        /// `A..B`, B exclusive.
        #[arg(long)]
        seeds: String,
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
        nodes: u64,
        #[arg(long, default_value_t = 30)]
        duration: u64,
        #[arg(long, value_parser = Plants::NAMES)]
        plant: Option<String>,
        /// `K/N`: run only every N-th seed from the K-th (K from 0), so N machines (a CI
        /// matrix, a Kubernetes Indexed Job) split the range.
        #[arg(long, default_value = "0/1")]
        shard: Shard,
        /// Seeds run at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Write this shard's findings as JSON, for `quorum sim merge`.
        #[arg(long)]
        summary: Option<std::path::PathBuf>,
        /// Mix membership changes into every seed's schedule (see `run --membership`).
        #[arg(long)]
        membership: bool,
    },
    /// A sweep's worker: runs each seed read from stdin (one a line) in a child forked from
    /// this process, and ends each run's output with a line `END-OF-RUN <0 passed | 1 failed>`.
    #[command(hide = true)]
    Worker {
        #[arg(long, value_parser = clap::value_parser!(u64).range(3..=5))]
        nodes: u64,
        #[arg(long)]
        duration: u64,
        #[arg(long, value_parser = Plants::NAMES)]
        plant: Option<String>,
        #[arg(long)]
        membership: bool,
    },
    /// Join shards' JSON summaries: totals, and each failing seed with its replay command.
    Merge { summaries: Vec<std::path::PathBuf> },
}

/// Greedy shrinking: drop one event at a time (each try in a process of its own, so a try that
/// panics ends only itself) and keep every drop after which the run still fails the same
/// way: with a violation from `checker`, the first one's. A drop that leaves the schedule
/// invalid (a spare acted on but never added) is not tried.
fn shrink(
    checker: &str,
    seed: u64,
    nodes: u64,
    duration: u64,
    liveness: u64,
    plant: Option<&str>,
    schedule: &[crate::sim::schedule::Event],
) -> anyhow::Result<Vec<crate::sim::schedule::Event>> {
    /// Bounds the time spent shrinking; each try is a whole run.
    const TRIES_MAX: usize = 24;
    let exe = std::env::current_exe()?;
    let mut current = schedule.to_vec();
    let mut i = 0;
    let mut tries = 0;
    while i < current.len() && tries < TRIES_MAX {
        tries += 1;
        let mut candidate = current.clone();
        candidate.remove(i);
        if crate::sim::schedule::check_members(&candidate, nodes as usize).is_err() {
            i += 1;
            continue;
        }
        let file = std::env::temp_dir().join(format!(
            "quorum-sim-shrink-{seed}-{}.txt",
            std::process::id()
        ));
        std::fs::write(
            &file,
            candidate
                .iter()
                .map(|e| format!("{e}\n"))
                .collect::<String>(),
        )?;
        let mut cmd = Command::new(&exe);
        cmd.args([
            "sim",
            "run",
            "--no-shrink",
            "--seed",
            &seed.to_string(),
            "--nodes",
            &nodes.to_string(),
        ]);
        cmd.args(["--duration", &duration.to_string()]);
        cmd.args(["--liveness", &liveness.to_string(), "--schedule"])
            .arg(&file);
        if let Some(p) = plant {
            cmd.args(["--plant", p]);
        }
        cmd.current_dir(std::env::temp_dir());
        let out = cmd.output()?;
        let same = format!("VIOLATION [{checker}]");
        let still_fails = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&same));
        let _ = std::fs::remove_file(&file);
        if still_fails {
            current = candidate;
        } else {
            i += 1;
        }
    }
    Ok(current)
}

/// The run `quorum sim run --seed N` makes with its defaults: the seed's own schedule and the
/// full liveness phase. A sweep's worker runs exactly this, so its runs replay as printed.
fn seed_spec(
    seed: u64,
    nodes: u64,
    duration_secs: u64,
    plant: Option<String>,
    membership: bool,
) -> RunSpec {
    RunSpec {
        seed,
        nodes: nodes as usize,
        duration_secs,
        plants: plant.as_deref().and_then(Plants::parse).unwrap_or_default(),
        plant_name: plant,
        schedule: None,
        liveness_ms: crate::sim::run::LIVENESS_MS,
        controllers: false,
        warmup_ms: 0,
        snapshot_every_entries: crate::sim::run::SNAPSHOT_EVERY_ENTRIES,
        membership,
    }
}

/// Runs `spec`, prints its log and summary line, and on a violation writes the failure's files
/// (shrunk unless `no_shrink`) under `sim-failures/`. Returns whether the run passed.
fn run_and_report(spec: &RunSpec, verbose: bool, no_shrink: bool) -> anyhow::Result<bool> {
    let (seed, nodes, duration) = (spec.seed, spec.nodes as u64, spec.duration_secs);
    let liveness = spec.liveness_ms / 1000;
    let plant = spec.plant_name.clone();
    let wall = Instant::now();
    let report = run(spec);
    let wall = wall.elapsed();
    for line in &report.log {
        if verbose || !line.starts_with("op ") {
            println!("{line}");
        }
    }
    let ok = report
        .history
        .iter()
        .filter(|o| o.complete_ms.is_some())
        .count();
    println!(
        "ops={} completed={} unknown={}",
        report.history.len(),
        ok,
        report.history.len() - ok
    );
    for v in &report.violations {
        println!("VIOLATION {v}");
    }
    if !report.violations.is_empty() {
        let dir = std::path::PathBuf::from(format!("sim-failures/seed-{seed}"));
        std::fs::create_dir_all(&dir)?;
        let sched: String = report.schedule.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(dir.join("schedule.txt"), sched)?;
        std::fs::write(dir.join("history.txt"), format!("{:#?}", report.history))?;
        let text: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
        std::fs::write(dir.join("report.txt"), text.join("\n"))?;
        println!("wrote {}", dir.display());
        let mut events = report.schedule.clone();
        if !no_shrink {
            let smaller = shrink(
                report.violations[0].checker.name(),
                seed,
                nodes,
                duration,
                liveness,
                plant.as_deref(),
                &report.schedule,
            )?;
            if smaller.len() < report.schedule.len() {
                let text: String = smaller.iter().map(|e| format!("{e}\n")).collect();
                std::fs::write(dir.join("schedule.txt"), text)?;
                println!(
                    "shrunk the schedule from {} to {} events (still failing)",
                    report.schedule.len(),
                    smaller.len()
                );
            }
            events = smaller;
        }
        // The failure as a named scenario: `scenario run` replays it and narrates it.
        let first = &report.violations[0];
        let scenario = crate::sim::scenario::Scenario {
            name: format!("seed-{seed}"),
            description: vec![
                format!("Shrunk from a failing run of seed {seed} ({nodes} members):"),
                format!("VIOLATION {first}"),
            ],
            nodes: nodes as usize,
            seed,
            duration_secs: duration,
            liveness_secs: liveness,
            plant: plant.clone(),
            controllers: false,
            snapshot_every_entries: None,
            events,
        };
        let path = dir.join("scenario.txt");
        std::fs::write(&path, crate::sim::scenario::render(&scenario))?;
        println!(
            "scenario: quorum sim scenario run {} (copy it into sim/schedules/ to name it)",
            path.display()
        );
        let plant = plant.map(|p| format!(" --plant {p}")).unwrap_or_default();
        println!(
            "replay: quorum sim run --seed {seed} --nodes {nodes} --duration {duration} --liveness {liveness}{plant} --schedule {}",
            dir.join("schedule.txt").display()
        );
    }
    let simulated = report.simulated.as_secs_f64();
    println!(
        "seed={seed} nodes={nodes} simulated={:.0}s wall={:.1}s speed={:.0}x trace={:016x} violations={}",
        simulated,
        wall.as_secs_f64(),
        simulated / wall.as_secs_f64().max(1e-9),
        report.trace,
        report.violations.len()
    );
    Ok(report.violations.is_empty())
}

/// Runs a simulator command. Call it outside any tokio runtime: the simulation builds its own.
pub fn main(command: SimCmd) -> anyhow::Result<()> {
    match command {
        SimCmd::Scenario { cmd } => return crate::sim::scenario_cmd::main(cmd),
        SimCmd::Run {
            seed,
            nodes,
            duration,
            plant,
            schedule,
            verbose,
            no_shrink,
            liveness,
            membership,
        } => {
            let schedule = match schedule {
                Some(path) => Some(
                    crate::sim::schedule::parse(
                        &std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    )
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                ),
                None => None,
            };
            if let Some(events) = &schedule {
                crate::sim::schedule::check_members(events, nodes as usize)
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
            let spec = RunSpec {
                schedule,
                liveness_ms: liveness * 1000,
                ..seed_spec(seed, nodes, duration, plant, membership)
            };
            if !run_and_report(&spec, verbose, no_shrink)? {
                std::process::exit(1);
            }
        }
        SimCmd::Worker {
            nodes,
            duration,
            plant,
            membership,
        } => {
            // Built once here, shared by every run forked below: openraft's histograms build
            // lookup tables for all their widths on first use, 7 % of a 30-second run's CPU.
            drop(base2histogram::Histogram::<()>::new());
            let mut out = std::io::stdout();
            for line in std::io::stdin().lines() {
                let seed: u64 = line?
                    .trim()
                    .parse()
                    .context("a sweep worker reads one seed a line")?;
                let spec = seed_spec(seed, nodes, duration, plant.clone(), membership);
                let status = crate::sim::fork::in_child(|| {
                    run_and_report(&spec, false, true).unwrap_or_else(|e| {
                        println!("the run could not report: {e:#}");
                        false
                    })
                })?;
                if status.code().is_none() {
                    writeln!(out, "the run was killed: {status}")?;
                }
                writeln!(
                    out,
                    "{} {}",
                    crate::sim::sweep::END_OF_RUN,
                    u8::from(!status.success())
                )?;
                out.flush()?;
            }
        }
        SimCmd::Sweep {
            seeds,
            nodes,
            duration,
            plant,
            shard,
            jobs,
            summary,
            membership,
        } => {
            let (a, b) = seeds
                .split_once("..")
                .ok_or_else(|| anyhow::anyhow!("--seeds takes A..B"))?;
            let spec = SweepSpec {
                first_seed: a.parse().context("--seeds A..B: A")?,
                end_seed: b.parse().context("--seeds A..B: B")?,
                nodes,
                duration_secs: duration,
                plant,
                membership,
                shard,
                jobs: jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                summary,
            };
            let found = sweep(&spec)?;
            report(&[Summary {
                // One shard reported alone stands for the whole sweep it is part of.
                shard: crate::sim::sweep::Shard::WHOLE,
                ..found
            }])?;
        }
        SimCmd::Merge { summaries } => report(&read_summaries(&summaries)?)?,
    }
    Ok(())
}
