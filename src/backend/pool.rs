//! Idle backend connections, per node.
//!
//! A connection goes back to its pool only after COM_RESET_CONNECTION
//! succeeded on it, so no client ever sees another client's session state
//! (variables, temporary tables, locks, transactions). The reset runs in a
//! background task so the returning session does not wait for it.
//!
//! With `pool.max_per_node`, each node has that many slots (a semaphore):
//! a connection holds one from connect to close, idle or not. A session
//! that finds none free first closes an idle connection of another kind
//! (user, database, capabilities), then waits up to `pool.queue_timeout_ms`
//! and gets a clear error instead of waiting forever.

use super::conn::{BackendConn, BackendError, PoolKey, ServerGreeting};
use super::credential::Credential;
use super::cutoff::NodeSockets;
use crate::config::PoolConfig;
use crate::tls::BackendTls;
use crate::topology::Node;
use prometheus::IntGauge;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Connections idle longer than this are pinged before use.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

pub struct Pools {
    /// Idle connections, indexed by node id. A std `Mutex`: it is held only
    /// to push or pop a connection, never across an `.await`.
    idle: Vec<Mutex<Vec<BackendConn>>>,
    max_idle_per_node: usize,
    /// `pool.fresh_defaults`.
    fresh_defaults: bool,
    connect_timeout: Duration,
    /// TLS towards backends (`[backend_tls]`), if any.
    tls: Option<BackendTls>,
    /// May ask a backend for its RSA key over plain TCP.
    allow_key_retrieval: bool,
    /// Connection slots per node (`pool.max_per_node`); `None`: no limit.
    slots: Option<Vec<Arc<Semaphore>>>,
    max_per_node: usize,
    queue_timeout: Duration,
    /// Signalled when a connection comes back idle (for queued sessions).
    returned: Vec<Notify>,
    /// The first greeting any backend sent; what clients are shown.
    greeting: OnceLock<ServerGreeting>,
    /// Open connections per node (the `backend_connections` metric).
    open: Vec<IntGauge>,
    /// Every open connection's socket per node, to cut off a node found down.
    sockets: Vec<Arc<NodeSockets>>,
}

impl Pools {
    /// `open`: one gauge per node, counting its open connections.
    pub fn new(
        open: Vec<IntGauge>,
        config: &PoolConfig,
        connect_timeout: Duration,
        tls: Option<BackendTls>,
        allow_key_retrieval: bool,
    ) -> Pools {
        let slots = (config.max_per_node > 0).then(|| {
            open.iter()
                .map(|_| Arc::new(Semaphore::new(config.max_per_node)))
                .collect()
        });
        Pools {
            tls,
            allow_key_retrieval,
            slots,
            max_per_node: config.max_per_node,
            returned: open.iter().map(|_| Notify::new()).collect(),
            queue_timeout: config.queue_timeout(),
            max_idle_per_node: config.max_idle_per_node,
            fresh_defaults: config.fresh_defaults,
            idle: open.iter().map(|_| Mutex::new(Vec::new())).collect(),
            connect_timeout,
            greeting: OnceLock::new(),
            sockets: open.iter().map(|_| Arc::default()).collect(),
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
        credential: &Credential,
        db: Option<&str>,
        queue: bool,
        defaults_since: Instant,
    ) -> Result<BackendConn, BackendError> {
        let key = &key.for_node(node);
        let Some(slots) = &self.slots else {
            if let Some(conn) = self.checkout_idle(node, key, db, defaults_since).await? {
                return Ok(conn);
            }
            return self.connect(node, key, credential, None).await;
        };
        let semaphore = &slots[node.id];
        let exhausted = |waited| BackendError::PoolExhausted {
            node: node.name.clone(),
            limit: self.max_per_node,
            waited,
        };
        let deadline = tokio::time::Instant::now() + self.queue_timeout;
        // One place in the semaphore's (FIFO) queue for the whole wait.
        let acquire = Arc::clone(semaphore).acquire_owned();
        tokio::pin!(acquire);
        loop {
            // Listening before looking: a connection that comes back idle
            // between the look and the wait is not missed.
            let returned = self.returned[node.id].notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(conn) = self.checkout_idle(node, key, db, defaults_since).await? {
                return Ok(conn);
            }
            if let Some(slot) = self.try_slot(node.id, semaphore) {
                return self.connect(node, key, credential, Some(slot)).await;
            }
            if !queue {
                return Err(exhausted(Duration::ZERO));
            }
            // Every slot is taken by a connection in use: wait for one to be
            // closed, or to come back idle (it may suit us, or be evicted).
            tokio::select! {
                slot = &mut acquire => {
                    return match slot {
                        Ok(slot) => self.connect(node, key, credential, Some(slot)).await,
                        // Only a closed semaphore errs; ours never close.
                        Err(_) => Err(exhausted(self.queue_timeout)),
                    };
                }
                () = &mut returned => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(exhausted(self.queue_timeout));
                }
            }
        }
    }

