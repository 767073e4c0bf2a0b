//! The simulator in CI: fixed seeds stay clean on 3 and 5 members, every planted bug is caught
//! by the checker that targets it, and one seed gives one trace in two separate processes.

use std::process::Command;

use quorum::sim::verdict::Checker;

/// Runs one seed in its own process; returns (exit success, the final summary line).
fn run(args: &[&str]) -> (bool, String) {
    let (ok, summary, _) = run_full(args);
    (ok, summary)
}

/// Runs one seed in its own process; returns (exit success, the final summary line, all of
/// stdout).
fn run_full(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["sim", "run", "--no-shrink"])
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("quorum sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let last = text.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("seed="), "summary line missing:\n{text}");
    if !out.status.success() && !last.contains("violations=0") {
        eprintln!(
            "{}",
            text.lines()
                .filter(|l| l.starts_with("VIOLATION"))
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    (out.status.success(), last, text)
}

fn trace(summary: &str) -> String {
    summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("trace="))
        .expect("trace= in the summary")
        .to_string()
}

#[test]
fn one_seed_gives_one_trace_in_two_processes() {
    // Goal: a run is a pure function of its seed, byte for byte.
    let a = run(&["--seed", "7", "--duration", "10"]);
    let b = run(&["--seed", "7", "--duration", "10"]);
    assert_eq!(trace(&a.1), trace(&b.1));
    let c = run(&["--seed", "8", "--duration", "10"]);
    assert_ne!(
        trace(&a.1),
        trace(&c.1),
        "different seeds take different paths"
    );
}

#[test]
fn a_sweep_worker_gives_each_seed_the_trace_of_its_own_process() {
    // Goal: a failing seed found by a sweep replays with the command the sweep prints. A sweep's
    // worker runs seed after seed; run one after another in one process, seed 6 after seed 1
    // took another path (tokio numbers tasks process-wide), so each run is forked.
    use std::io::Write;
    let mut worker = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["sim", "worker", "--nodes", "3", "--duration", "10"])
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("quorum sim worker starts");
    let seeds = [1, 6];
    let mut input = worker.stdin.take().unwrap();
    for seed in seeds {
        writeln!(input, "{seed}").unwrap();
    }
    drop(input);
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let summaries: Vec<&str> = text.lines().filter(|l| l.starts_with("seed=")).collect();
    let ends: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("END-OF-RUN"))
        .collect();
    assert_eq!(ends, ["END-OF-RUN 0"; 2], "{text}");
    assert_eq!(summaries.len(), seeds.len(), "{text}");
    for (seed, in_worker) in seeds.iter().zip(summaries) {
        let (_, own) = run(&["--seed", &seed.to_string(), "--duration", "10"]);
        assert_eq!(trace(in_worker), trace(&own), "seed {seed}");
    }
}

#[test]
fn fixed_seeds_on_three_members_find_no_violation() {
    // Goal: partitions, crashes, power loss, delays, clock skew and pauses never break the
    // checked guarantees.
    for seed in 1..=8 {
        let (ok, summary) = run(&["--seed", &seed.to_string(), "--duration", "15"]);
        assert!(ok, "{summary}");
    }
}

#[test]
fn fixed_seeds_on_five_members_find_no_violation() {
    // Goal: the same with five members (two may fail).
    for seed in 1..=4 {
        let (ok, summary) = run(&[
            "--seed",
            &seed.to_string(),
            "--nodes",
            "5",
            "--duration",
            "15",
        ]);
        assert!(ok, "{summary}");
    }
}

#[test]
fn fixed_seeds_with_membership_changes_find_no_violation() {
    // Goal: learners added and promoted, voters removed and replaced, leadership moved and a
    // data dir lost, among the random faults, on 3 and 5 members: no checker fires.
    for (nodes, seeds) in [("3", 1..=3), ("5", 1..=2)] {
        for seed in seeds {
            let (ok, summary, text) = run_full(&[
                "--seed",
                &seed.to_string(),
                "--nodes",
                nodes,
                "--duration",
                "20",
                "--membership",
            ]);
            assert!(ok, "{summary}");
            assert!(
                text.lines().any(|l| l.contains(" member n")),
                "seed {seed} on {nodes}: no membership change succeeded:\n{text}"
            );
        }
    }
}

/// Runs `plant` on each seed in turn until `checker`, the checker that targets it, reports a
/// violation. A run failing only through other checkers does not count: those may be tripping
/// over consequences of the bug, which proves nothing about the targeted checker.
fn caught(plant: &str, checker: Checker, seeds: &[u64]) {
    caught_naming(plant, checker, "", seeds, 15);
}

/// `caught`, where the violation must also contain `text` (the watch checker names the broken
/// guarantee), over runs of `duration_secs`.
fn caught_naming(plant: &str, checker: Checker, text: &str, seeds: &[u64], duration_secs: u64) {
    let tag = format!("VIOLATION [{}] ", checker.name());
    let mut others = Vec::new();
    for seed in seeds {
        let args = [
            "--seed",
            &seed.to_string(),
            "--duration",
            &duration_secs.to_string(),
            "--plant",
            plant,
        ];
        let (ok, summary, out) = run_full(&args);
        if out.lines().any(|l| l.starts_with(&tag) && l.contains(text)) {
            assert!(!ok, "a violation must fail the run: {summary}");
            return;
        }
        let mut fired: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("VIOLATION ["))
            .filter_map(|l| l.split(']').next())
            .collect();
        fired.dedup();
        others.push(format!("seed {seed}: {fired:?}"));
    }
    panic!(
        "planted bug {plant} went unnoticed by the {} checker ({text:?}) on seeds {seeds:?}; \
         checkers that fired: {others:?}",
        checker.name()
    );
}

