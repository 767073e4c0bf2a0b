//! A request over gRPC's receive limit, answered as grpc-go (and so etcd) answers it.
//!
//! tonic refuses such a message with OUT_OF_RANGE and words of its own; grpc-go with
//! RESOURCE_EXHAUSTED "grpc: received message larger than max (N vs. M)". Clients branch on the
//! code (etcd's retry and error tables do), so the refusal is rewritten on its way out. tonic
//! sends it trailers-only, as headers, before any body.

use axum::http::{HeaderValue, Response};

const TONIC_WORDS: &str = "decoded message length too large";
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

pub async fn as_grpc_go<B>(mut resp: Response<B>) -> Response<B> {
    let headers = resp.headers();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some(OUT_OF_RANGE) {
        return resp;
    }
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .filter(|m| m.contains(TONIC_WORDS))
    else {
        return resp;
    };
    // "... found N bytes, the limit is: M bytes"
    let numbers: Vec<&str> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let (Some(found), Some(limit)) = (numbers.first(), numbers.get(1)) else {
        return resp;
    };
    let text = format!("grpc: received message larger than max ({found} vs. {limit})");
    let headers = resp.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    if let Ok(v) = HeaderValue::from_str(&text) {
        headers.insert("grpc-message", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tonics_out_of_range_becomes_grpc_gos_resource_exhausted() {
        let status = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 3145740 bytes, the limit is: 2097152 bytes",
        );
        let resp = as_grpc_go(status.into_http::<()>()).await;
        let back = tonic::Status::from_header_map(resp.headers()).unwrap();
        assert_eq!(back.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            back.message(),
            "grpc: received message larger than max (3145740 vs. 2097152)"
        );
        // Any other OUT_OF_RANGE (etcd's own "required revision is a future revision") stays.
        let other =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision is a future revision");
        let resp = as_grpc_go(other.into_http::<()>()).await;
        let back = tonic::Status::from_header_map(resp.headers()).unwrap();
        assert_eq!(back.code(), tonic::Code::OutOfRange);
    }
}
