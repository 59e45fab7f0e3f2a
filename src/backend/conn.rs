//! One backend connection: TCP connect, the server's greeting, our
//! handshake response and authentication, then raw packets.
//!
//! Capability flags are negotiated from the *client's* flags so that the
//! backend formats every response exactly as the client expects and packets
//! can be relayed unchanged (MySQL "Connection Phase": the server answers in
//! the format the client's capability flags select).

use super::credential::Credential;
use crate::protocol::packets::{self, command, ErrInfo, OkInfo};
use crate::protocol::PacketStream;
use crate::proxy_protocol::ClientAddrs;
use crate::tls::{BackendTls, Stream};
use crate::topology::NodeId;
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse, SslRequest,
};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_sha256;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Flags splitrail always asks a backend for: the 4.1 protocol with plugin
/// authentication. `CLIENT_LONG_PASSWORD` also tells a MariaDB server that
/// we are a "MySQL" client, so it does not switch to its extended
/// capability bits.
pub const ALWAYS_CAPS: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
        | CapabilityFlags::CLIENT_LONG_FLAG.bits()
        | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
        | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
        | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits(),
);

/// Client flags that change the format or meaning of responses; they are
/// passed to the backend exactly as the client negotiated them, and pooled
/// connections are only shared between clients with the same set.
pub const PASS_THROUGH_CAPS: CapabilityFlags = CapabilityFlags::from_bits_truncate(
    CapabilityFlags::CLIENT_FOUND_ROWS.bits()
        | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
        | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
        | CapabilityFlags::CLIENT_INTERACTIVE.bits()
        | CapabilityFlags::CLIENT_LOCAL_FILES.bits()
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
        | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
        | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
        | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits(),
);

const MAX_PACKET_SIZE: u32 = 1 << 30;

/// MariaDB extended capabilities passed through: EXTENDED_METADATA adds
/// fields to column definitions (relayed verbatim); STMT_BULK_OPERATIONS
/// allows COM_STMT_BULK_EXECUTE (its ids are rewritten like EXECUTE's);
/// PROGRESS lets the server send progress reports (ERR packets with code
/// 0xFFFF) before a response, which the relay forwards and reads past.
/// Not CACHE_METADATA: it drops column definitions from EXECUTE responses,
/// which the relay does not follow.
pub const PASS_THROUGH_MARIADB_CAPS: MariadbCapabilities = MariadbCapabilities::from_bits_truncate(
    MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA.bits()
        | MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS.bits()
        | MariadbCapabilities::MARIADB_CLIENT_PROGRESS.bits(),
);

/// What makes two backend connections interchangeable: same login, same
/// response format, same connection character set (and, towards a node
/// that is told the client's address, the same client address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolKey {
    pub user: Arc<str>,
    pub caps: CapabilityFlags,
    /// MariaDB extended capabilities (empty towards MySQL).
    pub mariadb_caps: MariadbCapabilities,
    pub collation: u8,
    /// The client's addresses, sent in a PROXY header when the connection
    /// is opened; `None` towards nodes without `proxy_protocol`.
    pub client: Option<ClientAddrs>,
    /// The connection uses the compressed protocol (`nodes.compress`).
    pub compress: bool,
}

impl PoolKey {
    pub fn new(user: Arc<str>, client_caps: CapabilityFlags, collation: u8) -> PoolKey {
        PoolKey {
            user,
            caps: client_caps & PASS_THROUGH_CAPS,
            mariadb_caps: MariadbCapabilities::empty(),
            collation,
            client: None,
            compress: false,
        }
    }

    /// Backend connections of this session will name `client` to nodes
    /// with `proxy_protocol`.
    pub fn with_client(mut self, client: Option<ClientAddrs>) -> PoolKey {
        self.client = client;
        self
    }

    /// The key of this session's connections to `node`: the client's
    /// address only where it is sent.
    pub fn for_node(&self, node: &crate::topology::Node) -> PoolKey {
        PoolKey {
            client: self.client.filter(|_| node.proxy_protocol),
            compress: node.compress,
            ..self.clone()
        }
    }

