//! What the MVCC store costs in memory per key, counted by the allocator rather than guessed
//! from RSS: `cargo run --release --example store_memory -- 1000000`. Loads N keys shaped as
//! `quorum bench` writes them (`bench/<client>/<i>`, 256-byte values), then reloads the store
//! from its snapshot encoding, as a restarted member does, and reports live heap bytes per key
//! against the bytes of keys and values themselves, and how long the encoding takes each way.
//! Each allocation is also counted as glibc's malloc holds it (an 8-byte header, rounded up to
//! 16 bytes, 32 at least), since that, not the bytes asked for, is what a member's RSS pays.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use quorum::proto::etcdserverpb::PutRequest;
use quorum::store::{LeaseIndex, Store};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// What glibc's malloc takes for a request of `size` bytes on 64-bit Linux.
fn held(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(held(layout.size()), Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(held(layout.size()), Ordering::Relaxed);
        COUNT.fetch_sub(1, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(held(new_size), Ordering::Relaxed);
        HELD.fetch_sub(held(layout.size()), Ordering::Relaxed);
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct NoLeases;

impl LeaseIndex for NoLeases {
    fn lease_exists(&self, _id: i64) -> bool {
        false
    }
}

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn per_key(bytes: usize, n: usize) -> String {
    format!("{:.0} B/key ({} MB)", bytes as f64 / n as f64, bytes >> 20)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the first argument is a key count"))
        .unwrap_or(100_000);
    let base = live();
    let (held_base, count_base) = (HELD.load(Ordering::Relaxed), COUNT.load(Ordering::Relaxed));
    let mut store = Store::new();
    let mut data = 0;
    for i in 0..n {
        let req = PutRequest {
            key: format!("bench/{}/{}", i % 100, i / 100).into_bytes(),
            value: vec![b'v'; 256],
            ..Default::default()
        };
        data += req.key.len() + req.value.len();
        store.put(&req, &NoLeases).expect("a plain put applies");
    }
    println!("keys and values: {}", per_key(data, n));
    println!("store after {n} puts: {}", per_key(live() - base, n));
    println!(
        "  as malloc holds it: {}, {:.2} allocations a key",
        per_key(HELD.load(Ordering::Relaxed) - held_base, n),
        (COUNT.load(Ordering::Relaxed) - count_base) as f64 / n as f64
    );

    let started = Instant::now();
    let encoded = bincode::serialize(&store).expect("the store encodes");
    println!(
        "snapshot encoding: {}, encoded in {} ms",
        per_key(encoded.len(), n),
        started.elapsed().as_millis()
    );
    drop(store);
    let base = live();
    let (held_base, count_base) = (HELD.load(Ordering::Relaxed), COUNT.load(Ordering::Relaxed));
    let started = Instant::now();
    let loaded: Store = bincode::deserialize(&encoded).expect("the store decodes");
    println!("decoded in {} ms", started.elapsed().as_millis());
    println!(
        "store loaded from a snapshot: {}",
        per_key(live() - base, n)
    );
    println!(
        "  as malloc holds it: {}, {:.2} allocations a key",
        per_key(HELD.load(Ordering::Relaxed) - held_base, n),
        (COUNT.load(Ordering::Relaxed) - count_base) as f64 / n as f64
    );
    drop(encoded);
    drop(loaded);
    println!("peak heap: {} MB", PEAK.load(Ordering::Relaxed) >> 20);
}
