//! The connection phase towards a client (MySQL "Connection Phase"):
//! our greeting (Initial Handshake v10), the client's Handshake Response,
//! an optional Auth Switch to `mysql_native_password`, and the verdict.

use super::auth::{self, NATIVE_PASSWORD};
use crate::backend::conn::{
    ServerGreeting, ALWAYS_CAPS, PASS_THROUGH_CAPS, PASS_THROUGH_MARIADB_CAPS,
};
use crate::config::UserConfig;
use crate::protocol::codec::ReadError;
use crate::protocol::{MySqlError, PacketStream};
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use std::io;

/// Handshake packets are small; anything bigger is not a handshake.
const MAX_HANDSHAKE_PACKET: usize = 64 * 1024;
const UTF8MB4_GENERAL_CI: u8 = 45;

/// How the client's password proof is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Native,
    Sha2,
    /// Ask the client to start again with mysql_native_password.
    Switch,
}

/// A client that passed authentication.
#[derive(Debug)]
pub struct Login {
    pub user: UserConfig,
    /// Capabilities in force for this connection (client's ∩ ours).
    pub caps: CapabilityFlags,
    /// MariaDB extended capabilities in force (client's ∩ ours).
    pub mariadb_caps: MariadbCapabilities,
    pub collation: u8,
    /// Database requested in the handshake (CLIENT_CONNECT_WITH_DB).
    pub db: Option<String>,
    /// Sequence id for our reply (OK or ERR) to the client.
    pub next_seq: u8,
    /// The challenge of this connection; COM_CHANGE_USER proofs use it.
    pub scramble: [u8; 20],
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("client connection: {0}")]
    Io(#[from] io::Error),
    /// Already reported to the client as this error.
    #[error("{0}")]
    Rejected(MySqlError),
}

/// Capabilities we offer: the basics we always need, the response-format
/// flags (only those the backends have too, once we know them), and the
/// connection-phase conveniences we handle ourselves. Deliberately absent:
/// CLIENT_SSL (no TLS yet), CLIENT_COMPRESS, CLIENT_QUERY_ATTRIBUTES and
/// CLIENT_OPTIONAL_RESULTSET_METADATA (they change the COM_QUERY or result
/// format in ways the relay does not parse).
fn offered_caps(backend: Option<&ServerGreeting>) -> CapabilityFlags {
    let pass_through = match backend {
        Some(g) => PASS_THROUGH_CAPS & g.caps,
        None => PASS_THROUGH_CAPS,
    };
    let mut caps = ALWAYS_CAPS
        | pass_through
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_CONNECT_ATTRS;
    // In front of MariaDB, announce ourselves as MariaDB does (CLIENT_MYSQL,
    // the old CLIENT_LONG_PASSWORD bit, unset) so clients may ask for its
    // extended capabilities.
    if !offered_mariadb_caps(backend).is_empty() {
        caps.remove(CapabilityFlags::CLIENT_LONG_PASSWORD);
    }
    caps
}

fn offered_mariadb_caps(backend: Option<&ServerGreeting>) -> MariadbCapabilities {
    backend.map_or(MariadbCapabilities::empty(), |g| {
        g.mariadb_caps & PASS_THROUGH_MARIADB_CAPS
    })
}

