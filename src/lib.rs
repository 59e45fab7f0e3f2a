//! splitrail: a MySQL wire-protocol proxy that splits reads and writes
//! across a master-master pair and its replicas.
//!
//! # Layout
//! - [`config`]: the TOML configuration, defaults and validation.
//! - [`topology`]: nodes, roles, health and the active writer, as an
//!   immutable snapshot swapped atomically.
//! - [`protocol`]: MySQL packet framing and the few packets we build.
//! - [`frontend`]: splitrail as a server — handshake, auth, command loop.
//! - [`session`]: one client's state and the execution of its commands.
//! - [`router`]: pure statement classification and routing.
//! - [`backend`]: splitrail as a client — connections, relay, pools.
//!
//! [`Server::bind`] + [`Server::run`] is the whole proxy; `main.rs` only
//! parses the command line.

pub mod backend;
pub mod config;
pub mod frontend;
pub mod protocol;
pub mod router;
pub mod session;
pub mod topology;

use backend::Pools;
use config::Config;
use protocol::{MySqlError, PacketStream};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};
use topology::Topology;

/// Everything sessions share. Built once per server; reached through an
/// `Arc` by every session (no globals).
pub struct Context {
    pub config: Config,
    pub topology: Topology,
    /// `Arc` because pool check-ins finish in background tasks.
    pub pools: Arc<Pools>,
    next_connection_id: AtomicU32,
}

impl Context {
    pub fn new(config: Config) -> Context {
        let topology = Topology::new(&config);
        let pools = Arc::new(Pools::new(
            config.nodes.len(),
            config.pool.max_idle_per_node,
            config.proxy.connect_timeout(),
        ));
        Context {
            config,
            topology,
            pools,
            next_connection_id: AtomicU32::new(1),
        }
    }

    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// How long shutdown waits for running statements to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Server {
    listener: TcpListener,
    ctx: Arc<Context>,
}

impl Server {
    /// Binds the listener and learns what a backend's greeting looks like,
    /// so clients are shown the real server version.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(&config.proxy.listen).await?;
        let ctx = Arc::new(Context::new(config));
        // Clients decide what the server supports from its version string
        // (e.g. whether COM_RESET_CONNECTION exists), so learn the real one
        // before accepting anyone. Bounded by connect_timeout per node.
        let timeout = ctx.config.proxy.connect_timeout();
        for node in &ctx.config.nodes {
            if let Some(greeting) = backend::conn::probe_greeting(&node.addr, timeout).await {
                ctx.pools.remember_greeting(greeting);
                break;
            }
        }
        if ctx.pools.greeting().is_none() {
            tracing::warn!(
                version = %ctx.config.proxy.fallback_server_version,
                "no backend answered at start-up; announcing the fallback server version"
            );
        }
        Ok(Server { listener, ctx })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn context(&self) -> Arc<Context> {
        Arc::clone(&self.ctx)
    }

    /// Accepts clients until `shutdown` completes, then tells every session
    /// to finish its current command and waits (bounded) for them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let limit = Arc::new(Semaphore::new(self.ctx.config.proxy.max_connections));
        let (stop_tx, _) = broadcast::channel::<()>(1);
        // Each session holds a clone of `done_tx`; when all are dropped,
        // `done_rx.recv()` returns None: every session has ended.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
                tokio::spawn(refuse(tcp));
                continue;
            };
            let ctx = Arc::clone(&self.ctx);
            let stop = stop_tx.subscribe();
            let done = done_tx.clone();
            tokio::spawn(async move {
                frontend::serve_client(ctx, tcp, peer, stop).await;
                drop(permit);
                drop(done);
            });
        }
        tracing::info!("shutting down: waiting for sessions to finish");
        drop(self.listener);
        let _ = stop_tx.send(());
        drop(done_tx);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await;
    }
}

/// Over `max_connections`: a server sends ERR 1040 instead of a greeting.
async fn refuse(tcp: tokio::net::TcpStream) {
    let mut stream = PacketStream::new(tcp);
    let _ = stream
        .send(0, &MySqlError::too_many_connections().to_packet())
        .await;
}

/// Binds and runs a proxy until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let server = Server::bind(config).await?;
    tracing::info!(listen = %server.local_addr()?, "splitrail listening");
    server.run(shutdown).await;
    Ok(())
}
