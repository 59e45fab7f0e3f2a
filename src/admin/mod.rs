//! The admin endpoint (HTTP, loopback by default): `/health` for load
//! balancers and Kubernetes probes, `/metrics` for Prometheus, and — behind
//! a bearer token — the node table, operator marks, promote and reload.
//! It changes the topology only through `Topology`'s operator methods.

pub mod metrics;
pub mod state;

use crate::topology::{Mark, OnErrant, Snapshot};
use crate::Context;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One row of `splitrail nodes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub addr: String,
    /// writer, standby or replica.
    pub role: String,
    /// up, down or unknown.
    pub health: String,
    pub mark: Mark,
    pub lag_seconds: Option<u64>,
    pub replication: Option<crate::topology::Replication>,
    pub read_only: Option<bool>,
    pub connections: i64,
    pub qps: f64,
    pub queries: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// A replica's source (a node name), when it is one of ours.
    #[serde(default)]
    pub source: Option<String>,
    /// A master's position in its own GTID stream.
    #[serde(default)]
    pub own_gtid: Option<String>,
    /// Set while this standby takes writes of its own.
    #[serde(default)]
    pub second_writer: Option<String>,
    /// A standby master's transactions that the writer lacks.
    #[serde(default)]
    pub errant: Option<String>,
    /// How many of the writer's transactions a standby master has not
    /// applied yet.
    #[serde(default)]
    pub behind_writer: Option<u64>,
}

pub fn node_views(ctx: &Context, snap: &Snapshot) -> Vec<NodeView> {
    snap.nodes
        .iter()
        .map(|n| {
            let s = &snap.status[n.id];
            let m = ctx.metrics.node(n.id);
            let health = match (s.monitor_up, s.failed_at.is_some()) {
                (_, true) | (Some(false), _) => "down",
                (Some(true), false) => "up",
                (None, false) => "unknown",
            };
            NodeView {
                name: n.name.clone(),
                addr: n.addr.clone(),
                role: snap.role_name(n.id).into(),
                health: health.into(),
                mark: s.mark,
                lag_seconds: s.lag_seconds,
                replication: s.replication,
                read_only: s.read_only,
                connections: m.backend_connections.get(),
                qps: ctx.metrics.qps(n.id),
                queries: m.queries.get(),
                errors: m.errors.get(),
                last_error: s.last_error.clone(),
                source: s.source.map(|src| snap.node(src).name.clone()),
                own_gtid: s.own_position.as_ref().map(|p| p.to_string()),
                second_writer: s.second_writer.as_ref().map(|a| a.describe(&n.name)),
                errant: snap.errant(n.id).map(|e| e.to_string()),
                behind_writer: snap.behind_writer(n.id),
            }
        })
        .collect()
}

/// Serves the admin endpoint until `shutdown` completes.
pub async fn serve(
    ctx: Arc<Context>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/nodes", get(nodes))
        .route("/nodes/{name}/{action}", post(node_action))
        .route("/reload", post(reload))
        .with_state(ctx);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "admin endpoint stopped");
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Checks `Authorization: Bearer <token>`; the refusal to send, if any.
fn denied(ctx: &Context, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = ctx.config.admin.effective_token() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "no admin token is configured ([admin] token or SPLITRAIL_ADMIN_TOKEN)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => None,
        _ => Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 200 while statements can be served: a writer exists, or at least one
/// replica is usable (reduced-functionality mode still serves reads). With
/// coordination, 503 on an instance that cannot reach the cluster's writer
/// (its writes get 1290 while the other instances' succeed): a load
/// balancer or keepalived check then sends clients to another instance.
async fn health(State(ctx): State<Arc<Context>>) -> Response {
    let snap = ctx.topology.load();
    let writer_id = snap.writer();
    let writer = writer_id.map(|w| snap.node(w).name.clone());
    let writer_reachable = writer_id.is_some_and(|w| snap.is_healthy(w));
    let healthy_replicas = snap
        .nodes
        .iter()
        .filter(|n| n.role == crate::config::Role::Replica && snap.is_healthy(n.id))
        .count();
    let second_writers: Vec<String> = snap
        .nodes
        .iter()
        .filter_map(|n| {
            snap.status[n.id]
                .second_writer
                .as_ref()
                .map(|a| a.describe(&n.name))
        })
        .collect();
    let status = match (
        writer.is_some(),
        writer_reachable,
        second_writers.is_empty(),
    ) {
        (_, _, false) => "second_writer",
        (false, _, true) => "no_writer",
        (true, false, true) => "writer_unreachable",
        (true, true, true) => "ok",
    };
    let coordination = ctx.coordinator.as_ref().map(|c| c.status());
    let body = serde_json::json!({
        "coordination": coordination,
        "epoch": snap.epoch,
        "status": status,
        "writer": writer,
        "healthy_replicas": healthy_replicas,
        "mode": if writer_reachable { "read-write" } else { "read-only" },
        "second_writer": second_writers,
    });
    let cut_off = ctx.coordinator.is_some() && writer.is_some() && !writer_reachable;
    let status = if !cut_off && (writer.is_some() || healthy_replicas > 0) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(ctx): State<Arc<Context>>) -> Response {
    let snap = ctx.topology.load();
    for id in 0..snap.nodes.len() {
        let m = ctx.metrics.node(id);
        m.idle_connections.set(ctx.pools.idle_count(id) as i64);
        m.second_writer
            .set(i64::from(snap.status[id].second_writer.is_some()));
    }
    drop(snap);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.metrics.render(),
    )
        .into_response()
}

async fn nodes(State(ctx): State<Arc<Context>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = denied(&ctx, &headers) {
        return refusal;
    }
    let snap = ctx.topology.load();
    Json(node_views(&ctx, &snap)).into_response()
}

/// `?force=true` on promote: promote a master with errant transactions.
#[derive(Debug, Default, Deserialize)]
struct ActionOptions {
    #[serde(default)]
    force: bool,
}

async fn node_action(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    Query(options): Query<ActionOptions>,
) -> Response {
    let on_errant = if options.force {
        OnErrant::Promote
    } else {
        OnErrant::Refuse
    };
    if let Some(refusal) = denied(&ctx, &headers) {
        return refusal;
    }
    let mark = match action.as_str() {
        "down" => Some(Mark::Down),
        "drain" => Some(Mark::Drain),
        "up" => Some(Mark::None),
        "promote" => None,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}: use down, drain, up or promote"),
            )
        }
    };
    let result = match (mark, &ctx.coordinator) {
        (None, _) => match crate::switchover::switchover(&ctx, &name, on_errant).await {
            Ok(id) => Ok(id),
            Err(crate::switchover::SwitchoverError::Refused(e)) => Err(e),
            Err(e) => return error(StatusCode::CONFLICT, e.to_string()),
        },
        (Some(mark), None) => ctx.topology.set_mark(&name, mark),
        // Through etcd, so every instance of the cluster applies it.
        (Some(mark), Some(coordinator)) => {
            let Some(id) = ctx.topology.load().find(&name) else {
                return error(
                    StatusCode::NOT_FOUND,
                    crate::topology::TopologyError::UnknownNode(name).to_string(),
                );
            };
            if let Err(e) = coordinator.set_mark(&name, mark).await {
                return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
            // Applied here as soon as this instance reads the record back.
            wait_until_applied(&ctx, id, mark).await;
            Ok(id)
        }
    };
    match result {
        Ok(id) => {
            let snap = ctx.topology.load();
            ctx.state_file.save(&state::SavedState::of(&snap));
            tracing::warn!(node = %name, action, "operator action applied");
            let view = node_views(&ctx, &snap).swap_remove(id);
            Json(view).into_response()
        }
        Err(e @ crate::topology::TopologyError::UnknownNode(_)) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

/// Waits (bounded) until this instance follows the mark it just wrote to
/// etcd, so the answer shows the new state.
async fn wait_until_applied(ctx: &Context, id: crate::topology::NodeId, mark: Mark) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline && ctx.topology.load().status[id].mark != mark {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn reload(State(ctx): State<Arc<Context>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = denied(&ctx, &headers) {
        return refusal;
    }
    match ctx.reload() {
        Ok(summary) => Json(serde_json::json!({ "reloaded": summary })).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}
