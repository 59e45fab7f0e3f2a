//! One client session: its transaction state, pins and recorded session
//! state, the backend connections it holds, and the execution of each
//! command on the backend the router chose.
//!
//! Invariants:
//! - at most one backend connection per node is held, and a statement is
//!   only sent on a connection whose state (database, SET statements,
//!   multi-statement option) matches the session's;
//! - a statement that might have run is never sent again: only statements
//!   known not to have reached a backend, or reads, are retried;
//! - transaction and autocommit state come from the writer's status flags.

use crate::backend::conn::{BackendStmt, CommandError};
use crate::backend::relay::{self, Outcome, RelayError, ResponseKind, Sink};
use crate::backend::{BackendConn, BackendError, PoolKey};
use crate::protocol::packets::{self, command, ErrInfo, OkInfo};
use crate::protocol::{MySqlError, PacketStream};
use crate::router::session_vars::WaitTimeout;
use crate::router::{self, Route, SessionFlags, StatementKind};
use crate::topology::{NodeId, ReplicaChoice};
use crate::Context;
use bytes::Bytes;
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use prepared::{statement_id, with_statement_id, ExecuteLayout, Statements};
use std::io;
use std::sync::Arc;

mod change_user;
pub mod consistency;
mod kill;
// Public for the fuzz targets (fuzz/fuzz_targets/stmt_execute.rs).
pub mod prepared;

/// Session state recorded on the writer and replayed, lazily and once, on
/// every other backend connection the session uses.
#[derive(Debug, Default)]
pub struct SessionState {
    pub db: Option<String>,
    /// Replayable `SET …` statements in the order they ran.
    pub sets: Vec<Bytes>,
    /// COM_SET_OPTION: multi-statements on (true) or off (false).
    pub multi_option: Option<bool>,
    /// The session's `wait_timeout`, once it set one: splitrail closes the
    /// client after that long idle, as the server would (its own timeout
    /// only ever closes a pooled backend connection).
    pub wait_timeout: Option<std::time::Duration>,
}

/// Why a command could not be completed normally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client went away or its socket failed: end the session quietly.
    #[error("client connection: {0}")]
    ClientGone(io::Error),
    /// Report this error to the client; the session continues.
    #[error("{0}")]
    Report(MySqlError),
    /// A backend said no (e.g. while replaying state); report its error.
    #[error("backend error {}", .0.code)]
    Backend(ErrInfo),
    /// The backend connection broke before any byte of the response
    /// reached the client. `retryable` when the statement is known not to
    /// have been delivered.
    #[error("backend {node} lost: {source}")]
    BackendLost {
        node: NodeId,
        retryable: bool,
        source: io::Error,
    },
}

impl From<CommandError> for SessionError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Server(err) => SessionError::Backend(err),
            CommandError::Io(e) => {
                SessionError::Report(MySqlError::no_backend(&format!("session state ({e})")))
            }
            CommandError::Unexpected => {
                SessionError::Report(MySqlError::no_backend("session state"))
            }
        }
    }
}

/// What the command loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

pub struct Session {
    ctx: Arc<Context>,
    pub client: PacketStream,
    key: PoolKey,
    /// What backends are logged in to with for this session's user.
    credential: crate::backend::Credential,
    client_caps: CapabilityFlags,
    /// This connection's auth challenge (for COM_CHANGE_USER).
    scramble: [u8; 20],
    /// The client's address (accounts' host patterns, error messages).
    peer: std::net::IpAddr,
    /// The client connection is TLS (for `users.require_tls` on
    /// COM_CHANGE_USER).
    tls: bool,
    flags: SessionFlags,
    state: SessionState,
    /// Held backend connections, at most one per node.
    backends: Vec<BackendConn>,
    /// The node whose connection carries this session's writes.
    session_writer: Option<NodeId>,
    /// Node that ran the previous statement (for SHOW WARNINGS & co).
    last_node: Option<NodeId>,
    /// Prepared statements (binary protocol).
    stmts: Statements,
    /// Read-your-writes state.
    rw: consistency::ReadYourWrites,
    /// Why the session is pinned to the writer (`flags.pinned` = any).
    pins: Pins,
    /// A READ ONLY transaction open on this replica.
    replica_tx: Option<NodeId>,
    /// The replica this session reads from while it qualifies.
    replica: Option<ReplicaChoice>,
    /// LAST_INSERT_ID() as the writer's OK packets last reported it, so a
    /// session whose connections were released still gets it.
    last_insert_id: u64,
    /// The next writer connection must first be told `last_insert_id`.
    restore_insert_id: bool,
    /// This session's place under its user's `max_connections`.
    user_slot: crate::UserSlot,
    /// Its id and entry in the instance's session registry (KILL).
    registration: crate::sessions::Registration,
    /// When the session began (or changed user): its backend connections'
    /// session variables must come from the globals of then or later.
    started: std::time::Instant,
}

/// The flags of a session that starts now (or starts over): as the server
/// starts one, with autocommit off when its global autocommit is (from
/// the writer's greeting, read at start-up).
fn fresh_flags(ctx: &Context) -> SessionFlags {
    SessionFlags {
        autocommit: ctx
            .pools
            .greeting()
            .is_none_or(|g| g.status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)),
        ..SessionFlags::default()
    }
}

/// Writer-only state held by a session.
#[derive(Debug, Default, Clone, Copy)]
struct Pins {
    sticky: bool,
    table_locks: bool,
    named_locks: bool,
    /// `SET TRANSACTION …` / `SET insert_id = …` wait on the writer
    /// connection for the next statement.
    next_statement: bool,
}

impl Pins {
    fn any(self) -> bool {
        self.sticky || self.table_locks || self.named_locks || self.next_statement
    }
}

