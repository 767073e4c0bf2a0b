//! After Raft's log is purged, hands the pages glibc's malloc holds free back to the kernel.
//!
//! A purge follows a snapshot: the buffers of log entries it drops (see `slab`) and the
//! key-map nodes the snapshot's copy-on-write clone released sit among live chunks in malloc's
//! arenas, so free() keeps them, and only `malloc_trim` gives the whole free pages among them
//! back. At a
//! million keys that was 17-37 MB of a loaded member's ~530 MB resident (`gdb` calling
//! `malloc_trim(0)` on each member after `scripts/scale.sh`'s load). It walks every arena
//! under its lock, for milliseconds at that size, so it runs on a thread of its own, one at a
//! time, off the log's write path.

use std::sync::atomic::{AtomicBool, Ordering};

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Trims on a short-lived thread, unless a trim is already running.
pub(super) fn soon() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            trim();
            RUNNING.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        RUNNING.store(false, Ordering::Release);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it works on malloc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
