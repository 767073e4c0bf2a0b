//! The operator: membership changes as an etcd admin makes them, one job at a time. A job is a
//! runbook of steps: calls to the member APIs (MemberAdd, MemberRemove, MemberPromote,
//! MoveLeader), which the admin task in the client host (`admin`) makes and retries on another
//! member until one succeeds, and host steps (stop a host, wipe its disk, start it with
//! `--initial-cluster-state existing`), which the nemesis carries out on the simulation the
//! moment the call before them succeeded.
//!
//! The harness and the client host share one `Desk`: the harness posts a call, the admin task
//! answers it. The harness reads the answer after a step and logs it with the simulated time
//! of that step, so the trace stays a pure function of the seed. When the safety phase ends the
//! desk closes: a call not yet done is abandoned, and so is the rest of its job.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::sim::run::name;
use crate::sim::schedule::Fault;

/// One call to the member APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// MemberAdd of host `member`'s peer URL, as a learner.
    AddLearner(usize),
    Remove(usize),
    Promote(usize),
    MoveLeader(usize),
    /// Maintenance.Snapshot, as `etcdctl snapshot save` makes it; the file lands on the desk.
    Backup,
}

impl Call {
    /// The member the call is about (any member can take it; a backup is about none).
    pub fn member(&self) -> Option<usize> {
        match self {
            Call::AddLearner(m) | Call::Remove(m) | Call::Promote(m) | Call::MoveLeader(m) => {
                Some(*m)
            }
            Call::Backup => None,
        }
    }

    /// The request as an admin would name it: `MemberPromote n4`.
    pub fn request_text(&self) -> String {
        let m = self.member().map(name).unwrap_or_default();
        match self {
            Call::AddLearner(_) => format!("MemberAdd {m} as a learner"),
            Call::Remove(_) => format!("MemberRemove {m}"),
            Call::Promote(_) => format!("MemberPromote {m}"),
            Call::MoveLeader(_) => format!("MoveLeader to {m}"),
            Call::Backup => "Snapshot (etcdctl snapshot save)".to_string(),
        }
    }

    /// What the log says when the call succeeded: `member n4 added as a learner`. The story
    /// reads these words back to follow the voters.
    fn done_text(&self) -> String {
        let m = self.member().map(name).unwrap_or_default();
        match self {
            Call::AddLearner(_) => format!("member {m} added as a learner"),
            Call::Remove(_) => format!("member {m} removed"),
            Call::Promote(_) => format!("member {m} promoted to voter"),
            Call::MoveLeader(_) => format!("member {m} handed the leadership"),
            Call::Backup => "backup saved".to_string(),
        }
    }
}

/// What the nemesis does to a host for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStep {
    /// The host's process stops (a removed member is shut down).
    Stop(usize),
    /// The host's data dir is wiped.
    Wipe(usize),
    /// The host starts with `--initial-cluster-state existing` (on whatever disk it has).
    Start(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Call(usize),
    Host(HostStep),
}

/// What the harness and the admin task share.
#[derive(Debug, Default)]
pub struct Desk {
    /// The call posted and not yet answered, with its number.
    pub posted: Option<(u64, Call)>,
    /// Answers: (call number, the member that took it, failed attempts before it).
    pub answers: Vec<(u64, usize, usize)>,
    /// Failed attempts, as log lines without a time, for the harness to stamp and log.
    pub notes: Vec<String>,
    /// The safety phase is over: the admin stops trying.
    pub closed: bool,
    /// The member the client host makes its final reads through: the first initial member
    /// still in the cluster (a removed member answers nothing).
    pub final_reader: usize,
    /// The last backup taken (`backup`): a snapshot file as `etcdctl snapshot save` writes it.
    pub backup: Option<Vec<u8>>,
}

pub type DeskLink = Rc<RefCell<Desk>>;

pub struct Operator {
    desk: DeskLink,
    /// Jobs not finished, the running one first: (the schedule's words, steps left).
    jobs: VecDeque<(String, VecDeque<Step>)>,
    /// The calls of all jobs, by number.
    calls: Vec<Call>,
    /// The call of the running job that is posted, if any.
    waiting: Option<u64>,
}

impl Operator {
    pub fn new(desk: DeskLink) -> Operator {
        Operator {
            desk,
            jobs: VecDeque::new(),
            calls: Vec::new(),
            waiting: None,
        }
    }

    pub fn desk(&self) -> DeskLink {
        self.desk.clone()
    }

