//! Opt-in `failover.repoint_replicas`: after the writer moved, the
//! replicas that replicated from the old writer are re-pointed to the new
//! one by GTID, so they become fresh again instead of staying frozen at the
//! old writer's last position (and getting no reads, see
//! `Snapshot::can_read`).
//!
//! MariaDB: `CHANGE MASTER TO MASTER_HOST=…, MASTER_PORT=…,
//! MASTER_USE_GTID=slave_pos`; MySQL: `CHANGE REPLICATION SOURCE TO …,
//! SOURCE_AUTO_POSITION=1`. The other settings (replication user,
//! password, TLS) stay as they were. The address is the new writer's
//! `addr` from splitrail's config. Needs the monitor login to hold
//! REPLICATION SLAVE ADMIN (MariaDB 10.5.1+) or SUPER (MySQL:
//! REPLICATION_SLAVE_ADMIN).
//!
//! Who does it: a single instance, when its writer changes; with
//! coordination, only the instance whose compare-and-swap moved the
//! writer record.

use crate::config::Role;
use crate::topology::{Node, NodeId};
use crate::Context;
use mysql_async::prelude::Queryable;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed for re-pointing one replica.
const REPOINT_TIMEOUT: Duration = Duration::from_secs(5);

/// Re-points every replica whose source is `from` to `to` (a no-op unless
/// `failover.repoint_replicas`).
pub async fn repoint_replicas(ctx: &Context, from: NodeId, to: NodeId) {
    if !ctx.config.failover.repoint_replicas || from == to {
        return;
    }
    let snap = ctx.topology.load();
    let replicas: Vec<Node> = snap
        .nodes
        .iter()
        .filter(|n| n.role == Role::Replica && snap.status[n.id].source == Some(from))
        .cloned()
        .collect();
    let (old, new) = (snap.node(from).name.clone(), snap.node(to).clone());
    drop(snap);
    for replica in replicas {
        match repoint(ctx, &replica, &new).await {
            Ok(()) => {
                tracing::warn!(replica = %replica.name, from = %old, to = %new.name, "re-pointed a replica of the old writer to the new one (failover.repoint_replicas)")
            }
            Err(e) => {
                tracing::error!(replica = %replica.name, to = %new.name, error = %e, "could not re-point a replica of the old writer; it gets no reads while its source is down")
            }
        }
    }
}

/// Single instance: re-points replicas whenever the writer changes.
pub async fn follow_writer(ctx: Arc<Context>) {
    let mut writer = ctx.topology.load().writer();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        let now = ctx.topology.load().writer();
        if let (Some(from), Some(to)) = (writer, now) {
            if from != to {
                repoint_replicas(&ctx, from, to).await;
            }
        }
        if now.is_some() {
            writer = now;
        }
    }
}

async fn repoint(ctx: &Context, replica: &Node, to: &Node) -> Result<(), String> {
    let (host, port) = to
        .addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{}'s address {:?} has no port", to.name, to.addr))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{}'s address {:?} has no port", to.name, to.addr))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .replace('\'', "");
    let work = async {
        let mut conn =
            crate::monitor::connect(replica, &ctx.config.monitor, &ctx.config.backend_tls).await?;
        let version: Option<String> = conn.query_first("SELECT @@version").await?;
        let statements = if version.is_some_and(|v| v.contains("MariaDB")) {
            [
                "STOP SLAVE".to_string(),
                format!("CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT={port}, MASTER_USE_GTID=slave_pos"),
                "START SLAVE".to_string(),
            ]
        } else {
            [
                "STOP REPLICA".to_string(),
                format!("CHANGE REPLICATION SOURCE TO SOURCE_HOST='{host}', SOURCE_PORT={port}, SOURCE_AUTO_POSITION=1"),
                "START REPLICA".to_string(),
            ]
        };
        for sql in statements {
            conn.query_drop(sql).await?;
        }
        conn.disconnect().await?;
        Ok::<(), mysql_async::Error>(())
    };
    crate::fence::bounded_by(REPOINT_TIMEOUT, work).await
}
