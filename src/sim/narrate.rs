//! The narration: a run's `Story` told as plain text a learner can read top to bottom — each
//! fault and the quorum arithmetic after it, who leads in which term, what the clients saw in
//! each stretch between faults (summarised, not listed), the control-plane leadership if the
//! run had controllers, and what every checker concluded.
//!
//! It reads only the story, so the same seed gives the same text byte for byte; wall-clock
//! figures (speed) are printed elsewhere, never here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::sim::story::{Holding, OpBar, Quorum, Story};

/// `1234` → `1.234s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The quorum arithmetic in one sentence, e.g. "3 of 5 reachable: majority 3 holds, writes
/// continue". It counts voters: a learner holds data but no vote.
pub fn quorum_text(q: &Quorum) -> String {
    let nodes = q.voters;
    let mut s = String::new();
    let groups: Vec<String> = q
        .groups
        .iter()
        .map(|g| {
            let names: Vec<String> = g.iter().map(|m| format!("n{m}")).collect();
            format!("{{{}}}", names.join(","))
        })
        .collect();
    let down: Vec<String> = q.down.iter().map(|m| format!("n{m}")).collect();
    if q.groups.is_empty() {
        let _ = write!(s, "down {}: no member running; ", down.join(","));
    } else if q.groups.len() > 1 || !q.down.is_empty() {
        let _ = write!(s, "groups {}", groups.join(" "));
        if !q.down.is_empty() {
            let _ = write!(s, ", down {}", down.join(","));
        }
        s.push_str("; ");
    }
    if q.reachable >= q.majority {
        let _ = write!(
            s,
            "{} of {nodes} reachable: majority {} holds, writes continue",
            q.reachable, q.majority
        );
    } else {
        let _ = write!(
            s,
            "{} of {nodes} reachable: below the majority of {}, no leader can be elected and \
             writes stop",
            q.reachable, q.majority
        );
    }
    for (m, term) in &q.stranded_leaders {
        let _ = write!(
            s,
            "; n{m} still believes it leads term {term} but cannot reach a majority, so it \
             commits nothing"
        );
    }
    s
}

