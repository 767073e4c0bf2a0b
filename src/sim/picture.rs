//! The story as one SVG picture, for docs: a lane per member (role and term over simulated
//! time; crashes and pauses as hatched gaps), a lane per link that was cut, a lane per client
//! (operations as bars: green ok, red failed, amber unknown), a lane per control-plane
//! controller (when it believed it led; overlaps outlined red), fault markers along the top and
//! the first violation as a red line. Plain SVG 1.1, no script, no fonts fetched.
//!
//! The HTML timeline (`timeline`) draws the same lanes with the same colours in the browser.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::sim::narrate::{overlaps, secs};
use crate::sim::story::Story;

/// Left margin for lane labels, plot width, lane height; pixels.
const LABEL_W: f64 = 90.0;
const PLOT_W: f64 = 900.0;
const LANE_H: f64 = 22.0;
const TOP: f64 = 60.0;

pub const ROLE_COLOURS: [(&str, &str); 4] = [
    ("Leader", "#2e7d32"),
    ("Candidate", "#f9a825"),
    ("Follower", "#90caf9"),
    ("Learner", "#cfd8dc"),
];

pub fn role_colour(role: &str) -> &'static str {
    ROLE_COLOURS
        .iter()
        .find(|(r, _)| *r == role)
        .map_or("#cfd8dc", |(_, c)| c)
}

