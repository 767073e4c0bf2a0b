//! Client operations as recorded: what was asked, when (simulated ms), and what came back.
//! A request that timed out or failed is recorded with no completion: it may have taken effect
//! at any later time, or never (an etcd error such as "request timed out" proves nothing).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Put(String),
    Delete,
    Get,
    /// A serializable read: served from the member's own state, possibly stale, so not part
    /// of the linearizability check; checked against the committed history instead.
    SerializableGet,
    /// Compare-and-set: if the value is `expect`, write `new`.
    Cas {
        expect: String,
        new: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Written,
    Read(Option<String>),
    /// A serializable read's value and the revision (response header) it was read at.
    ReadAt {
        value: Option<String>,
        revision: i64,
    },
    Cas {
        succeeded: bool,
        seen: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub call: Call,
    pub invoke_ms: u64,
    /// `None`: no success came back, so the outcome is unknown to the checkers.
    pub complete_ms: Option<u64>,
    /// An error answer came back (no leader, unavailable, ...) rather than no answer at all.
    /// The checkers still treat it as unknown (an etcd error proves nothing); the narration
    /// tells the two apart, since a learner sees them differently.
    pub failed: bool,
    pub outcome: Option<Outcome>,
    /// The response header's revision, when an answer came back (`revision_check`).
    pub revision: Option<i64>,
}
