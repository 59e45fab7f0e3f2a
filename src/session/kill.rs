//! `KILL` and `COM_PROCESS_KILL` with splitrail's session ids, and
//! `CONNECTION_ID()` answered with this session's id.
//!
//! A target that is one of this instance's sessions is acted on here:
//! `KILL QUERY` interrupts the statement it runs (a `KILL QUERY` of the
//! backend thread, sent over this session's own connection to that node:
//! same user, so the server allows it), `KILL [CONNECTION]` does that and
//! ends the session. As on a server, only a session of the same user may
//! be killed (otherwise 1095). Any other number is forwarded to the writer
//! only when it names a thread of this user there (as a client connected
//! directly would); else it is refused with the server's 1094. Before
//! this, pools that ran `KILL <their thread id>` killed whatever server
//! thread had that number, in one run m1's replication SQL thread.

use super::{Next, Session, SessionError};
use crate::backend::relay::ResponseKind;
use crate::protocol::MySqlError;
use crate::router::connection_id::{rewrite_connection_id, Kill, KillScope};
use crate::router::Route;
use crate::sessions::Running;
use bytes::Bytes;

impl Session {
    /// The statement with `CONNECTION_ID()` replaced by this session's id
    /// (unchanged when it has none).
    pub(super) fn with_session_id(&self, payload: Bytes) -> Bytes {
        match rewrite_connection_id(&payload[1..], self.registration.handle.id) {
            Some(sql) => {
                let mut rewritten = Vec::with_capacity(sql.len() + 1);
                rewritten.push(payload[0]);
                rewritten.extend_from_slice(&sql);
                Bytes::from(rewritten)
            }
            None => payload,
        }
    }

    /// Runs a `KILL` of `kill.target`; `payload` is the client's command,
    /// forwarded as it is when the target is a server thread of this user.
    pub(super) async fn kill(
        &mut self,
        kill: Kill,
        payload: &[u8],
        kind: ResponseKind,
        reply_seq: u8,
    ) -> Result<Next, SessionError> {
        let Some(victim) = self.ctx.sessions.find(kill.target) else {
            return self.kill_server_thread(kill, payload, kind).await;
        };
        if victim.user() != *self.key.user {
            return Err(SessionError::Report(MySqlError::kill_denied(kill.target)));
        }
        let own = victim.id == self.registration.handle.id;
        if own {
            // Nothing of this session runs but this KILL itself.
            if kill.scope == KillScope::Connection {
                self.report(reply_seq, &MySqlError::connection_killed())
                    .await?;
                return Ok(Next::Close);
            }
        } else {
            if let Some(running) = victim.running() {
                self.kill_backend_query(running).await?;
            }
            if kill.scope == KillScope::Connection {
                victim.kill();
            }
            tracing::info!(target = kill.target, scope = ?kill.scope, "killed a session");
        }
        self.reply_ok(reply_seq).await?;
        Ok(Next::Continue)
    }

    /// Interrupts the statement a session runs on a backend thread. The
    /// thread may have finished it meanwhile: `KILL QUERY` of an idle
    /// thread does nothing.
    async fn kill_backend_query(&mut self, running: Running) -> Result<(), SessionError> {
        let i = self.conn_for(running.node).await?;
        let sql = format!("KILL QUERY {}", running.thread_id);
        match self.backends[i].run_sql(sql.as_bytes()).await {
            Ok(_) => Ok(()),
            // Gone already (1094): the statement is over.
            Err(crate::backend::conn::CommandError::Server(e)) if e.code == 1094 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A number that is not one of this instance's sessions: forwarded to
    /// the writer only if it names a thread of this user there.
    async fn kill_server_thread(
        &mut self,
        kill: Kill,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Next, SessionError> {
        let i = self.writer_conn().await?;
        let owner = format!(
            "SELECT USER FROM information_schema.PROCESSLIST WHERE ID = {}",
            kill.target
        );
        let user = self.backends[i].query_scalar(&owner).await?;
        if user.as_deref() != Some(&*self.key.user) {
            return Err(SessionError::Report(MySqlError::no_such_thread(
                kill.target,
            )));
        }
        self.run(Route::Writer, payload, kind).await?;
        Ok(Next::Continue)
    }
}

/// A COM_QUERY that is a `KILL` of a connection id. Only texts that can
/// start with `KILL` (after spaces or comments) are lexed.
pub(super) fn kill_statement(payload: &[u8]) -> Option<Kill> {
    let sql = payload.get(1..)?;
    let first = sql.iter().copied().find(|b| !b.is_ascii_whitespace())?;
    if !matches!(first, b'k' | b'K' | b'/' | b'#' | b'-') {
        return None;
    }
    crate::router::connection_id::parse_kill(sql)
}

/// `COM_PROCESS_KILL`: the command byte, then the id (4 bytes, little
/// endian).
pub(super) fn parse_process_kill(payload: &[u8]) -> Option<Kill> {
    let id: [u8; 4] = payload.get(1..5)?.try_into().ok()?;
    Some(Kill {
        scope: KillScope::Connection,
        target: u64::from(u32::from_le_bytes(id)),
    })
}