    /// True when a connection opened for `self` can serve `wanted` (a
    /// [`Self::for_node`] key): a server told one client's address serves
    /// that address's sessions only (the port of the first is what the
    /// server's logs show).
    pub fn serves(&self, wanted: &PoolKey) -> bool {
        self.user == wanted.user
            && self.caps == wanted.caps
            && self.mariadb_caps == wanted.mariadb_caps
            && self.collation == wanted.collation
            && self.compress == wanted.compress
            && self.client.map(|c| c.source.ip()) == wanted.client.map(|c| c.source.ip())
    }

    pub fn with_mariadb_caps(mut self, caps: MariadbCapabilities) -> PoolKey {
        self.mariadb_caps = caps & PASS_THROUGH_MARIADB_CAPS;
        self
    }

    pub fn deprecate_eof(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }
}

/// What a server told us in its greeting; splitrail shows the same to
/// its clients.
#[derive(Debug, Clone)]
pub struct ServerGreeting {
    pub version: Vec<u8>,
    pub caps: CapabilityFlags,
    /// MariaDB's extended capabilities (a MariaDB server leaves
    /// CLIENT_LONG_PASSWORD, a.k.a. CLIENT_MYSQL, unset to announce them).
    pub mariadb_caps: MariadbCapabilities,
    pub collation: u8,
    /// The server's status at connect: SERVER_STATUS_AUTOCOMMIT is off
    /// when its global autocommit is (a new session starts that way).
    pub status: StatusFlags,
}

