//! Criterion benches of the MVCC store: the apply path (put, txn) and the read path (range).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use quorum::proto::etcdserverpb::{PutRequest, RangeRequest};
use quorum::raft::codec::{encode_into, encoded_len};
use quorum::store::{LeaseIndex, Store};

struct NoLeases;
impl LeaseIndex for NoLeases {
    fn lease_exists(&self, _: i64) -> bool {
        false
    }
}

fn filled(keys: usize) -> Store {
    let mut s = Store::new();
    for i in 0..keys {
        let req = PutRequest {
            key: format!("key/{i:06}").into_bytes(),
            value: vec![b'v'; 256],
            ..Default::default()
        };
        s.put(&req, &NoLeases).expect("put into a fresh store");
    }
    s
}

fn bench(c: &mut Criterion) {
    c.bench_function("put 256B into 10k keys", |b| {
        b.iter_batched(
            || filled(10_000),
            |mut s| {
                for i in 0..100 {
                    let req = PutRequest {
                        key: format!("key/{i:06}").into_bytes(),
                        value: vec![b'w'; 256],
                        ..Default::default()
                    };
                    s.put(&req, &NoLeases).expect("put");
                }
                s
            },
            BatchSize::LargeInput,
        )
    });
    let s = filled(10_000);
    c.bench_function("range prefix limit 100 of 10k", |b| {
        let req = RangeRequest {
            key: b"key/".to_vec(),
            range_end: b"key0".to_vec(),
            limit: 100,
            ..Default::default()
        };
        b.iter(|| s.range(&req).expect("range"))
    });
    c.bench_function("get one key of 10k", |b| {
        let req = RangeRequest {
            key: b"key/005000".to_vec(),
            ..Default::default()
        };
        b.iter(|| s.range(&req).expect("range"))
    });
    // What a snapshot of the store costs per key: its length, then its bytes, as
    // `build_snapshot` writes them (to a sink here, so no disk is timed).
    let big = filled(100_000);
    c.bench_function("snapshot encode 100k keys", |b| {
        b.iter(|| {
            let len = encoded_len(&big).expect("length");
            encode_into(&mut std::io::sink(), &big).expect("encode");
            len
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
