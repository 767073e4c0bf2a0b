//! Named scenarios (`quorum sim scenario run NAME`), each run in a fresh process: the
//! narration's key facts are asserted (who leads, whether writes went on, what the checkers
//! concluded), the text is the same byte for byte on a second run, and the HTML timeline renders
//! in a real headless browser.

use std::process::Command;

use super::browser::{chromium_available, dump_dom};

/// Runs a scenario in its own process; returns (exit success, stdout).
fn scenario(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["sim", "scenario"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("quorum sim scenario runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// The narration line of the fault `what`, and the phase summary that follows it.
fn phase<'a>(text: &'a str, what: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains(&format!("fault: {what}")))
        .unwrap_or_else(|| panic!("no fault {what:?} in:\n{text}"));
    let summary = lines[i + 1..]
        .iter()
        .find(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains("s–"))
        .unwrap_or_else(|| panic!("no summary after {what:?} in:\n{text}"));
    (lines[i], summary)
}

/// How many writes the summary counts as ok within its stretch.
fn writes_ok(summary: &str) -> usize {
    summary
        .split("writes ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn scenario_list_names_every_schedule_with_its_description() {
    // Goal: `list` shows each file of sim/schedules with the first line of its description.
    let (ok, text) = scenario(&["list"]);
    assert!(ok, "{text}");
    for name in [
        "split-2-2",
        "leader-crash",
        "five-lose-two-then-three",
        "paused-leader",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
}

#[test]
fn split_2_2_elects_no_leader_and_stops_writes() {
    // Goal: with four members cut 2|2 neither side reaches the majority of 3: no leader is
    // elected during the split and no write commits; after healing writes go on.
    let (ok, text) = scenario(&["run", "split-2-2"]);
    assert!(ok, "{text}");
    let (fault, during) = phase(&text, "partition 1,2|3,4");
    assert!(
        fault.contains("2 of 4 reachable: below the majority of 3"),
        "{fault}"
    );
    assert!(during.contains("no leader elected"), "{during}");
    assert_eq!(writes_ok(during), 0, "{during}");
    let (_, healed) = phase(&text, "heal");
    assert!(writes_ok(healed) > 0, "{healed}");
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn five_members_survive_losing_two_but_not_three() {
    // Goal: 3 of 5 is a majority (writes continue); 2 of 5 is not (writes stop).
    let (ok, text) = scenario(&["run", "five-lose-two-then-three"]);
    assert!(ok, "{text}");
    let (two, with_two) = phase(&text, "crash 2");
    assert!(two.contains("3 of 5 reachable: majority 3 holds"), "{two}");
    // The leader keeps leading with two members down, and writes go on.
    assert!(with_two.contains("leading at its end: n"), "{with_two}");
    assert!(writes_ok(with_two) > 0, "{with_two}");
    let (three, with_three) = phase(&text, "crash 3");
    assert!(
        three.contains("2 of 5 reachable: below the majority of 3"),
        "{three}"
    );
    assert_eq!(writes_ok(with_three), 0, "{with_three}");
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn leader_crash_fails_over_to_a_new_leader() {
    // Goal: after the leader crashes the other two elect a new leader in a higher term.
    let (ok, text) = scenario(&["run", "leader-crash"]);
    assert!(ok, "{text}");
    let (fault, during) = phase(&text, "crash-leader");
    let old = fault
        .split("crash-leader (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the crashed leader is named");
    assert!(
        fault.contains("2 of 3 reachable: majority 2 holds"),
        "{fault}"
    );
    assert!(during.contains("elected: n"), "{during}");
    assert!(!during.contains(&format!("elected: {old}")), "{during}");
}

#[test]
fn majority_lost_stops_writes_until_the_members_return() {
    // Goal: one of three is no majority: no write commits until the others restart.
    let (ok, text) = scenario(&["run", "majority-lost"]);
    assert!(ok, "{text}");
    let (fault, during) = phase(&text, "crash 3");
    assert!(
        fault.contains("1 of 3 reachable: below the majority of 2"),
        "{fault}"
    );
    assert_eq!(writes_ok(during), 0, "{during}");
    let (_, back) = phase(&text, "restart-all");
    assert!(writes_ok(back) > 0, "{back}");
}

#[test]
fn minority_partition_lets_writes_go_on() {
    // Goal: cutting one follower off leaves a majority: writes continue, no new election.
    let (ok, text) = scenario(&["run", "minority-partition"]);
    assert!(ok, "{text}");
    let (fault, during) = phase(&text, "isolate-follower");
    assert!(
        fault.contains("2 of 3 reachable: majority 2 holds"),
        "{fault}"
    );
    assert!(writes_ok(during) > 0, "{during}");
    assert!(during.contains("no leader elected"), "{during}");
}

#[test]
fn disruptive_rejoin_does_not_disturb_the_leader() {
    // Goal: the cut-off follower's return causes no election (no term inflation here).
    let (ok, text) = scenario(&["run", "disruptive-rejoin"]);
    assert!(ok, "{text}");
    let (_, after) = phase(&text, "heal");
    assert!(after.contains("no leader elected"), "{after}");
    assert!(!text.contains("steps down"), "{text}");
}

#[test]
fn power_loss_of_every_member_loses_no_acknowledged_write() {
    // Goal: all members lose unsynced data at once; the linearizability checker (which sees
    // a lost acknowledged write as a violation) finds nothing, and a leader returns.
    let (ok, text) = scenario(&["run", "power-loss-all"]);
    assert!(ok, "{text}");
    let (fault, _) = phase(&text, "power-loss-all");
    assert!(fault.contains("0 of 3 reachable"), "{fault}");
    let (_, back) = phase(&text, "restart-all");
    assert!(back.contains("elected: n"), "{back}");
    assert!(text.contains("linearizability  ok"), "{text}");
}

#[test]
fn isolated_leader_serves_no_stale_read_but_the_planted_bug_does() {
    // Goal: the isolated old leader still thinks it leads; with the read index nothing stale
    // is served; with reads served locally (--plant stale-read) the linearizability checker
    // says so in the narration.
    let (ok, text) = scenario(&["run", "isolated-leader"]);
    assert!(ok, "{text}");
    let (fault, _) = phase(&text, "isolate-leader");
    assert!(fault.contains("still believes it leads"), "{fault}");
    // What the cut-off leader appended alone was never committed, and the new term replaces it
    // once the heal lets the new leader reach it.
    let old = fault
        .split("isolate-leader (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the fault names the leader it cut off");
    let replaced = text
        .lines()
        .find(|l| l.contains("never committed, replaced by term"))
        .unwrap_or_else(|| panic!("no replaced entry narrated:\n{text}"));
    assert!(
        replaced.contains(&format!("held by {old} (1 of 3)")),
        "{replaced}"
    );
    let (heal, _) = phase(&text, "heal");
    let at = |l: &str| l.split_whitespace().next().map(str::to_string);
    let secs = |l: &str| {
        at(l)
            .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no time on {l}"))
    };
    assert!(
        secs(replaced) >= secs(heal),
        "replaced only after the heal: {replaced}"
    );
    let (ok, planted) = scenario(&["run", "isolated-leader", "--plant", "stale-read"]);
    assert!(!ok, "the planted bug must fail the run:\n{planted}");
    assert!(planted.contains("linearizability  VIOLATED"), "{planted}");
}

#[test]
fn one_scenario_tells_one_story_byte_for_byte() {
    // Goal: same scenario, same seed, same narration (and trace), in two processes.
    let (_, a) = scenario(&["run", "leader-crash"]);
    let (_, b) = scenario(&["run", "leader-crash"]);
    assert_eq!(a, b);
    let (_, json) = scenario(&["run", "leader-crash", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    assert_eq!(v["nodes"], 3);
    assert!(v["moments"].as_array().is_some_and(|m| !m.is_empty()));
}

#[test]
fn timeline_renders_its_lanes_in_a_headless_browser() {
    // Goal: the HTML timeline is self-contained and its script builds a lane per member with
    // no script error; the SVG is written too.
    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("t.html");
    let svg = dir.path().join("t.svg");
    let (ok, text) = scenario(&[
        "run",
        "split-2-2",
        "--timeline",
        html.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let page = std::fs::read_to_string(&html).expect("timeline written");
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "no network"
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    if !chromium_available() {
        return;
    }
    let dom = dump_dom(&format!("file://{}", html.display()));
    assert!(
        dom.contains("data-lanes=\""),
        "the script did not finish:\n{dom}"
    );
    // The page's error handler writes into #errors; the handler's own source names "script
    // error", so look at the element, not the text.
    assert!(
        dom.contains("<div id=\"errors\"></div>"),
        "script errors:\n{dom}"
    );
    for lane in ["n1", "n2", "n3", "n4"] {
        assert!(
            dom.contains(&format!("data-lane=\"{lane}\"")),
            "lane {lane} missing"
        );
    }
    assert!(dom.contains("class=\"cut\""), "cut links drawn");
}

#[test]
fn a_gc_paused_controller_and_its_successor_both_believe_they_lead() {
    // Goal: the HA guide's control-plane election (lease 15 s, renew 10 s, retry 2 s) under an
    // 18 s pause of the holder: the other controller takes over once the lease expires, and
    // the paused one, on waking, still believes it leads until its renewal fails: an overlap
    // that only a fencing token makes safe.
    let (ok, text) = scenario(&["run", "elector-gc-pause"]);
    assert!(ok, "{text}");
    let started = |who: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{who} starts leading")))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok())
    };
    let (first, second) = match (started("c1"), started("c2")) {
        (Some(a), Some(b)) if a < b => (a, b),
        (Some(a), Some(b)) => (b, a),
        other => panic!("both controllers lead at some point: {other:?}\n{text}"),
    };
    assert!(first < 12.0, "one leads before the pause at 12 s:\n{text}");
    assert!(
        second > 12.0 + 10.0,
        "the other takes over only after the paused holder's lease could expire:\n{text}"
    );
    assert!(
        text.contains("TWO controllers believed they led at once"),
        "{text}"
    );
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn a_leader_with_a_fast_clock_expires_a_lease_early_within_the_clock_bound() {
    // Goal: lease safety holds only up to the clock-rate error, as in etcd: with the leader's
    // clock at 2x, a 5 s lease whose keep-alives stop is revoked in under 5 s of true time, but
    // no sooner than TTL / rate, which the lease checker allows.
    let (ok, text) = scenario(&["run", "lease-clock-skew"]);
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(" revoked (seen on "))
        .unwrap_or_else(|| panic!("no revoke narrated:\n{text}"));
    let revoked_ms = line
        .split_whitespace()
        .next()
        .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok())
        .map(|s| (s * 1000.0).round() as u64)
        .expect("the revoke's time");
    let number_after = |marker: &str| -> u64 {
        line.split(marker)
            .nth(1)
            .and_then(|r| r.split("ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {marker:?} in {line}"))
    };
    let last_keep_alive_ms = number_after("was sent at ");
    let earliest_ms = number_after("earliest allowed revoke is ");
    assert!(
        revoked_ms < last_keep_alive_ms + 5_000,
        "the fast clock expires it early: {line}"
    );
    assert!(revoked_ms >= earliest_ms, "{line}");
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn a_partitioned_controller_steps_down_before_the_other_takes_over() {
    // Goal: the HA guide's control-plane election (lease 15 s, renew 10 s, retry 2 s) when the
    // member the holder talks through is cut off at 12 s: the holder steps down once its renew
    // deadline passes, the other controller takes over through a member of the majority only
    // after that, the two never overlap, and the majority side keeps taking writes meanwhile.
    let (ok, text) = scenario(&["run", "elector-partition"]);
    assert!(ok, "{text}");
    let at = |needle: &str| -> (f64, &str) {
        let line = text
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"));
        let t = line
            .split_whitespace()
            .next()
            .and_then(|t| t.trim_end_matches('s').parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no time on {line}"));
        (t, line)
    };
    let (fault, _) = phase(&text, "isolate-holder");
    let via = fault
        .split(" via ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the fault names the member the holder talks through");
    let holder = fault
        .split("isolate-holder (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("the fault names the holder");
    let other = if holder == "c1" { "c2" } else { "c1" };

    let (first_start, _) = at(&format!("{holder} starts leading via {via}"));
    assert!(first_start < 12.0, "it leads before the cut:\n{text}");
    let (stop, stop_line) = at(&format!("{holder} stops leading"));
    assert!(stop_line.contains("renew deadline"), "{stop_line}");
    assert!(
        stop > 12.0 + 8.0,
        "renewals fail from 12 s, so it steps down near the 10 s deadline, not at once:\n{text}"
    );
    let (take_over, take_line) = at(&format!("{other} starts leading via "));
    assert!(
        !take_line.contains(&format!("via {via} ")),
        "the successor talks through the majority: {take_line}"
    );
    assert!(
        take_over > stop,
        "the old holder steps down before the successor starts:\n{text}"
    );
    assert!(
        text.contains("never did two controllers believe they led at once"),
        "{text}"
    );
    let (_, cut_summary) = phase(&text, "isolate-holder");
    assert!(
        writes_ok(cut_summary) > 0,
        "the majority keeps writing: {cut_summary}"
    );
    assert!(text.contains("verdict: no violations"), "{text}");
}

/// Runs scenario `name` clean (it must pass) and with `plant` (the checker named `checker` must
/// report a violation): a regression scenario that would catch its bug again. Returns the clean
/// run's text.
fn regression(name: &str, plant: &str, checker: &str) -> String {
    let (ok, clean) = scenario(&["run", name]);
    assert!(ok, "{name} fails clean:\n{clean}");
    let (ok, text) = scenario(&["run", name, "--plant", plant]);
    assert!(!ok, "{name} passes with {plant} planted:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with(checker) && l.contains("VIOLATED")),
        "{name} with {plant}: the {checker} checker is silent:\n{text}"
    );
    clean
}

#[test]
fn etcd_14370_a_single_member_keeps_acknowledged_writes_through_power_loss() {
    // Goal: etcd #14370 stays fixed: one member, power lost twice, no acknowledged write lost;
    // acknowledging before the sync (planted) takes writes back, and revisions with them.
    regression(
        "etcd-14370-single-member-power-loss",
        "etcd-14370",
        "revision",
    );
}

#[test]
fn etcd_15271_a_snapshot_install_never_sends_a_watch_back_in_time() {
    // Goal: etcd #15271 stays fixed: a follower cut off until it needs a snapshot serves its
    // watchers in order on heal; replaying revisions they had (planted) is caught.
    regression(
        "etcd-15271-watch-after-snapshot-install",
        "etcd-15271",
        "watch",
    );
}

#[test]
fn etcd_19179_a_watch_from_the_compact_revision_sees_its_delete() {
    // Goal: etcd #19179 stays fixed: a watch started at exactly the compact revision gets the
    // DELETE made there; the 3.4.23 compaction (planted) loses it.
    regression(
        "etcd-19179-watch-from-compact-revision",
        "etcd-19179",
        "watch",
    );
}

#[test]
fn etcd_17780_a_compacted_head_survives_a_crash_of_every_member() {
    // Goal: etcd #17780 stays fixed: with a compacted DELETE at the head and every member
    // restarted from a snapshot, reads still answer the head revision; taking the revision from
    // the newest stored version (planted) makes it fall.
    let text = regression(
        "etcd-17780-compaction-at-head-crash",
        "etcd-17780",
        "revision",
    );
    assert!(
        text.contains("the clients hold their writes until 9.000s"),
        "{text}"
    );
    assert!(text.contains("down n1,n2,n3: no member running"), "{text}");
}

#[test]
fn a_cluster_restored_from_its_backup_serves_every_acknowledged_write() {
    // Goal: a snapshot saved through the Maintenance API restores every member after all data
    // dirs are lost: a leader is elected, no acknowledged write is lost, the revision does not
    // fall (the head is a compacted DELETE), and writes go on. A restore that took its revision
    // from the newest stored version (the etcd-17780 plant) is caught.
    let text = regression("backup-restore", "etcd-17780", "revision");
    let (restore, after) = phase(&text, "restore-all");
    assert!(
        restore.contains("every data dir lost; each member restored from the")
            && restore.contains(" keys, 1 lease"),
        "{restore}"
    );
    let restored = &text[text.find("restore-all (").unwrap_or(0)..];
    assert!(
        restored.contains("follower in term 0") && restored.contains("stands for term 1"),
        "the restored cluster starts its terms afresh:\n{text}"
    );
    assert!(
        writes_ok(after) > 0,
        "writes go on after the restore: {after}"
    );
}

#[test]
fn disk_faults_cost_no_acknowledged_write() {
    // Goal: a slow follower disk does not stop writes; a torn power cut loses nothing that was
    // acknowledged; a leader whose disk fails stops (the others elect a new leader and keep
    // writing) and, power-cycled with a working disk, rejoins with the same history.
    let (ok, text) = scenario(&["run", "disk-faults"]);
    assert!(ok, "{text}");
    let (_, slow) = phase(&text, "slow-disk 1 40");
    assert!(
        writes_ok(slow) > 0,
        "writes go on beside a slow disk: {slow}"
    );
    let (fault, after) = phase(&text, "disk-fail-leader");
    let failed = fault
        .split("disk-fail-leader (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the fault names the leader it hit");
    assert!(fault.contains(&format!("down {failed}")), "{fault}");
    let from = text.find(fault).expect("fault line in text");
    let until = text
        .find("fault: restart-all")
        .expect("restart-all in text");
    let elected = text[from..until]
        .lines()
        .find(|l| l.contains("is elected leader of term"))
        .unwrap_or_else(|| panic!("no new leader after the disk failed:\n{text}"));
    assert!(
        !elected.contains(&format!("{failed} is elected")),
        "{elected}"
    );
    assert!(writes_ok(after) > 0, "the new leader takes writes: {after}");
    assert!(text.contains("linearizability  ok"), "{text}");
    assert!(text.contains("convergence      ok"), "{text}");
    assert!(text.contains("verdict: no violations"), "{text}");
}

/// The narration line that contains `needle`, or a panic that shows the whole text.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
}

/// The term a narration line names last ("... leader of term 5").
fn term_of(line: &str) -> u64 {
    line.rsplit("term ")
        .next()
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no term on {line}"))
}

/// The simulated time at the start of a narration line, in seconds.
fn at_secs(line: &str) -> f64 {
    line.split_whitespace()
        .next()
        .and_then(|t| t.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no time on {line}"))
}

#[test]
fn membership_changes_under_faults_keep_one_majority_and_every_write() {
    // Goal: add a learner while a follower is cut off, promote it, crash the leader, hand the
    // leadership to the newcomer, replace a member while another is crashed, remove a voter:
    // the quorum arithmetic follows the voters, every step succeeds, and the checkers (one
    // leader per term, linearizability, convergence) stay clean.
    let (ok, text) = scenario(&["run", "membership-under-faults"]);
    assert!(ok, "{text}");
    assert!(text.contains("spare n4 (no member until added)"), "{text}");
    let (cut, _) = phase(&text, "isolate-follower");
    assert!(cut.contains("2 of 3 reachable: majority 2 holds"), "{cut}");
    // A learner has no vote: the majority stays 2 of 3 while it joins.
    let joined = line_with(&text, "n4 joins as a learner (voters 3: majority 2)");
    let promoted = line_with(&text, "n4 promoted to voter (voters 4: majority 3)");
    assert!(at_secs(joined) < at_secs(promoted), "{joined}\n{promoted}");
    let (crash, after_crash) = phase(&text, "crash-leader");
    assert!(
        crash.contains("3 of 4 reachable: majority 3 holds"),
        "{crash}"
    );
    assert!(after_crash.contains("elected: n"), "{after_crash}");
    let handed = line_with(&text, "n4 takes over the leadership");
    assert!(at_secs(handed) >= 9.5, "{handed}");
    // The replace runbook, in order, while n1 is down.
    let (crash1, _) = phase(&text, "crash 1");
    assert!(crash1.contains("down n1"), "{crash1}");
    let steps = [
        "n3 removed from the cluster (voters 3: majority 2)",
        "n3 data dir wiped",
        "n3 joins as a learner (voters 3: majority 2)",
        "n3 promoted to voter (voters 4: majority 3)",
    ];
    let times: Vec<f64> = steps.iter().map(|s| at_secs(line_with(&text, s))).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}\n{text}");
    // n3 came back on an empty disk while n1, which had heard from it, was down: the rejoin
    // guard waits for every peer (n1 may be the one that counted n3's votes), so n3 takes
    // part, and is promoted, only once n1 is back and has applied n3's removal.
    let (restart1, _) = phase(&text, "restart 1");
    assert!(
        times[3] > at_secs(restart1),
        "the promotion waits for n1:\n{text}"
    );
    let removed = line_with(&text, "n2 removed from the cluster (voters 3: majority 2)");
    assert!(at_secs(removed) >= 17.0, "{removed}");
    for checker in ["raft", "log", "linearizability", "convergence", "liveness"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(checker) && l.contains(" ok: ")),
            "{checker} not ok:\n{text}"
        );
    }
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn a_lost_data_dir_is_replaced_and_serves_every_write_again() {
    // Goal: member 2 loses its data dir; restarted on the empty disk with its old id it
    // refuses to start (a peer has heard from it), and the replace runbook brings it back as a
    // voter that converges with the others, with no acknowledged write lost.
    let (ok, text) = scenario(&["run", "lost-data-dir"]);
    assert!(ok, "{text}");
    let (lost, _) = phase(&text, "lose-data 2");
    assert!(lost.contains("down n2"), "{lost}");
    assert!(
        lost.contains("2 of 3 reachable: majority 2 holds"),
        "{lost}"
    );
    let refused = line_with(&text, "n2 refused to start:");
    assert!(at_secs(refused) >= 3.0, "{refused}");
    let steps = [
        "n2 removed from the cluster (voters 2: majority 2)",
        "n2 data dir wiped",
        "n2 joins as a learner (voters 2: majority 2)",
        "n2 promoted to voter (voters 3: majority 2)",
    ];
    let times: Vec<f64> = steps.iter().map(|s| at_secs(line_with(&text, s))).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}\n{text}");
    assert!(times[0] >= at_secs(refused), "{text}");
    assert!(text.contains("linearizability  ok"), "{text}");
    assert!(text.contains("convergence      ok"), "{text}");
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn a_learner_is_promoted_only_once_it_caught_up() {
    // Goal: etcd's rule that a learner is promoted only in sync with the leader: while the
    // learner is cut off the leader refuses, the operator retries, and the promotion goes
    // through only after the heal, naming the refusal it met.
    let (ok, text) = scenario(&["run", "learner-catches-up"]);
    assert!(ok, "{text}");
    let (heal, _) = phase(&text, "heal");
    let promoted = line_with(&text, "n4 promoted to voter (voters 4: majority 3)");
    assert!(at_secs(promoted) >= at_secs(heal), "{promoted}\n{text}");
    assert!(
        promoted.contains("which is in sync with leader"),
        "{promoted}"
    );
    assert!(text.contains("verdict: no violations"), "{text}");
}

#[test]
fn raft_figure_8_an_earlier_terms_entry_is_replaced_or_committed_only_with_the_new_term() {
    // Goal: the paper's figure 8 as close as openraft allows. Act 1: the term-2 entry that cut-off
    // leader n2 shared only with n4 is never committed and, after the heal, is replaced by the
    // term of n3, elected by the majority meanwhile. Act 2: the entries of that term n3 shared
    // only with n4 before it crashed are committed by n3, leader again in a later term, only
    // together with an entry of the new term, not by counting their copies.
    let (ok, text) = scenario(&["run", "raft-figure-8"]);
    assert!(ok, "{text}");
    let (cut, _) = phase(&text, "partition 2,4|1,3,5");
    assert!(
        cut.contains("n2 still believes it leads term 2 but cannot reach a majority"),
        "{cut}"
    );
    // The terms depend on how the votes fall (a split vote costs one), so they are read from
    // the story: n3's first term, in which it leads the majority side, and its next.
    let (heal, _) = phase(&text, "heal");
    let elected = text
        .lines()
        .find(|l| {
            l.contains("n3 is elected leader of term")
                && (at_secs(cut)..at_secs(heal)).contains(&at_secs(l))
        })
        .unwrap_or_else(|| panic!("n3 is not elected while n2 is cut off:\n{text}"));
    let term = term_of(elected);
    assert!(term > 2, "{elected}");
    let replaced = line_with(
        &text,
        "of term 2, held by n2,n4 (2 of 5) and never committed",
    );
    assert!(
        replaced.contains(&format!("replaced by term {term}'s")),
        "{replaced}"
    );
    assert!(at_secs(elected) < at_secs(heal), "{elected}\n{heal}");
    assert!(at_secs(replaced) >= at_secs(heal), "{replaced}");
    let (down, _) = phase(&text, "crash 5");
    assert!(
        down.contains(&format!(
            "n3 still believes it leads term {term} but cannot reach a majority"
        )),
        "{down}"
    );
    let (back, _) = phase(&text, "restart 3");
    let reelected = text[text.find(back).unwrap_or(0)..]
        .lines()
        .find(|l| l.contains("is elected leader of term"))
        .unwrap_or_else(|| panic!("no leader after the restart:\n{text}"));
    assert!(reelected.contains("n3 is elected"), "{reelected}");
    let next = term_of(reelected);
    assert!(next > term, "{reelected}");
    let commit = line_with(&text, &format!("n3 leader of term {next} commits entries"));
    assert!(
        commit.contains("of earlier terms only together with entry")
            && commit.contains("of its own term"),
        "{commit}"
    );
    assert!(at_secs(back) <= at_secs(reelected), "{reelected}");
    assert!(at_secs(reelected) <= at_secs(commit), "{commit}");
    // Nothing else was replaced: the term-4 entries of act 2 survived.
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("never committed, replaced by"))
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("log              ok"), "{text}");
    assert!(text.contains("verdict: no violations"), "{text}");
}