pub fn status_colour(status: &str) -> &'static str {
    match status {
        "ok" => "#43a047",
        "failed" => "#e53935",
        _ => "#ffb300",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the story.
pub fn svg(story: &Story, title: &str) -> String {
    let end = story.end_ms.max(1) as f64;
    let x = |t: u64| LABEL_W + t as f64 / end * PLOT_W;
    let n = story.nodes;
    let pairs: BTreeSet<(usize, usize)> = story
        .cuts
        .iter()
        .map(|c| (c.from.min(c.to), c.from.max(c.to)))
        .collect();
    let clients: BTreeSet<usize> = story.ops.iter().map(|o| o.client).collect();
    let controllers: BTreeSet<usize> = story.holdings.iter().map(|h| h.controller).collect();
    let lanes = n + pairs.len() + clients.len() + controllers.len();
    let height = TOP + lanes as f64 * LANE_H + 50.0;
    let width = LABEL_W + PLOT_W + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"##
    );
    let _ = writeln!(
        s,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="2"/></pattern></defs>"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="8" y="16" font-size="13" font-weight="bold">{}</text>"##,
        esc(title)
    );
    // Fault markers, labels staggered over two rows so neighbours do not collide.
    for (i, m) in story
        .moments
        .iter()
        .filter(|m| m.kind == "fault" || m.kind == "liveness")
        .enumerate()
    {
        let label = if m.kind == "liveness" {
            "heal all".to_string()
        } else {
            m.text.clone()
        };
        let y = 32.0 + (i % 2) as f64 * 12.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{y}" x2="{0:.1}" y2="{1:.1}" stroke="#777" stroke-dasharray="3,3"/><text x="{2:.1}" y="{y}" fill="#444">{3}</text>"##,
            x(m.t_ms),
            TOP + lanes as f64 * LANE_H,
            x(m.t_ms) + 2.0,
            esc(&label)
        );
    }
    let mut row = 0usize;
    let label = |s: &mut String, row: usize, text: &str| {
        let y = TOP + row as f64 * LANE_H;
        let _ = writeln!(
            s,
            r##"<text x="6" y="{:.1}">{}</text>"##,
            y + 15.0,
            esc(text)
        );
        y
    };
    for m in 0..n {
        let y = label(&mut s, row, &format!("n{}", m + 1));
        for seg in story.roles.iter().filter(|r| r.member == m) {
            let (x0, x1) = (x(seg.from_ms), x(seg.to_ms));
            let _ = writeln!(
                s,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>n{} {} term {} from {} to {}</title></rect>"##,
                y + 2.0,
                (x1 - x0).max(0.5),
                LANE_H - 4.0,
                role_colour(&seg.role),
                m + 1,
                seg.role,
                seg.term,
                secs(seg.from_ms),
                secs(seg.to_ms)
            );
            if x1 - x0 > 24.0 {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="{}">{}{}</text>"##,
                    x0 + 3.0,
                    y + 15.0,
                    if seg.role == "Leader" { "#fff" } else { "#000" },
                    &seg.role[..1],
                    seg.term
                );
            }
        }
        for g in story.gaps.iter().filter(|g| g.member == m) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="url(#hatch)" stroke="#555"><title>n{} {} from {} to {}</title></rect>"##,
                x(g.from_ms),
                y + 2.0,
                (x(g.to_ms) - x(g.from_ms)).max(0.5),
                LANE_H - 4.0,
                m + 1,
                g.kind,
                secs(g.from_ms),
                secs(g.to_ms)
            );
        }
        row += 1;
    }
    let who = |m: usize| {
        if m == n {
            "client".to_string()
        } else {
            format!("n{}", m + 1)
        }
    };
    for (a, b) in &pairs {
        let y = label(&mut s, row, &format!("{}–{}", who(*a), who(*b)));
        let _ = writeln!(
            s,
            r##"<line x1="{LABEL_W}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#bbb"/>"##,
            y + 11.0,
            LABEL_W + PLOT_W
        );
        for c in story
            .cuts
            .iter()
            .filter(|c| (c.from.min(c.to), c.from.max(c.to)) == (*a, *b))
        {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="6" fill="#c62828"><title>{} to {} cut from {} to {}</title></rect>"##,
                x(c.from_ms),
                y + 8.0,
                (x(c.to_ms) - x(c.from_ms)).max(0.5),
                who(c.from),
                who(c.to),
                secs(c.from_ms),
                secs(c.to_ms)
            );
        }
        row += 1;
    }
    for c in &clients {
        let y = label(&mut s, row, &format!("client c{c}"));
        for op in story.ops.iter().filter(|o| o.client == *c) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{}" fill="{}"><title>{} {} {} ({} to {})</title></rect>"##,
                x(op.from_ms),
                y + if op.write { 4.0 } else { 12.0 },
                (x(op.to_ms) - x(op.from_ms)).max(1.0),
                6,
                status_colour(&op.status),
                if op.write { "write" } else { "read" },
                esc(&op.key),
                op.status,
                secs(op.from_ms),
                secs(op.to_ms)
            );
        }
        row += 1;
    }
    let both = overlaps(&story.holdings);
    for c in &controllers {
        let y = label(&mut s, row, &format!("controller c{}", c + 1));
        for h in story.holdings.iter().filter(|h| h.controller == *c) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#7e57c2"><title>c{} believes it leads from {} to {}</title></rect>"##,
                x(h.from_ms),
                y + 3.0,
                (x(h.to_ms) - x(h.from_ms)).max(0.5),
                LANE_H - 6.0,
                c + 1,
                secs(h.from_ms),
                secs(h.to_ms)
            );
        }
        for (from, to) in &both {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#d50000" stroke-width="2"><title>two controllers lead at once</title></rect>"##,
                x(*from),
                y + 2.0,
                (x(*to) - x(*from)).max(1.0),
                LANE_H - 4.0
            );
        }
        row += 1;
    }
    let bottom = TOP + row as f64 * LANE_H;
    // Time axis, one tick per second (or per 5 s on long runs).
    let step = if story.end_ms > 20_000 { 5_000 } else { 1_000 };
    let mut t = 0;
    while t <= story.end_ms {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#000"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{4}s</text>"##,
            x(t),
            bottom,
            bottom + 4.0,
            bottom + 15.0,
            t / 1000
        );
        t += step;
    }
    match &story.first_violation {
        Some((Some(t), v)) => {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2:.1}" stroke="#d50000" stroke-width="2"/><text x="8" y="{3:.1}" fill="#d50000">first violation at {4}: {5}</text>"##,
                x(*t),
                TOP,
                bottom,
                bottom + 32.0,
                secs(*t),
                esc(v)
            );
        }
        Some((None, v)) => {
            let _ = writeln!(
                s,
                r##"<text x="8" y="{:.1}" fill="#d50000">violation (judged after the run): {}</text>"##,
                bottom + 32.0,
                esc(v)
            );
        }
        None => {
            let _ = writeln!(
                s,
                r##"<text x="8" y="{:.1}" fill="#2e7d32">no violations</text>"##,
                bottom + 32.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
