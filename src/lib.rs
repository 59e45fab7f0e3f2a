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

pub mod accounts;
pub mod admin;
pub mod backend;
pub mod cli;
pub mod config;
pub mod coordination;
pub mod fence;
pub mod frontend;
pub mod grants;
pub mod gtid;
pub mod heartbeat;
pub mod monitor;
pub mod protocol;
pub mod proxy_protocol;
pub mod repoint;
pub mod router;
pub mod session;
pub mod sessions;
pub mod switchover;
pub mod tls;
pub mod topology;

use admin::metrics::Metrics;
use admin::state::{SavedState, StateFile};
use arc_swap::ArcSwap;
use backend::Pools;
use config::{Config, UserConfig};
use protocol::{MySqlError, PacketStream};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};
use topology::Topology;

/// Everything sessions share. Built once per server; reached through an
/// `Arc` by every session, the monitor and the admin endpoint (no globals).
pub struct Context {
    /// The config the server started with. Reloadable parts live in their
    /// own swappable homes (`users`, the topology's weights and lag limit).
    pub config: Config,
    /// Logins; swapped whole by `reload`, read once per handshake.
    users: ArcSwap<Vec<UserConfig>>,
    /// With `accounts.from_backend`: the accounts loaded from the servers.
    pub accounts: accounts::Accounts,
    /// Peers that may name the real client in a PROXY header.
    pub proxy_networks: proxy_protocol::Networks,
    pub topology: Topology,
    /// `Arc` because pool check-ins finish in background tasks.
    pub pools: Arc<Pools>,
    pub metrics: Metrics,
    pub state_file: StateFile,
    /// Statement classification with its parser-fallback cache.
    pub classifier: router::Classifier,
    /// Offered to clients when `[tls]` names a certificate.
    pub tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Connected sessions per user, for `users.max_connections`. A std
    /// Mutex held only to bump a counter at login and logout.
    user_connections: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// This instance's client sessions by id (for KILL).
    pub sessions: Arc<sessions::Sessions>,
    /// What `global` read-your-writes knows of the writer's position.
    pub global_writes: session::consistency::GlobalWrites,
    /// With `[coordination]`: the writer record and marks shared through
    /// etcd with the cluster's other instances.
    pub coordinator: Option<Arc<coordination::Coordinator>>,
    /// The writer's global `wait_timeout` and `interactive_timeout`, read
    /// at start-up with the monitor login: a session's idle limit, as on
    /// the server (unset: `proxy.client_idle_timeout_ms` only).
    pub server_timeouts: std::sync::OnceLock<ServerTimeouts>,
}

/// The idle limits a server gives new sessions.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeouts {
    pub wait: Duration,
    pub interactive: Duration,
}

impl Context {
    /// Fails only when the TLS certificates or keys cannot be loaded.
    pub fn new(config: Config) -> Result<Context, tls::TlsSetupError> {
        let topology = Topology::new(&config);
        let metrics = {
            let snap = topology.load();
            let names: Vec<(String, &'static str)> = snap
                .nodes
                .iter()
                .map(|n| {
                    let role = match n.role {
                        config::Role::Master => "master",
                        config::Role::Replica => "replica",
                    };
                    (n.name.clone(), role)
                })
                .collect();
            Metrics::new(&names)
        };
        let gauges = (0..config.nodes.len())
            .map(|id| metrics.node(id).backend_connections.clone())
            .collect();
        let pools = Arc::new(Pools::new(
            gauges,
            &config.pool,
            config.proxy.connect_timeout(),
            tls::BackendTls::from_config(&config.backend_tls)?,
            config.backend_tls.allow_public_key_retrieval,
        ));
        let tls_acceptor = tls::acceptor(&config.tls)?;
        let state_file = StateFile::new(&config.admin.state_file);
        let coordinator = config.coordination.enabled().then(|| {
            Arc::new(coordination::Coordinator::new(
                &config.coordination,
                &config.monitor,
                &config.proxy.listen,
            ))
        });
        // With coordination the cluster's records are the truth, not a
        // file this instance wrote.
        let saved = match coordinator {
            None => state_file.load(),
            Some(_) => None,
        };
        if let Some(saved) = saved {
            let marks: Vec<_> = saved.marks.into_iter().collect();
            topology.restore(&marks, saved.writer.as_deref());
        }
        Ok(Context {
            users: ArcSwap::from_pointee(config.users.clone()),
            accounts: Default::default(),
            // Validated with the rest of the config.
            proxy_networks: proxy_protocol::Networks::parse(&config.proxy.proxy_protocol_networks)
                .unwrap_or_default(),
            tls_acceptor,
            config,
            topology,
            pools,
            metrics,
            state_file,
            classifier: router::Classifier::new(CLASSIFIER_CACHE),
            user_connections: Default::default(),
            sessions: Arc::default(),
            global_writes: Default::default(),
            coordinator,
            server_timeouts: std::sync::OnceLock::new(),
        })
    }

    /// Counts a session of `user` against its `max_connections`; `None` when
    /// the user is at its limit. The slot is released when the guard drops.
    pub fn admit_user(self: &Arc<Self>, user: &UserConfig) -> Option<UserSlot> {
        let mut counts = self
            .user_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(user.name.clone()).or_insert(0);
        if user.max_connections > 0 && *count >= user.max_connections {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            ctx: Arc::clone(self),
            user: user.name.clone(),
        })
    }

