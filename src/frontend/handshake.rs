//! The connection phase towards a client (MySQL "Connection Phase"):
//! our greeting (Initial Handshake v10), the client's Handshake Response,
//! an optional Auth Switch to `mysql_native_password`, and the verdict.

use super::auth::{self, Proof, NATIVE_PASSWORD};
use crate::backend::conn::{
    ServerGreeting, ALWAYS_CAPS, PASS_THROUGH_CAPS, PASS_THROUGH_MARIADB_CAPS,
};
use crate::config::UserConfig;
use crate::protocol::codec::ReadError;
use crate::protocol::{MySqlError, PacketStream};
use crate::proxy_protocol::{ClientAddrs, HeaderError, Start};
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use std::future::Future;
use std::io;
use std::net::IpAddr;

/// Handshake packets are small; anything bigger is not a handshake.
const MAX_HANDSHAKE_PACKET: usize = 64 * 1024;
const UTF8MB4_GENERAL_CI: u8 = 45;
const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// An SSL Request: capability flags, max packet size, collation, 23 zeros.
const SSL_REQUEST_LEN: usize = 32;

/// How the client's password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Native,
    /// caching_sha2_password fast auth: a SHA-256 proof of a password we
    /// know in clear.
    Sha2Fast,
    /// caching_sha2_password full authentication: the client sends the
    /// password itself, over TLS or RSA-encrypted (we only know its hash).
    Sha2Full,
    /// Ask the client to start again with mysql_native_password.
    Switch,
}

/// What the greeting announces and what the listener demands.
pub struct Settings<'a> {
    pub connection_id: u32,
    /// The backends' greeting (version, capabilities), once one was seen.
    pub backend: Option<&'a ServerGreeting>,
    pub fallback_version: &'a str,
    /// Offered to clients when set.
    pub tls: Option<&'a tokio_rustls::TlsAcceptor>,
    /// Plain-TCP logins are refused.
    pub require_tls: bool,
    /// The plugin the greeting announces.
    pub auth_plugin: &'a str,
    /// The connection's addresses (the client's, and splitrail's).
    pub client: ClientAddrs,
    /// The peer may start with a PROXY header naming the real client
    /// (it is in `proxy.proxy_protocol_networks`).
    pub accept_proxy_header: bool,
    /// Offer the compressed protocol (`proxy.compression`).
    pub compression: bool,
}