    /// A usable idle connection, if the pool has one, whose session
    /// variables come from the server's globals as they were at
    /// `defaults_since` or later (a new session sees a `SET GLOBAL` made
    /// while the connection sat in the pool, as it would directly).
    async fn checkout_idle(
        &self,
        node: &Node,
        key: &PoolKey,
        db: Option<&str>,
        defaults_since: Instant,
    ) -> Result<Option<BackendConn>, BackendError> {
        let unanswered = || BackendError::Timeout {
            addr: node.addr.clone(),
            timeout: self.connect_timeout,
        };
        while let Some(mut conn) = self.take_idle(node.id, key, db) {
            if conn.is_broken() {
                continue;
            }
            if self.fresh_defaults && conn.defaults_from < defaults_since {
                // Also proves the server answers: no ping needed.
                match tokio::time::timeout(self.connect_timeout, conn.reset()).await {
                    Ok(Ok(())) => return Ok(Some(conn)),
                    Ok(Err(_)) => continue,
                    Err(_) => return Err(unanswered()),
                }
            }
            if conn.idle_for() < PING_IDLE_AFTER {
                return Ok(Some(conn));
            }
            // Idle for a while: make sure the server still answers. One that
            // does not (frozen, or a dead network path) counts as
            // unreachable, so the caller fails over now instead of sending a
            // statement into the void.
            if conn.answers_ping(self.connect_timeout).await {
                return Ok(Some(conn));
            }
            return Err(unanswered());
        }
        Ok(None)
    }

    async fn connect(
        &self,
        node: &Node,
        key: &PoolKey,
        credential: &Credential,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<BackendConn, BackendError> {
        // Boxed: the handshake's state (TLS, authentication) is large, and
        // unboxed it would make every future that may connect, i.e. every
        // statement's, that much larger to build and move.
        let (mut conn, greeting) = Box::pin(BackendConn::connect(
            node.id,
            &node.addr,
            key,
            credential,
            self.connect_timeout,
            self.tls.as_ref(),
            self.allow_key_retrieval,
        ))
        .await?;
        self.remember_greeting(greeting);
        conn.count_in(self.open[node.id].clone());
        conn.slot = slot;
        if let Some(tcp) = conn.tcp() {
            conn.watched = Some(self.sockets[node.id].watch(tcp)?);
        }
        Ok(conn)
    }

    /// Shuts down every open connection to `node` (the monitor found it
    /// down): statements waiting on it end at once instead of waiting for
    /// a node that does not answer. Returns how many were cut.
    pub fn cut_off(&self, node: usize) -> usize {
        self.sockets.get(node).map_or(0, |s| s.cut_off())
    }

    /// A free slot at once, closing an idle connection (of another user or
    /// database: a matching one would have been taken) to make room.
    fn try_slot(&self, node: usize, semaphore: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(slot) = Arc::clone(semaphore).try_acquire_owned() {
                return Some(slot);
            }
            if !self.evict_idle(node) {
                return None;
            }
        }
    }

    /// Closes the oldest idle connection of `node`; false when there is none.
    fn evict_idle(&self, node: usize) -> bool {
        let mut idle = self.idle[node].lock().unwrap_or_else(|p| p.into_inner());
        if idle.is_empty() {
            return false;
        }
        drop(idle.remove(0));
        true
    }

    fn take_idle(&self, node: usize, key: &PoolKey, db: Option<&str>) -> Option<BackendConn> {
        let mut idle = self.idle[node].lock().unwrap_or_else(|p| p.into_inner());
        let usable = |c: &BackendConn| c.key.serves(key) && (db.is_some() || c.db.is_none());
        // Prefer a connection already on the session's database.
        let pos = idle
            .iter()
            .rposition(|c| usable(c) && c.db.as_deref() == db)
            .or_else(|| idle.iter().rposition(usable))?;
        Some(idle.swap_remove(pos))
    }

    /// Returns a connection that finished its last response cleanly; it is
    /// reset in the background and kept if the pool has room.
    /// Gives a connection back: reset (in the background) and idled.
    pub fn checkin(self: &Arc<Self>, conn: BackendConn) {
        let pools = Arc::clone(self);
        tokio::spawn(async move { pools.checkin_now(conn).await });
    }

    /// [`Pools::checkin`], returning once the reset is done: what the
    /// connection held (locks, temporary tables, a transaction) is gone.
    pub async fn checkin_now(&self, mut conn: BackendConn) {
        // Unread bytes mean the connection is mid-response (or the server
        // hung up): it can never be reused.
        if conn.is_broken() {
            return;
        }
        // A node that stopped answering must not keep the slot forever.
        match tokio::time::timeout(self.connect_timeout, conn.reset()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        let node = conn.node;
        let mut idle = self.idle[node].lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle_per_node {
            idle.push(conn);
        }
        drop(idle);
        // A session queued for a slot may take or evict it.
        self.returned[node].notify_one();
    }

    pub fn idle_count(&self, node: usize) -> usize {
        self.idle[node]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
