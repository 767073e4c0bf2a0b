//! The simple-token table: which user each issued token names, and when it was last used.
//!
//! Not replicated state: every member fills its own table as it applies Authenticate (so a
//! token works on every member that has applied it) and forgets it after `ttl` without use,
//! by its own clock. A restart empties it, as etcd's; clients re-authenticate on "invalid auth
//! token". Expiry reads the member's clock and so lives here, outside the deterministic apply.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::LocalInstant;

struct Entry {
    user: String,
    last_used: LocalInstant,
}

#[derive(Default)]
pub struct TokenTable {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl TokenTable {
    /// Records a token issued at `now`.
    pub fn issue(&self, token: String, user: String, now: LocalInstant) {
        self.lock().insert(
            token,
            Entry {
                user,
                last_used: now,
            },
        );
    }

    /// The user a live token names; using it extends its life, as etcd's simple tokens.
    pub fn lookup(&self, token: &str, now: LocalInstant, ttl: Duration) -> Option<String> {
        let mut entries = self.lock();
        let entry = entries.get_mut(token)?;
        if now.saturating_duration_since(entry.last_used) >= ttl {
            entries.remove(token);
            return None;
        }
        entry.last_used = now;
        Some(entry.user.clone())
    }

    /// Drops tokens unused for `ttl`; called on each Authenticate, so the table stays bounded
    /// by the tokens issued within one `ttl`.
    pub fn sweep(&self, now: LocalInstant, ttl: Duration) {
        self.lock()
            .retain(|_, e| now.saturating_duration_since(e.last_used) < ttl);
    }

    pub fn forget_user(&self, user: &str) {
        self.lock().retain(|_, e| e.user != user);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // The table holds no invariant a panicking holder could break halfway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
