use super::*;

fn ev(key: &str, rev: i64) -> Watched {
    (key.to_string(), rev, false)
}

/// Revisions 2..=6: one event each, two at 4.
fn committed() -> Committed {
    Committed::of(
        &[
            ev("a", 2),
            ev("b", 3),
            ev("a", 4),
            ev("b", 4),
            ev("a", 5),
            ev("c", 6),
        ],
        6,
    )
}

fn start(start_revision: i64) -> Seen {
    Seen::Start {
        member: 0,
        start_revision,
    }
}

fn events(header: i64, evs: &[Watched]) -> Seen {
    Seen::Events {
        header,
        events: evs.to_vec(),
    }
}

fn verdict(log: Vec<Seen>) -> Option<String> {
    check(&committed(), &[log]).into_iter().next()
}

fn fired(log: Vec<Seen>, guarantee: &str) {
    let v = verdict(log).expect("a violation");
    assert!(v.contains(&format!(": {guarantee}:")), "{v}");
}

#[test]
fn a_whole_history_with_resumes_and_progress_passes() {
    // Goal: what a correct member sends (catch-up in one response, one revision per response
    // after, a progress, a resume on another member from the last revision + 1) is clean.
    let log = vec![
        start(1),
        events(3, &[ev("a", 2), ev("b", 3)]),
        Seen::Progress { header: 3 },
        events(4, &[ev("a", 4), ev("b", 4)]),
        start(5),
        events(6, &[ev("a", 5)]),
        events(6, &[ev("c", 6)]),
        start(3),
        Seen::Compacted {
            compact_revision: 4,
        },
        start(4),
        events(6, &[ev("a", 4), ev("b", 4), ev("a", 5), ev("c", 6)]),
    ];
    assert_eq!(verdict(log), None);
}

#[test]
fn each_broken_guarantee_is_named() {
    // Goal: every way of breaking a guarantee is reported under that guarantee's name.
    fired(
        vec![start(1), events(3, &[ev("b", 3), ev("a", 2)])],
        "ordered",
    );
    fired(
        vec![
            start(1),
            events(5, &[ev("a", 2)]),
            Seen::Progress { header: 4 },
        ],
        "ordered",
    );
    fired(
        vec![start(2), events(2, &[ev("a", 2)]), events(2, &[ev("a", 2)])],
        "unique",
    );
    fired(
        vec![start(4), events(4, &[ev("a", 4)]), events(4, &[ev("b", 4)])],
        "atomic",
    );
    fired(
        vec![
            start(2),
            events(2, &[ev("a", 2)]),
            events(4, &[ev("a", 4), ev("b", 4)]),
        ],
        "reliable",
    );
    fired(
        vec![start(3), events(4, &[ev("a", 4), ev("b", 4)])],
        "resumable",
    );
    fired(
        vec![
            start(2),
            Seen::Progress { header: 4 },
            events(4, &[ev("a", 2)]),
        ],
        "bookmarkable",
    );
    fired(
        vec![
            start(4),
            Seen::Compacted {
                compact_revision: 4,
            },
        ],
        "compaction",
    );
}

#[test]
fn revisions_in_a_hole_are_not_judged() {
    // Goal: where the reference lost history (compacted before it was recorded), a stream
    // starting there is not blamed for events the checker cannot know.
    let c = Committed::of(&[ev("c", 6)], 6);
    let log = vec![start(7), events(8, &[])];
    assert!(check(&c, &[log]).is_empty());
    let beyond = vec![start(6), events(7, &[ev("c", 6)]), events(9, &[ev("d", 9)])];
    assert!(
        check(&c, &[beyond]).is_empty(),
        "revision 9 is past the reference"
    );
}
