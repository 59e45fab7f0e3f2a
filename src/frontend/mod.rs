//! The client side: splitrail acting as a MySQL server.
//!
//! - [`handshake`]: greeting, handshake response, authentication;
//! - [`auth`]: the `mysql_native_password` check;
//! - [`alarm`]: the one timer a session waits with between commands;
//! - this module: one client connection's life — handshake, then the
//!   command loop, which hands each command to its [`Session`].

mod alarm;
pub mod auth;
pub mod handshake;

use crate::protocol::codec::ReadError;
use crate::protocol::{MySqlError, PacketStream};
use crate::proxy_protocol::ClientAddrs;
use crate::session::{Next, Session, SessionError};
use crate::tls::Stream;
use crate::Context;
use alarm::{earliest, Alarm};
use handshake::HandshakeError;
use mysql_common::constants::CapabilityFlags;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Serves one client connection until it quits, breaks, or the server shuts
/// down (between commands: a statement in flight is finished first).
pub async fn serve_client(
    ctx: Arc<Context>,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let registration = ctx.sessions.register();
    let id = registration.handle.id;
    let span = tracing::info_span!("client", id, %peer);
    async move {
        let _connected = GaugeGuard::inc(&ctx.metrics.client_connections);
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let tcp_local = tcp.local_addr().ok();
        let mut client = PacketStream::new(Stream::Plain(tcp));
        let greeting = ctx.pools.greeting().cloned();
        let local = tcp_local.unwrap_or(peer);
        let settings = handshake::Settings {
            connection_id: id,
            backend: greeting.as_ref(),
            fallback_version: &ctx.config.proxy.fallback_server_version,
            tls: ctx.tls_acceptor.as_ref(),
            require_tls: ctx.config.tls.require,
            auth_plugin: ctx.config.proxy.auth_plugin.as_str(),
            client: ClientAddrs {
                source: peer,
                destination: local,
            },
            accept_proxy_header: ctx.proxy_networks.contains(peer.ip()),
            compression: ctx.config.proxy.compression,
        };
        let directory = ClientDirectory { ctx: &ctx };
        let handshake = handshake::handshake(&mut client, &settings, &directory);
        // A client that connects and says nothing must not hold a slot.
        let login =
            match tokio::time::timeout(ctx.config.proxy.handshake_timeout(), handshake).await {
                Err(_) => {
                    tracing::info!("handshake timed out");
                    return;
                }
                Ok(Ok(login)) => login,
                Ok(Err(HandshakeError::Rejected(e))) => {
                    tracing::info!(error = %e, "login rejected");
                    return;
                }
                Ok(Err(HandshakeError::Io(e))) => {
                    tracing::debug!(error = %e, "client left during handshake");
                    return;
                }
            };
        if login.client.source != peer {
            tracing::debug!(client = %login.client.source, "PROXY header");
        }
        tracing::debug!(user = %login.user.name, tls = login.tls, "login accepted");
        let Some(slot) = ctx.admit_user(&login.user) else {
            let err = MySqlError::too_many_user_connections(&login.user.name);
            tracing::info!(error = %err, "login refused");
            let _ = client.send(login.next_seq, &err.to_packet()).await;
            return;
        };
        registration.handle.set_user(&login.user.name);
        let mut session = Session::new(Arc::clone(&ctx), client, &login, slot, registration);
        let ok_seq = login.next_seq;
        if let Some(db) = login.db {
            if let Err(e) = session.select_initial_db(db).await {
                let err = match e {
                    SessionError::Backend(err) => MySqlError {
                        code: err.code,
                        state: err.state,
                        message: err.message,
                    },
                    SessionError::Report(err) => err,
                    other => MySqlError::no_backend(&other.to_string()),
                };
                let _ = session.client.send(ok_seq, &err.to_packet()).await;
                session.close();
                return;
            }
        }
        // Its status as the session starts (autocommit as the server's).
        let ok = crate::protocol::packets::ok_packet(
            crate::protocol::packets::OkInfo {
                status: session.status_flags(),
                ..Default::default()
            },
            login.caps,
        );
        if session.client.send(ok_seq, &ok).await.is_err() {
            session.close();
            return;
        }
        // The compressed protocol starts after the handshake's OK.
        if login.caps.contains(CapabilityFlags::CLIENT_COMPRESS)
            && session.client.enable_compression(false).is_err()
        {
            session.close();
            return;
        }
        // Commands are read chunk by chunk (each at most 16 MiB) and their total
        // is checked against max_allowed_packet in `read_payload`.
        session
            .client
            .set_max_packet(crate::protocol::codec::MAX_CHUNK);
        command_loop(&ctx, &mut session, shutdown).await;
        session.close();
    }
    .instrument(span)
    .await
}

