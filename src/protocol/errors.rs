//! The errors splitrail itself reports to clients, each with the MySQL error
//! code and SQLSTATE a client library expects. Errors that a backend
//! produced are never rebuilt here: they are relayed verbatim.

use super::packets::err_packet;

/// ER_NET_READ_ERROR: what splitrail answers when a backend connection
/// broke under a statement (see [`MySqlError::outcome_unknown`]).
pub const LINK_FAILURE: u16 = 1158;

/// A client-visible error: code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl MySqlError {
    fn new(code: u16, state: &[u8; 5], message: impl Into<String>) -> Self {
        MySqlError {
            code,
            state: *state,
            message: message.into(),
        }
    }

    pub fn to_packet(&self) -> Vec<u8> {
        err_packet(self.code, &self.state, &self.message)
    }

    /// ER_ACCESS_DENIED_ERROR.
    pub fn access_denied(user: &str, host: &str, using_password: bool) -> Self {
        let using = if using_password { "YES" } else { "NO" };
        Self::new(
            1045,
            b"28000",
            format!("Access denied for user '{user}'@'{host}' (using password: {using})"),
        )
    }

    /// ER_OPTION_PREVENTS_STATEMENT: the reduced-functionality mode answer.
    pub fn no_writable_master() -> Self {
        Self::new(
            1290,
            b"HY000",
            "splitrail is running in read-only mode: no writable master is reachable",
        )
    }

    /// With coordination: this instance cannot reach the writer, and the
    /// cluster has not moved it (a majority of instances still reach it,
    /// or etcd cannot be asked). Nothing was sent.
    pub fn writer_unreachable_here(node: &str) -> Self {
        Self::new(
            1290,
            b"HY000",
            format!(
                "splitrail: the writer '{node}' is unreachable from this instance and the cluster has not failed over (the other instances still reach it, or etcd is unreachable); the write was not sent"
            ),
        )
    }

    /// ER_NET_READ_ERROR (08S01, communication link failure): the statement
    /// may or may not have run. Not CR_SERVER_LOST (2013): codes from 2000
    /// are the client library's own, and libmariadb turns a 2013 that a
    /// server sends into "2027 Received malformed packet".
    pub fn outcome_unknown(node: &str) -> Self {
        Self::new(
            LINK_FAILURE,
            b"08S01",
            format!(
                "Lost connection to backend '{node}' during query; the statement may or may not have been executed"
            ),
        )
    }

    /// The open transaction is gone with its backend connection.
    pub fn transaction_lost(node: &str) -> Self {
        Self::new(
            LINK_FAILURE,
            b"08S01",
            format!(
                "Lost connection to backend '{node}' inside a transaction; the transaction was rolled back"
            ),
        )
    }

    /// The writer failed over while this session had a transaction or
    /// writer-only state (temporary tables, locks, variables) on the old one.
    pub fn writer_moved(old: &str, new: Option<&str>) -> Self {
        Self::new(
            LINK_FAILURE,
            b"08S01",
            format!(
                "The writer moved from '{old}' to '{}' during your transaction or while the session held writer-only state; it was rolled back and that state is gone",
                new.unwrap_or("none")
            ),
        )
    }

    /// CR_CONN_HOST_ERROR: no backend could be reached for this statement.
    pub fn no_backend(what: &str) -> Self {
        Self::new(
            2003,
            b"HY000",
            format!("splitrail: no reachable backend for {what}"),
        )
    }

    /// ER_CON_COUNT_ERROR: `pool.max_per_node` reached and no connection
    /// freed within `pool.queue_timeout_ms`.
    pub fn pool_exhausted(detail: &str) -> Self {
        Self::new(
            1040,
            b"08004",
            format!("Too many connections: splitrail: {detail}"),
        )
    }

    /// ER_UNKNOWN_COM_ERROR.
    pub fn unknown_command(command: u8) -> Self {
        Self::new(1047, b"08S01", format!("Unknown command 0x{command:02x}"))
    }

    /// ER_UNKNOWN_STMT_HANDLER. `function` is the server's name for the
    /// command, as in its own message (mysqld_stmt_execute, …).
    pub fn unknown_statement(id: u32, function: &str) -> Self {
        Self::new(
            1243,
            b"HY000",
            format!("Unknown prepared statement handler ({id}) given to {function}"),
        )
    }

    /// ER_MALFORMED_PACKET.
    /// ER_WRONG_VALUE_FOR_VAR.
    pub fn wrong_value(variable: &str, value: &str) -> Self {
        Self::new(
            1231,
            b"42000",
            format!("Variable '{variable}' can't be set to the value of '{value}'"),
        )
    }

    /// ER_NO_SUCH_THREAD: not a session of this instance, nor a thread of
    /// this user on the writer.
    pub fn no_such_thread(id: u64) -> Self {
        Self::new(1094, b"HY000", format!("Unknown thread id: {id}"))
    }

    /// ER_KILL_DENIED_ERROR: another user's session.
    pub fn kill_denied(id: u64) -> Self {
        Self::new(1095, b"HY000", format!("You are not owner of thread {id}"))
    }

    /// ER_CONNECTION_KILLED: a session that killed itself.
    pub fn connection_killed() -> Self {
        Self::new(1927, b"70100", "Connection was killed")
    }

    pub fn malformed_packet() -> Self {
        Self::new(1835, b"HY000", "Malformed communication packet")
    }

    /// ER_NET_PACKETS_OUT_OF_ORDER.
    pub fn packets_out_of_order() -> Self {
        Self::new(1156, b"08S01", "Got packets out of order")
    }

    /// ER_NET_PACKET_TOO_LARGE.
    pub fn packet_too_large() -> Self {
        Self::new(
            1153,
            b"08S01",
            "Got a packet bigger than 'max_allowed_packet' bytes",
        )
    }

    /// ER_CON_COUNT_ERROR.
    pub fn too_many_connections() -> Self {
        Self::new(1040, b"08004", "Too many connections")
    }

    /// ER_TOO_MANY_USER_CONNECTIONS.
    pub fn too_many_user_connections(user: &str) -> Self {
        Self::new(
            1203,
            b"42000",
            format!("User {user} already has more than 'max_user_connections' active connections"),
        )
    }

    /// ER_HANDSHAKE_ERROR.
    pub fn bad_handshake() -> Self {
        Self::new(1043, b"08S01", "Bad handshake")
    }

    /// ER_NOT_SUPPORTED_AUTH_MODE.
    pub fn tls_not_supported() -> Self {
        Self::new(
            1251,
            b"08004",
            "splitrail: TLS was requested but is not configured on this listener",
        )
    }

    /// ER_SECURE_TRANSPORT_REQUIRED: `tls.require` and a plain-TCP login.
    pub fn secure_transport_required() -> Self {
        Self::new(
            3159,
            b"HY000",
            "Connections using insecure transport are prohibited while tls.require is on",
        )
    }

    /// caching_sha2_password full authentication over plain TCP by a client
    /// that neither asked for our RSA key nor sent an encrypted password
    /// (the server's CR_AUTH_PLUGIN_ERR situation).
    pub fn secure_connection_required(user: &str, host: &str) -> Self {
        Self::new(
            1045,
            b"28000",
            format!(
                "Access denied for user '{user}'@'{host}': caching_sha2_password needs TLS \
                 or the server's RSA public key to send the password"
            ),
        )
    }

    /// ER_SERVER_SHUTDOWN.
    pub fn shutting_down() -> Self {
        Self::new(1053, b"08S01", "splitrail is shutting down")
    }
}

impl std::fmt::Display for MySqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            String::from_utf8_lossy(&self.state),
            self.message
        )
    }
}
