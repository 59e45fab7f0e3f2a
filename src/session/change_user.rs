//! COM_CHANGE_USER: re-authenticate as another (or the same) user and start
//! over with a clean session, as a server does.
//!
//! Backend connections are logged in as a user, so they cannot follow: they
//! go back to the pool (reset there) and the session takes connections of
//! the new user from then on.

use super::{Next, Session, SessionError, SessionState, Statements};
use crate::backend::PoolKey;
use crate::frontend::auth;
use crate::frontend::handshake::{switch_to_native, Directory, HandshakeError};
use crate::protocol::MySqlError;
use mysql_common::constants::CapabilityFlags;

impl Session {
    pub(super) async fn change_user(&mut self, payload: &[u8]) -> Result<Next, SessionError> {
        let Some(request) = ChangeUser::parse(payload, self.client_caps) else {
            self.report(1, &MySqlError::malformed_packet()).await?;
            return Ok(Next::Close);
        };
        let user_name = String::from_utf8_lossy(request.user).into_owned();
        let db = Some(String::from_utf8_lossy(request.db))
            .filter(|d| !d.is_empty())
            .map(|d| d.into_owned());
        let collation = request.collation.filter(|&c| c != 0);
        let native = request
            .plugin
            .is_none_or(|p| p.is_empty() || p == auth::NATIVE_PASSWORD.as_bytes());

        let mut seq = 1;
        let mut token = request.auth.to_vec();
        if !native {
            // A client that never answers must not hold this session's
            // backend connections forever.
            let limit = self.ctx.config.proxy.handshake_timeout();
            let switch = switch_to_native(&mut self.client, seq, &self.scramble);
            match tokio::time::timeout(limit, switch).await {
                Ok(Ok((proof, next))) => (token, seq) = (proof, next),
                Ok(Err(HandshakeError::Io(e))) => return Err(SessionError::ClientGone(e)),
                Ok(Err(HandshakeError::Rejected(_))) | Err(_) => return Ok(Next::Close),
            }
        }
        let directory = crate::frontend::ClientDirectory { ctx: &self.ctx };
        let user = directory.find_or_reload(request.user, self.peer).await;
        let ok = user
            .as_ref()
            .is_some_and(|u| auth::verify_user(u, &self.scramble, &token));
        // A REQUIRE SSL user cannot be reached over plain TCP by changing
        // user either; refused like a wrong password, as at login.
        // A failed change of user leaves the session as it was, still
        // logged in as before (as MariaDB does).
        let Some(user) = user.filter(|u| ok && (self.tls || !u.require_tls)) else {
            let err =
                MySqlError::access_denied(&user_name, &self.peer.to_string(), !token.is_empty());
            self.report(seq, &err).await?;
            return Ok(Next::Continue);
        };
        if let Some(charset) = collation.and_then(unusable_client_charset) {
            self.report(
                seq,
                &MySqlError::wrong_value("character_set_client", charset),
            )
            .await?;
            return Ok(Next::Continue);
        }

        // From now on the session counts against the new user's
        // max_connections, and no longer against the old one's.
        if user.name != self.user_slot.user() {
            let Some(slot) = self.ctx.admit_user(&user) else {
                let err = MySqlError::too_many_user_connections(&user.name);
                self.report(seq, &err).await?;
                return Ok(Next::Continue);
            };
            self.user_slot = slot;
        }

        // Reset before the OK: the old user's locks, temporary tables
        // and open transaction are gone when the client reads it.
        for conn in std::mem::take(&mut self.backends) {
            self.ctx.pools.checkin_now(conn).await;
        }
        self.started = std::time::Instant::now();
        self.session_writer = None;
        self.last_node = None;
        self.replica = None;
        self.state = SessionState::default();
        self.forget_writer_state();
        self.stmts = Statements::default();
        self.registration.handle.set_user(&user.name);
        self.key = PoolKey::new(
            user.name.as_str().into(),
            self.client_caps,
            collation.unwrap_or(self.key.collation),
        )
        .with_mariadb_caps(self.key.mariadb_caps)
        .with_client(self.key.client);
        self.credential =
            auth::backend_credential(&user, &self.scramble, auth::Proof::Native(&token));
        self.rw = super::consistency::ReadYourWrites::new(
            user.consistency
                .unwrap_or(self.ctx.config.routing.consistency),
        );
        if let Some(db) = db {
            if let Err(e) = self.select_initial_db(db).await {
                self.report_error(seq, e).await?;
                return Ok(Next::Continue);
            }
        }
        self.reply_ok(seq).await?;
        Ok(Next::Continue)
    }
}