/// The accounts clients may log in as: `[[users]]`, and those loaded
/// from the servers.
pub struct ClientDirectory<'a> {
    pub ctx: &'a Context,
}

impl handshake::Directory for ClientDirectory<'_> {
    fn find(&self, name: &[u8], peer: IpAddr) -> Option<crate::config::UserConfig> {
        self.ctx.user(name, peer)
    }
    fn reloads(&self) -> bool {
        self.ctx.config.accounts.from_backend
    }
    async fn find_reloaded(&self, name: &[u8], peer: IpAddr) -> Option<crate::config::UserConfig> {
        if self.reloads() {
            self.ctx.accounts.refreshed().await;
        }
        self.ctx.user(name, peer)
    }
}

async fn command_loop(ctx: &Context, session: &mut Session, shutdown: CancellationToken) {
    let max_packet = ctx.config.proxy.max_allowed_packet;
    let release_after = ctx.config.pool.release_idle_after();
    // Both live for the whole session: neither is registered anew per
    // command (see `Alarm`).
    let stopping = shutdown.cancelled_owned();
    tokio::pin!(stopping);
    let killed = session.killed().clone().cancelled_owned();
    tokio::pin!(killed);
    let mut alarm = Alarm::new();
    loop {
        let idle_since = Instant::now();
        // Like the server's wait_timeout (the session may have set its own).
        let idle_deadline = session.idle_limit().map(|limit| idle_since + limit);
        // While the client thinks, its backend connections may serve others.
        let mut release_at = release_after
            .filter(|_| session.holds_backends())
            .map(|after| idle_since + after);
        // Wait for the next command's first byte; the alarm rings for the
        // release or, like the server's wait_timeout, the idle limit.
        loop {
            alarm.ring_by(earliest(release_at, idle_deadline));
            tokio::select! {
                input = session.client.wait_for_input() => match input {
                    Ok(true) => break,
                    Ok(false) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "client read failed");
                        return;
                    }
                },
                () = alarm.rings(), if alarm.is_set() => {
                    let now = Instant::now();
                    if release_at.is_some_and(|r| r <= now) {
                        release_at = None;
                        session.release_idle_backends().await;
                    } else if idle_deadline.is_some_and(|d| d <= now) {
                        tracing::debug!("client idle too long: disconnected");
                        return;
                    }
                    // Otherwise it rang for an earlier command: set it again.
                }
                () = &mut stopping => return say_shutting_down(session).await,
                // KILL CONNECTION from another session: as a server does
                // with an idle connection, just close it.
                () = &mut killed => return,
            }
        }
        // Nearly always the whole command is already buffered; otherwise
        // its rest must arrive within the idle limit too.
        let read = if session.client.has_whole_packet() {
            session.client.read_payload(max_packet).await
        } else {
            tokio::select! {
                read = session.client.read_payload(max_packet) => read,
                () = sleep_until(idle_deadline) => {
                    tracing::debug!("client stalled in the middle of a command: disconnected");
                    return;
                }
                () = &mut stopping => return say_shutting_down(session).await,
            }
        };
        let payload = match read {
            Ok(Some(p)) => p,
            Ok(None) => return,
            // As a server does: the whole command was read (and dropped), the
            // error continues its sequence, then the connection is closed.
            Err(ReadError::TooLarge { last_seq }) => {
                let _ = session
                    .client
                    .send(
                        last_seq.wrapping_add(1),
                        &MySqlError::packet_too_large().to_packet(),
                    )
                    .await;
                return;
            }
            Err(ReadError::Io(e)) => {
                tracing::debug!(error = %e, "client read failed");
                return;
            }
        };
        // "The sequence-id is reset to 0 at the start of each command."
        if payload.first_seq != 0 {
            let _ = session
                .client
                .send(
                    payload.first_seq.wrapping_add(1),
                    &MySqlError::packets_out_of_order().to_packet(),
                )
                .await;
            return;
        }
        let reply_seq = payload.last_seq.wrapping_add(1);
        match session.handle(payload.bytes, reply_seq).await {
            Ok(Next::Continue) if session.killed().is_cancelled() => return,
            Ok(Next::Continue) => {}
            Ok(Next::Close) => return,
            Err(e) => {
                tracing::debug!(error = %e, "session ended");
                return;
            }
        }
    }
}

/// Counts a client in a gauge for as long as it is connected.
struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    fn inc(gauge: &prometheus::IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Tells a client waiting between commands that the server is going away.
async fn say_shutting_down(session: &mut Session) {
    let _ = session
        .client
        .send(0, &MySqlError::shutting_down().to_packet())
        .await;
}

/// Completes at `deadline`, or never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
