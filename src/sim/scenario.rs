//! Named scenarios: the files of `sim/schedules/`, each a schedule with a short description
//! in its opening comment lines and its settings on a `# with:` line, e.g.
//!
//! ```text
//! # Leader crash and failover: ...
//! # with: nodes=3 seed=1 duration=6 liveness=3
//! 1500 crash-leader
//! ```
//!
//! Settings: `nodes`, `seed`, `duration` (safety phase, simulated s), `liveness` (s), `plant`
//! (a planted bug the scenario demonstrates), `controllers=yes` (the control-plane election
//! workload), `snapshot` (log entries between a member's snapshots, for a scenario whose
//! lagging member must be sent one). A scenario runs the real member code with every checker on; only its fault
//! schedule is fixed instead of drawn from the seed. A failing seed's shrunk schedule is saved
//! in the same form (`render`), with the violation in its description.

use std::path::{Path, PathBuf};

use crate::sim::schedule::{self, Event};

/// A scenario as read from its file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The opening comment paragraph, one entry per line, `# ` stripped.
    pub description: Vec<String>,
    pub nodes: usize,
    pub seed: u64,
    pub duration_secs: u64,
    pub liveness_secs: u64,
    pub plant: Option<String>,
    pub controllers: bool,
    pub snapshot_every_entries: Option<u64>,
    pub events: Vec<Event>,
}

/// Where scenarios live: `sim/schedules` under the current directory when there is one (a
/// checkout), else the one in the source tree this binary was built from.
pub fn default_dir() -> PathBuf {
    let here = PathBuf::from("sim/schedules");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/sim/schedules"))
}

/// Parses a scenario file's text.
pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
    let mut description = Vec::new();
    let mut in_description = true;
    let mut s = Scenario {
        name: name.to_string(),
        description: Vec::new(),
        nodes: 3,
        seed: 1,
        duration_secs: 0,
        liveness_secs: 3,
        plant: None,
        controllers: false,
        snapshot_every_entries: None,
        events: schedule::parse(text)?,
    };
    for line in text.lines().map(str::trim) {
        let Some(comment) = line.strip_prefix('#') else {
            in_description = false;
            continue;
        };
        let comment = comment.trim();
        if let Some(settings) = comment.strip_prefix("with:") {
            in_description = false;
            for kv in settings.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("setting {kv:?} is not key=value"))?;
                let bad = |_| format!("bad value in {kv:?}");
                match k {
                    "nodes" => s.nodes = v.parse().map_err(bad)?,
                    "seed" => s.seed = v.parse().map_err(bad)?,
                    "duration" => s.duration_secs = v.parse().map_err(bad)?,
                    "liveness" => s.liveness_secs = v.parse().map_err(bad)?,
                    "plant" => s.plant = Some(v.to_string()),
                    "controllers" => s.controllers = v == "yes",
                    "snapshot" => s.snapshot_every_entries = Some(v.parse().map_err(bad)?),
                    _ => return Err(format!("unknown setting {k:?}")),
                }
            }
        } else if comment.is_empty() {
            in_description = false;
        } else if in_description {
            description.push(comment.to_string());
        }
    }
    s.description = description;
    if s.duration_secs == 0 {
        // Long enough for every event, and two seconds to watch the last one act.
        let last = s.events.iter().map(|e| e.at_ms).max().unwrap_or(0);
        s.duration_secs = last.div_ceil(1000) + 2;
    }
    Ok(s)
}

/// Reads scenario `name` from `dir`, or from a path when `name` names a file.
pub fn load(dir: &Path, name: &str) -> anyhow::Result<Scenario> {
    let path = if name.ends_with(".txt") || name.contains('/') {
        PathBuf::from(name)
    } else {
        dir.join(format!("{name}.txt"))
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "no scenario {name:?} ({}: {e}); try `quorum sim scenario list`",
            path.display()
        )
    })?;
    let stem = path
        .file_stem()
        .map_or(name.to_string(), |s| s.to_string_lossy().to_string());
    parse(&stem, &text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Every scenario in `dir`, by name.
pub fn list(dir: &Path) -> anyhow::Result<Vec<Scenario>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter_map(|f| f.strip_suffix(".txt").map(str::to_string))
        .collect();
    names.sort();
    names.iter().map(|n| load(dir, n)).collect()
}

/// A scenario file's text: description, settings, events.
pub fn render(s: &Scenario) -> String {
    let mut out: String = s.description.iter().map(|d| format!("# {d}\n")).collect();
    out.push_str(&format!(
        "# with: nodes={} seed={} duration={} liveness={}",
        s.nodes, s.seed, s.duration_secs, s.liveness_secs
    ));
    if let Some(p) = &s.plant {
        out.push_str(&format!(" plant={p}"));
    }
    if s.controllers {
        out.push_str(" controllers=yes");
    }
    if let Some(n) = s.snapshot_every_entries {
        out.push_str(&format!(" snapshot={n}"));
    }
    out.push('\n');
    out.extend(s.events.iter().map(|e| format!("{e}\n")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_file_round_trips_with_its_description_and_settings() {
        // Goal: what `render` writes (a shrunk failure), `parse` reads back unchanged.
        let text = "# Two lines\n# of description.\n# with: nodes=5 seed=9 duration=7 \
                    liveness=2 plant=stale-read\n1500 crash-leader\n3000 restart-all\n";
        let s = parse("x", text).unwrap();
        assert_eq!(s.description, ["Two lines", "of description."]);
        assert_eq!(
            (s.nodes, s.seed, s.duration_secs, s.liveness_secs),
            (5, 9, 7, 2)
        );
        assert_eq!(s.plant.as_deref(), Some("stale-read"));
        assert_eq!(render(&s), text);
    }
}