impl Session {
    /// A session for a client that logged in as `login`.
    pub fn new(
        ctx: Arc<Context>,
        client: PacketStream,
        login: &crate::frontend::handshake::Login,
        user_slot: crate::UserSlot,
        registration: crate::sessions::Registration,
    ) -> Session {
        // The client's address travels to nodes with `proxy_protocol`.
        let named = ctx.config.nodes.iter().any(|n| n.proxy_protocol);
        let key = PoolKey::new(login.user.name.as_str().into(), login.caps, login.collation)
            .with_mariadb_caps(login.mariadb_caps)
            .with_client(named.then_some(login.client));
        let policy = login
            .user
            .consistency
            .unwrap_or(ctx.config.routing.consistency);
        let flags = fresh_flags(&ctx);
        Session {
            ctx,
            client,
            key,
            credential: login.credential.clone(),
            client_caps: login.caps,
            scramble: login.scramble,
            tls: login.tls,
            peer: login.client.source.ip(),
            flags,
            pins: Pins::default(),
            replica_tx: None,
            replica: None,
            last_insert_id: 0,
            restore_insert_id: false,
            state: SessionState::default(),
            backends: Vec::new(),
            session_writer: None,
            last_node: None,
            stmts: Statements::default(),
            rw: consistency::ReadYourWrites::new(policy),
            user_slot,
            registration,
            started: std::time::Instant::now(),
        }
    }

    /// How long the client may stay idle: `proxy.client_idle_timeout_ms`,
    /// or the session's own `wait_timeout` when it set a shorter one.
    pub fn idle_limit(&self) -> Option<std::time::Duration> {
        let configured = self.ctx.config.proxy.client_idle_timeout();
        // Until the session sets its own: the server's global value, as
        // the server gives a new session (interactive clients get
        // interactive_timeout).
        let server = self.ctx.server_timeouts.get().map(|t| {
            if self
                .client_caps
                .contains(CapabilityFlags::CLIENT_INTERACTIVE)
            {
                t.interactive
            } else {
                t.wait
            }
        });
        match (configured, self.state.wait_timeout.or(server)) {
            (Some(c), Some(w)) => Some(c.min(w)),
            (c, w) => c.or(w),
        }
    }

    /// Cancelled when another session KILLs this one.
    pub fn killed(&self) -> &tokio_util::sync::CancellationToken {
        self.registration.handle.killed()
    }

