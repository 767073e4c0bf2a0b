//! The story as one self-contained HTML page (`--timeline out.html`): the story's JSON inline,
//! a small inline script that draws the same lanes as `picture` (members, cut links, clients,
//! controllers) as SVG in the page, with hover titles, and the narration below. No network, no
//! external files: it opens from disk, offline, in any browser.
//!
//! The script records its own errors into the page (`#errors`) and marks the body
//! `data-lanes="N"` once the lanes are built, which is what the headless-browser test checks.

use crate::sim::narrate;
use crate::sim::picture::ROLE_COLOURS;
use crate::sim::story::Story;

const SCRIPT: &str = r#"
window.onerror = function (msg, src, line) {
  var e = document.getElementById('errors');
  e.textContent += 'script error: ' + msg + ' (line ' + line + ')\n';
};
(function () {
  var story = JSON.parse(document.getElementById('story').textContent);
  var ROLE = JSON.parse(document.getElementById('roles').textContent);
  var STATUS = { ok: '#43a047', failed: '#e53935', unknown: '#ffb300' };
  var NS = 'http://www.w3.org/2000/svg';
  var LABEL_W = 90, PLOT_W = 900, LANE_H = 22, TOP = 60;
  var end = Math.max(story.end_ms, 1);
  function x(t) { return LABEL_W + t / end * PLOT_W; }
  function secs(ms) { return (ms / 1000).toFixed(3) + 's'; }
  function el(name, attrs, parent, title) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (title) { var t = document.createElementNS(NS, 'title'); t.textContent = title; e.appendChild(t); }
    parent.appendChild(e);
    return e;
  }
  var n = story.nodes, pairs = [], clients = [], ctls = [];
  story.cuts.forEach(function (c) {
    var k = Math.min(c.from, c.to) + '-' + Math.max(c.from, c.to);
    if (pairs.indexOf(k) < 0) pairs.push(k);
  });
  story.ops.forEach(function (o) { if (clients.indexOf(o.client) < 0) clients.push(o.client); });
  story.holdings.forEach(function (h) { if (ctls.indexOf(h.controller) < 0) ctls.push(h.controller); });
  pairs.sort(); clients.sort(function (a, b) { return a - b; }); ctls.sort();
  var lanes = n + pairs.length + clients.length + ctls.length;
  var height = TOP + lanes * LANE_H + 50, width = LABEL_W + PLOT_W + 20;
  var svg = el('svg', { width: width, height: height, 'font-family': 'sans-serif', 'font-size': 11 },
               document.getElementById('picture'));
  var marks = story.moments.filter(function (m) { return m.kind === 'fault' || m.kind === 'liveness'; });
  marks.forEach(function (m, i) {
    var y = 32 + (i % 2) * 12;
    el('line', { x1: x(m.t_ms), x2: x(m.t_ms), y1: y, y2: TOP + lanes * LANE_H, stroke: '#777', 'stroke-dasharray': '3,3' }, svg);
    var t = el('text', { x: x(m.t_ms) + 2, y: y, fill: '#444' }, svg);
    t.textContent = m.kind === 'liveness' ? 'heal all' : m.text + (m.target ? ' (' + m.target + ')' : '');
  });
  var row = 0;
  function lane(name, kind) {
    var g = el('g', { 'class': 'lane lane-' + kind, 'data-lane': name }, svg);
    var y = TOP + row * LANE_H;
    el('text', { x: 6, y: y + 15 }, g).textContent = name;
    row += 1;
    return [g, y];
  }
  for (var m = 0; m < n; m++) {
    var l = lane('n' + (m + 1), 'member'), g = l[0], y = l[1];
    story.roles.filter(function (s) { return s.member === m; }).forEach(function (s) {
      var w = Math.max(x(s.to_ms) - x(s.from_ms), 0.5);
      el('rect', { x: x(s.from_ms), y: y + 2, width: w, height: LANE_H - 4, fill: ROLE[s.role] || '#cfd8dc', 'class': 'role' }, g,
         'n' + (m + 1) + ' ' + s.role + ' term ' + s.term + ' from ' + secs(s.from_ms) + ' to ' + secs(s.to_ms));
      if (w > 24) el('text', { x: x(s.from_ms) + 3, y: y + 15, fill: s.role === 'Leader' ? '#fff' : '#000' }, g).textContent = s.role[0] + s.term;
    });
    story.gaps.filter(function (s) { return s.member === m; }).forEach(function (s) {
      el('rect', { x: x(s.from_ms), y: y + 2, width: Math.max(x(s.to_ms) - x(s.from_ms), 0.5), height: LANE_H - 4, fill: '#eee', stroke: '#555', 'stroke-dasharray': '2,2', 'class': 'gap' }, g,
         'n' + (m + 1) + ' ' + s.kind + ' from ' + secs(s.from_ms) + ' to ' + secs(s.to_ms));
    });
  }
  function who(i) { return i === n ? 'client' : 'n' + (i + 1); }
  pairs.forEach(function (k) {
    var ab = k.split('-').map(Number), l = lane(who(ab[0]) + '\u2013' + who(ab[1]), 'link'), g = l[0], y = l[1];
    el('line', { x1: LABEL_W, x2: LABEL_W + PLOT_W, y1: y + 11, y2: y + 11, stroke: '#bbb' }, g);
    story.cuts.filter(function (c) { return Math.min(c.from, c.to) === ab[0] && Math.max(c.from, c.to) === ab[1]; }).forEach(function (c) {
      el('rect', { x: x(c.from_ms), y: y + 8, width: Math.max(x(c.to_ms) - x(c.from_ms), 0.5), height: 6, fill: '#c62828', 'class': 'cut' }, g,
         who(c.from) + ' to ' + who(c.to) + ' cut from ' + secs(c.from_ms) + ' to ' + secs(c.to_ms));
    });
  });
  clients.forEach(function (c) {
    var l = lane('client c' + c, 'client'), g = l[0], y = l[1];
    story.ops.filter(function (o) { return o.client === c; }).forEach(function (o) {
      el('rect', { x: x(o.from_ms), y: y + (o.write ? 4 : 12), width: Math.max(x(o.to_ms) - x(o.from_ms), 1), height: 6, fill: STATUS[o.status], 'class': 'op op-' + o.status }, g,
         (o.write ? 'write ' : 'read ') + o.key + ' ' + o.status + ' (' + secs(o.from_ms) + ' to ' + secs(o.to_ms) + ')');
    });
  });
  ctls.forEach(function (c) {
    var l = lane('controller c' + (c + 1), 'controller'), g = l[0], y = l[1];
    story.holdings.filter(function (h) { return h.controller === c; }).forEach(function (h) {
      el('rect', { x: x(h.from_ms), y: y + 3, width: Math.max(x(h.to_ms) - x(h.from_ms), 0.5), height: LANE_H - 6, fill: '#7e57c2', 'class': 'holding' }, g,
         'c' + (c + 1) + ' believes it leads from ' + secs(h.from_ms) + ' to ' + secs(h.to_ms));
    });
  });
  var bottom = TOP + row * LANE_H, step = story.end_ms > 20000 ? 5000 : 1000;
  for (var t = 0; t <= story.end_ms; t += step) {
    el('line', { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4, stroke: '#000' }, svg);
    el('text', { x: x(t), y: bottom + 15, 'text-anchor': 'middle' }, svg).textContent = (t / 1000) + 's';
  }
  var v = story.first_violation;
  if (v && v[0] !== null) {
    el('line', { x1: x(v[0]), x2: x(v[0]), y1: TOP, y2: bottom, stroke: '#d50000', 'stroke-width': 2, 'class': 'violation' }, svg, v[1]);
  }
  var verdict = document.getElementById('verdict');
  verdict.textContent = v ? 'first violation' + (v[0] !== null ? ' at ' + secs(v[0]) : '') + ': ' + v[1] : 'no violations';
  verdict.className = v ? 'bad' : 'good';
  document.body.setAttribute('data-lanes', String(row));
})();
"#;