impl ServerGreeting {
    fn of(greeting: &HandshakePacket<'_>) -> ServerGreeting {
        let caps = greeting.capabilities();
        let mariadb = !caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD);
        ServerGreeting {
            version: greeting.server_version_ref().to_vec(),
            caps,
            mariadb_caps: if mariadb {
                greeting.mariadb_ext_capabilities()
            } else {
                MariadbCapabilities::empty()
            },
            collation: greeting.default_collation(),
            status: greeting.status_flags(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("backend refused the login: {} {}", .0.code, .0.message)]
    Refused(ErrInfo),
    #[error("backend protocol error: {0}")]
    Protocol(String),
    #[error("backend connection broken: {0}")]
    Io(#[from] io::Error),
    /// `pool.max_per_node` connections to the node are in use and none was
    /// freed within `pool.queue_timeout_ms`.
    #[error("no connection to {node} free within {waited:?} (pool.max_per_node = {limit})")]
    PoolExhausted {
        node: String,
        limit: usize,
        waited: Duration,
    },
}

impl BackendError {
    /// True when the node itself looks unreachable (as opposed to alive but
    /// refusing us): the case that triggers failover.
    pub fn is_unreachable(&self) -> bool {
        match self {
            BackendError::Refused(_) | BackendError::PoolExhausted { .. } => false,
            // Out of file descriptors or local ports is our problem, not the
            // node's: failing over would move writes for no reason (seen at
            // ~6,700 idle clients under a 20,000-descriptor limit).
            BackendError::Connect { source, .. } => !is_local_exhaustion(source),
            _ => true,
        }
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL: this process or host ran
/// out of something; the remote node may be perfectly fine.
fn is_local_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99))
}

/// A command splitrail sent on its own behalf failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("backend connection broken: {0}")]
    Io(#[from] io::Error),
    #[error("backend error {}: {}", .0.code, .0.message)]
    Server(ErrInfo),
    #[error("unexpected backend response")]
    Unexpected,
}

pub struct BackendConn {
    stream: PacketStream,
    pub node: NodeId,
    pub key: PoolKey,
    /// The backend's connection id (for logs and, later, KILL translation).
    pub thread_id: u32,
    /// The default database selected on this connection, as far as we know.
    pub db: Option<String>,
    /// How many of the owning session's recorded SET statements were
    /// replayed here (see `session::SessionState`).
    pub applied_sets: usize,
    /// COM_SET_OPTION multi-statements state applied here (None = default).
    pub multi_option: Option<bool>,
    /// The session's prepared statements that exist on this connection:
    /// session statement id → this backend's statement.
    pub prepared: HashMap<u32, BackendStmt>,
    /// Counts this connection while it is open (decremented on drop).
    open_gauge: Option<prometheus::IntGauge>,
    /// Its place under `pool.max_per_node`, given back on drop.
    pub(super) slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its entry in the node's socket registry (see `cutoff`).
    pub(super) watched: Option<super::cutoff::Watched>,
    /// When the last response on it completed.
    last_used: std::time::Instant,
    /// When its session variables were last set from the server's globals
    /// (connect, COM_RESET_CONNECTION).
    pub defaults_from: std::time::Instant,
    /// The session's write position this (replica) connection was seen to
    /// have applied; see `session::consistency`.
    pub caught_up_to: Option<String>,
}

impl Drop for BackendConn {
    fn drop(&mut self) {
        if let Some(g) = &self.open_gauge {
            g.dec();
        }
    }
}

/// A prepared statement as it exists on one backend connection.
#[derive(Debug, Clone, Copy)]
pub struct BackendStmt {
    pub id: u32,
    /// The backend has received parameter types for it (an EXECUTE with
    /// new_params_bound_flag = 1); until then we must send them.
    pub types_bound: bool,
}

impl BackendConn {
    /// Connects, authenticates as `key.user`, and returns the connection
    /// with the greeting the server sent.
    pub async fn connect(
        node: NodeId,
        addr: &str,
        key: &PoolKey,
        credential: &Credential,
        timeout: Duration,
        tls: Option<&BackendTls>,
        allow_key_retrieval: bool,
    ) -> Result<(BackendConn, ServerGreeting), BackendError> {
        let connect = Self::connect_inner(node, addr, key, credential, tls, allow_key_retrieval);
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    async fn connect_inner(
        node: NodeId,
        addr: &str,
        key: &PoolKey,
        credential: &Credential,
        tls: Option<&BackendTls>,
        allow_key_retrieval: bool,
    ) -> Result<(BackendConn, ServerGreeting), BackendError> {
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| BackendError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        // Without TCP_NODELAY every small response waits for Nagle's delayed
        // ACK (~40 ms on Linux).
        tcp.set_nodelay(true)?;
        if let Some(client) = key.client {
            use tokio::io::AsyncWriteExt;
            tcp.write_all(&client.header()).await?;
        }
        let mut stream = PacketStream::new(Stream::Plain(tcp));

        let greeting_packet = stream
            .read_packet()
            .await?
            .ok_or_else(|| BackendError::Protocol("closed before greeting".into()))?;
        if let Some(err) = packets::parse_err(&greeting_packet.payload) {
            return Err(BackendError::Refused(err));
        }
        let greeting: HandshakePacket = ParseBuf(&greeting_packet.payload)
            .parse(())
            .map_err(|e| BackendError::Protocol(format!("bad greeting: {e}")))?;
        let server_caps = greeting.capabilities();
        if !server_caps.contains(
            CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SECURE_CONNECTION,
        ) {
            return Err(BackendError::Protocol(
                "server lacks the 4.1 protocol".into(),
            ));
        }
        let missing = key.caps - server_caps;
        if !missing.is_empty() {
            return Err(BackendError::Protocol(format!(
                "server lacks capabilities the client negotiated: {missing:?}"
            )));
        }
        let mut caps = (ALWAYS_CAPS | key.caps) & server_caps;
        if key.compress {
            // Only when the server offers it; plain otherwise.
            caps |= CapabilityFlags::CLIENT_COMPRESS & server_caps;
        }
        // To use MariaDB's extended capabilities a client must clear
        // CLIENT_LONG_PASSWORD (CLIENT_MYSQL) and send them in the last 4
        // reserved bytes of its handshake response.
        let mariadb_caps = key.mariadb_caps & ServerGreeting::of(&greeting).mariadb_caps;
        if !mariadb_caps.is_empty() {
            caps.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
        }

        let mut seq = greeting_packet.seq.wrapping_add(1);
        if let Some(tls) = tls {
            if !server_caps.contains(CapabilityFlags::CLIENT_SSL) {
                return Err(tls_refusal(&format!(
                    "backend {addr} does not offer TLS but backend_tls.mode requires it"
                )));
            }
            caps |= CapabilityFlags::CLIENT_SSL;
            let mut request = Vec::with_capacity(32);
            SslRequest::new(caps, MAX_PACKET_SIZE, key.collation)
                .with_mariadb_capabilities(mariadb_caps)
                .serialize(&mut request);
            seq = stream.send(seq, &request).await?;
            // A certificate the configured CA does not vouch for is a
            // refusal, not a dead node: failing over would not help.
            stream
                .connect_tls(tls, addr)
                .await
                .map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidData => {
                        tls_refusal(&format!("TLS to backend {addr} failed: {e}"))
                    }
                    _ => BackendError::Io(e),
                })?;
        }