/// A client character set the server's parser cannot take (its charset
/// name): UCS-2, UTF-16 and UTF-32 encode ASCII with zero bytes. The server
/// refuses them for COM_CHANGE_USER with 1231.
fn unusable_client_charset(collation: u8) -> Option<&'static str> {
    use mysql_common::collations::{Collation, CollationId};
    let resolved = Collation::resolve(CollationId::from(u16::from(collation)));
    let charset = resolved.charset();
    ["ucs2", "utf16", "utf16le", "utf32"]
        .into_iter()
        .find(|c| *c == charset)
}

/// The fields of a COM_CHANGE_USER packet (MySQL "COM_CHANGE_USER", 4.1
/// protocol with secure connection): user (NUL-terminated), auth data
/// (1-byte length), database (NUL-terminated), then optionally the
/// character set (2 bytes) and, with CLIENT_PLUGIN_AUTH, the plugin name.
#[derive(Debug, PartialEq, Eq)]
struct ChangeUser<'a> {
    user: &'a [u8],
    auth: &'a [u8],
    db: &'a [u8],
    collation: Option<u8>,
    plugin: Option<&'a [u8]>,
}

impl<'a> ChangeUser<'a> {
    fn parse(payload: &'a [u8], caps: CapabilityFlags) -> Option<ChangeUser<'a>> {
        let rest = payload.get(1..)?;
        let (user, rest) = split_nul(rest)?;
        let (&auth_len, rest) = rest.split_first()?;
        let auth = rest.get(..auth_len as usize)?;
        let rest = &rest[auth_len as usize..];
        let (db, rest) = split_nul(rest).unwrap_or((rest, &[]));
        let collation = rest.first().copied();
        let plugin = match rest.get(2..) {
            Some(tail)
                if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) && !tail.is_empty() =>
            {
                Some(split_nul(tail).map_or(tail, |(name, _)| name))
            }
            _ => None,
        };
        Some(ChangeUser {
            user,
            auth,
            db,
            collation,
            plugin,
        })
    }
}

fn split_nul(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_charsets_only() {
        assert_eq!(unusable_client_charset(35), Some("ucs2"));
        assert_eq!(unusable_client_charset(54), Some("utf16"));
        assert_eq!(unusable_client_charset(60), Some("utf32"));
        assert_eq!(unusable_client_charset(45), None, "utf8mb4");
        assert_eq!(unusable_client_charset(8), None, "latin1");
        assert_eq!(unusable_client_charset(255), None, "utf8mb4_0900_ai_ci");
    }

    #[test]
    fn parses_a_full_change_user_packet() {
        let mut p = vec![0x11];
        p.extend_from_slice(b"app\0");
        p.push(3);
        p.extend_from_slice(&[1, 2, 3]);
        p.extend_from_slice(b"db1\0");
        p.extend_from_slice(&[45, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let c = ChangeUser::parse(&p, CapabilityFlags::CLIENT_PLUGIN_AUTH).unwrap();
        assert_eq!(c.user, b"app");
        assert_eq!(c.auth, &[1, 2, 3]);
        assert_eq!(c.db, b"db1");
        assert_eq!(c.collation, Some(45));
        assert_eq!(c.plugin, Some(&b"mysql_native_password"[..]));
    }

    #[test]
    fn truncated_packets_are_rejected() {
        assert_eq!(ChangeUser::parse(&[0x11], CapabilityFlags::empty()), None);
        assert_eq!(
            ChangeUser::parse(b"\x11app", CapabilityFlags::empty()),
            None
        );
        assert_eq!(
            ChangeUser::parse(b"\x11app\0\x05ab", CapabilityFlags::empty()),
            None
        );
    }
}
