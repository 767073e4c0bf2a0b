//! The integration tests: one binary, one module per topic.

mod differential;
mod embedded;
mod client_crate;
mod etcdctl;
mod failover;
mod procs;
