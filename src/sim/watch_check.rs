//! The watch guarantees as etcd states them, checked on every stream every watcher opened,
//! against the committed events (`committed`):
//!
//! - ordered: events arrive in revision order, and a stream's header revision never goes back;
//! - unique: no event arrives twice;
//! - atomic: a revision's events arrive in one response, never split;
//! - reliable: no committed event is skipped between two delivered ones;
//! - resumable: a stream opened at revision R (a resume from the last revision known + 1, on
//!   any member) begins with the first committed event at or after R;
//! - bookmarkable: a progress notification at revision P comes only after every event up to P
//!   was delivered, and no event at or below P follows it.
//!
//! A compaction cancel is checked too: etcd cancels only a start below the compact revision.
//! Revisions whose events the reference does not know (a hole) are not judged. The first
//! violation per watcher is reported, which is what a reader needs; the cost is linear in the
//! responses recorded.

use crate::sim::committed::Committed;
use crate::sim::watchers::Seen;
use crate::sim::workload::Watched;

/// Checks every watcher's log; each finding names its guarantee first (`ordered: ...`).
pub fn check(committed: &Committed, logs: &[Vec<Seen>]) -> Vec<String> {
    logs.iter()
        .enumerate()
        .filter_map(|(w, log)| check_watcher(committed, log).map(|v| format!("watcher {w} {v}")))
        .collect()
}

fn check_watcher(committed: &Committed, log: &[Seen]) -> Option<String> {
    let mut stream: Option<Stream> = None;
    let mut n = 0;
    for seen in log {
        match seen {
            Seen::Start {
                member,
                start_revision,
            } => {
                n += 1;
                stream = Some(Stream::new(*member, *start_revision));
            }
            other => {
                let s = stream.as_mut()?;
                if let Err(why) = s.take(committed, other) {
                    return Some(format!(
                        "stream {n} (n{} from revision {}): {why}",
                        s.member + 1,
                        s.start
                    ));
                }
            }
        }
    }
    None
}

/// One stream's progress through the committed history.
struct Stream {
    member: usize,
    start: i64,
    /// The revision of the last event delivered, and how many of its events came.
    last: Option<(i64, usize)>,
    /// Every committed event below this revision was delivered (or announced by progress).
    covered: i64,
    /// The highest header revision seen.
    header: i64,
    /// The highest progress notification's revision.
    progress: i64,
}

impl Stream {
    fn new(member: usize, start: i64) -> Stream {
        Stream {
            member,
            start,
            last: None,
            covered: start,
            header: 0,
            progress: 0,
        }
    }

    fn take(&mut self, committed: &Committed, seen: &Seen) -> Result<(), String> {
        match seen {
            Seen::Start { .. } => Ok(()),
            Seen::Compacted { compact_revision } => {
                if self.start >= *compact_revision {
                    return Err(format!(
                        "compaction: canceled as compacted at {compact_revision}, but a start \
                         at or after the compact revision must be served"
                    ));
                }
                Ok(())
            }
            Seen::Progress { header } => {
                self.header_at(*header)?;
                if let Some(missed) = committed.first_in(self.covered, *header) {
                    return Err(format!(
                        "bookmarkable: progress at revision {header} before revision {missed} \
                         was delivered"
                    ));
                }
                self.progress = self.progress.max(*header);
                self.covered = self.covered.max(header + 1);
                Ok(())
            }
            Seen::Events { header, events } => {
                self.header_at(*header)?;
                let groups = by_revision(events);
                if let Some(w) = groups.windows(2).find(|w| w[1].0 < w[0].0) {
                    return Err(format!(
                        "ordered: revision {} arrived after revision {} in one response",
                        w[1].0, w[0].0
                    ));
                }
                let count = groups.len();
                for (i, (rev, evs)) in groups.into_iter().enumerate() {
                    self.revision(committed, rev, evs, i == 0, i + 1 == count)?;
                }
                Ok(())
            }
        }
    }

    fn header_at(&mut self, header: i64) -> Result<(), String> {
        if header < self.header {
            return Err(format!(
                "ordered: header revision went back from {} to {header}",
                self.header
            ));
        }
        self.header = header;
        Ok(())
    }

    /// One revision's events within one response; `first`/`last`: its place in the response.
    fn revision(
        &mut self,
        committed: &Committed,
        rev: i64,
        evs: &[Watched],
        first: bool,
        last: bool,
    ) -> Result<(), String> {
        let want = committed.at(rev);
        let known = committed.known(rev);
        if let Some((prev, got)) = self.last {
            if rev < prev {
                return Err(format!(
                    "ordered: revision {rev} arrived after revision {prev}"
                ));
            }
            if rev == prev {
                // Only a response boundary can separate a revision from itself.
                if known && got + evs.len() <= want.len() && first {
                    return Err(format!(
                        "atomic: revision {rev} split across responses ({got} events, then {})",
                        evs.len()
                    ));
                }
                return Err(format!("unique: revision {rev} delivered again"));
            }
        }
        if rev <= self.progress {
            return Err(format!(
                "bookmarkable: revision {rev} arrived after a progress notification at {}",
                self.progress
            ));
        }
        if let Some(missed) = committed.first_in(self.covered, rev - 1) {
            return Err(if self.last.is_none() && self.progress == 0 {
                format!(
                    "resumable: the stream began at revision {rev}, but revision {missed} \
                     (committed: {:?}) comes first",
                    committed.at(missed)
                )
            } else {
                format!(
                    "reliable: revision {missed} (committed: {:?}) skipped before revision {rev}",
                    committed.at(missed)
                )
            });
        }
        if known {
            // A response may end inside a revision only if the next one continues it, which
            // the `rev == prev` arm above judges; otherwise the events must be the committed.
            let partial = last && evs.len() < want.len() && want.starts_with(evs);
            if evs != want && !partial {
                return Err(format!(
                    "reliable: revision {rev} delivered as {evs:?}, committed as {want:?}"
                ));
            }
        }
        self.last = Some((rev, evs.len()));
        self.covered = rev + 1;
        Ok(())
    }
}

/// A response's events cut into runs of one revision, in arrival order.
fn by_revision(events: &[Watched]) -> Vec<(i64, &[Watched])> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || events[i].1 != events[start].1 {
            out.push((events[start].1, &events[start..i]));
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests;