    /// Selects the database the client asked for at connect time; the
    /// writer checks that it exists and is allowed.
    pub async fn select_initial_db(&mut self, db: String) -> Result<(), SessionError> {
        // Recorded first, so the pool hands out a connection already on
        // this database when it has one; otherwise state sync runs
        // COM_INIT_DB, which checks that it exists and is allowed. Without
        // a writer (reduced-functionality mode), or when this instance
        // cannot reach the one the cluster names, a replica checks it.
        self.state.db = Some(db);
        let writer = self.ctx.topology.writer();
        let route = match writer {
            Some(w) if self.ctx.topology.load().is_healthy(w) => Route::Writer,
            _ => Route::Replica,
        };
        match self.conn_for_route(&route).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.state.db = None;
                Err(e)
            }
        }
    }

    /// Runs one client command (its whole payload, command byte first).
    pub async fn handle(&mut self, payload: Bytes, reply_seq: u8) -> Result<Next, SessionError> {
        let Some(&cmd) = payload.first() else {
            self.report(reply_seq, &MySqlError::malformed_packet())
                .await?;
            return Ok(Next::Close);
        };
        tracing::trace!(command = cmd, len = payload.len(), "command");
        let result = match cmd {
            command::QUIT => return Ok(Next::Close),
            command::QUERY => match kill::kill_statement(&payload) {
                Some(k) => match self.kill(k, &payload, ResponseKind::Query, reply_seq).await {
                    Ok(next) => return Ok(next),
                    Err(e) => Err(e),
                },
                None => self.query(payload).await,
            },
            command::INIT_DB => self.init_db(payload).await,
            command::PING => self.ping(&payload, reply_seq).await,
            command::FIELD_LIST => {
                let route = router::route(&router::Classification::read(), self.flags);
                self.run(route, &payload, ResponseKind::FieldList)
                    .await
                    .map(drop)
            }
            // One answer packet each; the writer checks the privileges
            // (COM_REFRESH: RELOAD; COM_DEBUG: SUPER) as it would directly.
            command::STATISTICS | command::REFRESH | command::DEBUG => self
                .run(Route::Writer, &payload, ResponseKind::Single)
                .await
                .map(drop),
            command::SET_OPTION => self.set_option(payload).await,
            command::RESET_CONNECTION => self.reset_connection(reply_seq).await,
            command::STMT_PREPARE => self.stmt_prepare(payload).await,
            command::STMT_EXECUTE => self.stmt_execute(payload).await,
            command::STMT_BULK_EXECUTE if self.bulk_allowed() => {
                self.stmt_bulk_execute(payload).await
            }
            // SEND_LONG_DATA and CLOSE never get a response, not even an error.
            command::STMT_SEND_LONG_DATA => {
                self.stmt_long_data(payload);
                return Ok(Next::Continue);
            }
            command::STMT_CLOSE => {
                self.stmt_close(&payload).await;
                return Ok(Next::Continue);
            }
            command::STMT_RESET => self.stmt_reset(&payload, reply_seq).await,
            command::STMT_FETCH => self.stmt_fetch(&payload).await,
            command::CHANGE_USER => return self.change_user(&payload).await,
            command::PROCESS_KILL => match kill::parse_process_kill(&payload) {
                Some(k) => match self
                    .kill(k, &payload, ResponseKind::Single, reply_seq)
                    .await
                {
                    Ok(next) => return Ok(next),
                    Err(e) => Err(e),
                },
                None => Err(SessionError::Report(MySqlError::malformed_packet())),
            },
            other => Err(SessionError::Report(MySqlError::unknown_command(other))),
        };
        match result {
            Ok(()) => Ok(Next::Continue),
            Err(SessionError::ClientGone(e)) => Err(SessionError::ClientGone(e)),
            Err(e) => {
                self.report_error(reply_seq, e).await?;
                Ok(Next::Continue)
            }
        }
    }

    /// The single place where a failed command becomes an ERR packet.
    async fn report_error(&mut self, seq: u8, err: SessionError) -> Result<(), SessionError> {
        let mysql_err = match err {
            SessionError::Report(e) => e,
            SessionError::Backend(e) => MySqlError {
                code: e.code,
                state: e.state,
                message: e.message,
            },
            SessionError::BackendLost { node, .. } => {
                let name = self.ctx.topology.load().node(node).name.clone();
                MySqlError::outcome_unknown(&name)
            }
            SessionError::ClientGone(e) => return Err(SessionError::ClientGone(e)),
        };
        tracing::debug!(error = %mysql_err, "reporting error to client");
        self.report(seq, &mysql_err).await
    }

    async fn report(&mut self, seq: u8, err: &MySqlError) -> Result<(), SessionError> {
        self.client
            .send(seq, &err.to_packet())
            .await
            .map(drop)
            .map_err(SessionError::ClientGone)
    }

    pub(crate) fn status_flags(&self) -> u16 {
        let mut status = StatusFlags::empty();
        if self.flags.autocommit {
            status |= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.flags.in_transaction {
            status |= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        status.bits()
    }

    async fn reply_ok(&mut self, seq: u8) -> Result<(), SessionError> {
        let ok = packets::ok_packet(
            OkInfo {
                status: self.status_flags(),
                ..OkInfo::default()
            },
            self.client_caps,
        );
        self.client
            .send(seq, &ok)
            .await
            .map(drop)
            .map_err(SessionError::ClientGone)
    }

    /// COM_PING goes to the backend that ran the previous statement (a
    /// server's ping resets ROW_COUNT(), which clients such as
    /// mysql-connector-python rely on); with none yet, splitrail answers.
    async fn ping(&mut self, payload: &[u8], seq: u8) -> Result<(), SessionError> {
        if let Some(i) = self.last_node.and_then(|n| self.held(n)) {
            if !self.backends[i].is_broken() {
                return self
                    .send_and_relay(i, payload, ResponseKind::Single)
                    .await
                    .map(drop);
            }
        }
        self.reply_ok(seq).await
    }

    async fn query(&mut self, payload: Bytes) -> Result<(), SessionError> {
        let payload = self.with_session_id(payload);
        let sql = &payload[1..];
        let class = self.ctx.classifier.classify(sql);
        let route = router::route(&class, self.flags);
        tracing::trace!(?class, ?route, "routing");
        // A pending next-statement setting is consumed by this statement
        // (pinned, it runs on the writer), unless this one sets another.
        let consumes_next = self.pins.next_statement
            && !(class.pins_writer && class.pin == router::Pin::NextStatement);
        if class.pins_writer {
            self.pin(class.pin);
        }
        let result = self.query_routed(payload, class, route).await;
        if consumes_next {
            self.unpin(router::Pin::NextStatement);
        }
        result
    }

    async fn query_routed(
        &mut self,
        payload: Bytes,
        class: router::Classification,
        route: Route,
    ) -> Result<(), SessionError> {
        let sql = &payload[1..];
        match class.kind {
            StatementKind::Use => {
                let route = self.session_state_route(true);
                let outcome = self.run(route, &payload, ResponseKind::Query).await?;
                if outcome.error.is_none() {
                    if let Some(db) = router::use_database(sql) {
                        self.note_writer_db(&db);
                        self.state.db = Some(db);
                    }
                }
            }
            StatementKind::SessionSet { replayable } => {
                let route = self.session_state_route(replayable);
                let outcome = self.run(route, &payload, ResponseKind::Query).await?;
                if outcome.error.is_none() {
                    if let Some(timeout) = router::session_vars::wait_timeout(sql) {
                        self.state.wait_timeout = match timeout {
                            WaitTimeout::Seconds(s) => Some(std::time::Duration::from_secs(s)),
                            WaitTimeout::Default => None,
                        };
                    }
                }
                if outcome.error.is_none() && replayable {
                    self.state.sets.push(payload.slice(1..));
                    self.note_writer_applied_sets();
                }
            }
            kind => {
                let outcome = self.run(route, &payload, ResponseKind::Query).await?;
                if outcome.error.is_none() {
                    if let Some(released) = class.releases {
                        self.unpin(released);
                    }
                }
                if kind == StatementKind::Write {
                    self.after_statement(&outcome).await;
                }
                if kind == StatementKind::BeginReadOnly {
                    self.maybe_start_replica_transaction(&outcome);
                }
            }
        }
        Ok(())
    }

    /// A `START TRANSACTION READ ONLY` that ran on a replica: the rest of the
    /// transaction stays on that replica connection.
    fn maybe_start_replica_transaction(&mut self, outcome: &Outcome) {
        let Some(node) = self.last_node else {
            return;
        };
        let on_replica = self.ctx.topology.load().node(node).role == crate::config::Role::Replica;
        let open = outcome.status_seen
            && outcome
                .last
                .status_flags()
                .contains(StatusFlags::SERVER_STATUS_IN_TRANS);
        if on_replica && open {
            self.replica_tx = Some(node);
            self.flags.in_transaction = true;
        }
    }

    /// Records writer-only state (see `router::Pin`).
    fn pin(&mut self, pin: router::Pin) {
        match pin {
            router::Pin::Sticky => self.pins.sticky = true,
            router::Pin::TableLocks => self.pins.table_locks = true,
            router::Pin::NamedLocks => self.pins.named_locks = true,
            router::Pin::NextStatement => self.pins.next_statement = true,
        }
        if !self.flags.pinned {
            tracing::debug!(?pin, "session pinned to the writer");
        }
        self.flags.pinned = true;
    }

    fn unpin(&mut self, pin: router::Pin) {
        match pin {
            router::Pin::Sticky => {}
            router::Pin::TableLocks => self.pins.table_locks = false,
            router::Pin::NamedLocks => self.pins.named_locks = false,
            router::Pin::NextStatement => self.pins.next_statement = false,
        }
        self.flags.pinned = self.pins.any();
    }

    /// The writer connection and everything on it are gone (reset, change
    /// of user, a lost connection): so are the transaction and the pins.
    fn forget_writer_state(&mut self) {
        self.flags = fresh_flags(&self.ctx);
        self.pins = Pins::default();
        self.replica_tx = None;
        self.last_insert_id = 0;
        self.restore_insert_id = false;
    }

    /// After a statement that may have written: once it is committed (no
    /// transaction left open) on the writer, read-your-writes takes note.
    async fn after_statement(&mut self, outcome: &Outcome) {
        let on_writer = self.last_node.is_some() && self.last_node == self.session_writer;
        if on_writer && outcome.error.is_none() && !self.flags.in_transaction {
            self.note_write().await;
        }
    }

    /// Where session state (USE, SET) runs: the writer, which records it
    /// for replay elsewhere. In reduced-functionality mode (no writer) a
    /// replayable change runs on a replica instead, so clients that set
    /// variables at connect time still get in and can read; it is replayed
    /// on the writer once one is back.
    fn session_state_route(&self, replayable: bool) -> Route {
        let stuck = self.flags.in_transaction || self.flags.pinned;
        if replayable && !stuck && self.ctx.topology.load().writer().is_none() {
            Route::Replica
        } else {
            Route::Writer
        }
    }

    async fn init_db(&mut self, payload: Bytes) -> Result<(), SessionError> {
        let route = self.session_state_route(true);
        let outcome = self.run(route, &payload, ResponseKind::Single).await?;
        if outcome.error.is_none() {
            let db = String::from_utf8_lossy(&payload[1..]).into_owned();
            self.note_writer_db(&db);
            self.state.db = Some(db);
        }
        Ok(())
    }

    async fn set_option(&mut self, payload: Bytes) -> Result<(), SessionError> {
        // COM_SET_OPTION: 0 = MULTI_STATEMENTS_ON, 1 = _OFF.
        let on = match payload.get(1..3) {
            Some([0, 0]) => true,
            Some([1, 0]) => false,
            _ => return Err(SessionError::Report(MySqlError::malformed_packet())),
        };
        let outcome = self
            .run(Route::Writer, &payload, ResponseKind::Single)
            .await?;
        if outcome.error.is_none() {
            self.state.multi_option = Some(on);
            if let Some(i) = self.writer_index() {
                self.backends[i].multi_option = Some(on);
            }
        }
        Ok(())
    }

    /// COM_RESET_CONNECTION: every held backend connection is reset for
    /// real, then the session's own state is cleared (the database stays,
    /// as on a server).
    async fn reset_connection(&mut self, seq: u8) -> Result<(), SessionError> {
        let mut kept = Vec::with_capacity(self.backends.len());
        for mut conn in std::mem::take(&mut self.backends) {
            if conn.reset().await.is_ok() {
                kept.push(conn);
            } else if Some(conn.node) == self.session_writer {
                self.session_writer = None;
            }
        }
        self.backends = kept;
        let db = self.state.db.take();
        self.state = SessionState {
            db,
            ..SessionState::default()
        };
        self.forget_writer_state();
        self.stmts.clear();
        self.reply_ok(seq).await
    }

    /// Where a prepared statement runs: reads by the usual rules, anything
    /// else on the writer.
    fn prepared_route(&self, class: &router::Classification) -> Route {
        match class.kind {
            StatementKind::Read | StatementKind::PreviousBackend => {
                router::route(class, self.flags)
            }
            _ => Route::Writer,
        }
    }

    async fn stmt_prepare(&mut self, payload: Bytes) -> Result<(), SessionError> {
        let payload = self.with_session_id(payload);
        let sql = payload.slice(1..);
        let class = self.ctx.classifier.classify(&sql);
        let route = self.prepared_route(&class);
        let i = self.conn_for_route(&route).await?;
        let client_id = self.stmts.peek_next_id();
        let node = self.backends[i].node;
        let deprecate_eof = self.backends[i].deprecate_eof();
        self.send_command(i, &payload).await?;
        let result = relay::relay_prepare_response(
            self.backends[i].stream(),
            Sink::Client(&mut self.client),
            Some(client_id),
            deprecate_eof,
        )
        .await;
        match result {
            Ok(Ok(ok)) => {
                let id = self.stmts.add(sql, class, ok.params);
                debug_assert_eq!(id, client_id);
                self.backends[i].prepared.insert(
                    id,
                    BackendStmt {
                        id: ok.backend_id,
                        types_bound: false,
                    },
                );
                self.last_node = Some(node);
                Ok(())
            }
            Ok(Err(_)) => Ok(()),
            Err(e) => self.relay_failed(i, e).await.map(drop),
        }
    }

    async fn stmt_execute(&mut self, payload: Bytes) -> Result<(), SessionError> {
        let id =
            statement_id(&payload).ok_or(SessionError::Report(MySqlError::malformed_packet()))?;
        let stmt =
            self.stmts
                .get_mut(id)
                .ok_or(SessionError::Report(MySqlError::unknown_statement(
                    id,
                    "mysqld_stmt_execute",
                )))?;
        let layout = ExecuteLayout::parse(&payload, stmt.params)
            .ok_or(SessionError::Report(MySqlError::malformed_packet()))?;
        if let Some(types) = &layout.types {
            stmt.param_types = Some(payload.slice(types.clone()));
        }
        if stmt.long_data_bytes > self.ctx.config.proxy.max_allowed_packet {
            stmt.long_data.clear();
            stmt.long_data_bytes = 0;
            return Err(SessionError::Report(MySqlError::packet_too_large()));
        }
        let long_data = std::mem::take(&mut stmt.long_data);
        stmt.long_data_bytes = 0;
        let (sql, class, types) = (
            stmt.sql.clone(),
            stmt.class.clone(),
            stmt.param_types.clone(),
        );
        if class.pins_writer {
            self.pin(class.pin);
        } else if matches!(
            class.kind,
            StatementKind::Use | StatementKind::SessionSet { .. }
        ) {
            // Session state changed by a parameterised statement cannot be
            // recorded and replayed.
            self.pin(router::Pin::Sticky);
        }
        let route = self.prepared_route(&class);
        let i = self.conn_for_route(&route).await?;
        let node = self.backends[i].node;
        let backend = self.backend_stmt(i, id, &sql).await?;
        for chunk in &long_data {
            let chunk = with_statement_id(chunk, backend.id);
            self.backends[i].stream().queue_payload(0, &chunk);
        }
        let request = prepared::rewrite_execute(&payload, &layout, backend, types.as_deref());
        if layout.bound_flag_at.is_some() {
            if let Some(b) = self.backends[i].prepared.get_mut(&id) {
                b.types_bound = true;
            }
        }
        let outcome = self
            .send_and_relay(i, &request, ResponseKind::Query)
            .await?;
        if class.kind != StatementKind::Read {
            self.after_statement(&outcome).await;
        }
        if let Some(stmt) = self.stmts.get_mut(id) {
            stmt.cursor_node = layout.opens_cursor().then_some(node);
            // A cursor was asked for, but the server opens one only for a
            // result set (and says so in the status flags).
            stmt.cursor_open = stmt.cursor_node.is_some()
                && outcome.status_seen
                && outcome
                    .last
                    .status_flags()
                    .contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS);
        }
        Ok(())
    }

    /// Statement `id` as prepared on held connection `i`, preparing it
    /// there first when the client prepared it elsewhere.
    async fn backend_stmt(
        &mut self,
        i: usize,
        id: u32,
        sql: &[u8],
    ) -> Result<BackendStmt, SessionError> {
        if let Some(b) = self.backends[i].prepared.get(&id) {
            return Ok(*b);
        }
        let ok = self.backends[i].prepare(sql).await?;
        let b = BackendStmt {
            id: ok.backend_id,
            types_bound: false,
        };
        self.backends[i].prepared.insert(id, b);
        Ok(b)
    }

    /// The client negotiated MariaDB's bulk operations (otherwise 0xFA is
    /// an unknown command, as on the server).
    fn bulk_allowed(&self) -> bool {
        self.key
            .mariadb_caps
            .contains(MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS)
    }

    /// COM_STMT_BULK_EXECUTE (MariaDB): a prepared statement run for many
    /// rows of parameters at once (Connector/J, /C and /Python use it for
    /// batches). It writes, so it runs on the writer whatever the
    /// statement, with the statement id rewritten as for EXECUTE.
    async fn stmt_bulk_execute(&mut self, payload: Bytes) -> Result<(), SessionError> {
        let id =
            statement_id(&payload).ok_or(SessionError::Report(MySqlError::malformed_packet()))?;
        let stmt =
            self.stmts
                .get(id)
                .ok_or(SessionError::Report(MySqlError::unknown_statement(
                    id,
                    "mysqld_stmt_bulk_execute",
                )))?;
        let (sql, class) = (stmt.sql.clone(), stmt.class.clone());
        if class.pins_writer {
            self.pin(class.pin);
        }
        let i = self.conn_for_route(&Route::Writer).await?;
        let backend = self.backend_stmt(i, id, &sql).await?;
        let request = with_statement_id(&payload, backend.id);
        let outcome = self
            .send_and_relay(i, &request, ResponseKind::Query)
            .await?;
        self.after_statement(&outcome).await;
        Ok(())
    }

    fn stmt_long_data(&mut self, payload: Bytes) {
        let limit = self.ctx.config.proxy.max_allowed_packet;
        if let Some(stmt) = statement_id(&payload).and_then(|id| self.stmts.get_mut(id)) {
            stmt.long_data_bytes = stmt.long_data_bytes.saturating_add(payload.len());
            // Past the limit the data is dropped and the next EXECUTE fails.
            if stmt.long_data_bytes <= limit {
                stmt.long_data.push(payload);
            }
        }
    }

    async fn stmt_fetch(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        let id =
            statement_id(payload).ok_or(SessionError::Report(MySqlError::malformed_packet()))?;
        let node = self.stmts.get(id).and_then(|s| s.cursor_node);
        let target = node.and_then(|n| self.held(n)).and_then(|i| {
            let b = self.backends[i].prepared.get(&id)?;
            Some((i, b.id))
        });
        let Some((i, backend_id)) = target else {
            return Err(SessionError::Report(MySqlError::unknown_statement(
                id,
                "mysqld_stmt_fetch",
            )));
        };
        let request = with_statement_id(payload, backend_id);
        let outcome = self.send_and_relay(i, &request, ResponseKind::Rows).await?;
        // The last rows were sent: the server closed the cursor, and the
        // connection is free to go back to the pool when the client idles.
        if outcome.status_seen
            && outcome
                .last
                .status_flags()
                .contains(StatusFlags::SERVER_STATUS_LAST_ROW_SENT)
        {
            if let Some(stmt) = self.stmts.get_mut(id) {
                stmt.cursor_open = false;
            }
        }
        Ok(())
    }

    /// COM_STMT_CLOSE on every connection that has the statement.
    async fn stmt_close(&mut self, payload: &[u8]) {
        let Some(id) = statement_id(payload) else {
            return;
        };
        self.stmts.remove(id);
        let mut broken = Vec::new();
        for (i, conn) in self.backends.iter_mut().enumerate() {
            if let Some(b) = conn.prepared.remove(&id) {
                if conn
                    .stream()
                    .send(0, &with_statement_id(payload, b.id))
                    .await
                    .is_err()
                {
                    broken.push(i);
                }
            }
        }
        for i in broken.into_iter().rev() {
            self.drop_conn(i);
        }
    }

    /// COM_STMT_RESET on every connection that has the statement.
    async fn stmt_reset(&mut self, payload: &[u8], seq: u8) -> Result<(), SessionError> {
        let id =
            statement_id(payload).ok_or(SessionError::Report(MySqlError::malformed_packet()))?;
        let stmt =
            self.stmts
                .get_mut(id)
                .ok_or(SessionError::Report(MySqlError::unknown_statement(
                    id,
                    "mysqld_stmt_reset",
                )))?;
        stmt.long_data.clear();
        stmt.long_data_bytes = 0;
        stmt.cursor_node = None;
        stmt.cursor_open = false;
        for conn in &mut self.backends {
            if let Some(b) = conn.prepared.get(&id).copied() {
                conn.simple_command(&with_statement_id(payload, b.id))
                    .await?;
            }
        }
        self.reply_ok(seq).await
    }

    /// The connection of an open READ ONLY transaction on a replica, which
    /// takes every statement until the transaction ends.
    fn replica_tx_conn(&mut self) -> Result<Option<usize>, SessionError> {
        let Some(node) = self.replica_tx else {
            return Ok(None);
        };
        match self.held(node) {
            Some(i) if !self.backends[i].is_broken() => Ok(Some(i)),
            _ => {
                let name = self.ctx.topology.load().node(node).name.clone();
                self.forget_writer_state();
                Err(SessionError::Report(MySqlError::transaction_lost(&name)))
            }
        }
    }

    fn held(&self, node: NodeId) -> Option<usize> {
        self.backends.iter().position(|c| c.node == node)
    }

    fn writer_index(&self) -> Option<usize> {
        self.session_writer.and_then(|w| self.held(w))
    }

    /// The connection that ran the last statement just ran `USE db`.
    fn note_writer_db(&mut self, db: &str) {
        if let Some(i) = self.last_node.and_then(|n| self.held(n)) {
            self.backends[i].db = Some(db.to_string());
        }
    }

    /// The connection that ran the last statement just ran the newest
    /// recorded SET itself.
    fn note_writer_applied_sets(&mut self) {
        let n = self.state.sets.len();
        if let Some(i) = self.last_node.and_then(|n| self.held(n)) {
            if self.backends[i].applied_sets + 1 == n {
                self.backends[i].applied_sets = n;
            }
        }
    }

    /// Runs a command on the backend `route` names and relays the response.
    async fn run(
        &mut self,
        route: Route,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Outcome, SessionError> {
        if let Some(i) = self.replica_tx_conn()? {
            return self.send_and_relay(i, payload, kind).await;
        }
        match route {
            Route::Writer => self.run_on_writer(payload, kind).await,
            Route::Replica => self.run_on_replica(payload, kind).await,
            route @ (Route::Previous | Route::Node(_)) => {
                let i = self.conn_for_route(&route).await?;
                self.send_and_relay(i, payload, kind).await
            }
        }
    }

    /// A synchronised connection for `route`, without running anything.
    async fn conn_for_route(&mut self, route: &Route) -> Result<usize, SessionError> {
        if let Some(i) = self.replica_tx_conn()? {
            return Ok(i);
        }
        match route {
            Route::Writer => self.writer_conn().await,
            Route::Replica => match self.replica_conn(&mut Vec::new()).await {
                Some(i) => Ok(i),
                None => self.writer_conn().await,
            },
            Route::Previous => match self.last_node.and_then(|n| self.held(n)) {
                Some(i) => Ok(i),
                None => self.writer_conn().await,
            },
            Route::Node(name) => {
                let node = self.ctx.topology.load().find(name);
                match node {
                    Some(node) => match self.conn_for(node).await {
                        Ok(i) => Ok(i),
                        Err(_) => self.writer_conn().await,
                    },
                    None => Err(SessionError::Report(MySqlError::no_backend(&format!(
                        "hint node={name} (no such node)"
                    )))),
                }
            }
        }
    }

    async fn run_on_writer(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Outcome, SessionError> {
        // One retry: when the held writer connection turns out dead before
        // anything was delivered, the statement never ran and may go again.
        for attempt in 0..2 {
            let i = self.writer_conn().await?;
            match self.send_and_relay(i, payload, kind).await {
                Err(SessionError::BackendLost {
                    retryable: true, ..
                }) if attempt == 0 && !self.flags.in_transaction => continue,
                Err(SessionError::BackendLost { node, .. }) if self.flags.in_transaction => {
                    self.forget_writer_state();
                    let name = self.ctx.topology.load().node(node).name.clone();
                    return Err(SessionError::Report(MySqlError::transaction_lost(&name)));
                }
                other => return other,
            }
        }
        Err(SessionError::Report(MySqlError::no_writable_master()))
    }

    async fn run_on_replica(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Outcome, SessionError> {
        let mut tried: Vec<NodeId> = Vec::new();
        loop {
            let Some(i) = self.replica_conn(&mut tried).await else {
                return self.run_on_writer(payload, kind).await;
            };
            let node = self.backends[i].node;
            match self.send_and_relay(i, payload, kind).await {
                // A read that failed before the client saw anything is
                // safe to run elsewhere.
                Err(SessionError::BackendLost { .. }) => {
                    // Allocates only when a replica failed.
                    tried.push(node);
                }
                other => return other,
            }
        }
    }

    /// A replica connection that may serve this session's next read,
    /// skipping `tried` (and adding replicas that fail to it); `None` when
    /// the read belongs on the writer: read-your-writes says so, no replica
    /// is usable, or the chosen one has not caught up in time.
    async fn replica_conn(&mut self, tried: &mut Vec<NodeId>) -> Option<usize> {
        if !self.replicas_allowed() {
            return None;
        }
        loop {
            let choice = {
                let snap = self.ctx.topology.load();
                self.ctx
                    .topology
                    .pick_replica(&snap, tried, self.replica, |id| self.held(id).is_some())
            }?;
            if let Some(old) = self.replica.filter(|old| old.node != choice.node) {
                self.leave_replica(old.node);
            }
            match self.conn_for(choice.node).await {
                Ok(i) => {
                    self.replica = Some(choice);
                    return self.caught_up(i).await;
                }
                Err(_) => tried.push(choice.node),
            }
        }
    }

    /// The session moves its reads away from `node`: its connection there
    /// goes back to the pool, unless a cursor or a READ ONLY transaction
    /// still needs it (a session holds one replica connection, not one per
    /// replica it ever used).
    fn leave_replica(&mut self, node: NodeId) {
        self.replica = None;
        let needed = self.replica_tx == Some(node) || self.stmts.has_open_cursor();
        if let Some(i) = self.held(node).filter(|_| !needed) {
            let conn = self.backends.swap_remove(i);
            if self.last_node == Some(node) {
                self.last_node = None;
            }
            self.ctx.pools.checkin(conn);
        }
    }

    /// The connection to use for writes: the session's writer connection
    /// while it is alive and either still the active writer or needed for
    /// an open transaction or pinned state; otherwise one to the current
    /// active writer, failing over to the next master when it cannot be
    /// reached.
    async fn writer_conn(&mut self) -> Result<usize, SessionError> {
        if let Some(i) = self.writer_index() {
            let node = self.backends[i].node;
            let stuck = self.flags.in_transaction || self.flags.pinned;
            if !self.is_alive(i).await {
                self.backends.swap_remove(i);
                self.session_writer = None;
                if stuck {
                    self.forget_writer_state();
                    let name = self.ctx.topology.load().node(node).name.clone();
                    return Err(SessionError::Report(MySqlError::transaction_lost(&name)));
                }
            } else {
                let snap = self.ctx.topology.load();
                // An operator's mark is a planned switchover: an open
                // transaction (or pinned state) finishes where it started.
                let planned = snap.status[node].mark != crate::topology::Mark::None;
                if snap.writer() == Some(node) || (stuck && planned) {
                    drop(snap);
                    self.sync_state(i).await?;
                    return Ok(i);
                }
                // The writer role moved away by failover. Sending anything
                // more to the old master would write to both masters at
                // once: leave it. Closing the connection rolls back an open
                // transaction there.
                let new_writer = snap.writer().map(|w| snap.node(w).name.clone());
                let old_writer = snap.node(node).name.clone();
                drop(snap);
                let conn = self.backends.swap_remove(i);
                self.session_writer = None;
                if stuck {
                    drop(conn);
                    self.forget_writer_state();
                    return Err(SessionError::Report(MySqlError::writer_moved(
                        &old_writer,
                        new_writer.as_deref(),
                    )));
                }
                self.ctx.pools.checkin(conn);
            }
        }
        let attempts = self.ctx.topology.load().nodes.len() + 1;
        for _ in 0..attempts {
            let Some(writer) = self.ctx.topology.writer() else {
                break;
            };
            match self.checkout(writer).await {
                Ok(i) => {
                    self.session_writer = Some(writer);
                    self.sync_state(i).await?;
                    if std::mem::take(&mut self.restore_insert_id) {
                        // LAST_INSERT_ID(n) sets what LAST_INSERT_ID()
                        // returns next; DO discards the result.
                        let sql = format!("DO LAST_INSERT_ID({})", self.last_insert_id);
                        self.backends[i].run_sql(sql.as_bytes()).await?;
                    }
                    return Ok(i);
                }
                Err(e) if e.is_unreachable() => {
                    tracing::warn!(error = %e, "writer unreachable");
                    if self.ctx.topology.fail_over(writer) == Some(writer) {
                        // The cluster decides, not this instance alone.
                        let name = self.ctx.topology.load().node(writer).name.clone();
                        return Err(SessionError::Report(MySqlError::writer_unreachable_here(
                            &name,
                        )));
                    }
                }
                Err(BackendError::Refused(err)) => return Err(SessionError::Backend(err)),
                Err(e) => return Err(SessionError::Report(unavailable(&e))),
            }
        }
        Err(SessionError::Report(MySqlError::no_writable_master()))
    }

    /// A live, state-synchronised connection to `node`.
    async fn conn_for(&mut self, node: NodeId) -> Result<usize, SessionError> {
        if let Some(i) = self.held(node) {
            if self.is_alive(i).await {
                self.sync_state(i).await?;
                return Ok(i);
            }
            self.backends.swap_remove(i);
            if self.session_writer == Some(node) {
                self.session_writer = None;
            }
        }
        match self.checkout(node).await {
            Ok(i) => {
                self.sync_state(i).await?;
                Ok(i)
            }
            Err(e) => {
                if e.is_unreachable() {
                    self.ctx.topology.mark_down(node);
                }
                tracing::warn!(error = %e, "backend unavailable");
                Err(SessionError::Report(unavailable(&e)))
            }
        }
    }

    async fn checkout(&mut self, node: NodeId) -> Result<usize, BackendError> {
        let snap = self.ctx.topology.load();
        // Reads do not queue for a full replica: another replica or the
        // writer serves them at once (and a session holding the writer
        // never waits on a replica slot).
        let queue = snap.node(node).role != crate::config::Role::Replica;
        let conn = self
            .ctx
            .pools
            .checkout(
                snap.node(node),
                &self.key,
                &self.credential,
                self.state.db.as_deref(),
                queue,
                self.started,
            )
            .await?;
        self.ctx.topology.mark_up(node);
        self.backends.push(conn);
        Ok(self.backends.len() - 1)
    }

    /// Brings a held connection up to the session's recorded state.
    async fn sync_state(&mut self, i: usize) -> Result<(), SessionError> {
        let conn = &mut self.backends[i];
        if let Some(db) = &self.state.db {
            if conn.db.as_deref() != Some(db) {
                conn.init_db(db).await?;
            }
        }
        if conn.multi_option != self.state.multi_option {
            if let Some(on) = self.state.multi_option {
                let option: u16 = if on { 0 } else { 1 };
                let mut payload = vec![command::SET_OPTION];
                payload.extend_from_slice(&option.to_le_bytes());
                conn.simple_command(&payload).await?;
                conn.multi_option = Some(on);
            }
        }
        while conn.applied_sets < self.state.sets.len() {
            conn.run_sql(&self.state.sets[conn.applied_sets]).await?;
            conn.applied_sets += 1;
        }
        Ok(())
    }

    /// Sends the command on connection `i` and relays the response.
    async fn send_and_relay(
        &mut self,
        i: usize,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Outcome, SessionError> {
        let node = self.backends[i].node;
        let deprecate_eof = self.backends[i].deprecate_eof();
        let started = std::time::Instant::now();
        // `global` read-your-writes counts what runs on the writer.
        let global = (self.rw.policy == crate::config::Consistency::Global
            && Some(node) == self.session_writer)
            .then(|| Arc::clone(&self.ctx));
        let _on_writer = global.as_ref().map(|ctx| ctx.global_writes.start());
        let handle = &self.registration.handle;
        handle.set_running(Some(crate::sessions::Running {
            node,
            thread_id: self.backends[i].thread_id,
        }));
        self.send_command(i, payload).await?;
        let relay = relay::relay_response(
            self.backends[i].stream(),
            Sink::Client(&mut self.client),
            kind,
            deprecate_eof,
        );
        // A backend that stops answering (frozen, or cut off without a
        // reset) would hold this statement forever; the monitor shuts down
        // the sockets of a node it finds down (backend::cutoff), which ends
        // this relay with a backend error.
        let result = relay.await;
        self.registration.handle.set_running(None);
        // One clock read serves the latency metric and the idle stamp.
        let finished = std::time::Instant::now();
        self.ctx.metrics.statement(
            node,
            finished.duration_since(started),
            !matches!(&result, Ok(o) if o.error.is_none()),
        );
        match result {
            Ok(outcome) => {
                self.backends[i].mark_used_at(finished);
                self.last_node = Some(node);
                if Some(node) == self.replica_tx && outcome.status_seen {
                    let status = outcome.last.status_flags();
                    if !status.contains(StatusFlags::SERVER_STATUS_IN_TRANS) {
                        self.replica_tx = None;
                        self.flags.in_transaction = false;
                    }
                } else if Some(node) == self.session_writer && outcome.status_seen {
                    let status = outcome.last.status_flags();
                    self.flags.in_transaction =
                        status.contains(StatusFlags::SERVER_STATUS_IN_TRANS);
                    self.flags.autocommit = status.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT);
                    if outcome.last.last_insert_id != 0 {
                        self.last_insert_id = outcome.last.last_insert_id;
                    }
                }
                Ok(outcome)
            }
            Err(e) => self.relay_failed(i, e).await,
        }
    }

    /// Writes a command (sequence 0) to connection `i`. A write that fails
    /// means the command did not fully reach the server, so it cannot have
    /// run: the caller may send it elsewhere.
    async fn send_command(&mut self, i: usize, payload: &[u8]) -> Result<(), SessionError> {
        let node = self.backends[i].node;
        match self.backends[i].stream().send(0, payload).await {
            Ok(_) => Ok(()),
            Err(source) => {
                self.drop_conn(i);
                Err(SessionError::BackendLost {
                    node,
                    retryable: true,
                    source,
                })
            }
        }
    }

    /// The single place that decides what a failed relay means for the
    /// client: its socket failing ends the session; a backend failing before
    /// anything was forwarded lets the caller retry or report; a backend
    /// failing mid-response ends that response with an error in sequence.
    async fn relay_failed(&mut self, i: usize, err: RelayError) -> Result<Outcome, SessionError> {
        let node = self.backends[i].node;
        let (source, forwarded, next_seq) = match err {
            RelayError::Client(e) => {
                // The backend may still be sending: never reuse it.
                self.drop_conn(i);
                return Err(SessionError::ClientGone(e));
            }
            RelayError::Backend {
                source,
                forwarded,
                next_seq,
            } => (source, forwarded, next_seq),
        };
        self.drop_conn(i);
        if !forwarded {
            return Err(SessionError::BackendLost {
                node,
                retryable: false,
                source,
            });
        }
        let name = self.ctx.topology.load().node(node).name.clone();
        let err = MySqlError::outcome_unknown(&name);
        self.report(next_seq, &err).await?;
        Ok(Outcome {
            error: Some(ErrInfo {
                code: err.code,
                state: err.state,
                message: err.message,
            }),
            ..Outcome::default()
        })
    }

    /// Whether held connection `i` can take a statement: not closed by the
    /// server, and answering a ping if it sat idle for a while.
    async fn is_alive(&mut self, i: usize) -> bool {
        let conn = &mut self.backends[i];
        if conn.is_broken() {
            return false;
        }
        conn.idle_for() < crate::backend::pool::PING_IDLE_AFTER
            || conn
                .answers_ping(self.ctx.config.proxy.connect_timeout())
                .await
    }

    fn drop_conn(&mut self, i: usize) {
        let conn = self.backends.swap_remove(i);
        if Some(conn.node) == self.session_writer {
            self.session_writer = None;
        }
    }

    /// True while the session holds backend connections.
    pub fn holds_backends(&self) -> bool {
        !self.backends.is_empty()
    }

    /// Gives the held connections back to the pools while the client is
    /// idle, when nothing the client could still rely on lives only on them:
    /// no transaction (read-only ones included), no pins (temporary tables,
    /// locks, user variables, SQL PREPARE), no open cursor. The recorded
    /// state (database, SETs, multi-statement option) is replayed on the
    /// next connections, and LAST_INSERT_ID() is restored on the writer.
    /// What is lost is what MySQL ties to "the previous statement" of a
    /// connection (SHOW WARNINGS, FOUND_ROWS(), ROW_COUNT()): after a
    /// release they describe no statement, as after COM_RESET_CONNECTION.
    pub async fn release_idle_backends(&mut self) {
        let bound = self.flags.in_transaction
            || self.flags.pinned
            || self.replica_tx.is_some()
            || self.stmts.has_open_cursor();
        if bound || self.backends.is_empty() {
            return;
        }
        // Causal reads need the last write's position, which only the
        // writer connection knows. A writer that does not answer in time
        // keeps the session's connections (the next statement will find
        // out what happened to it).
        let limit = self.ctx.config.proxy.connect_timeout();
        match tokio::time::timeout(limit, self.settle_position()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                // The position query may still be running there: that
                // connection can carry nothing else.
                if let Some(i) = self.writer_index() {
                    self.drop_conn(i);
                }
                return;
            }
        }
        self.restore_insert_id = self.last_insert_id != 0;
        for conn in self.backends.drain(..) {
            self.ctx.pools.checkin(conn);
        }
        self.session_writer = None;
        self.last_node = None;
        // Its next read chooses a replica afresh: idle sessions are how the
        // read load rebalances.
        self.replica = None;
        tracing::trace!("idle session released its backend connections");
    }

    /// Ends the session: held connections go back to their pools (where they
    /// are reset before anyone else gets them).
    pub fn close(mut self) {
        for conn in self.backends.drain(..) {
            self.ctx.pools.checkin(conn);
        }
    }
}

/// What the client is told when no connection to a backend could be had.
fn unavailable(e: &BackendError) -> MySqlError {
    match e {
        BackendError::PoolExhausted { .. } => MySqlError::pool_exhausted(&e.to_string()),
        _ => MySqlError::no_backend(&e.to_string()),
    }
}