        let mut nonce = greeting.nonce();
        let plugin = greeting
            .auth_plugin()
            .map(|p| p.into_owned())
            .unwrap_or(AuthPlugin::MysqlNativePassword);
        let auth_data = auth_response(&plugin, credential, &nonce)?;
        let version = greeting.server_version_parsed().unwrap_or((5, 5, 5));
        let response = HandshakeResponse::new(
            Some(auth_data),
            version,
            Some(key.user.as_bytes()),
            None::<&[u8]>,
            Some(plugin),
            caps,
            None,
            MAX_PACKET_SIZE,
        )
        .with_mariadb_ext_capabilities(mariadb_caps);
        let mut buf = Vec::new();
        response.serialize(&mut buf);
        // HandshakeResponse picks the collation from the server version; the
        // connection must use the client's (byte 8: after the 4-byte flags
        // and the 4-byte max packet size).
        buf[8] = key.collation;
        stream.send(seq, &buf).await?;

        loop {
            let reply = stream
                .read_packet()
                .await?
                .ok_or_else(|| BackendError::Protocol("closed during authentication".into()))?;
            let seq = reply.seq.wrapping_add(1);
            match reply.header() {
                Some(packets::OK_HEADER) => break,
                Some(packets::ERR_HEADER) => {
                    let err = packets::parse_err(&reply.payload)
                        .ok_or_else(|| BackendError::Protocol("malformed ERR".into()))?;
                    return Err(BackendError::Refused(err));
                }
                Some(packets::EOF_HEADER) => {
                    let switch: AuthSwitchRequest = ParseBuf(&reply.payload)
                        .parse(())
                        .map_err(|e| BackendError::Protocol(format!("bad auth switch: {e}")))?;
                    nonce = switch.plugin_data().to_vec();
                    let data = auth_response(&switch.auth_plugin(), credential, &nonce)?;
                    stream.send(seq, &data).await?;
                }
                // caching_sha2_password "more data": 0x03 = fast auth
                // succeeded (an OK follows), 0x04 = full authentication:
                // the password in clear over TLS, else RSA-encrypted with
                // the server's public key, which we ask for (0x02).
                Some(0x01) if reply.payload.get(1) == Some(&0x03) => continue,
                Some(0x01) if reply.payload.get(1) == Some(&0x04) => {
                    let password = cleartext(credential)?;
                    if stream.is_tls() {
                        let mut clear = password.to_vec();
                        clear.push(0);
                        stream.send(seq, &clear).await?;
                    } else if allow_key_retrieval {
                        stream.send(seq, &[0x02]).await?;
                    } else {
                        // An unauthenticated key could be an attacker's,
                        // who would then read the password.
                        return Err(unsupported_auth(
                            "caching_sha2_password full authentication over plain TCP needs \
                             the server's RSA key: use [backend_tls], or set \
                             backend_tls.allow_public_key_retrieval on a trusted network",
                        ));
                    }
                }
                // The server's public key (PEM), after our 0x02.
                Some(0x01) if !stream.is_tls() => {
                    let password = cleartext(credential)?;
                    let sealed = encrypt_password(&reply.payload[1..], password, &nonce)?;
                    stream.send(seq, &sealed).await?;
                }
                _ => {
                    return Err(BackendError::Protocol(
                        "unexpected packet during authentication".into(),
                    ))
                }
            }
        }