    /// Queues the runbook of an operator fault (see `Fault::is_operator`).
    pub fn submit(&mut self, fault: &Fault, text: String) {
        let mut call = |c: Call| {
            self.calls.push(c);
            Step::Call(self.calls.len() - 1)
        };
        let steps: Vec<Step> = match fault {
            Fault::AddLearner(n) => vec![
                Step::Host(HostStep::Stop(*n)),
                Step::Host(HostStep::Wipe(*n)),
                call(Call::AddLearner(*n)),
                Step::Host(HostStep::Start(*n)),
            ],
            Fault::Promote(n) => vec![call(Call::Promote(*n))],
            Fault::Remove(n) => vec![call(Call::Remove(*n)), Step::Host(HostStep::Stop(*n))],
            Fault::Replace(n) => vec![
                call(Call::Remove(*n)),
                Step::Host(HostStep::Stop(*n)),
                Step::Host(HostStep::Wipe(*n)),
                call(Call::AddLearner(*n)),
                Step::Host(HostStep::Start(*n)),
                call(Call::Promote(*n)),
            ],
            Fault::MoveLeader(n) => vec![call(Call::MoveLeader(*n))],
            Fault::Backup => vec![call(Call::Backup)],
            _ => return,
        };
        self.jobs.push_back((text, steps.into()));
    }

    /// Reads the admin's answers and notes, logs them at `now`, and moves the running jobs
    /// on: returns the host steps now due, in order, for the nemesis to carry out at once.
    pub fn poll(&mut self, now: u64, log: &mut Vec<String>) -> Vec<HostStep> {
        let mut hosts = Vec::new();
        let mut desk = self.desk.borrow_mut();
        log.extend(
            desk.notes
                .drain(..)
                .map(|n| format!("t={now}ms operator: {n}")),
        );
        let answers = std::mem::take(&mut desk.answers);
        for (number, via, failed) in answers {
            if self.waiting != Some(number) {
                continue;
            }
            self.waiting = None;
            let call = &self.calls[number as usize];
            let retries = match failed {
                0 => String::new(),
                n => format!(", after {n} failed attempts"),
            };
            log.push(format!(
                "t={now}ms {} (via {}{retries})",
                call.done_text(),
                name(via)
            ));
            if let Some((_, steps)) = self.jobs.front_mut() {
                steps.pop_front();
            }
        }
        if desk.closed {
            return hosts;
        }
        while let Some((text, steps)) = self.jobs.front_mut() {
            match steps.front().copied() {
                None => {
                    self.jobs.pop_front();
                }
                Some(Step::Host(h)) => {
                    hosts.push(h);
                    steps.pop_front();
                }
                Some(Step::Call(number)) => {
                    if self.waiting.is_none() {
                        let call = self.calls[number].clone();
                        log.push(format!(
                            "t={now}ms operator: {text}: {}",
                            call.request_text()
                        ));
                        desk.posted = Some((number as u64, call));
                        self.waiting = Some(number as u64);
                    }
                    break;
                }
            }
        }
        hosts
    }

    /// Ends the operator's work when the safety phase ends; logs what was left undone.
    pub fn close(&mut self, now: u64, log: &mut Vec<String>) {
        let mut desk = self.desk.borrow_mut();
        desk.closed = true;
        desk.posted = None;
        for (text, steps) in self.jobs.drain(..) {
            if !steps.is_empty() {
                log.push(format!(
                    "t={now}ms operator gives up: {text} unfinished when the safety phase ended"
                ));
            }
        }
        self.waiting = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_runs_its_runbook_in_order_one_call_at_a_time() {
        // Goal: host steps happen only after the call before them succeeded, and a job's next
        // call is posted only once the previous one was answered.
        let desk = DeskLink::default();
        let mut op = Operator::new(desk.clone());
        let mut log = Vec::new();
        op.submit(&Fault::Replace(1), "replace 2".into());
        op.submit(&Fault::MoveLeader(0), "move-leader 1".into());
        assert!(op.poll(10, &mut log).is_empty());
        assert_eq!(desk.borrow().posted, Some((0, Call::Remove(1))));
        assert!(
            op.poll(12, &mut log).is_empty(),
            "nothing before the answer"
        );
        desk.borrow_mut().answers.push((0, 2, 1));
        let hosts = op.poll(14, &mut log);
        assert_eq!(hosts, [HostStep::Stop(1), HostStep::Wipe(1)]);
        assert!(log.contains(&"t=14ms member n2 removed (via n3, after 1 failed attempts)".into()));
        assert_eq!(desk.borrow().posted, Some((1, Call::AddLearner(1))));
        desk.borrow_mut().answers.push((1, 0, 0));
        assert_eq!(op.poll(16, &mut log), [HostStep::Start(1)]);
        assert_eq!(desk.borrow().posted, Some((2, Call::Promote(1))));
        desk.borrow_mut().answers.push((2, 0, 0));
        assert!(op.poll(18, &mut log).is_empty());
        assert_eq!(desk.borrow().posted, Some((3, Call::MoveLeader(0))));
        op.close(20, &mut log);
        assert!(log
            .last()
            .unwrap()
            .contains("gives up: move-leader 1 unfinished"));
    }
}
