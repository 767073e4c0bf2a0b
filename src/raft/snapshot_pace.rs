//! When a snapshot that Raft's policy asks for is worth writing.
//!
//! A snapshot here is the whole state, encoded and synced, so its cost grows with the key
//! count while the writes it covers do not: at a million keys, one every 10,000 entries (etcd's
//! `--snapshot-count` default) spent ~40 % of a loading member's CPU on encoding alone. etcd's
//! backend commits only what changed, so it never meets this. We keep the count as the
//! earliest point, and past it wait until the entries since the last snapshot are worth the
//! state: one entry per `STATE_BYTES_PER_ENTRY` bytes of state. With entries of a few hundred
//! bytes, writing snapshots then costs at most about 16 × what the writes themselves cost,
//! whatever the key count; the price is a longer log (in memory and in the WAL, and replayed
//! at restart), about 1/16 of the state's size at most.
//!
//! States under `SMALL_STATE_BYTES` (every test and simulated run, where a schedule may ask
//! for a snapshot after every entry) never wait: the count alone decides, as in etcd. Forced
//! snapshots (a follower that needs one) never wait either.

/// Bytes of state one log entry since the last snapshot stands for.
const STATE_BYTES_PER_ENTRY: usize = 4096;

/// Below this, a snapshot is cheap enough to write whenever the count says: where the default
/// count meets `STATE_BYTES_PER_ENTRY` (10,000 × 4 KiB, ~41 MB), so under it the default count
/// alone keeps an entry's share of snapshot writing within 4 KiB and this floor changes
/// nothing. It matters for smaller counts (tests, the simulator, a user's `--snapshot-count`),
/// whose states it spares pacing.
const SMALL_STATE_BYTES: usize =
    crate::config::DEFAULT_SNAPSHOT_EVERY_ENTRIES as usize * STATE_BYTES_PER_ENTRY;

/// Whether a policy snapshot of a state of `state_bytes` (the store's approximate size),
/// `entries_since_last` entries after the last one, is worth writing now.
pub fn worth_writing(entries_since_last: u64, state_bytes: usize) -> bool {
    state_bytes < SMALL_STATE_BYTES
        || entries_since_last >= (state_bytes / STATE_BYTES_PER_ENTRY) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_states_snapshot_at_the_count_and_large_ones_wait_for_their_share_of_log() {
        // Small states: the count alone decides, even a count of one entry.
        assert!(worth_writing(10_000, 10_000 * 300));
        assert!(worth_writing(1, 100 * 300));
        assert!(worth_writing(1, SMALL_STATE_BYTES - 1));
        assert!(!worth_writing(1, SMALL_STATE_BYTES));
        // From there on an entry never stands for more than 4 KiB of snapshot: 50 MB of
        // state waits past the default count for its ~12,200 entries.
        assert!(!worth_writing(10_000, 50_000_000));
        assert!(worth_writing(12_300, 50_000_000));
        // A million keys (~317 MB of state): 10,000 entries are not worth it, ~77,000 are.
        let big = 1_000_000 * 317;
        assert!(!worth_writing(10_000, big));
        assert!(!worth_writing(70_000, big));
        assert!(worth_writing(80_000, big));
    }
}
