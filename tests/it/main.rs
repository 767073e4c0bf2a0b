//! The integration tests: one binary, one module per topic.

mod client_crate;
mod differential;
mod embedded;
mod etcdctl;
mod failover;
mod http;
mod procs;
mod quota;
mod scenarios;
mod sim;
mod tls;