/// A client that passed authentication.
#[derive(Debug)]
pub struct Login {
    pub user: UserConfig,
    /// What backends are logged in to with for this client.
    pub credential: crate::backend::Credential,
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
    /// The connection was upgraded to TLS.
    pub tls: bool,
    /// The client's addresses: the connection's, or those its PROXY
    /// header named.
    pub client: ClientAddrs,
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
/// connection-phase conveniences we handle ourselves, and CLIENT_SSL when a
/// certificate is configured (CLIENT_COMPRESS is added by the caller when
/// `proxy.compression` is on). Deliberately absent:
/// CLIENT_QUERY_ATTRIBUTES and
/// CLIENT_OPTIONAL_RESULTSET_METADATA (they change the COM_QUERY or result
/// format in ways the relay does not parse).
fn offered_caps(backend: Option<&ServerGreeting>, tls: bool) -> CapabilityFlags {
    let pass_through = match backend {
        Some(g) => PASS_THROUGH_CAPS & g.caps,
        None => PASS_THROUGH_CAPS,
    };
    let mut caps = ALWAYS_CAPS
        | pass_through
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_CONNECT_ATTRS;
    if tls {
        caps |= CapabilityFlags::CLIENT_SSL;
    }
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

/// Where the handshake finds the account a client names.
pub trait Directory: Sync {
    /// The account `name` logs in as from `peer`, as known now.
    fn find(&self, name: &[u8], peer: IpAddr) -> Option<UserConfig>;
    /// True when the known accounts can be reloaded from the servers.
    fn reloads(&self) -> bool;
    /// The account after a reload (the known one without [`Self::reloads`]).
    fn find_reloaded(
        &self,
        name: &[u8],
        peer: IpAddr,
    ) -> impl Future<Output = Option<UserConfig>> + Send;

    /// The account, reloading first when it is unknown: it may have been
    /// created since the last load.
    fn find_or_reload(
        &self,
        name: &[u8],
        peer: IpAddr,
    ) -> impl Future<Output = Option<UserConfig>> + Send {
        async move {
            match self.find(name, peer) {
                None if self.reloads() => self.find_reloaded(name, peer).await,
                known => known,
            }
        }
    }
}

/// Configured users only: nothing to reload.
impl Directory for [UserConfig] {
    fn find(&self, name: &[u8], _peer: IpAddr) -> Option<UserConfig> {
        self.iter().find(|u| u.name.as_bytes() == name).cloned()
    }
    fn reloads(&self) -> bool {
        false
    }
    async fn find_reloaded(&self, name: &[u8], peer: IpAddr) -> Option<UserConfig> {
        self.find(name, peer)
    }
}

pub async fn handshake(
    client: &mut PacketStream,
    settings: &Settings<'_>,
    directory: &(impl Directory + ?Sized),
) -> Result<Login, HandshakeError> {
    let scramble = auth::new_scramble();
    let backend = settings.backend;
    let mut offered = offered_caps(backend, settings.tls.is_some());
    if settings.compression {
        offered |= CapabilityFlags::CLIENT_COMPRESS;
    }
    let version: &[u8] = backend.map_or(settings.fallback_version.as_bytes(), |g| &g.version);
    let collation = backend.map_or(UTF8MB4_GENERAL_CI, |g| g.collation);
    let mut scramble_2 = scramble[8..].to_vec();
    scramble_2.push(0);
    let greeting = HandshakePacket::new(
        10,
        version,
        settings.connection_id,
        scramble[..8].try_into().unwrap_or_default(),
        Some(scramble_2),
        offered,
        collation,
        StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(settings.auth_plugin.as_bytes()),
    )
    .with_mariadb_ext_capabilities(offered_mariadb_caps(backend));
    let mut buf = Vec::with_capacity(128);
    greeting.serialize(&mut buf);
    client.set_max_packet(MAX_HANDSHAKE_PACKET);
    client.send(0, &buf).await?;

    let mut addrs = settings.client;
    if settings.accept_proxy_header {
        match crate::proxy_protocol::read_start(client.raw_stream()).await {
            Ok(Start::Proxied(named)) => addrs = named,
            Ok(Start::Local) => {}
            Ok(Start::Plain(first_bytes)) => client.unread(&first_bytes),
            Err(HeaderError::Io(e)) => return Err(HandshakeError::Io(e)),
            Err(HeaderError::Malformed) => {
                return Err(send_rejection(client, 1, MySqlError::bad_handshake()).await)
            }
        }
    }
    let peer_host = addrs.source.ip().to_string();

    let mut response = match settings.tls {
        // Read exactly one packet: after an SSL Request the client's TLS
        // handshake follows at once, and must reach the TLS layer intact.
        Some(_) => {
            let packet = client.read_packet_exact().await?;
            crate::protocol::codec::Payload {
                first_seq: packet.seq,
                last_seq: packet.seq,
                bytes: packet.payload,
            }
        }
        None => read(client).await?,
    };
    let mut seq = response.last_seq.wrapping_add(1);

    // An SSL Request is the 32-byte prefix of a Handshake Response with
    // CLIENT_SSL set; the real response follows over TLS.
    let raw_caps = response
        .bytes
        .get(..4)
        .map(|b| CapabilityFlags::from_bits_truncate(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    let mut tls = false;
    if raw_caps.is_some_and(|c| c.contains(CapabilityFlags::CLIENT_SSL)) {
        let Some(acceptor) = settings.tls else {
            return Err(send_rejection(client, seq, MySqlError::tls_not_supported()).await);
        };
        if response.bytes.len() != SSL_REQUEST_LEN {
            return Err(send_rejection(client, seq, MySqlError::bad_handshake()).await);
        }
        client.accept_tls(acceptor).await?;
        tls = true;
        response = read(client).await?;
        seq = response.last_seq.wrapping_add(1);
    }
    if settings.require_tls && !tls {
        return Err(send_rejection(client, seq, MySqlError::secure_transport_required()).await);
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

    // mysql_native_password proofs are checked as they are. A client that
    // starts with caching_sha2_password (MySQL 8 clients' default) gets
    // that plugin's fast auth when we know the password in clear, and its
    // full authentication when we only know the hash, as a MySQL server
    // with a cold cache does. Any other plugin is asked to switch.
    let mut user = directory
        .find_or_reload(parsed.user(), addrs.source.ip())
        .await;
    let mut token = parsed.scramble_buf().to_vec();
    let starts_sha2 = matches!(parsed.auth_plugin(), Some(AuthPlugin::CachingSha2Password));
    // libmysqlclient's caching_sha2 plugin says "no password" with one NUL.
    if starts_sha2 && token == [0] {
        token.clear();
    }
    // A client whose plugin differs from the one we announced sends no
    // proof ("tell me the scramble for my plugin"): give it ours.
    if starts_sha2
        && token.is_empty()
        && user.is_some()
        && client_caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    {
        (token, seq) = switch_plugin(client, seq, &scramble, CACHING_SHA2_PASSWORD).await?;
        if token == [0] {
            token.clear();
        }
    }
    let cleartext_known = user.as_ref().is_some_and(|u| u.password_hash.is_empty());
    let method = match parsed.auth_plugin() {
        None | Some(AuthPlugin::MysqlNativePassword) => Method::Native,
        // An empty answer is an empty password's proof.
        Some(AuthPlugin::CachingSha2Password)
            if cleartext_known && (token.len() == 32 || token.is_empty()) =>
        {
            Method::Sha2Fast
        }
        // No proof at all is an empty password, which a hash-only user does
        // not have: denied below without a full authentication round.
        Some(AuthPlugin::CachingSha2Password) if user.is_some() && !token.is_empty() => {
            Method::Sha2Full
        }
        Some(AuthPlugin::CachingSha2Password) => Method::Sha2Fast,
        Some(_) => Method::Switch,
    };
    tracing::debug!(?method, tls, "authentication");
    let denied =
        |token: &[u8]| MySqlError::access_denied(&user_name, &peer_host, !token.is_empty());
    let proof = match method {
        Method::Native | Method::Sha2Fast => Proof::Native(&token),
        Method::Switch => {
            if !client_caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
                return Err(send_rejection(client, seq, MySqlError::bad_handshake()).await);
            }
            (token, seq) = switch_to_native(client, seq, &scramble).await?;
            Proof::Native(&token)
        }
        Method::Sha2Full => {
            (token, seq) = match full_auth(client, seq, &scramble, tls).await? {
                FullAuth::Password(p, next) => (p, next),
                // Not decryptable, or cleartext over plain TCP: denied
                // like a wrong password, no oracle.
                FullAuth::Unusable(next) => (Vec::new(), next),
                FullAuth::NoKey(next) => {
                    let err = MySqlError::secure_connection_required(&user_name, &peer_host);
                    return Err(send_rejection(client, next, err).await);
                }
            };
            Proof::Cleartext(&token)
        }
    };
    let mut authenticated = user
        .as_ref()
        .is_some_and(|u| verify(method, u, &scramble, proof));
    // A wrong password for an account known only by its hash: the
    // password may have changed since the last load.
    if !authenticated && directory.reloads() && user.as_ref().is_some_and(|u| u.password.is_empty())
    {
        user = directory
            .find_reloaded(parsed.user(), addrs.source.ip())
            .await;
        authenticated = user
            .as_ref()
            .is_some_and(|u| verify(method, u, &scramble, proof));
    }
    // A REQUIRE SSL account over plain TCP is refused like a wrong password,
    // as MySQL does: the reason is not told to an unauthenticated peer.
    let Some(user) = user.filter(|u| authenticated && (tls || !u.require_tls)) else {
        return Err(send_rejection(client, seq, denied(&token)).await);
    };
    let credential = auth::backend_credential(&user, &scramble, proof);
    if method == Method::Sha2Fast {
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
        credential,
        mariadb_caps,
        // CLIENT_SSL has done its job; backends get their own TLS setting.
        caps: (client_caps & offered) - CapabilityFlags::CLIENT_SSL,
        collation: parsed.collation(),
        db,
        next_seq: seq,
        scramble,
        tls,
        client: addrs,
    })
}

/// Whether `proof`, given by `method`, is `user`'s.
fn verify(method: Method, user: &UserConfig, scramble: &[u8; 20], proof: Proof<'_>) -> bool {
    match (method, proof) {
        (Method::Native | Method::Switch, Proof::Native(token)) => {
            auth::verify_user(user, scramble, token)
        }
        // Only against a password known in clear: a hash-only user's
        // `password` is the backend login's.
        (Method::Sha2Fast, Proof::Native(token)) => {
            user.password_hash.is_empty() && auth::verify_sha2(scramble, &user.password, token)
        }
        (Method::Sha2Full, Proof::Cleartext(password)) => {
            !password.is_empty() && auth::verify_cleartext(user, password)
        }
        _ => false,
    }
}

enum FullAuth {
    /// The client's password, and the sequence id of our verdict.
    Password(Vec<u8>, u8),
    /// The answer cannot be a password (not decryptable with our key, or
    /// cleartext over plain TCP); reply at this sequence id.
    Unusable(u8),
    /// No RSA key to offer a plain-TCP client.
    NoKey(u8),
}

/// caching_sha2_password full authentication: "perform_full_authentication"
/// (AuthMoreData 0x04), then the password in clear over TLS; over plain TCP
/// the client asks for our RSA public key (0x02) and sends the password
/// encrypted with it.
async fn full_auth(
    client: &mut PacketStream,
    seq: u8,
    scramble: &[u8; 20],
    tls: bool,
) -> Result<FullAuth, HandshakeError> {
    client.send(seq, &[0x01, 0x04]).await?;
    let reply = read(client).await?;
    let mut seq = reply.last_seq.wrapping_add(1);
    if tls {
        let mut password = reply.bytes.to_vec();
        if password.last() == Some(&0) {
            password.pop();
        }
        return Ok(FullAuth::Password(password, seq));
    }
    let Some(key) = auth::rsa_key().await else {
        return Ok(FullAuth::NoKey(seq));
    };
    let mut encrypted = reply.bytes;
    if encrypted.as_ref() == [0x02] {
        let Some(pem) = auth::public_key_pem(key) else {
            return Ok(FullAuth::NoKey(seq));
        };
        let mut more = Vec::with_capacity(pem.len() + 1);
        more.push(0x01);
        more.extend_from_slice(pem.as_bytes());
        client.send(seq, &more).await?;
        let reply = read(client).await?;
        seq = reply.last_seq.wrapping_add(1);
        encrypted = reply.bytes;
    }
    // A private-key operation (~1 ms): not on the async threads.
    let scramble = *scramble;
    let decrypted =
        tokio::task::spawn_blocking(move || auth::decrypt_password(key, &scramble, &encrypted))
            .await
            .ok()
            .flatten();
    Ok(match decrypted {
        Some(password) => FullAuth::Password(password, seq),
        None => FullAuth::Unusable(seq),
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
    switch_plugin(client, seq, scramble, NATIVE_PASSWORD).await
}

async fn switch_plugin(
    client: &mut PacketStream,
    seq: u8,
    scramble: &[u8; 20],
    plugin: &str,
) -> Result<(Vec<u8>, u8), HandshakeError> {
    let mut data = scramble.to_vec();
    data.push(0);
    let switch = AuthSwitchRequest::new(plugin.as_bytes(), data);
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
        Err(ReadError::TooLarge { last_seq }) => {
            let seq = last_seq.wrapping_add(1);
            Err(send_rejection(client, seq, MySqlError::bad_handshake()).await)
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
