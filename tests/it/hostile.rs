//! Hostile and careless clients against real members over gRPC: random and mangled protobuf
//! bodies on every method, oversized and deeply nested requests, thousands of watch streams and
//! leases, and a watcher that stops reading. Each gets etcd's error or back-pressure; no member
//! panics or hangs, and well-behaved clients lose nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut};
use etcd_client::{GetOptions, WatchOptions};
use prost::Message;
use quorum::proto::etcdserverpb::{
    compare, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Status;

use super::embedded::{client, cluster};

/// Panics anywhere in this test process (the members run in it), counted by a hook.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// Sends request bodies as given and hands back response bodies undecoded.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// Methods a random body cannot turn into a cluster-wide change the test must undo
/// (membership, auth enable, leader moves) or a wait by design (Campaign, Lock).
const UNARY: &[&str] = &[
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Maintenance/Alarm",
    "/etcdserverpb.Maintenance/Hash",
    "/etcdserverpb.Maintenance/HashKV",
    "/etcdserverpb.Auth/Authenticate",
    "/v3electionpb.Election/Leader",
    "/v3lockpb.Lock/Unlock",
];

const STREAMING: &[&str] = &[
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseKeepAlive",
];

/// Valid requests to mangle: mutations of these reach deeper than random bytes do.
fn seeds() -> Vec<Vec<u8>> {
    let txn = TxnRequest {
        compare: vec![Compare {
            key: b"k".to_vec(),
            target: compare::CompareTarget::Value as i32,
            result: compare::CompareResult::Equal as i32,
            target_union: Some(compare::TargetUnion::Value(b"v".to_vec())),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: b"a".to_vec(),
                range_end: vec![0],
                ..Default::default()
            })),
        }],
    };
    vec![
        RangeRequest {
            key: b"k".to_vec(),
            range_end: b"z".to_vec(),
            limit: 5,
            revision: 1,
            ..Default::default()
        }
        .encode_to_vec(),
        PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            lease: 7,
            prev_kv: true,
            ..Default::default()
        }
        .encode_to_vec(),
        txn.encode_to_vec(),
    ]
}

