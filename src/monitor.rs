//! Health checks: one task per node, every `monitor.interval_ms`, using its
//! own least-privilege login through `mysql_async` (never the data path's
//! connections). A check is: connect (reused while healthy), `@@read_only`,
//! and the replication status (both `SHOW REPLICA STATUS` column names, and
//! `SHOW SLAVE STATUS` for older servers). After `down_after` failed checks
//! the node is down; after `up_after` good ones it is up again. Verdicts are
//! published to the topology, which moves the writer role when needed.
//!
//! Only silence is death: a server that answers with an error (1040 Too
//! many connections, 1203, 1226, 1129, access denied...) is alive and busy,
//! never a reason to fail over ([`CheckFailure::Answered`]). Masters also
//! report their own GTID domain's position, so a standby that takes writes
//! is seen ([`crate::topology::SecondWriter`]); replicas report their
//! source, so a replica of a dead master gets no reads.

use crate::config::{BackendTlsConfig, BackendTlsMode};
use crate::config::{MonitorConfig, Role};
use crate::gtid::{GtidSet, OwnPosition};
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
    /// A replica's source, as `host:port` (Master_Host / Master_Port).
    source: Option<String>,
    /// A master's position in its own GTID domain.
    own_position: Option<OwnPosition>,
    /// Every GTID the server has (`gtid_binlog_state` / `gtid_executed`).
    gtids: Option<GtidSet>,
}

/// Why a check saw nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CheckFailure {
    /// The server answered, with an error: it is alive (busy, at its
    /// connection limit, refusing the monitor's login). Never counts
    /// towards `down_after`.
    Answered(String),
    /// No answer at all: connect refused or timed out, no reply within the
    /// timeout, the connection broke. Only this is a failed check.
    Silent(String),
}

impl CheckFailure {
    fn of(e: mysql_async::Error) -> CheckFailure {
        match e {
            mysql_async::Error::Server(e) => {
                CheckFailure::Answered(format!("ERROR {}: {}", e.code, e.message))
            }
            other => CheckFailure::Silent(other.to_string()),
        }
    }
}

async fn watch(ctx: Arc<Context>, node: Node) {
    let cfg = ctx.config.monitor.clone();
    let tls = ctx.config.backend_tls.clone();
    let interval = Duration::from_millis(cfg.interval_ms);
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mut conn: Option<Conn> = None;
    let (mut fails, mut oks) = (0u32, 0u32);
    let mut up: Option<bool> = None;
    // The error a live node last answered with (logged once per change).
    let mut answered_with: Option<String> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = ctx.metrics.node(node.id).clone();
    let mut last_count = metrics.queries.get();
    let mut last_tick = Instant::now();
    // The heartbeat stamp's last error (logged once per change).
    let mut heartbeat_failed: Option<String> = None;
    let mut grants_checked = false;
    loop {
        ticker.tick().await;
        let result = match tokio::time::timeout(timeout, check(&mut conn, &node, &cfg, &tls)).await
        {
            Ok(r) => r,
            Err(_) => Err(CheckFailure::Silent(format!(
                "no answer within {timeout:?}"
            ))),
        };
        // What the topology learns from this check (`None`: nothing).
        let verdict = match result {
            Ok(seen) => {
                oks += 1;
                fails = 0;
                answered_with = None;
                if up != Some(true) && (up.is_none() || oks >= cfg.up_after) {
                    up = Some(true);
                    tracing::info!(node = %node.name, "monitor: node is up");
                }
                Some(ProbeVerdict {
                    up: up == Some(true),
                    read_only: seen.read_only,
                    lag_seconds: seen.lag_seconds,
                    replication: seen.replication,
                    source: seen.source,
                    own_position: seen.own_position,
                    gtids: seen.gtids,
                    error: None,
                })
            }
            Err(CheckFailure::Answered(error)) => {
                // Alive: the failure count starts again, the verdict stands,
                // and what was last seen of read_only and lag is kept.
                conn = None;
                fails = 0;
                if answered_with.as_deref() != Some(error.as_str()) {
                    tracing::warn!(node = %node.name, %error, "monitor: node answers with an error (alive, not failing over)");
                    answered_with = Some(error.clone());
                }
                ctx.topology.note_probe_error(node.id, &error);
                None
            }
            Err(CheckFailure::Silent(error)) => {
                conn = None;
                fails += 1;
                oks = 0;
                answered_with = None;
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
                Some(ProbeVerdict {
                    up: false,
                    error: Some(error),
                    ..ProbeVerdict::default()
                })
            }
        };
        if !grants_checked {
            if let Some(c) = conn.as_mut() {
                grants_checked = true;
                check_grants(&ctx, &node, c).await;
            }
        }
        if cfg.heartbeat
            && verdict
                .as_ref()
                .is_some_and(|v| v.up && v.read_only == Some(false))
        {
            stamp_heartbeat(&ctx, &node, &mut conn, &mut heartbeat_failed).await;
        }
        // An error answer (`None`) changes nothing; neither does a failure
        // below the `down_after` threshold.
        if let Some(verdict) = &verdict {
            if verdict.up || up == Some(false) {
                ctx.topology.apply_probe(node.id, verdict);
            }
            metrics
                .lag_seconds
                .set(verdict.lag_seconds.map_or(-1, |l| l as i64));
        }
        metrics.up.set(i64::from(up == Some(true)));
        let count = metrics.queries.get();
        let elapsed = last_tick.elapsed().as_secs_f64().max(1e-3);
        ctx.metrics
            .set_qps(node.id, (count - last_count) as f64 / elapsed);
        (last_count, last_tick) = (count, Instant::now());
    }
}