pub async fn handshake(
    client: &mut PacketStream,
    connection_id: u32,
    backend: Option<&ServerGreeting>,
    fallback_version: &str,
    find_user: impl Fn(&[u8]) -> Option<UserConfig>,
    peer_host: &str,
) -> Result<Login, HandshakeError> {
    let scramble = auth::new_scramble();
    let offered = offered_caps(backend);
    let version: &[u8] = backend.map_or(fallback_version.as_bytes(), |g| &g.version);
    let collation = backend.map_or(UTF8MB4_GENERAL_CI, |g| g.collation);
    let mut scramble_2 = scramble[8..].to_vec();
    scramble_2.push(0);
    let greeting = HandshakePacket::new(
        10,
        version,
        connection_id,
        scramble[..8].try_into().unwrap_or_default(),
        Some(scramble_2),
        offered,
        collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(NATIVE_PASSWORD.as_bytes()),
    )
    .with_mariadb_ext_capabilities(offered_mariadb_caps(backend));
    let mut buf = Vec::with_capacity(128);
    greeting.serialize(&mut buf);
    client.set_max_packet(MAX_HANDSHAKE_PACKET);
    client.send(0, &buf).await?;

    let response = read(client).await?;
    let mut seq = response.last_seq.wrapping_add(1);

    // An SSL Request is the 32-byte prefix of a Handshake Response with
    // CLIENT_SSL set; we did not offer TLS.
    let raw_caps = response
        .bytes
        .get(..4)
        .map(|b| CapabilityFlags::from_bits_truncate(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    if raw_caps.is_some_and(|c| c.contains(CapabilityFlags::CLIENT_SSL)) {
        return Err(send_rejection(client, seq, MySqlError::tls_not_supported()).await);
    }
    let parsed: HandshakeResponse = match ParseBuf(&response.bytes).parse(()) {
        Ok(r) => r,
        Err(_) => return Err(send_rejection(client, seq, MySqlError::bad_handshake()).await),
    };
    let client_caps = parsed.capabilities();
    if !client_caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(send_rejection(client, seq, MySqlError::bad_handshake()).await);
    }
    let user_name = String::from_utf8_lossy(parsed.user()).into_owned();
    let db = parsed
        .db_name()
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).into_owned());

    // The proof must be for mysql_native_password, or caching_sha2_password
    // (MySQL 8 clients' default) when the user's password is known: we can
    // then check the SHA-256 proof directly, which is its "fast auth" path,
    // with no TLS or RSA needed. Any other start is asked to switch to
    // mysql_native_password.
    let user = find_user(parsed.user());
    let mut token = parsed.scramble_buf().to_vec();
    let sha2_checkable = user.as_ref().is_some_and(|u| u.password_hash.is_empty());
    let method = match parsed.auth_plugin() {
        None | Some(AuthPlugin::MysqlNativePassword) => Method::Native,
        // A client whose default plugin differs from the one we announced
        // may send no proof at all: then it switches too.
        Some(AuthPlugin::CachingSha2Password) if sha2_checkable && token.len() == 32 => {
            Method::Sha2
        }
        Some(_) => Method::Switch,
    };
    if method == Method::Switch {
        if !client_caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            return Err(send_rejection(client, seq, MySqlError::bad_handshake()).await);
        }
        (token, seq) = switch_to_native(client, seq, &scramble).await?;
    }
    let authenticated = user.as_ref().is_some_and(|u| match method {
        Method::Sha2 => auth::verify_sha2(&scramble, &u.password, &token),
        _ => auth::verify_user(u, &scramble, &token),
    });
    let Some(user) = user.filter(|_| authenticated) else {
        let err = MySqlError::access_denied(&user_name, peer_host, !token.is_empty());
        return Err(send_rejection(client, seq, err).await);
    };
    if method == Method::Sha2 {
        // AuthMoreData "fast_auth_success"; the OK follows.
        seq = client.send(seq, &[0x01, 0x03]).await?;
    }

    // A client uses MariaDB's extended capabilities only when it cleared
    // CLIENT_MYSQL (CLIENT_LONG_PASSWORD) itself.
    let mariadb_caps = if client_caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        MariadbCapabilities::empty()
    } else {
        parsed.mariadb_ext_capabilities() & offered_mariadb_caps(backend)
    };
    Ok(Login {
        user,
        mariadb_caps,
        caps: client_caps & offered,
        collation: parsed.collation(),
        db,
        next_seq: seq,
        scramble,
    })
}

/// Asks the client to answer `scramble` with `mysql_native_password`
/// (an Auth Switch Request at `seq`); returns the proof and the next
/// sequence id.
pub async fn switch_to_native(
    client: &mut PacketStream,
    seq: u8,
    scramble: &[u8; 20],
) -> Result<(Vec<u8>, u8), HandshakeError> {
    let mut data = scramble.to_vec();
    data.push(0);
    let switch = AuthSwitchRequest::new(NATIVE_PASSWORD.as_bytes(), data);
    let mut buf = Vec::new();
    switch.serialize(&mut buf);
    client.send(seq, &buf).await?;
    let reply = read(client).await?;
    Ok((reply.bytes.to_vec(), reply.last_seq.wrapping_add(1)))
}

async fn read(
    client: &mut PacketStream,
) -> Result<crate::protocol::codec::Payload, HandshakeError> {
    match client.read_payload(MAX_HANDSHAKE_PACKET).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into())),
        Err(ReadError::Io(e)) => Err(HandshakeError::Io(e)),
        Err(ReadError::TooLarge { .. }) => {
            Err(send_rejection(client, 2, MySqlError::bad_handshake()).await)
        }
    }
}

/// Sends `err` to the client and returns the matching handshake error.
async fn send_rejection(client: &mut PacketStream, seq: u8, err: MySqlError) -> HandshakeError {
    match client.send(seq, &err.to_packet()).await {
        Ok(_) => HandshakeError::Rejected(err),
        Err(e) => HandshakeError::Io(e),
    }
}
