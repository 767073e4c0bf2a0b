//! The integration tests: one binary, one module per topic.

mod admin;
mod auth;
mod browser;
mod client_crate;
mod differential;
mod embedded;
mod etcdctl;
mod failover;
mod hostile;
mod http;
mod procs;
mod quota;
mod scenarios;
mod sim;
mod snapshot;
mod tls;
mod watch_half_close;
