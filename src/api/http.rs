//! The plain-HTTP endpoints etcd serves beside gRPC on its client URLs (`/health`,
//! `/version`, `/metrics`), and on `--listen-metrics-urls` (`/health` and `/metrics` only).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::maintenance::ETCD_VERSION;
use crate::server::Server;

/// What the client URLs serve over HTTP, beside the gRPC services.
pub fn client_routes(server: Arc<Server>) -> Router {
    metrics_routes(server).route("/version", get(version))
}

/// What `--listen-metrics-urls` serve: health and metrics, nothing else (as etcd).
pub fn metrics_routes(server: Arc<Server>) -> Router {
    let for_health = server.clone();
    Router::new()
        .route("/health", get(move || health(for_health.clone())))
        .route("/metrics", get(move || metrics(server.clone())))
}

async fn version() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "etcdserver": ETCD_VERSION,
        "etcdcluster": "3.5.0",
    }))
}

/// etcd 3.5's answer (the version this member reports): 503 and a reason when unhealthy
/// (no leader, or an alarm raised).
async fn health(server: Arc<Server>) -> impl IntoResponse {
    let reason = server.unhealthy_reason();
    let code = match reason {
        None => StatusCode::OK,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = axum::Json(serde_json::json!({
        "health": if reason.is_none() { "true" } else { "false" },
        "reason": reason.unwrap_or_default(),
    }));
    (code, body)
}

async fn metrics(server: Arc<Server>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        server.render_metrics(),
    )
}
