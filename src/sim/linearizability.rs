//! A linearizability checker for one register per key, in the manner of Wing & Gong and
//! Porcupine: depth-first search over the orders that respect real time, memoising
//! (linearized set, register value) pairs, with a budget after which the answer is "unknown".
//!
//! An operation with no completion (timed out) may take effect at any point after its
//! invocation, or never; its output is unconstrained.

use std::collections::{BTreeMap, BTreeSet};

use crate::sim::history::{Call, Op, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order explains the history; the key and a short description.
    Violation(String),
    /// The search budget ran out.
    Unknown,
}

/// States explored per key before giving up.
pub const SEARCH_BUDGET: usize = 200_000;

type Value = Option<String>;

/// Applies `op` to `state`: the next state if the op's recorded outcome is possible there.
fn step(state: &Value, op: &Op) -> Option<Value> {
    match (&op.call, &op.outcome) {
        (Call::Put(v), _) => Some(Some(v.clone())),
        (Call::Delete, _) => Some(None),
        (Call::Get, None) => Some(state.clone()),
        (Call::Get, Some(Outcome::Read(seen))) => (seen == state).then(|| state.clone()),
        (Call::Cas { expect, new }, outcome) => {
            let holds = state.as_deref() == Some(expect.as_str());
            match outcome {
                None => Some(if holds {
                    Some(new.clone())
                } else {
                    state.clone()
                }),
                Some(Outcome::Cas { succeeded, seen }) => {
                    if *succeeded != holds {
                        return None;
                    }
                    if holds {
                        Some(Some(new.clone()))
                    } else {
                        (seen == state).then(|| state.clone())
                    }
                }
                Some(_) => None,
            }
        }
        (Call::Get, Some(_)) => None,
        // Filtered out by `check`; a stale read constrains nothing here.
        (Call::SerializableGet, _) => Some(state.clone()),
    }
}

/// Checks every key's history independently (registers do not interact).
pub fn check(ops: &[Op]) -> BTreeMap<String, Verdict> {
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.call != Call::SerializableGet) {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    by_key
        .into_iter()
        .map(|(k, ops)| {
            let v = check_register(&ops);
            (k, v)
        })
        .collect()
}

pub fn check_register(ops: &[Op]) -> Verdict {
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let complete = |i: usize| ops[i].complete_ms.unwrap_or(u64::MAX);
    let completed: Vec<usize> = (0..n).filter(|i| ops[*i].complete_ms.is_some()).collect();
    // Each frame: (linearized set, state).
    let mut stack: Vec<(Vec<u64>, Value)> = vec![(vec![0; words], None)];
    let mut seen: BTreeSet<(Vec<u64>, Value)> = BTreeSet::new();
    let is_set = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    while let Some((set, state)) = stack.pop() {
        if seen.len() > SEARCH_BUDGET {
            return Verdict::Unknown;
        }
        if !seen.insert((set.clone(), state.clone())) {
            continue;
        }
        if completed.iter().all(|i| is_set(&set, *i)) {
            return Verdict::Linearizable;
        }
        // The earliest completion among pending completed ops bounds which ops may go next.
        let horizon = completed
            .iter()
            .filter(|i| !is_set(&set, **i))
            .map(|i| complete(*i))
            .min()
            .unwrap_or(u64::MAX);
        for i in (0..n).rev() {
            if is_set(&set, i) || ops[i].invoke_ms > horizon {
                continue;
            }
            if let Some(next) = step(&state, &ops[i]) {
                let mut s = set.clone();
                s[i / 64] |= 1 << (i % 64);
                stack.push((s, next));
            }
        }
    }
    let summary = ops
        .iter()
        .map(|o| {
            format!(
                "c{} {:?} [{}..{}] -> {:?}",
                o.client,
                o.call,
                o.invoke_ms,
                o.complete_ms.map_or("?".to_string(), |c| c.to_string()),
                o.outcome
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ");
    Verdict::Violation(format!("no linearization of:\n  {summary}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, call: Call, t: (u64, Option<u64>), outcome: Option<Outcome>) -> Op {
        Op {
            client,
            key: "k".into(),
            call,
            invoke_ms: t.0,
            complete_ms: t.1,
            outcome,
            revision: None,
            failed: false,
        }
    }

    fn put(v: &str) -> Call {
        Call::Put(v.into())
    }

    fn read(v: Option<&str>) -> Option<Outcome> {
        Some(Outcome::Read(v.map(String::from)))
    }

    #[test]
    fn sequential_history_is_linearizable() {
        // Goal: the trivial case passes.
        let h = vec![
            op(0, put("a"), (0, Some(1)), Some(Outcome::Written)),
            op(1, Call::Get, (2, Some(3)), read(Some("a"))),
        ];
        assert_eq!(check_register(&h), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        // Goal: a read that starts after a write finished must see it.
        let h = vec![
            op(0, put("a"), (0, Some(1)), Some(Outcome::Written)),
            op(0, put("b"), (2, Some(3)), Some(Outcome::Written)),
            op(1, Call::Get, (4, Some(5)), read(Some("a"))),
        ];
        assert!(matches!(check_register(&h), Verdict::Violation(_)));
    }

    #[test]
    fn concurrent_ops_may_take_either_order() {
        // Goal: overlapping write and read may linearize either way.
        let h = vec![
            op(0, put("a"), (0, Some(10)), Some(Outcome::Written)),
            op(1, Call::Get, (1, Some(2)), read(None)),
            op(2, Call::Get, (3, Some(4)), read(Some("a"))),
        ];
        assert_eq!(check_register(&h), Verdict::Linearizable);
    }

    #[test]
    fn a_timed_out_write_may_apply_late_or_never() {
        // Goal: unknown outcomes are open intervals.
        let late = vec![
            op(0, put("a"), (0, None), None),
            op(1, Call::Get, (5, Some(6)), read(None)),
            op(1, Call::Get, (7, Some(8)), read(Some("a"))),
        ];
        assert_eq!(check_register(&late), Verdict::Linearizable);
        let never = vec![
            op(0, put("a"), (0, None), None),
            op(1, Call::Get, (5, Some(6)), read(None)),
        ];
        assert_eq!(check_register(&never), Verdict::Linearizable);
        // But a value can't be un-read: once seen, an older read is impossible.
        let flicker = vec![
            op(0, put("a"), (0, None), None),
            op(1, Call::Get, (5, Some(6)), read(Some("a"))),
            op(1, Call::Get, (7, Some(8)), read(None)),
        ];
        assert!(matches!(check_register(&flicker), Verdict::Violation(_)));
    }

    #[test]
    fn compare_and_set_outcomes_must_agree_with_the_value() {
        // Goal: a CAS that succeeded proves the expected value was there.
        let cas = |e: &str, n: &str| Call::Cas {
            expect: e.into(),
            new: n.into(),
        };
        let ok = vec![
            op(0, put("a"), (0, Some(1)), Some(Outcome::Written)),
            op(
                1,
                cas("a", "b"),
                (2, Some(3)),
                Some(Outcome::Cas {
                    succeeded: true,
                    seen: None,
                }),
            ),
            op(0, Call::Get, (4, Some(5)), read(Some("b"))),
        ];
        assert_eq!(check_register(&ok), Verdict::Linearizable);
        let bad = vec![
            op(0, put("a"), (0, Some(1)), Some(Outcome::Written)),
            op(
                1,
                cas("x", "b"),
                (2, Some(3)),
                Some(Outcome::Cas {
                    succeeded: true,
                    seen: None,
                }),
            ),
        ];
        assert!(matches!(check_register(&bad), Verdict::Violation(_)));
    }
}
