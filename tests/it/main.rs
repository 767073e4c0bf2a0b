//! The integration tests: one binary, one module per topic.

mod differential;
mod embedded;
mod failover;
mod procs;