/// Logs what the monitor login lacks on `node` for what the config turns
/// on (fencing, re-pointing, the heartbeat): once, at the first check.
async fn check_grants(ctx: &Context, node: &Node, conn: &mut Conn) {
    let timeout = Duration::from_millis(ctx.config.monitor.timeout_ms);
    let grants: Vec<String> = match tokio::time::timeout(timeout, conn.query("SHOW GRANTS")).await {
        Ok(Ok(rows)) => rows,
        _ => return,
    };
    for what in crate::grants::missing(&ctx.config, node.role, &grants) {
        tracing::error!(node = %node.name, user = %ctx.config.monitor.user, "the monitor login does not seem to hold the right to {what}: it will fail when needed (grant it, see docs/configuration.md, monitor.user)");
    }
}

/// Stamps the heartbeat on `node` if it is this instance's writer. Only
/// after this check saw it `read_only=OFF`: the monitor login may hold
/// READ_ONLY ADMIN (for fencing), which would let it write to a fenced
/// master. A failed stamp is logged, never a failed check.
async fn stamp_heartbeat(
    ctx: &Context,
    node: &Node,
    conn: &mut Option<Conn>,
    failed: &mut Option<String>,
) {
    if ctx.topology.load().writer() != Some(node.id) {
        return;
    }
    let Some(c) = conn.as_mut() else { return };
    let instance = if ctx.config.coordination.instance.is_empty() {
        ctx.config.proxy.listen.as_str()
    } else {
        ctx.config.coordination.instance.as_str()
    };
    let timeout = Duration::from_millis(ctx.config.monitor.timeout_ms);
    let result = match tokio::time::timeout(timeout, crate::heartbeat::beat(c, instance)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    match result {
        Ok(()) => {
            if failed.take().is_some() {
                tracing::info!(node = %node.name, "monitor: heartbeat stamped again");
            }
        }
        Err(e) => {
            if failed.as_deref() != Some(e.as_str()) {
                tracing::error!(node = %node.name, error = %e, "monitor: cannot stamp the heartbeat on the writer (monitor.heartbeat; the login needs CREATE, INSERT, UPDATE on splitrail.*): replicas' lag falls back to Seconds_Behind_Master");
                *failed = Some(e);
            }
        }
    }
}

async fn check(
    conn: &mut Option<Conn>,
    node: &Node,
    cfg: &MonitorConfig,
    tls: &BackendTlsConfig,
) -> Result<Observation, CheckFailure> {
    if conn.is_none() {
        *conn = Some(connect(node, cfg, tls).await.map_err(CheckFailure::of)?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(CheckFailure::Silent("no connection".into()));
    };
    let read_only: Option<i64> = c
        .query_first("SELECT @@read_only")
        .await
        .map_err(CheckFailure::of)?;
    let mut seen = Observation {
        read_only: read_only.map(|v| v != 0),
        ..Observation::default()
    };
    match node.role {
        Role::Replica => {
            let status = replication_status(c).await.map_err(CheckFailure::of)?;
            seen.replication = Some(status.state);
            seen.lag_seconds = status.lag;
            seen.source = status.source;
            if cfg.heartbeat {
                if let Some(age) = crate::heartbeat::age(c).await.map_err(CheckFailure::of)? {
                    seen.lag_seconds = Some(age);
                }
            }
        }
        Role::Master => {
            let (own, all) = gtid_position(c).await.map_err(CheckFailure::of)?;
            seen.own_position = own;
            seen.gtids = all;
            // A standby master replicating from the writer: shown to
            // operators (`splitrail nodes`); a master that replicates from
            // nobody has no replication state.
            let status = replication_status(c).await.map_err(CheckFailure::of)?;
            if status.source.is_some() {
                seen.replication = Some(status.state);
                seen.lag_seconds = status.lag;
                seen.source = status.source;
            }
        }
    }
    Ok(seen)
}

/// Every transaction a server has applied, its own and replicated ones:
/// MariaDB `@@gtid_current_pos`, MySQL `@@gtid_executed`.
pub(crate) async fn applied_gtids(conn: &mut Conn) -> Result<GtidSet, mysql_async::Error> {
    let mariadb: Result<Option<String>, _> = conn.query_first("SELECT @@gtid_current_pos").await;
    match mariadb {
        Ok(pos) => Ok(GtidSet::parse_mariadb(&pos.unwrap_or_default())),
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => {
            let executed: Option<String> = conn.query_first("SELECT @@gtid_executed").await?;
            Ok(GtidSet::parse_mysql(&executed.unwrap_or_default()))
        }
        Err(e) => Err(e),
    }
}

/// A master's own-domain position and its whole GTID set. MariaDB: the
/// domain is `@@gtid_domain_id` and the set `@@gtid_binlog_state`; MySQL:
/// `@@server_uuid` within `@@gtid_executed` (MariaDB does not know these
/// names: error 1193, then the MySQL query runs).
async fn gtid_position(
    conn: &mut Conn,
) -> Result<(Option<OwnPosition>, Option<GtidSet>), mysql_async::Error> {
    let mariadb: Result<Option<(u32, String)>, _> = conn
        .query_first("SELECT @@gtid_domain_id, @@gtid_binlog_state")
        .await;
    let (own, set) = match mariadb {
        Ok(Some((domain, state))) => {
            let set = GtidSet::parse_mariadb(&state);
            (Some(set.own_position_mariadb(domain)), set)
        }
        Ok(None) => return Ok((None, None)),
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => {
            let row: Option<(String, String)> = conn
                .query_first("SELECT @@server_uuid, @@gtid_executed")
                .await?;
            let Some((uuid, executed)) = row else {
                return Ok((None, None));
            };
            let set = GtidSet::parse_mysql(&executed);
            (Some(set.own_position_mysql(&uuid)), set)
        }
        Err(e) => return Err(e),
    };
    Ok((own, Some(set)))
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

/// A monitor-login connection to `node` (the coordinator fences with it).
pub(crate) async fn connect(
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

/// What `SHOW REPLICA STATUS` says of a replica.
struct ReplicaStatus {
    state: Replication,
    lag: Option<u64>,
    /// `host:port` of the source it replicates from.
    source: Option<String>,
}

/// MySQL 8.0.22+ and MariaDB 10.5+ know `SHOW REPLICA STATUS`; MySQL names
/// its columns Replica_*/…_Source, MariaDB keeps Slave_*/…_Master.
async fn replication_status(conn: &mut Conn) -> Result<ReplicaStatus, mysql_async::Error> {
    let rows: Vec<Row> = match conn.query("SHOW REPLICA STATUS").await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => {
            conn.query("SHOW SLAVE STATUS").await?
        }
        Err(e) => return Err(e),
    };
    let Some(row) = rows.first() else {
        // Not configured as a replica at all.
        return Ok(ReplicaStatus {
            state: Replication::Stopped,
            lag: None,
            source: None,
        });
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
    let source = match (
        text(&["Source_Host", "Master_Host"]),
        text(&["Source_Port", "Master_Port"]),
    ) {
        (Some(host), Some(port)) if !host.is_empty() => Some(format!("{host}:{port}")),
        _ => None,
    };
    let state = match (
        io.to_ascii_lowercase().as_str(),
        sql.eq_ignore_ascii_case("yes"),
    ) {
        ("yes", true) => Replication::Running,
        ("connecting", true) => Replication::Reconnecting,
        _ => Replication::Stopped,
    };
    Ok(ReplicaStatus { state, lag, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_is_alive_and_silence_is_not() {
        let busy = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1040,
            message: "Too many connections".into(),
            state: "08004".into(),
        });
        assert_eq!(
            CheckFailure::of(busy),
            CheckFailure::Answered("ERROR 1040: Too many connections".into())
        );
        let refused = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(matches!(CheckFailure::of(refused), CheckFailure::Silent(_)));
    }
}
