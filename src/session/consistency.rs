//! Read-your-writes for one session (`routing.consistency`).
//!
//! - `window`: reads go to the writer for `window_ms` after a write;
//! - `causal`: after a write the session learns its GTID from the writer;
//!   a replica serves the next read only after it has applied that GTID
//!   (waited for once per replica connection, bounded by
//!   `causal_timeout_ms`), otherwise the read goes to the writer.
//! - `global`: the same wait, for the writer's position as of the read:
//!   every write any session of this instance had acknowledged is on the
//!   replica (a PHP request's POST on one connection, its redirected GET on
//!   the next). See [`GlobalWrites`].

use super::Session;
use crate::config::Consistency;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// This instance's statements on writers for `global` sessions, so that a
/// read knows whether the writer's position it last read still covers
/// every write acknowledged since.
///
/// A write's OK reaches its client only after the write committed, and
/// after `started` counted it. A position read while no such statement was
/// in flight (`started == finished`) covers every one acknowledged so far;
/// it stays good for later reads while `started` has not moved. Otherwise
/// a read asks the writer again (a statement in flight may be
/// acknowledged any moment; one acknowledged after the read arrived need
/// not be visible to it).
#[derive(Debug, Default)]
pub struct GlobalWrites {
    started: AtomicU64,
    finished: AtomicU64,
    /// `started` when the cached position was read with nothing in
    /// flight, and that position.
    known: Mutex<Option<(u64, String)>>,
}

/// A statement of a `global` session running on the writer.
pub struct OnWriter<'a>(&'a GlobalWrites);

impl Drop for OnWriter<'_> {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl GlobalWrites {
    pub fn start(&self) -> OnWriter<'_> {
        self.started.fetch_add(1, Ordering::SeqCst);
        OnWriter(self)
    }

    /// The cached position, if it still covers every acknowledged write.
    fn cached(&self) -> Option<String> {
        let started = self.started.load(Ordering::SeqCst);
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .as_ref()
            .filter(|(at, _)| *at == started)
            .map(|(_, pos)| pos.clone())
    }

    /// (`started`, whether nothing was in flight) before reading the
    /// writer's position.
    fn snapshot(&self) -> (u64, bool) {
        let finished = self.finished.load(Ordering::SeqCst);
        let started = self.started.load(Ordering::SeqCst);
        (started, started == finished)
    }

    fn remember(&self, started: u64, position: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.as_ref().is_none_or(|(at, _)| *at < started) {
            *known = Some((started, position.to_string()));
        }
    }
}

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

    /// Everything the writer has committed (every domain).
    fn writer_position_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SELECT @@global.gtid_binlog_pos",
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
            // Reads ask the writer's position instead (see GlobalWrites).
            Consistency::Global => {}
        }
    }

    /// `global`: the writer's position as of now, covering every write
    /// acknowledged to any session (see [`GlobalWrites`]); `None` when it
    /// cannot be read.
    async fn global_position(&mut self) -> Option<String> {
        let writes = &self.ctx.global_writes;
        if let Some(position) = writes.cached() {
            return Some(position);
        }
        let (started, quiet) = writes.snapshot();
        let i = self.writer_conn().await.ok()?;
        let query = self.flavor().writer_position_query();
        match self.backends[i].query_scalar(query).await {
            Ok(position) => {
                let position = position.unwrap_or_default();
                if quiet {
                    self.ctx.global_writes.remember(started, &position);
                }
                Some(position)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the writer's GTID position");
                None
            }
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

    /// Causal and global modes: makes sure replica connection `i` has
    /// applied the session's last write (causal) or every write
    /// acknowledged so far (global); its index then (asking the writer may
    /// have moved it), or `None` when it did not within the timeout (the
    /// read then goes to the writer).
    pub(super) async fn caught_up(&mut self, i: usize) -> Option<usize> {
        // Reduced-functionality mode: with no writer, the replicas are the
        // only data there is; reads are served rather than refused.
        if self.ctx.topology.load().writer().is_none() {
            return Some(i);
        }
        let replica = self.backends[i].node;
        let position = if self.rw.policy == Consistency::Global {
            Some(self.global_position().await?)
        } else {
            if self.rw.position_stale && !self.refresh_position().await {
                return None;
            }
            self.rw.pending.clone()
        };
        let i = self.held(replica)?;
        let Some(position) = position.filter(|p| !p.is_empty()) else {
            return Some(i);
        };
        if self.backends[i].caught_up_to.as_deref() == Some(position.as_str()) {
            return Some(i);
        }
        let timeout = Duration::from_millis(self.ctx.config.routing.causal_timeout_ms);
        let query = self.flavor().wait_query(&position, timeout);
        // Both functions answer 0 when the position was reached.
        let reached =
            matches!(self.backends[i].query_scalar(&query).await, Ok(Some(v)) if v == "0");
        if reached {
            self.backends[i].caught_up_to = Some(position);
        }
        reached.then_some(i)
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
