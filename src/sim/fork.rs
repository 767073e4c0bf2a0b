//! A run in a forked child: how a sweep's worker gives every seed the process state a fresh
//! `quorum sim run` starts from, without paying for a new process (exec, loading, and
//! openraft's histogram tables, built once in the worker and shared by every child).

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::panic::AssertUnwindSafe;
use std::process::ExitStatus;

/// Runs `run` in a child forked from this process and returns how the child ended: exit code 0
/// when `run` returned true, 1 when it returned false or panicked; a signal when it was killed.
///
/// Call it only while this process has one thread: the child is a copy of the calling thread
/// alone, so a lock another thread held at the fork would stay locked in the child forever.
pub fn in_child(run: impl FnOnce() -> bool) -> io::Result<ExitStatus> {
    io::stdout().flush()?;
    // SAFETY: `fork` has no memory-safety preconditions of its own; what makes the child sound
    // is the caller's promise above (no other thread, so no lock or allocator state mid-change).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let passed = std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
            println!("the run panicked");
            false
        });
        let _ = io::stdout().flush();
        // SAFETY: ends the child at once; `_exit` skips the exit handlers, which belong to the
        // parent's process (and so does everything the child inherited from it).
        unsafe { libc::_exit(if passed { 0 } else { 1 }) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child forked above and writes its status into a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_reports_how_it_ended_and_changes_nothing_here() {
        // Goal: a result, a failure and a panic in the child come back as exit codes, and the
        // child's writes stay in the child.
        // The test harness runs tests on threads of its own; this child touches no lock that
        // another test thread could hold (no allocation before its exit, no shared state).
        let mut touched = false;
        let status = in_child(|| {
            touched = true;
            true
        })
        .unwrap();
        assert!(status.success());
        assert!(!touched);
        assert_eq!(in_child(|| false).unwrap().code(), Some(1));
    }
}