        // Compression starts after the handshake's OK.
        if caps.contains(CapabilityFlags::CLIENT_COMPRESS) {
            stream.enable_compression(true)?;
        }
        let greeting_info = ServerGreeting::of(&greeting);
        let conn = BackendConn {
            stream,
            node,
            key: key.clone(),
            thread_id: greeting.connection_id(),
            db: None,
            applied_sets: 0,
            multi_option: None,
            prepared: HashMap::new(),
            open_gauge: None,
            slot: None,
            watched: None,
            last_used: std::time::Instant::now(),
            defaults_from: std::time::Instant::now(),
            caught_up_to: None,
        };
        Ok((conn, greeting_info))
    }

    /// Counts this connection in `gauge` until it is dropped.
    pub fn count_in(&mut self, gauge: prometheus::IntGauge) {
        gauge.inc();
        if let Some(old) = self.open_gauge.replace(gauge) {
            old.dec();
        }
    }

    /// The TCP socket under the (possibly TLS) stream.
    pub(super) fn tcp(&self) -> Option<&tokio::net::TcpStream> {
        self.stream.get_ref().tcp()
    }

    pub fn stream(&mut self) -> &mut PacketStream {
        &mut self.stream
    }

    pub fn deprecate_eof(&self) -> bool {
        self.key.deprecate_eof()
    }

    pub fn mark_used(&mut self) {
        self.mark_used_at(std::time::Instant::now());
    }

    /// [`BackendConn::mark_used`] with a clock reading the caller has.
    pub fn mark_used_at(&mut self, at: std::time::Instant) {
        self.last_used = at;
    }

    pub fn idle_for(&self) -> Duration {
        self.last_used.elapsed()
    }