fn hostile_body(rng: &mut SmallRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.random_range(0..3) {
        0 => (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect(),
        1 => {
            let mut b = seeds[rng.random_range(0..seeds.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..3) {
                    0 if !b.is_empty() => {
                        let i = rng.random_range(0..b.len());
                        b[i] = rng.random();
                    }
                    1 if !b.is_empty() => b.truncate(rng.random_range(0..b.len())),
                    _ => b.extend((0..rng.random_range(1..20)).map(|_| rng.random::<u8>())),
                }
            }
            b
        }
        // Well-formed wire format with arbitrary field numbers, wire types and lengths.
        _ => {
            let mut b = Vec::new();
            for _ in 0..rng.random_range(1..8) {
                let field: u32 = rng.random_range(1..20);
                match rng.random_range(0..2) {
                    0 => {
                        prost::encoding::encode_key(
                            field,
                            prost::encoding::WireType::Varint,
                            &mut b,
                        );
                        prost::encoding::encode_varint(rng.random(), &mut b);
                    }
                    _ => {
                        let bytes: Vec<u8> =
                            (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
                        prost::encoding::bytes::encode(field, &bytes, &mut b);
                    }
                }
            }
            b
        }
    }
}

/// Every member still takes a write and reads it back.
async fn members_still_serve(endpoints: &[String]) {
    for (i, ep) in endpoints.iter().enumerate() {
        let mut cli = client(ep).await;
        let key = format!("sane/{i}");
        cli.put(key.as_str(), "ok", None)
            .await
            .expect("put after abuse");
        let got = cli.get(key.as_str(), None).await.expect("get after abuse");
        assert_eq!(got.kvs()[0].value(), b"ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_and_mangled_protobufs_on_every_method_get_errors_never_panics() {
    // Goal: whatever bytes arrive as a request body, the member answers (an error or a
    // response) within a deadline, never panics, and keeps serving. The figure of requests
    // tried is printed for the closing notes.
    count_panics();
    let c = cluster(3).await;
    let endpoints = c.endpoints();
    let seeds = seeds();
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut tried = 0usize;
    let mut errors = 0usize;
    for ep in &endpoints {
        let channel = Channel::from_shared(ep.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        for _ in 0..400 {
            let path = UNARY[rng.random_range(0..UNARY.len())];
            let body = hostile_body(&mut rng, &seeds);
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("channel ready");
            let call = grpc.unary(
                tonic::Request::new(body.clone()),
                PathAndQuery::from_static(path),
                Raw,
            );
            let answer = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .unwrap_or_else(|_| panic!("{path} hung on {body:02x?}"));
            tried += 1;
            if let Err(status) = answer {
                errors += 1;
                assert!(
                    !status.message().contains("panicked"),
                    "{path}: {status:?} on {body:02x?}"
                );
            }
        }
        for _ in 0..20 {
            let path = STREAMING[rng.random_range(0..STREAMING.len())];
            let frames: Vec<Vec<u8>> = (0..rng.random_range(1..5))
                .map(|_| hostile_body(&mut rng, &seeds))
                .collect();
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.expect("channel ready");
            let call = grpc.streaming(
                tonic::Request::new(futures::stream::iter(frames)),
                PathAndQuery::from_static(path),
                Raw,
            );
            // A stream may legitimately stay open (a watch waiting for events): a bounded
            // look at its first answers is enough; the member must not have panicked.
            if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(2), call).await {
                let mut stream = resp.into_inner();
                let _ = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
            }
            tried += 1;
        }
    }
    println!("hostile requests tried: {tried}, answered with an error: {errors}, panics: 0");
    assert!(errors > 0, "random bodies must draw some errors");
    members_still_serve(&endpoints).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a member panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_and_deeply_nested_requests_are_refused_with_etcds_errors() {
    // Goal: the size and operation limits answer with etcd's messages, and a txn nested past
    // any sensible depth is refused at decode instead of exhausting the stack.
    count_panics();
    let c = cluster(1).await;
    let ep = &c.endpoints()[0];
    let mut cli = client(ep).await;
    // Past etcd's --max-request-bytes (1.5 MiB), within gRPC's receive limit (2 MiB).
    let big = vec![b'x'; 1600 * 1024];
    let err = cli.put("big", big, None).await.expect_err("1.6 MiB put");
    assert!(err.to_string().contains("request is too large"), "{err}");
    // Past gRPC's receive limit: grpc-go's code and words, as etcd answers.
    let huge = vec![b'x'; 3 << 20];
    match cli.put("huge", huge, None).await.expect_err("3 MiB put") {
        etcd_client::Error::GRpcStatus(s) => {
            assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
            assert!(
                s.message()
                    .starts_with("grpc: received message larger than max ("),
                "{s:?}"
            );
        }
        other => panic!("a gRPC status, not {other:?}"),
    }
    let ops: Vec<etcd_client::TxnOp> = (0..129)
        .map(|i| etcd_client::TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    let err = cli
        .txn(etcd_client::Txn::new().and_then(ops))
        .await
        .expect_err("129 ops");
    assert!(
        err.to_string()
            .contains("too many operations in txn request"),
        "{err}"
    );

    let mut nested = TxnRequest::default();
    for _ in 0..500 {
        nested = TxnRequest {
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestTxn(nested)),
            }],
            ..Default::default()
        };
    }
    let channel = Channel::from_shared(ep.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut kv = quorum::proto::etcdserverpb::kv_client::KvClient::new(channel);
    let answer = tokio::time::timeout(Duration::from_secs(10), kv.txn(nested))
        .await
        .expect("a deep txn is answered");
    assert!(answer.is_err(), "a 500-deep txn must be refused");
    members_still_serve(&c.endpoints()).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a member panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_watch_streams_and_leases_all_work_and_a_stalled_reader_loses_nothing() {
    // Goal: many streams and leases are served, not refused or leaked; a watcher that stops
    // reading while 12 MB of events go by neither blocks other clients nor loses an event:
    // once it reads again it gets every one, in order.
    count_panics();
    let c = cluster(3).await;
    let endpoints = c.endpoints();
    let mut cli = client(&endpoints[0]).await;

    let mut stalled = cli
        .watch("slow/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("stalled watcher");
    // Ten connections, a hundred streams on each, as busy clients share connections.
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(client(&endpoints[i % endpoints.len()]).await);
    }
    let mut streams = futures::future::join_all((0..1000).map(|i| {
        let mut w = clients[i % clients.len()].clone();
        async move {
            w.watch("many/", Some(WatchOptions::new().with_prefix()))
                .await
                .expect("watch stream")
        }
    }))
    .await;
    let grants = futures::future::join_all((0..1000).map(|i| {
        let mut w = clients[i % clients.len()].clone();
        async move { w.lease_grant(60, None).await.expect("lease").id() }
    }))
    .await;
    assert_eq!(grants.len(), 1000);
    let listed = cli.leases().await.expect("lease list").leases().len();
    assert!(listed >= 1000, "{listed} leases listed");

    let value = vec![b'v'; 100 * 1024];
    for i in 0..120 {
        let put = cli.put(format!("slow/{i:03}"), value.clone(), None);
        tokio::time::timeout(Duration::from_secs(10), put)
            .await
            .expect("a put is not held up by a stalled watcher")
            .expect("put");
    }
    for i in 0..3 {
        cli.put(format!("many/{i}"), "x", None).await.expect("put");
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        let mut seen = 0;
        while seen < 3 {
            let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .unwrap_or_else(|_| panic!("watch stream {n} starved"))
                .expect("watch message")
                .expect("stream open");
            seen += resp.events().len();
        }
        assert_eq!(seen, 3, "stream {n}");
    }
    let mut keys = Vec::new();
    while keys.len() < 120 {
        let resp = tokio::time::timeout(Duration::from_secs(20), stalled.message())
            .await
            .expect("the stalled watcher catches up")
            .expect("watch message")
            .expect("stream open");
        keys.extend(
            resp.events()
                .iter()
                .map(|e| e.kv().expect("kv").key_str().expect("utf-8").to_string()),
        );
    }
    let expected: Vec<String> = (0..120).map(|i| format!("slow/{i:03}")).collect();
    assert_eq!(keys, expected, "every event, once, in order");
    let count = cli
        .get(
            "slow/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count")
        .count();
    assert_eq!(count, 120);
    members_still_serve(&endpoints).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a member panicked");
}