    /// The account `name` logs in as from `peer`: a `[[users]]` entry of
    /// that name, else (with `accounts.from_backend`) a loaded account.
    pub fn user(&self, name: &[u8], peer: std::net::IpAddr) -> Option<UserConfig> {
        let configured = self
            .users
            .load()
            .iter()
            .find(|u| u.name.as_bytes() == name)
            .cloned();
        configured.or_else(|| {
            self.config
                .accounts
                .from_backend
                .then(|| self.accounts.find(name, peer))
                .flatten()
        })
    }

    /// Re-reads the config file and applies what can change without a
    /// restart: users, replica weights, the replica lag limit. A changed
    /// node list (names, addresses, roles) is refused: restart for that.
    pub fn reload(&self) -> Result<String, String> {
        let path =
            self.config.source.as_deref().ok_or(
                "this server runs the embedded default config; there is no file to reload",
            )?;
        let fresh = Config::load(path).map_err(|e| e.to_string())?;
        let same_nodes = fresh.nodes.len() == self.config.nodes.len()
            && fresh
                .nodes
                .iter()
                .zip(&self.config.nodes)
                .all(|(a, b)| a.name == b.name && a.addr == b.addr && a.role == b.role);
        if !same_nodes {
            return Err(
                "the node list changed (names, addresses or roles): restart splitrail to apply it"
                    .into(),
            );
        }
        self.users.store(Arc::new(fresh.users.clone()));
        self.topology.reload(&fresh);
        tracing::info!(path = %path.display(), "config reloaded");
        Ok(format!(
            "{} users, {} nodes",
            fresh.users.len(),
            fresh.nodes.len()
        ))
    }
}

/// A session's place in its user's connection count.
pub struct UserSlot {
    ctx: Arc<Context>,
    user: String,
}

impl UserSlot {
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self
            .ctx
            .user_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
        }
    }
}

/// Statements whose parser-fallback verdict is remembered.
const CLASSIFIER_CACHE: usize = 4096;

/// How long shutdown waits for running statements to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    ctx: Arc<Context>,
}

impl Server {
    /// Binds the listeners and learns what a backend's greeting looks like,
    /// so clients are shown the real server version.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let listener = bind(&config.proxy.listen, "proxy.listen").await?;
        let admin = match config.admin.listen.as_str() {
            "" => None,
            addr => Some(bind(addr, "admin.listen").await?),
        };
        let ctx = Context::new(config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let ctx = Arc::new(ctx);
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
        read_server_timeouts(&ctx).await;
        if ctx.pools.greeting().is_none() {
            tracing::warn!(
                version = %ctx.config.proxy.fallback_server_version,
                "no backend answered at start-up; announcing the fallback server version"
            );
        }
        Ok(Server {
            listener,
            admin,
            ctx,
        })
    }

    /// A one-screen description of what this server will do, printed by
    /// `splitrail serve` at start-up. Never contains secrets.
    pub fn summary(&self) -> String {
        let snap = self.ctx.topology.load();
        let version = self
            .ctx
            .pools
            .greeting()
            .map(|g| String::from_utf8_lossy(&g.version).into_owned())
            .unwrap_or_else(|| {
                format!(
                    "{} (fallback: no backend answered)",
                    self.ctx.config.proxy.fallback_server_version
                )
            });
        let mut out = String::new();
        let listen = self.local_addr().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "splitrail {} listening on {listen}\n",
            env!("CARGO_PKG_VERSION")
        ));
        match self.admin_addr() {
            Some(a) => out.push_str(&format!(
                "admin endpoint   http://{a}  (/health, /metrics, /nodes)\n"
            )),
            None => out.push_str("admin endpoint   disabled\n"),
        }
        out.push_str(&format!("backend version  {version}\n"));
        let monitor = if self.ctx.config.monitor.enabled() {
            format!(
                "every {} ms as {}",
                self.ctx.config.monitor.interval_ms, self.ctx.config.monitor.user
            )
        } else {
            "off (no [monitor] user)".into()
        };
        out.push_str(&format!("monitor          {monitor}\n"));
        out.push_str(&format!(
            "consistency      {:?}\n",
            self.ctx.config.routing.consistency
        ));
        out.push_str("nodes:\n");
        for n in snap.nodes.iter() {
            let mark = snap.status[n.id].mark;
            out.push_str(&format!(
                "  {:<10} {:<8} {:<22} weight {}{}\n",
                n.name,
                snap.role_name(n.id),
                n.addr,
                n.weight,
                if mark == topology::Mark::None {
                    String::new()
                } else {
                    format!("  (marked {mark:?})")
                }
            ));
        }
        out
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
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
        let (stop_background, _) = broadcast::channel::<()>(1);
        let mut background = Vec::new();
        if self.ctx.config.monitor.enabled() {
            background.extend(monitor::spawn(Arc::clone(&self.ctx)));
        } else {
            tracing::warn!(
                "no [monitor] user configured: node health comes from the data path only"
            );
        }
        background.push(tokio::spawn(keep_state(Arc::clone(&self.ctx))));
        if self.ctx.config.accounts.from_backend {
            background.push(tokio::spawn(accounts::keep_loaded(Arc::clone(&self.ctx))));
        }
        let repoints =
            self.ctx.config.failover.repoint_replicas && self.ctx.config.monitor.enabled();
        if repoints && self.ctx.coordinator.is_none() {
            background.push(tokio::spawn(repoint::follow_writer(Arc::clone(&self.ctx))));
        }
        if let Some(coordinator) = &self.ctx.coordinator {
            background.push(tokio::spawn(
                Arc::clone(coordinator).run(Arc::clone(&self.ctx)),
            ));
        }
        background.push(tokio::spawn(reload_on_sighup(Arc::clone(&self.ctx))));
        if let Some(admin_listener) = self.admin {
            let mut stop = stop_background.subscribe();
            background.push(tokio::spawn(admin::serve(
                Arc::clone(&self.ctx),
                admin_listener,
                async move {
                    let _ = stop.recv().await;
                },
            )));
        }
        let limit = Arc::new(Semaphore::new(self.ctx.config.proxy.max_connections));
        // Cancelled once to stop every session between two commands.
        let stop_sessions = tokio_util::sync::CancellationToken::new();
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
            let stop = stop_sessions.child_token();
            let done = done_tx.clone();
            tokio::spawn(async move {
                frontend::serve_client(ctx, tcp, peer, stop).await;
                drop(permit);
                drop(done);
            });
        }
        tracing::info!("shutting down: waiting for sessions to finish");
        drop(self.listener);
        stop_sessions.cancel();
        drop(done_tx);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await;
        let _ = stop_background.send(());
        for task in background {
            task.abort();
        }
    }
}