    /// True when the server answers COM_PING within `timeout`. A server
    /// frozen by SIGSTOP keeps its sockets open and never answers: this is
    /// how such a node is found before a statement is sent to it.
    pub async fn answers_ping(&mut self, timeout: Duration) -> bool {
        let ping = self.simple_command(&[command::PING]);
        let ok = matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)));
        if ok {
            self.mark_used();
        }
        ok
    }

    /// See [`PacketStream::is_broken`].
    pub fn is_broken(&mut self) -> bool {
        self.stream.is_broken()
    }

    /// Sends a command whose response is a single OK, EOF or ERR packet
    /// (COM_INIT_DB, COM_RESET_CONNECTION, COM_SET_OPTION, COM_PING).
    pub async fn simple_command(&mut self, payload: &[u8]) -> Result<OkInfo, CommandError> {
        self.stream.send(0, payload).await?;
        let reply = self
            .stream
            .read_packet()
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        match reply.header() {
            Some(packets::OK_HEADER) => {
                packets::parse_ok(&reply.payload).ok_or(CommandError::Unexpected)
            }
            Some(packets::EOF_HEADER) => {
                packets::parse_eof(&reply.payload).ok_or(CommandError::Unexpected)
            }
            Some(packets::ERR_HEADER) => Err(CommandError::Server(
                packets::parse_err(&reply.payload).ok_or(CommandError::Unexpected)?,
            )),
            _ => Err(CommandError::Unexpected),
        }
    }

    /// Selects `db` as the default database (COM_INIT_DB).
    pub async fn init_db(&mut self, db: &str) -> Result<OkInfo, CommandError> {
        let ok = self
            .simple_command(&command_payload(command::INIT_DB, db.as_bytes()))
            .await?;
        self.db = Some(db.to_string());
        Ok(ok)
    }

    /// COM_RESET_CONNECTION: drops session variables, temporary tables,
    /// locks, prepared statements and any open transaction. The default
    /// database is kept.
    pub async fn reset(&mut self) -> Result<(), CommandError> {
        self.simple_command(&[command::RESET_CONNECTION]).await?;
        self.defaults_from = std::time::Instant::now();
        self.applied_sets = 0;
        self.multi_option = None;
        self.prepared.clear();
        self.caught_up_to = None;
        Ok(())
    }

    /// Sends command byte `cmd` followed by `body` as a new command.
    async fn send_command(&mut self, cmd: u8, body: &[u8]) -> io::Result<()> {
        self.stream
            .send(0, &command_payload(cmd, body))
            .await
            .map(drop)
    }

    /// Prepares `sql` here on splitrail's own behalf (a statement the
    /// client prepared elsewhere and now executes on this connection).
    pub async fn prepare(&mut self, sql: &[u8]) -> Result<super::relay::PrepareOk, CommandError> {
        self.send_command(command::STMT_PREPARE, sql).await?;
        let deprecate_eof = self.deprecate_eof();
        let outcome = super::relay::relay_prepare_response(
            &mut self.stream,
            super::relay::Sink::<crate::tls::Stream>::Discard,
            None,
            deprecate_eof,
        )
        .await?;
        match outcome {
            Ok(ok) => Ok(ok),
            Err(err) => Err(CommandError::Server(err)),
        }
    }

    /// Runs a query on splitrail's own behalf and returns the first column
    /// of its first row, as text (`None` for SQL NULL or no row).
    pub async fn query_scalar(&mut self, sql: &str) -> Result<Option<String>, CommandError> {
        self.send_command(command::QUERY, sql.as_bytes()).await?;
        let eof_after_columns = !self.deprecate_eof();
        let first = self.next_reply().await?;
        if let Some(err) = packets::parse_err(&first.payload) {
            return Err(CommandError::Server(err));
        }
        let mut pos = 0;
        let columns =
            packets::read_lenenc(&first.payload, &mut pos).ok_or(CommandError::Unexpected)?;
        if columns == 0 {
            return Ok(None); // an OK: no result set
        }
        for _ in 0..columns + u64::from(eof_after_columns) {
            self.next_reply().await?;
        }
        let mut value = None;
        let mut first_row = true;
        loop {
            let row = self.next_reply().await?;
            if packets::is_end_of_rows(&row.payload, !eof_after_columns) {
                return Ok(value);
            }
            if let Some(err) = packets::parse_err(&row.payload) {
                return Err(CommandError::Server(err));
            }
            if std::mem::take(&mut first_row) && row.payload.first() != Some(&0xfb) {
                let mut pos = 0;
                let len = packets::read_lenenc(&row.payload, &mut pos)
                    .ok_or(CommandError::Unexpected)? as usize;
                let bytes = row
                    .payload
                    .get(pos..pos + len)
                    .ok_or(CommandError::Unexpected)?;
                value = Some(String::from_utf8_lossy(bytes).into_owned());
            }
        }
    }

    async fn next_reply(&mut self) -> Result<crate::protocol::Packet, CommandError> {
        self.stream
            .read_packet()
            .await?
            .ok_or_else(|| CommandError::Io(io::ErrorKind::UnexpectedEof.into()))
    }

    /// Runs one statement on splitrail's own behalf, discarding any rows.
    pub async fn run_sql(&mut self, sql: &[u8]) -> Result<OkInfo, CommandError> {
        self.send_command(command::QUERY, sql).await?;
        let deprecate_eof = self.deprecate_eof();
        let outcome = super::relay::relay_response(
            &mut self.stream,
            super::relay::Sink::<crate::tls::Stream>::Discard,
            super::relay::ResponseKind::Query,
            deprecate_eof,
        )
        .await?;
        match outcome.error {
            Some(err) => Err(CommandError::Server(err)),
            None => Ok(outcome.last),
        }
    }
}

fn command_payload(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(body.len() + 1);
    payload.push(cmd);
    payload.extend_from_slice(body);
    payload
}

impl From<super::relay::RelayError> for CommandError {
    fn from(e: super::relay::RelayError) -> Self {
        match e {
            super::relay::RelayError::Backend { source, .. }
            | super::relay::RelayError::Client(source) => CommandError::Io(source),
        }
    }
}

