//! Watch: fan-out of applied events to watchers, catch-up from history, cancellation.

mod hub;

pub use hub::WatchHub;
