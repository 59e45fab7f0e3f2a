//! Idle backend connections, per node.
//!
//! A connection goes back to its pool only after COM_RESET_CONNECTION
//! succeeded on it, so no client ever sees another client's session state
//! (variables, temporary tables, locks, transactions). The reset runs in a
//! background task so the returning session does not wait for it.

use super::conn::{BackendConn, BackendError, PoolKey, ServerGreeting};
use crate::tls::BackendTls;
use crate::topology::Node;
use prometheus::IntGauge;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Connections idle longer than this are pinged before use.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

pub struct Pools {
    /// Idle connections, indexed by node id. A std `Mutex`: it is held only
    /// to push or pop a connection, never across an `.await`.
    idle: Vec<Mutex<Vec<BackendConn>>>,
    max_idle_per_node: usize,
    connect_timeout: Duration,
    /// TLS towards backends (`[backend_tls]`), if any.
    tls: Option<BackendTls>,
    /// The first greeting any backend sent; what clients are shown.
    greeting: OnceLock<ServerGreeting>,
    /// Open connections per node (the `backend_connections` metric).
    open: Vec<IntGauge>,
}

impl Pools {
    /// `open`: one gauge per node, counting its open connections.
    pub fn new(
        open: Vec<IntGauge>,
        max_idle_per_node: usize,
        connect_timeout: Duration,
        tls: Option<BackendTls>,
    ) -> Pools {
        Pools {
            tls,
            idle: open.iter().map(|_| Mutex::new(Vec::new())).collect(),
            max_idle_per_node,
            connect_timeout,
            greeting: OnceLock::new(),
            open,
        }
    }

    pub fn greeting(&self) -> Option<&ServerGreeting> {
        self.greeting.get()
    }

    pub fn remember_greeting(&self, greeting: ServerGreeting) {
        let _ = self.greeting.set(greeting);
    }

    /// An idle connection for `key` whose default database can serve a
    /// session on `db`, or a new one.
    ///
    /// A connection with a database selected cannot be returned to "no
    /// database" (there is no such command), so sessions without a database
    /// only take connections that never selected one.
    pub async fn checkout(
        &self,
        node: &Node,
        key: &PoolKey,
        password: &str,
        db: Option<&str>,
    ) -> Result<BackendConn, BackendError> {
        while let Some(mut conn) = self.take_idle(node.id, key, db) {
            if conn.is_broken() {
                continue;
            }
            if conn.idle_for() < PING_IDLE_AFTER {
                return Ok(conn);
            }
            // Idle for a while: make sure the server still answers. One that
            // does not (frozen, or a dead network path) counts as
            // unreachable, so the caller fails over now instead of sending a
            // statement into the void.
            if conn.answers_ping(self.connect_timeout).await {
                return Ok(conn);
            }
            return Err(BackendError::Timeout {
                addr: node.addr.clone(),
                timeout: self.connect_timeout,
            });
        }
        let (mut conn, greeting) = BackendConn::connect(
            node.id,
            &node.addr,
            key,
            password,
            self.connect_timeout,
            self.tls.as_ref(),
        )
        .await?;
        self.remember_greeting(greeting);
        conn.count_in(self.open[node.id].clone());
        Ok(conn)
    }

    fn take_idle(&self, node: usize, key: &PoolKey, db: Option<&str>) -> Option<BackendConn> {
        let mut idle = self.idle[node].lock().unwrap_or_else(|p| p.into_inner());
        let usable = |c: &BackendConn| &c.key == key && (db.is_some() || c.db.is_none());
        // Prefer a connection already on the session's database.
        let pos = idle
            .iter()
            .rposition(|c| usable(c) && c.db.as_deref() == db)
            .or_else(|| idle.iter().rposition(usable))?;
        Some(idle.swap_remove(pos))
    }

    /// Returns a connection that finished its last response cleanly; it is
    /// reset in the background and kept if the pool has room.
    pub fn checkin(self: &Arc<Self>, mut conn: BackendConn) {
        let pools = Arc::clone(self);
        // Unread bytes mean the connection is mid-response (or the server
        // hung up): it can never be reused.
        if conn.is_broken() {
            return;
        }
        tokio::spawn(async move {
            if conn.reset().await.is_err() {
                return;
            }
            let mut idle = pools.idle[conn.node]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if idle.len() < pools.max_idle_per_node {
                idle.push(conn);
            }
        });
    }

    pub fn idle_count(&self, node: usize) -> usize {
        self.idle[node]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