/// The authentication data for `plugin` with our credential and the
/// server's nonce. Only plugins whose data we can compute are accepted.
fn auth_response(
    plugin: &AuthPlugin<'_>,
    credential: &Credential,
    nonce: &[u8],
) -> Result<Vec<u8>, BackendError> {
    match plugin {
        AuthPlugin::MysqlNativePassword => Ok(credential.native_proof(nonce)),
        AuthPlugin::CachingSha2Password => {
            let password = cleartext(credential)?;
            let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
            Ok(match password {
                [] => Vec::new(),
                _ => scramble_sha256(nonce, password).map_or(Vec::new(), |d| d.to_vec()),
            })
        }
        other => Err(unsupported_auth(&format!(
            "backend asked for unsupported auth plugin {}",
            String::from_utf8_lossy(other.as_bytes())
        ))),
    }
}

/// The password itself, which caching_sha2_password needs; a user known
/// only by its native hash cannot log in that way.
fn cleartext(credential: &Credential) -> Result<&[u8], BackendError> {
    credential.cleartext().ok_or_else(|| {
        unsupported_auth(
            "the backend wants caching_sha2_password, but splitrail knows this user only by \
             its mysql_native_password hash: give the user a password in [[users]]",
        )
    })
}

/// caching_sha2_password over plain TCP: (password + NUL) XOR nonce,
/// encrypted with the server's RSA public key (OAEP with SHA-1, what MySQL
/// 8.0.5+ expects).
fn encrypt_password(pem: &[u8], password: &[u8], nonce: &[u8]) -> Result<Vec<u8>, BackendError> {
    use rsa::pkcs8::DecodePublicKey;
    let pem = std::str::from_utf8(pem)
        .map_err(|_| BackendError::Protocol("server public key is not PEM".into()))?;
    let pem = pem.trim_end_matches('\0');
    let key = rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            rsa::RsaPublicKey::from_pkcs1_pem(pem)
        })
        .map_err(|e| BackendError::Protocol(format!("bad server public key: {e}")))?;
    let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
    if nonce.is_empty() {
        return Err(BackendError::Protocol("empty auth nonce".into()));
    }
    let mut plain = password.to_vec();
    plain.push(0);
    for (i, b) in plain.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
    key.encrypt(
        &mut rand::rngs::OsRng,
        rsa::Oaep::new::<sha1::Sha1>(),
        &plain,
    )
    .map_err(|e| unsupported_auth(&format!("RSA encryption of the password failed: {e}")))
}

/// The server is alive but wants an authentication splitrail cannot do:
/// a refusal (reported to the client), never a reason to fail over.
fn unsupported_auth(message: &str) -> BackendError {
    BackendError::Refused(ErrInfo {
        code: 1251,
        state: *b"08004",
        message: format!("splitrail: {message}"),
    })
}

/// TLS to the backend cannot be set up as configured (CR_SSL_CONNECTION_ERROR):
/// a refusal, never a reason to fail over.
fn tls_refusal(message: &str) -> BackendError {
    BackendError::Refused(ErrInfo {
        code: 2026,
        state: *b"HY000",
        message: format!("splitrail: {message}"),
    })
}

/// Reads a server's greeting without logging in: what splitrail announces
/// to its own clients (version, capabilities, collation).
pub async fn probe_greeting(addr: &str, timeout: Duration) -> Option<ServerGreeting> {
    let probe = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let mut stream = PacketStream::new(Stream::Plain(tcp));
        let packet = stream.read_packet().await.ok()??;
        let greeting: HandshakePacket = ParseBuf(&packet.payload).parse(()).ok()?;
        Some(ServerGreeting::of(&greeting))
    };
    tokio::time::timeout(timeout, probe).await.ok().flatten()
}

#[cfg(test)]
mod local_exhaustion_tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_not_a_dead_node() {
        let emfile = BackendError::Connect {
            addr: "m1".into(),
            source: io::Error::from_raw_os_error(24),
        };
        assert!(!emfile.is_unreachable());
        let refused = BackendError::Connect {
            addr: "m1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(refused.is_unreachable());
    }
}