/// Renders the page.
pub fn html(story: &Story, title: &str, description: &[String]) -> anyhow::Result<String> {
    // `</` inside the inline JSON would end the script element early.
    let json = serde_json::to_string(story)?.replace("</", "<\\/");
    let roles: serde_json::Map<String, serde_json::Value> = ROLE_COLOURS
        .iter()
        .map(|(r, c)| (r.to_string(), serde_json::Value::from(*c)))
        .collect();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let text = esc(&narrate::narrate(story, title, description));
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; color: #222; }}
#errors {{ color: #d50000; white-space: pre; }}
.good {{ color: #2e7d32; }} .bad {{ color: #d50000; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: 0.8em; font-size: 12px; overflow-x: auto; }}
.key span {{ display: inline-block; width: 12px; height: 10px; margin: 0 4px 0 12px; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{desc}</p>
<div id="errors"></div>
<p id="verdict"></p>
<p class="key">members:<span style="background:#2e7d32"></span>leader<span style="background:#f9a825"></span>candidate<span style="background:#90caf9"></span>follower<span style="background:#eee;border:1px dashed #555"></span>crashed / paused
&nbsp; links:<span style="background:#c62828"></span>cut
&nbsp; clients:<span style="background:#43a047"></span>ok<span style="background:#e53935"></span>failed<span style="background:#ffb300"></span>unknown
&nbsp; controllers:<span style="background:#7e57c2"></span>believes it leads</p>
<div id="picture"></div>
<h2>Narration</h2>
<pre id="narration">{text}</pre>
<script type="application/json" id="story">{json}</script>
<script type="application/json" id="roles">{roles}</script>
<script>{SCRIPT}</script>
</body></html>
"#,
        title = esc(title),
        desc = esc(&description.join(" ")),
        roles = serde_json::Value::Object(roles),
    ))
}
