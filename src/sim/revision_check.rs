//! The revision never goes back: an operation invoked after another completed answers with a
//! header revision at least as high, whichever member either went to and whatever crashed,
//! lost power or compacted in between (etcd #17780 was a revision that fell after a crash
//! during compaction). Serializable reads are exempt: a member may serve them stale.
//!
//! Cost: a sort of the completed operations and one pass, O(n log n).

use crate::sim::history::{Call, Op};

/// Every operation whose revision is below one a completed-before operation already returned.
pub fn check(ops: &[Op]) -> Vec<String> {
    let judged: Vec<&Op> = ops
        .iter()
        .filter(|o| o.call != Call::SerializableGet && o.complete_ms.is_some())
        .filter(|o| o.revision.is_some_and(|r| r > 0))
        .collect();
    let mut by_completion: Vec<&Op> = judged.clone();
    by_completion.sort_by_key(|o| o.complete_ms);
    let mut by_invocation = judged;
    by_invocation.sort_by_key(|o| o.invoke_ms);
    let mut violations = Vec::new();
    // The highest revision among operations completed strictly before the current invocation.
    let mut done = 0;
    let mut highest: Option<&Op> = None;
    for op in by_invocation {
        while done < by_completion.len() && by_completion[done].complete_ms < Some(op.invoke_ms) {
            let c = by_completion[done];
            if highest.is_none_or(|h| c.revision > h.revision) {
                highest = Some(c);
            }
            done += 1;
        }
        let Some(h) = highest else { continue };
        if op.revision < h.revision {
            violations.push(format!(
                "c{} {:?} on {} invoked at {}ms answered revision {}, below revision {} that \
                 c{}'s {:?} on {} completed with at {}ms",
                op.client,
                op.call,
                op.key,
                op.invoke_ms,
                op.revision.unwrap_or_default(),
                h.revision.unwrap_or_default(),
                h.client,
                h.call,
                h.key,
                h.complete_ms.unwrap_or_default(),
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::history::Outcome;

    fn op(invoke_ms: u64, complete_ms: u64, revision: i64, call: Call) -> Op {
        Op {
            client: 0,
            key: "k".into(),
            call,
            invoke_ms,
            complete_ms: Some(complete_ms),
            failed: false,
            outcome: Some(Outcome::Written),
            revision: Some(revision),
        }
    }

    #[test]
    fn a_revision_below_an_earlier_completed_one_is_reported() {
        // Goal: real-time order binds revisions; overlap and serializable reads do not.
        let clean = [
            op(0, 10, 5, Call::Get),
            op(5, 20, 4, Call::Get),
            op(11, 30, 5, Call::Delete),
            op(40, 50, 2, Call::SerializableGet),
        ];
        assert!(check(&clean).is_empty());
        let back = [op(0, 10, 5, Call::Get), op(11, 30, 4, Call::Get)];
        let v = check(&back);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].contains("answered revision 4, below revision 5"),
            "{v:?}"
        );
    }
}