/// SIGHUP re-reads the config file, like `splitrail reload`.
async fn reload_on_sighup(ctx: Arc<Context>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = ctx.reload() {
                tracing::error!(error = %e, "reload on SIGHUP failed");
            }
        }
    }
    #[cfg(not(unix))]
    drop(ctx);
}

/// Saves marks and the writer whenever they change (the data path and the
/// monitor move the writer without knowing about the file), and counts
/// writer changes for `/metrics`.
async fn keep_state(ctx: Arc<Context>) {
    let mut saved = SavedState::of(&ctx.topology.load());
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        ticker.tick().await;
        let now = SavedState::of(&ctx.topology.load());
        if now != saved {
            if now.writer != saved.writer {
                ctx.metrics.failovers.inc();
            }
            ctx.state_file.save(&now);
            saved = now;
        }
    }
}

/// Reads the first master's global `wait_timeout` / `interactive_timeout`
/// with the monitor login (a session's idle limit, as the server would
/// apply it). Without a monitor login, or when no master answers, the
/// limit is `proxy.client_idle_timeout_ms` alone.
async fn read_server_timeouts(ctx: &Context) {
    use mysql_async::prelude::Queryable;
    if !ctx.config.monitor.enabled() {
        return;
    }
    let timeout = ctx.config.proxy.connect_timeout();
    let snap = ctx.topology.load();
    let masters: Vec<topology::Node> = snap
        .nodes
        .iter()
        .filter(|n| n.role == config::Role::Master)
        .cloned()
        .collect();
    drop(snap);
    for node in masters {
        let read = async {
            let mut conn =
                monitor::connect(&node, &ctx.config.monitor, &ctx.config.backend_tls).await?;
            let row: Option<(u64, u64)> = conn
                .query_first("SELECT @@global.wait_timeout, @@global.interactive_timeout")
                .await?;
            let _ = conn.disconnect().await;
            Ok::<_, mysql_async::Error>(row)
        };
        if let Ok(Ok(Some((wait, interactive)))) = tokio::time::timeout(timeout, read).await {
            let _ = ctx.server_timeouts.set(ServerTimeouts {
                wait: Duration::from_secs(wait),
                interactive: Duration::from_secs(interactive),
            });
            return;
        }
    }
}

/// Connection bursts (an application restarting its pool) arrive faster
/// than accept: a deep backlog keeps the kernel from dropping SYNs, which
/// clients would see as multi-second connect retries.
const LISTEN_BACKLOG: i32 = 4096;

async fn bind(addr: &str, key: &str) -> io::Result<TcpListener> {
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr} ({key}): {e}"));
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(context)?
        .next()
        .ok_or_else(|| context(io::ErrorKind::AddrNotAvailable.into()))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(resolved),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(context)?;
    socket.set_reuse_address(true).map_err(context)?;
    socket.set_nonblocking(true).map_err(context)?;
    socket.bind(&resolved.into()).map_err(context)?;
    socket.listen(LISTEN_BACKLOG).map_err(context)?;
    TcpListener::from_std(socket.into()).map_err(context)
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
    eprint!("{}", server.summary());
    tracing::info!(listen = %server.local_addr()?, "splitrail listening");
    server.run(shutdown).await;
    Ok(())
}
