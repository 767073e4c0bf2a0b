//! What a watch does once its client closes the sending half of the stream, beside etcd 3.4.
//! gRPC clients whose request iterator simply ends after the create (grpc-python with a list,
//! a Rust client with a finite stream) half-close the call; their watch must go on as it does
//! against etcd.

use std::time::Duration;

use futures::StreamExt;
use quorum::proto::etcdserverpb::kv_client::KvClient;
use quorum::proto::etcdserverpb::watch_client::WatchClient;
use quorum::proto::etcdserverpb::{watch_request, PutRequest, WatchCreateRequest, WatchRequest};

use super::procs::{etcd_available, ProcCluster, Program};

/// What the client saw after half-closing: `created`, then either the event of a put made
/// after the close, the end of the stream, or an error's code.
async fn after_half_close(url: &str) -> String {
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: b"half/".to_vec(),
                range_end: b"half0".to_vec(),
                ..Default::default()
            },
        )),
    };
    let mut watch = WatchClient::connect(url.to_string()).await.unwrap();
    // A stream of one request: the client half-closes right after sending it.
    let mut stream = watch
        .watch(futures::stream::iter([create]))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    let first = stream.next().await;
    seen.push(match first {
        Some(Ok(r)) if r.created => "created".to_string(),
        other => format!("not created: {other:?}"),
    });
    // Let the server notice the closed half before the put.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut kv = KvClient::connect(url.to_string()).await.unwrap();
    kv.put(PutRequest {
        key: b"half/k".to_vec(),
        value: b"v".to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    seen.push(match next {
        Ok(Some(Ok(r))) => format!(
            "events {:?}",
            r.events
                .iter()
                .filter_map(|e| e.kv.as_ref())
                .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
                .collect::<Vec<_>>()
        ),
        Ok(Some(Err(status))) => format!("error {:?}", status.code()),
        Ok(None) => "stream ended".to_string(),
        Err(_) => "nothing within 5 s".to_string(),
    });
    seen.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_goes_on_after_its_client_half_closes_as_on_etcd() {
    // Goal: Quorum treats a client's closed sending half as etcd 3.4 does. Method: one member
    // of each; create a watch over a stream that ends right after the create, then put a key
    // in the range and record what the client receives next.
    if !etcd_available() {
        return;
    }
    let mut seen = Vec::new();
    for program in [Program::Etcd, Program::Quorum] {
        let c = ProcCluster::start(program, 1);
        seen.push(after_half_close(&c.members[0].client_url).await);
    }
    assert_eq!(
        seen[0], "created, events [\"half/k\"]",
        "etcd 3.4 itself: {}",
        seen[0]
    );
    assert_eq!(
        seen[0], seen[1],
        "etcd 3.4 (left) and Quorum (right) differ"
    );
}
