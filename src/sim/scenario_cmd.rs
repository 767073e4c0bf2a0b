//! `quorum sim scenario list` and `quorum sim scenario run NAME`: a named scenario run once on
//! the real member code, told as a narration on stdout (or JSON with `--json`), optionally
//! pictured as a self-contained HTML timeline and an SVG. The narration is a pure function of
//! the scenario (same text byte for byte); wall-clock figures go to stderr.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;

use crate::plant::Plants;
use crate::sim::run::{run, RunSpec};
use crate::sim::scenario::{self, Scenario};
use crate::sim::{narrate, picture, story, timeline};

/// Clients start after the first election (about 0.8 s in), so short scenarios show traffic
/// from their first fault on.
const SCENARIO_WARMUP_MS: u64 = 1_000;

#[derive(Subcommand)]
pub enum ScenarioCmd {
    /// List the scenarios with their descriptions.
    List {
        /// Where the scenario files are (default: sim/schedules).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run one scenario and narrate it.
    Run {
        /// A scenario name from `list`, or the path of a scenario file.
        name: String,
        /// Members (the scenario's own count by default; its schedule must fit).
        #[arg(long, value_parser = clap::value_parser!(u64).range(3..=5))]
        nodes: Option<u64>,
        /// Seed (the scenario's own by default).
        #[arg(long)]
        seed: Option<u64>,
        /// A planted bug, to see what the checkers catch (e.g. stale-read).
        #[arg(long, value_parser = Plants::NAMES)]
        plant: Option<String>,
        /// Print the story as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Write a self-contained HTML timeline here.
        #[arg(long)]
        timeline: Option<PathBuf>,
        /// Write an SVG picture of the timeline here.
        #[arg(long)]
        svg: Option<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn main(cmd: ScenarioCmd) -> anyhow::Result<()> {
    match cmd {
        ScenarioCmd::List { dir } => {
            let dir = dir.unwrap_or_else(scenario::default_dir);
            for s in scenario::list(&dir)? {
                let first = s.description.first().cloned().unwrap_or_default();
                println!("{:<28} {first}", s.name);
            }
        }
        ScenarioCmd::Run {
            name,
            nodes,
            seed,
            plant,
            json,
            timeline: html,
            svg,
            dir,
        } => {
            let dir = dir.unwrap_or_else(scenario::default_dir);
            let mut s = scenario::load(&dir, &name)?;
            if let Some(n) = nodes {
                s.nodes = n as usize;
            }
            if let Some(seed) = seed {
                s.seed = seed;
            }
            if plant.is_some() {
                s.plant = plant;
            }
            let ok = run_scenario(&s, json, html, svg)?;
            if !ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// Runs `s` and tells it; `Ok(false)` when a checker found a violation.
fn run_scenario(
    s: &Scenario,
    json: bool,
    html: Option<PathBuf>,
    svg: Option<PathBuf>,
) -> anyhow::Result<bool> {
    crate::sim::schedule::check_members(&s.events, s.nodes)
        .map_err(|e| anyhow::anyhow!("scenario {}: {e}", s.name))?;
    let spec = RunSpec {
        seed: s.seed,
        nodes: s.nodes,
        duration_secs: s.duration_secs,
        plants: s
            .plant
            .as_deref()
            .and_then(Plants::parse)
            .unwrap_or_default(),
        plant_name: s.plant.clone(),
        schedule: Some(s.events.clone()),
        liveness_ms: s.liveness_secs * 1000,
        controllers: s.controllers,
        warmup_ms: SCENARIO_WARMUP_MS,
        snapshot_every_entries: s
            .snapshot_every_entries
            .unwrap_or(crate::sim::run::SNAPSHOT_EVERY_ENTRIES),
        membership: false,
    };
    let wall = Instant::now();
    let report = run(&spec);
    let wall = wall.elapsed();
    let story = story::build(&report, s.seed);
    let plant = s
        .plant
        .as_ref()
        .map(|p| format!(", planted bug {p}"))
        .unwrap_or_default();
    let title = format!("scenario {}{plant}", s.name);
    if json {
        println!("{}", serde_json::to_string_pretty(&story)?);
    } else {
        print!("{}", narrate::narrate(&story, &title, &s.description));
    }
    if let Some(path) = html {
        std::fs::write(&path, timeline::html(&story, &title, &s.description)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = svg {
        std::fs::write(&path, picture::svg(&story, &title))?;
        eprintln!("wrote {}", path.display());
    }
    let simulated = report.simulated.as_secs_f64();
    eprintln!(
        "simulated={simulated:.0}s wall={:.1}s speed={:.1}x",
        wall.as_secs_f64(),
        simulated / wall.as_secs_f64().max(1e-9)
    );
    Ok(report.violations.is_empty())
}
