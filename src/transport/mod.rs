//! How a member dials its peers: real TCP in production, a fault-injecting layer for in-process
//! clusters (and the simulator's network later) behind the same `Faults` switchboard.
//!
//! Every channel connects lazily and reconnects by itself; every call made on it is bounded by a
//! timeout at the call site, because a dead peer must cost a timeout, never a hang.

mod authority;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

pub use authority::AuthorityFix;

/// Connect attempts give up after this long, so a dead peer costs little per retry.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens a lazily-connecting channel to `url` (e.g. `http://127.0.0.1:12380`).
pub fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// Which directed links between members are cut. Shared by every member of an in-process
/// cluster so a test can partition and heal while it runs.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    cut: Arc<RwLock<BTreeSet<(u64, u64)>>>,
}

impl Faults {
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(from, to))
    }

    /// Cuts both directions between every member of `a` and every member of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut cut = self.cut.write().unwrap_or_else(|e| e.into_inner());
        for x in a {
            for y in b {
                cut.insert((*x, *y));
                cut.insert((*y, *x));
            }
        }
    }

    pub fn heal(&self) {
        self.cut.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