#[test]
fn planted_stale_read_is_caught() {
    // Goal: serving linearizable reads without the read index breaks linearizability.
    caught("stale-read", Checker::Linearizability, &[2, 3, 5]);
}

#[test]
fn planted_ack_before_sync_is_caught() {
    // Goal: acknowledging unsynced log entries lets a power loss take back entries a member
    // had reported committed, which the log checker sees as committed entries changing.
    caught("ack-before-sync", Checker::Log, &[19, 25, 29]);
}

#[test]
fn planted_lease_without_leadership_is_caught() {
    // Goal: a member expiring leases by its own clock revokes leases a client kept alive.
    caught("lease-without-leadership", Checker::Lease, &[1, 2, 3]);
}

#[test]
fn planted_drop_watch_event_is_caught_as_unreliable() {
    // Goal: a watch stream with a gap between two delivered events breaks reliability.
    caught_naming(
        "drop-watch-event",
        Checker::Watch,
        ": reliable:",
        &[2, 1],
        10,
    );
}

#[test]
fn planted_split_watch_revision_is_caught_as_not_atomic() {
    // Goal: a two-event revision sent as two responses breaks atomicity.
    caught_naming(
        "split-watch-revision",
        Checker::Watch,
        ": atomic:",
        &[1, 2],
        10,
    );
}

#[test]
fn planted_duplicate_watch_event_is_caught_as_not_unique() {
    // Goal: a response sent twice breaks uniqueness.
    caught_naming(
        "duplicate-watch-event",
        Checker::Watch,
        ": unique:",
        &[2, 1],
        10,
    );
}

#[test]
fn planted_reorder_watch_events_is_caught_as_unordered() {
    // Goal: catch-up history sent newest first breaks ordering.
    caught_naming(
        "reorder-watch-events",
        Checker::Watch,
        ": ordered:",
        &[1, 2],
        10,
    );
}

#[test]
fn planted_skip_watch_resume_is_caught_as_not_resumable() {
    // Goal: a watch resumed from revision R that begins after R's event breaks resumability.
    caught_naming(
        "skip-watch-resume",
        Checker::Watch,
        ": resumable:",
        &[1, 2],
        10,
    );
}

#[test]
fn planted_early_watch_progress_is_caught_as_not_bookmarkable() {
    // Goal: a progress notification before the catch-up it claims breaks bookmarkability.
    caught_naming(
        "early-watch-progress",
        Checker::Watch,
        ": bookmarkable:",
        &[1, 2],
        10,
    );
}

#[test]
fn a_paused_leader_is_replaced_and_steps_down_on_resume() {
    // Goal: the GC-pause scenario: while the leader is stopped (messages held, clock still) a
    // new leader is elected; on resume the old one follows the new term; nothing is violated.
    let schedule = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim/schedules/paused-leader.txt"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args([
            "sim",
            "run",
            "--no-shrink",
            "--seed",
            "1",
            "--schedule",
            schedule,
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("quorum sim runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let ms = |l: &str| -> u64 {
        l.strip_prefix("t=")
            .and_then(|r| r.split("ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let paused = lines
        .iter()
        .find(|l| l.contains("apply pause-leader"))
        .expect("the pause applies");
    let old = lines
        .iter()
        .rev()
        .find(|l| l.contains(" leads term ") && ms(l) < ms(paused))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("a leader before the pause");
    let new_leader = lines
        .iter()
        .find(|l| l.contains(" leads term ") && ms(l) > ms(paused) && ms(l) < 10_000)
        .expect("a new leader is elected during the pause");
    assert!(!new_leader.contains(old), "{new_leader}");
    assert!(
        lines
            .iter()
            .any(|l| ms(l) >= 10_000 && l.contains(&format!("{old} is Follower"))),
        "the old leader steps down after resuming:\n{text}"
    );
}

#[test]
fn a_sharded_sweep_merges_into_one_list_of_failing_seeds_with_replays() {
    // Goal: what a CI matrix does with a long sweep: two shards, two summaries, one merge that
    // fails and names the failing seed with its replay command. Method: the stale-read plant,
    // which seed 2 is known to expose, over seeds 2..4.
    let dir = tempfile::tempdir().unwrap();
    let sweep = |shard: &str| {
        let summary = dir.path().join(format!("{}.json", shard.replace('/', "-")));
        let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
            .args(["sim", "sweep", "--seeds", "2..4", "--duration", "15"])
            .args(["--plant", "stale-read", "--jobs", "1", "--shard", shard])
            .arg("--summary")
            .arg(&summary)
            .current_dir(dir.path())
            .output()
            .expect("quorum sim sweep runs");
        assert!(summary.exists(), "{}", String::from_utf8_lossy(&out.stderr));
        summary
    };
    let (a, b) = (sweep("0/2"), sweep("1/2"));
    let merged = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["sim", "merge"])
        .args([&a, &b])
        .output()
        .expect("quorum sim merge runs");
    let text = String::from_utf8_lossy(&merged.stdout);
    assert!(
        !merged.status.success(),
        "a failing seed fails the merge:\n{text}"
    );
    assert!(text.starts_with("shards=2 runs=2 failing="), "{text}");
    assert!(
        text.contains("replay: quorum sim run --seed 2 --nodes 3 --duration 15 --plant stale-read"),
        "{text}"
    );
}
