//! The KV, Maintenance and Cluster APIs through the `etcd-client` crate against an in-process
//! member: options behave as documented and errors carry etcd's gRPC code and message.

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp,
};
use quorum::cluster::{ClusterSpec, LocalCluster};

async fn single() -> (LocalCluster, Client) {
    let mut spec = ClusterSpec::new(1);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    spec.ports = vec![(
        l.local_addr().unwrap().port(),
        p.local_addr().unwrap().port(),
    )];
    drop((l, p));
    spec.heartbeat_interval_ms = 50;
    spec.election_timeout_ms = 500;
    let c = LocalCluster::start(spec).await.unwrap();
    for _ in 0..100 {
        if c.leader().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let client = Client::connect(c.endpoints(), None).await.unwrap();
    (c, client)
}

fn status_of(e: etcd_client::Error) -> (tonic::Code, String) {
    match e {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_options_and_errors_match_etcd() {
    // Goal: get/put/delete/txn/compact options and the exact error pairs clients match on.
    let (c, mut cli) = single().await;
    for (k, v) in [("a", "3"), ("b", "1"), ("c", "2")] {
        cli.put(k, v, None).await.unwrap();
    }
    let r = cli
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Value, SortOrder::Descend)
                    .with_limit(2),
            ),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = r.kvs().iter().map(|kv| kv.key_str().unwrap()).collect();
    assert_eq!((keys, r.count(), r.more()), (vec!["a", "c"], 3, true));
    let r = cli
        .get(
            "a",
            Some(GetOptions::new().with_from_key().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((r.count(), r.kvs().len()), (3, 0));
    let r = cli
        .put("a", "4", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(r.prev_key().unwrap().value(), b"3");
    let r = cli
        .delete("b", Some(DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!((r.deleted(), r.prev_kvs().len()), (1, 1));

    let txn = Txn::new()
        .when([Compare::value("a", CompareOp::Equal, "4")])
        .and_then([TxnOp::put("d", "x", None), TxnOp::get("d", None)])
        .or_else([TxnOp::get("a", None)]);
    let r = cli.txn(txn).await.unwrap();
    assert!(r.succeeded());

    let (code, msg) = status_of(cli.put("", "v", None).await.unwrap_err());
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: key is not provided"
        )
    );
    let (code, msg) = status_of(
        cli.put("k", "v", Some(PutOptions::new().with_lease(99)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::NotFound,
            "etcdserver: requested lease not found"
        )
    );
    let rev = cli
        .get("a", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let (code, msg) = status_of(
        cli.get("a", Some(GetOptions::new().with_revision(rev + 10)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision"
        )
    );
    cli.compact(rev, None).await.unwrap();
    let (code, msg) = status_of(
        cli.get("a", Some(GetOptions::new().with_revision(rev - 1)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted"
        )
    );
    let ops: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    let (code, msg) = status_of(cli.txn(Txn::new().and_then(ops)).await.unwrap_err());
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: too many operations in txn request"
        )
    );
    let big = vec![b'x'; 1600 * 1024];
    let (code, msg) = status_of(cli.put("big", big, None).await.unwrap_err());
    assert_eq!(
        (code, msg.as_str()),
        (
            tonic::Code::InvalidArgument,
            "etcdserver: request is too large"
        )
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_member_list_describe_the_member() {
    // Goal: Status reports a 3.5 version (Kubernetes parses it), the leader and Raft indexes;
    // MemberList shows the member with its URLs once it has published them.
    let (c, mut cli) = single().await;
    let s = cli.status().await.unwrap();
    let version: Vec<u32> = s.version().split('.').map(|p| p.parse().unwrap()).collect();
    assert!(
        version[0] == 3 && version[1] == 5 && version[2] >= 13,
        "{}",
        s.version()
    );
    assert_eq!(s.leader(), s.header().unwrap().member_id());
    assert!(s.raft_index() >= 1 && s.raft_term() >= 1);
    let mut named = false;
    for _ in 0..50 {
        let m = cli.member_list().await.unwrap();
        assert_eq!(m.members().len(), 1);
        if m.members()[0].name() == "n1" {
            assert_eq!(m.members()[0].client_urls(), c.endpoints().as_slice());
            named = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(named, "the member publishes its name and client URLs");
    c.shutdown().await;
}

async fn next(w: &mut etcd_client::WatchStream) -> etcd_client::WatchResponse {
    tokio::time::timeout(std::time::Duration::from_secs(5), w.message())
        .await
        .expect("a watch response arrives")
        .unwrap()
        .expect("the stream stays open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stream_multiplexes_ids_filters_progress_and_cancel() {
    // Goal: etcd's per-stream watch semantics: ids from 0, duplicate client ids refused with
    // id -1, NOPUT filters, prev_kv, progress requests answered with id -1, cancel.
    use etcd_client::{WatchFilterType, WatchOptions};
    let (c, mut cli) = single().await;
    let mut w = cli.watch("k", None).await.unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    assert_eq!(created.watch_id(), 0);
    w.watch(
        "k",
        Some(
            WatchOptions::new()
                .with_filters([WatchFilterType::NoPut])
                .with_prev_key(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut w).await.watch_id(), 1);
    w.watch("k", Some(WatchOptions::new().with_watch_id(1)))
        .await
        .unwrap();
    let dup = next(&mut w).await;
    assert!(dup.created() && dup.canceled());
    assert_eq!(dup.watch_id(), -1);

    cli.put("k", "v1", None).await.unwrap();
    let put = next(&mut w).await;
    assert_eq!((put.watch_id(), put.events().len()), (0, 1));
    cli.delete("k", None).await.unwrap();
    let mut by_id = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let r = next(&mut w).await;
        by_id.insert(r.watch_id(), r);
    }
    let deleted = &by_id[&1];
    assert_eq!(
        deleted.events()[0].event_type(),
        etcd_client::EventType::Delete
    );
    assert_eq!(deleted.events()[0].prev_kv().unwrap().value(), b"v1");
    assert!(
        by_id[&0].events()[0].prev_kv().is_none(),
        "prev_kv only when asked"
    );

    w.request_progress().await.unwrap();
    let progress = next(&mut w).await;
    assert_eq!((progress.watch_id(), progress.events().len()), (-1, 0));
    assert!(progress.header().unwrap().revision() >= 3);

    w.cancel(0).await.unwrap();
    let canceled = next(&mut w).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), 0);
    c.shutdown().await;
}
