//! Health checks: one task per node, every `monitor.interval_ms`, using its
//! own least-privilege login through `mysql_async` (never the data path's
//! connections). A check is: connect (reused while healthy), `@@read_only`,
//! and the replication status (both `SHOW REPLICA STATUS` column names, and
//! `SHOW SLAVE STATUS` for older servers). After `down_after` failed checks
//! the node is down; after `up_after` good ones it is up again. Verdicts are
//! published to the topology, which moves the writer role when needed.

use crate::config::{BackendTlsConfig, BackendTlsMode};
use crate::config::{MonitorConfig, Role};
use crate::topology::{Node, ProbeVerdict, Replication};
use crate::Context;
use mysql_async::prelude::*;
use mysql_async::{ClientIdentity, Conn, OptsBuilder, Row, SslOpts, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Starts one checking task per node.
pub fn spawn(ctx: Arc<Context>) -> Vec<JoinHandle<()>> {
    let snap = ctx.topology.load();
    snap.nodes
        .iter()
        .map(|node| tokio::spawn(watch(Arc::clone(&ctx), node.clone())))
        .collect()
}

/// What one check saw.
#[derive(Debug, Default)]
struct Observation {
    read_only: Option<bool>,
    lag_seconds: Option<u64>,
    replication: Option<Replication>,
}

async fn watch(ctx: Arc<Context>, node: Node) {
    let cfg = ctx.config.monitor.clone();
    let tls = ctx.config.backend_tls.clone();
    let interval = Duration::from_millis(cfg.interval_ms);
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mut conn: Option<Conn> = None;
    let (mut fails, mut oks) = (0u32, 0u32);
    let mut up: Option<bool> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = ctx.metrics.node(node.id).clone();
    let mut last_count = metrics.queries.get();
    let mut last_tick = Instant::now();
    loop {
        ticker.tick().await;
        let result = match tokio::time::timeout(timeout, check(&mut conn, &node, &cfg, &tls)).await
        {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        let verdict = match result {
            Ok(seen) => {
                oks += 1;
                fails = 0;
                if up != Some(true) && (up.is_none() || oks >= cfg.up_after) {
                    up = Some(true);
                    tracing::info!(node = %node.name, "monitor: node is up");
                }
                ProbeVerdict {
                    up: up == Some(true),
                    read_only: seen.read_only,
                    lag_seconds: seen.lag_seconds,
                    replication: seen.replication,
                    error: None,
                }
            }
            Err(error) => {
                conn = None;
                fails += 1;
                oks = 0;
                if up != Some(false) && fails >= cfg.down_after {
                    up = Some(false);
                    tracing::warn!(node = %node.name, %error, "monitor: node is down");
                }
                // Statements still waiting on a node found down would wait
                // forever if it is frozen: end them (see backend::cutoff).
                // Every failed check does it, so a connection made in between
                // cannot be missed.
                if up == Some(false) {
                    let cut = ctx.pools.cut_off(node.id);
                    if cut > 0 {
                        tracing::warn!(node = %node.name, connections = cut, "monitor: cut off the node's connections");
                    }
                }
                ProbeVerdict {
                    up: false,
                    error: Some(error),
                    ..ProbeVerdict::default()
                }
            }
        };
        // A failure below the `down_after` threshold changes nothing yet.
        if verdict.up || up == Some(false) {
            ctx.topology.apply_probe(node.id, &verdict);
        }
        metrics.up.set(i64::from(up == Some(true)));
        metrics
            .lag_seconds
            .set(verdict.lag_seconds.map_or(-1, |l| l as i64));
        let count = metrics.queries.get();
        let elapsed = last_tick.elapsed().as_secs_f64().max(1e-3);
        ctx.metrics
            .set_qps(node.id, (count - last_count) as f64 / elapsed);
        (last_count, last_tick) = (count, Instant::now());
    }
}

async fn check(
    conn: &mut Option<Conn>,
    node: &Node,
    cfg: &MonitorConfig,
    tls: &BackendTlsConfig,
) -> Result<Observation, String> {
    if conn.is_none() {
        *conn = Some(connect(node, cfg, tls).await.map_err(|e| e.to_string())?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let read_only: Option<i64> = c
        .query_first("SELECT @@read_only")
        .await
        .map_err(|e| e.to_string())?;
    let mut seen = Observation {
        read_only: read_only.map(|v| v != 0),
        ..Observation::default()
    };
    if node.role == Role::Replica {
        let (replication, lag) = replication_status(c).await.map_err(|e| e.to_string())?;
        seen.replication = Some(replication);
        seen.lag_seconds = lag;
    }
    Ok(seen)
}

/// The monitor's TLS settings, from `[backend_tls]`: the monitor reaches
/// nodes the way the data path does.
fn ssl_opts(tls: &BackendTlsConfig) -> Option<SslOpts> {
    let path = |p: &str| std::path::PathBuf::from(p).into();
    let mut opts = SslOpts::default();
    match tls.mode {
        BackendTlsMode::Disabled => return None,
        BackendTlsMode::Required => opts = opts.with_danger_accept_invalid_certs(true),
        BackendTlsMode::VerifyCa => {
            opts = opts
                .with_root_certs(vec![path(&tls.ca_file)])
                .with_danger_skip_domain_validation(true)
        }
        BackendTlsMode::VerifyIdentity => {
            opts = opts.with_root_certs(vec![path(&tls.ca_file)]);
            if !tls.server_name.is_empty() {
                opts = opts.with_danger_tls_hostname_override(Some(tls.server_name.clone()));
            }
        }
    }
    if !tls.cert_file.is_empty() {
        opts = opts.with_client_identity(Some(ClientIdentity::new(
            path(&tls.cert_file),
            path(&tls.key_file),
        )));
    }
    Some(opts.with_disable_built_in_roots(true))
}

async fn connect(
    node: &Node,
    cfg: &MonitorConfig,
    tls: &BackendTlsConfig,
) -> Result<Conn, mysql_async::Error> {
    let (host, port) = node
        .addr
        .rsplit_once(':')
        .unwrap_or((node.addr.as_str(), "3306"));
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.trim_start_matches('[').trim_end_matches(']'))
        .tcp_port(port.parse().unwrap_or(3306))
        .user(Some(cfg.user.clone()))
        .pass(Some(cfg.password.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl_opts(tls));
    Conn::new(opts).await
}

/// (replication state, lag in seconds). MySQL 8.0.22+ and
/// MariaDB 10.5+ know `SHOW REPLICA STATUS`; MySQL names its columns
/// Replica_*/…_Source, MariaDB keeps Slave_*/…_Master.
async fn replication_status(
    conn: &mut Conn,
) -> Result<(Replication, Option<u64>), mysql_async::Error> {
    let rows: Vec<Row> = match conn.query("SHOW REPLICA STATUS").await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            conn.query("SHOW SLAVE STATUS").await?
        }
        Err(e) => return Err(e),
    };
    let Some(row) = rows.first() else {
        // Not configured as a replica at all.
        return Ok((Replication::Stopped, None));
    };
    let text = |names: &[&str]| -> Option<String> {
        let idx = row
            .columns_ref()
            .iter()
            .position(|c| names.iter().any(|n| c.name_str().eq_ignore_ascii_case(n)))?;
        match row.as_ref(idx)? {
            Value::NULL => None,
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            other => Some(other.as_sql(true)),
        }
    };
    // Yes, No, or Connecting (IO thread retrying its master).
    let io = text(&["Replica_IO_Running", "Slave_IO_Running"]).unwrap_or_default();
    let sql = text(&["Replica_SQL_Running", "Slave_SQL_Running"]).unwrap_or_default();
    let lag =
        text(&["Seconds_Behind_Source", "Seconds_Behind_Master"]).and_then(|v| v.parse().ok());
    let state = match (
        io.to_ascii_lowercase().as_str(),
        sql.eq_ignore_ascii_case("yes"),
    ) {
        ("yes", true) => Replication::Running,
        ("connecting", true) => Replication::Reconnecting,
        _ => Replication::Stopped,
    };
    Ok((state, lag))
}
