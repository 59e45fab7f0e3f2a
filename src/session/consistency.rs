//! Read-your-writes for one session (`routing.consistency`).
//!
//! - `window`: reads go to the writer for `window_ms` after a write;
//! - `causal`: after a write the session learns its GTID from the writer;
//!   a replica serves the next read only after it has applied that GTID
//!   (waited for once per replica connection, bounded by
//!   `causal_timeout_ms`), otherwise the read goes to the writer.

use super::Session;
use crate::config::Consistency;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ReadYourWrites {
    pub policy: Consistency,
    last_write: Option<Instant>,
    /// The GTID (MariaDB) or GTID set (MySQL) a replica must have applied
    /// before it may serve this session.
    pending: Option<String>,
    /// A write happened since `pending` was read from the writer. The
    /// position is fetched lazily, right before the next replica read: a
    /// session that never reads after writing pays nothing, and splitrail's
    /// own SELECT never runs between a client's statement and the
    /// FOUND_ROWS()/ROW_COUNT() that asks about it.
    position_stale: bool,
}

impl ReadYourWrites {
    pub fn new(policy: Consistency) -> Self {
        ReadYourWrites {
            policy,
            last_write: None,
            pending: None,
            position_stale: false,
        }
    }
}

/// How to ask a server for the session's position and to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    fn position_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SELECT @@last_gtid",
            Flavor::MySql => "SELECT @@global.gtid_executed",
        }
    }

    fn wait_query(self, position: &str, timeout: Duration) -> String {
        let position = position.replace('\'', "");
        let secs = timeout.as_secs_f64();
        match self {
            Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{position}', {secs:.3})"),
            Flavor::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{position}', {secs:.3})"),
        }
    }
}

impl Session {
    fn flavor(&self) -> Flavor {
        let mariadb = self
            .ctx
            .pools
            .greeting()
            .is_some_and(|g| String::from_utf8_lossy(&g.version).contains("MariaDB"));
        if mariadb {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// A write just succeeded on the writer and no transaction is open.
    pub(super) async fn note_write(&mut self) {
        match self.rw.policy {
            Consistency::None => {}
            Consistency::Window => self.rw.last_write = Some(Instant::now()),
            Consistency::Causal => self.rw.position_stale = true,
        }
    }

    /// Makes sure the session's last write position is known (read from
    /// the writer connection) before that connection is given up. False
    /// when it cannot be read.
    pub(super) async fn settle_position(&mut self) -> bool {
        !self.rw.position_stale || self.refresh_position().await
    }

    /// Reads the session's last write position from its writer connection.
    /// False when it cannot (then the read goes to the writer).
    async fn refresh_position(&mut self) -> bool {
        let Some(i) = self.writer_index() else {
            return false;
        };
        let query = self.flavor().position_query();
        match self.backends[i].query_scalar(query).await {
            Ok(position) => {
                self.rw.pending = position.filter(|p| !p.is_empty());
                self.rw.position_stale = false;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the session's GTID position");
                false
            }
        }
    }

    /// False while the session's reads must stay on the writer (window).
    pub(super) fn replicas_allowed(&self) -> bool {
        if self.ctx.topology.load().writer().is_none() {
            return true;
        }
        let window = Duration::from_millis(self.ctx.config.routing.window_ms);
        self.rw.last_write.is_none_or(|at| at.elapsed() >= window)
    }

    /// Causal mode: makes sure replica connection `i` has applied the
    /// session's last write. False when it did not within the timeout (the
    /// read then goes to the writer).
    pub(super) async fn caught_up(&mut self, i: usize) -> bool {
        // Reduced-functionality mode: with no writer, the replicas are the
        // only data there is; reads are served rather than refused.
        if self.ctx.topology.load().writer().is_none() {
            return true;
        }
        if self.rw.position_stale && !self.refresh_position().await {
            return false;
        }
        let Some(position) = self.rw.pending.clone() else {
            return true;
        };
        if self.backends[i].caught_up_to.as_deref() == Some(position.as_str()) {
            return true;
        }
        let timeout = Duration::from_millis(self.ctx.config.routing.causal_timeout_ms);
        let query = self.flavor().wait_query(&position, timeout);
        // Both functions answer 0 when the position was reached.
        let reached =
            matches!(self.backends[i].query_scalar(&query).await, Ok(Some(v)) if v == "0");
        if reached {
            self.backends[i].caught_up_to = Some(position);
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_queries_are_well_formed() {
        let q = Flavor::MariaDb.wait_query("1-1-42", Duration::from_millis(200));
        assert_eq!(q, "SELECT MASTER_GTID_WAIT('1-1-42', 0.200)");
        let q = Flavor::MySql.wait_query("uuid:1-5", Duration::from_millis(1500));
        assert_eq!(q, "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 1.500)");
        assert!(!Flavor::MariaDb
            .wait_query("x'; DROP", Duration::ZERO)
            .contains("x'"));
    }
}
