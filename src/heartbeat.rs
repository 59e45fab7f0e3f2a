//! Opt-in heartbeat lag (`monitor.heartbeat`): the writer's monitor
//! stamps a row of `splitrail.heartbeat` every interval, and a replica's
//! lag is the age of the newest stamp it has applied. Seconds_Behind_Master
//! lies exactly when it matters: with the source black-holed, the IO
//! thread says `Yes` and the lag 0 until `slave_net_timeout` (60 s), while
//! the replica serves data frozen at the cut; a heartbeat's age grows by
//! one second per second. (pt-heartbeat's method; like it, this needs the
//! servers' clocks in step.)
//!
//! One row per splitrail instance (several instances stamp the writer
//! each; the newest stamp counts). The monitor login needs CREATE, INSERT,
//! UPDATE and SELECT on `splitrail.*` (the table is created on the writer
//! and reaches the others by replication).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS splitrail.heartbeat (
    instance VARCHAR(255) NOT NULL PRIMARY KEY,
    ts TIMESTAMP(6) NOT NULL
)";

/// Stamps this instance's row on the writer (creating the table if it is
/// missing).
pub async fn beat(conn: &mut Conn, instance: &str) -> Result<(), mysql_async::Error> {
    let stamp = "INSERT INTO splitrail.heartbeat (instance, ts) VALUES (?, NOW(6)) \
                 ON DUPLICATE KEY UPDATE ts = NOW(6)";
    match conn.exec_drop(stamp, (instance,)).await {
        // 1049 unknown database, 1146 unknown table.
        Err(mysql_async::Error::Server(e)) if e.code == 1049 || e.code == 1146 => {
            conn.query_drop("CREATE DATABASE IF NOT EXISTS splitrail")
                .await?;
            conn.query_drop(CREATE).await?;
            conn.exec_drop(stamp, (instance,)).await
        }
        other => other,
    }
}

/// Seconds since the newest stamp this server has applied; `None` when it
/// has none (no table yet, no right to read it): the caller falls back to
/// Seconds_Behind_Master.
pub async fn age(conn: &mut Conn) -> Result<Option<u64>, mysql_async::Error> {
    let age: Result<Option<Option<i64>>, _> = conn
        .query_first("SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), NOW(6)) FROM splitrail.heartbeat")
        .await;
    match age {
        Ok(micros) => Ok(micros.flatten().map(|us| (us.max(0) / 1_000_000) as u64)),
        Err(mysql_async::Error::Server(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
