//! Watch: the hub that fans applied events out, and the per-stream session that serves a
//! client's Watch stream (create, cancel, progress, catch-up from history).

mod hub;
pub mod session;

pub use hub::{RevisionEvents, Slot, Slots, WatchHub};
pub use session::{run_session, History};