/// Counts of ok / failed / unknown.
#[derive(Default, Clone, Copy)]
pub struct Tally {
    /// Succeeded before the stretch ended.
    pub ok: usize,
    /// Succeeded, but only after the stretch ended (it waited out the fault).
    pub late: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Tally {
    fn add(&mut self, op: &OpBar, to: u64) {
        match op.status.as_str() {
            "ok" if op.to_ms < to => self.ok += 1,
            "ok" => self.late += 1,
            "failed" => self.failed += 1,
            _ => self.unknown += 1,
        }
    }
    fn total(&self) -> usize {
        self.ok + self.late + self.failed + self.unknown
    }
    fn text(&self) -> String {
        let late = if self.late > 0 {
            format!(" (+{} ok after it)", self.late)
        } else {
            String::new()
        };
        format!(
            "{} ok{late}, {} failed, {} unknown",
            self.ok, self.failed, self.unknown
        )
    }
}

/// Writes, linearizable reads and serializable reads invoked in `[from, to)`; "ok" counts
/// only those that also completed before `to`.
pub fn tally(ops: &[OpBar], from: u64, to: u64) -> (Tally, Tally, Tally) {
    let (mut w, mut r, mut s) = (Tally::default(), Tally::default(), Tally::default());
    for op in ops.iter().filter(|o| o.from_ms >= from && o.from_ms < to) {
        if op.write {
            w.add(op, to)
        } else if op.serializable {
            s.add(op, to)
        } else {
            r.add(op, to)
        }
    }
    (w, r, s)
}

/// The client tallies as one clause, leaving out kinds with no operations.
fn tally_text(w: &Tally, r: &Tally, s: &Tally) -> String {
    let parts: Vec<String> = [("writes", w), ("reads", r), ("serializable reads", s)]
        .iter()
        .filter(|(_, t)| t.total() > 0)
        .map(|(what, t)| format!("{what} {}", t.text()))
        .collect();
    if parts.is_empty() {
        "no operations".to_string()
    } else {
        parts.join("; ")
    }
}

/// Who believes they lead at `t`, from the member lanes: `n2 (term 3)`.
fn leaders_at(story: &Story, t: u64) -> Vec<String> {
    story
        .roles
        .iter()
        .filter(|s| s.role == "Leader" && s.from_ms <= t && t < s.to_ms)
        .map(|s| format!("n{} (term {})", s.member + 1, s.term))
        .collect()
}

/// The stretches during which two or more controllers believed they led: (from, to).
pub fn overlaps(holdings: &[Holding]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (i, a) in holdings.iter().enumerate() {
        for b in &holdings[i + 1..] {
            let (from, to) = (a.from_ms.max(b.from_ms), a.to_ms.min(b.to_ms));
            if a.controller != b.controller && from < to {
                out.push((from, to));
            }
        }
    }
    out.sort();
    out
}

/// Tells the story. `title` and `description` come from the scenario file, if any.
pub fn narrate(story: &Story, title: &str, description: &[String]) -> String {
    let mut out = String::new();
    let n = story.nodes;
    let _ = writeln!(out, "== {title} ==");
    for d in description {
        let _ = writeln!(out, "   {d}");
    }
    let members = story.members;
    let spares: Vec<String> = (members..n).map(|m| format!("n{}", m + 1)).collect();
    let spares = match spares.len() {
        0 => String::new(),
        _ => format!("; spare {} (no member until added)", spares.join(",")),
    };
    let _ = writeln!(
        out,
        "cluster: {} (a majority is {}, so it survives {}){spares}; seed {}",
        plural(members, "member", "members"),
        story.majority,
        plural(members - story.majority, "failure", "failures"),
        story.seed
    );
    let _ = writeln!(out, "schedule: {}", story.schedule.join("; "));
    let _ = writeln!(out);
    let line = |out: &mut String, t: u64, text: &str| {
        let _ = writeln!(out, "{:>9}  {text}", secs(t));
    };
    line(
        &mut out,
        0,
        &format!("start: all {members} members connected"),
    );
    let mut phase_from = 0;
    let mut leaders_in_phase: Vec<String> = Vec::new();
    let mut candidacies: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let summary = |out: &mut String,
                   from: u64,
                   to: u64,
                   leaders: &mut Vec<String>,
                   cands: &mut BTreeMap<String, (usize, String)>| {
        if to <= from {
            return;
        }
        let (w, r, sr) = tally(&story.ops, from, to);
        let led = if leaders.is_empty() {
            "no leader elected".to_string()
        } else {
            format!("elected: {}", leaders.join(", "))
        };
        let now = leaders_at(story, to.saturating_sub(1));
        let now = if now.is_empty() {
            "nobody leads at its end".to_string()
        } else {
            format!("leading at its end: {}", now.join(", "))
        };
        let _ = writeln!(
            out,
            "{:>9}  {}–{}: {}; {led}; {now}",
            "",
            secs(from),
            secs(to.min(story.end_ms)),
            tally_text(&w, &r, &sr)
        );
        for (m, (extra, term)) in cands.iter().filter(|(_, c)| c.0 > 0) {
            let _ = writeln!(
                out,
                "{:>9}  {m} stood as candidate {} more, up to {term}",
                "",
                plural(*extra, "time", "times")
            );
        }
        leaders.clear();
        cands.clear();
    };
    for m in &story.moments {
        match m.kind.as_str() {
            "fault" | "liveness" => {
                summary(
                    &mut out,
                    phase_from,
                    m.t_ms,
                    &mut leaders_in_phase,
                    &mut candidacies,
                );
                phase_from = m.t_ms;
                let what = if m.kind == "fault" {
                    let target = m
                        .target
                        .as_ref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default();
                    format!("fault: {}{target}", m.text)
                } else {
                    format!("liveness phase: {}", m.text)
                };
                let q = m.quorum.as_ref().map(quorum_text).unwrap_or_default();
                line(&mut out, m.t_ms, &format!("{what} → {q}"));
            }
            "candidate" => {
                let who = m.text.split_whitespace().next().unwrap_or("").to_string();
                let term = m.text.rsplit_once("for ").map_or("", |x| x.1).to_string();
                let c = candidacies
                    .entry(who)
                    .or_insert((usize::MAX, String::new()));
                c.0 = c.0.wrapping_add(1);
                if c.0 == 0 {
                    line(
                        &mut out,
                        m.t_ms,
                        &format!("{} (its election timer ran out)", m.text),
                    );
                }
                c.1 = term;
            }
            "leader" => {
                let who = m.text.split_whitespace().next().unwrap_or("");
                let term = m.text.rsplit(' ').next().unwrap_or("");
                leaders_in_phase.push(format!("{who} (term {term})"));
                line(&mut out, m.t_ms, &m.text);
            }
            _ => line(&mut out, m.t_ms, &m.text),
        }
    }
    summary(
        &mut out,
        phase_from,
        story.end_ms + 1,
        &mut leaders_in_phase,
        &mut candidacies,
    );
    let _ = writeln!(out);
    if !story.holdings.is_empty() {
        let _ = writeln!(
            out,
            "control plane (lease 15 s, renew deadline 10 s, retry 2 s):"
        );
        for h in &story.holdings {
            let _ = writeln!(
                out,
                "  c{} believed it led from {} to {}",
                h.controller + 1,
                secs(h.from_ms),
                secs(h.to_ms)
            );
        }
        let both = overlaps(&story.holdings);
        if both.is_empty() {
            let _ = writeln!(out, "  never did two controllers believe they led at once");
        }
        for (from, to) in &both {
            let _ = writeln!(
                out,
                "  TWO controllers believed they led at once from {} to {} ({})",
                secs(*from),
                secs(*to),
                secs(to - from)
            );
        }
        let _ = writeln!(out);
    }
    let (w, r, sr) = tally(&story.ops, 0, u64::MAX);
    let _ = writeln!(
        out,
        "clients overall ({}): {}",
        plural(story.ops.len(), "operation", "operations"),
        tally_text(&w, &r, &sr)
    );
    let _ = writeln!(out, "checkers:");
    for c in &story.conclusions {
        if c.violations.is_empty() {
            let _ = writeln!(out, "  {:<16} ok: {}", c.checker, c.guarantee);
        } else {
            let _ = writeln!(
                out,
                "  {:<16} VIOLATED ({}): {}",
                c.checker,
                plural(c.violations.len(), "violation", "violations"),
                c.guarantee
            );
            for v in c.violations.iter().take(3) {
                let _ = writeln!(out, "    - {v}");
            }
        }
    }
    match &story.first_violation {
        None => {
            let _ = writeln!(out, "verdict: no violations");
        }
        Some((t, v)) => {
            let at = t.map(|t| format!(" at {}", secs(t))).unwrap_or_default();
            let _ = writeln!(out, "verdict: first violation{at}: {v}");
        }
    }
    let _ = writeln!(out, "trace={}", story.trace);
    out
}
