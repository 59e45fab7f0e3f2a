//! Fencing: splitrail setting `read_only` on a master itself, with the
//! monitor's login, so that a master that is not the writer refuses
//! writes whoever sends them (another instance that has not followed yet,
//! an open transaction, an app that bypasses the proxy).

use crate::config::{BackendTlsConfig, MonitorConfig};
use crate::topology::Node;
use mysql_async::prelude::Queryable;
use std::time::Duration;

/// Time allowed for setting read_only on one node.
pub const FENCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets (`on`) or clears `read_only` on `node`, within [`FENCE_TIMEOUT`].
/// `SET GLOBAL read_only = ON` waits for commits in progress, so once it
/// returns the node's GTID position is final.
pub async fn set_read_only(
    node: &Node,
    monitor: &MonitorConfig,
    tls: &BackendTlsConfig,
    on: bool,
) -> Result<(), String> {
    let work = async {
        let mut conn = crate::monitor::connect(node, monitor, tls).await?;
        let sql = if on {
            "SET GLOBAL read_only = ON"
        } else {
            "SET GLOBAL read_only = OFF"
        };
        conn.query_drop(sql).await?;
        conn.disconnect().await?;
        Ok::<(), mysql_async::Error>(())
    };
    bounded(work).await
}

/// `@@read_only` of `node`, read now (the monitor's last verdict may be an
/// interval old).
pub async fn is_read_only(
    node: &Node,
    monitor: &MonitorConfig,
    tls: &BackendTlsConfig,
) -> Result<bool, String> {
    let work = async {
        let mut conn = crate::monitor::connect(node, monitor, tls).await?;
        let on: Option<i64> = conn.query_first("SELECT @@read_only").await?;
        conn.disconnect().await?;
        Ok::<bool, mysql_async::Error>(on.unwrap_or(0) != 0)
    };
    bounded(work).await
}

/// Runs `work` (statements splitrail sends with the monitor login) within
/// `limit`; an error or the timeout as one line of text.
pub(crate) async fn bounded_by<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, String> {
    bounded_by(FENCE_TIMEOUT, work).await
}
