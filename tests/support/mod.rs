//! Shared helpers for the integration tests: where the lab is, how to start
//! a proxy in-process on an ephemeral port, and how to talk to nodes
//! directly. The lab must be running (`proto-tests/lab up`; the README's
//! test command does that).
#![allow(dead_code)]

pub mod faults;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use splitrail::config::Config;
use splitrail::Server;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const DB: &str = "splitrail_test";

/// Node addresses, from `proto-tests/lab env` variables or the lab defaults.
pub struct Lab {
    pub m1: String,
    pub m2: String,
    pub r1: String,
    pub r2: String,
}

pub fn lab() -> Lab {
    let get = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_string());
    Lab {
        m1: get("LAB_M1", "127.0.0.1:13301"),
        m2: get("LAB_M2", "127.0.0.1:13302"),
        r1: get("LAB_R1", "127.0.0.1:13303"),
        r2: get("LAB_R2", "127.0.0.1:13304"),
    }
}

/// The lab's config with the lab's actual addresses and an ephemeral
/// listen port.
pub fn config() -> Config {
    let lab = lab();
    let mut cfg = Config::embedded_default();
    cfg.proxy.listen = "127.0.0.1:0".into();
    cfg.admin.listen = "127.0.0.1:0".into();
    cfg.admin.state_file = std::env::temp_dir()
        .join(format!("{}.state.json", unique("splitrail")))
        .display()
        .to_string();
    // Fast health checks keep the operations tests short.
    cfg.monitor.interval_ms = 200;
    cfg.monitor.timeout_ms = 500;
    for node in &mut cfg.nodes {
        node.addr = match node.name.as_str() {
            "m1" => lab.m1.clone(),
            "m2" => lab.m2.clone(),
            "r1" => lab.r1.clone(),
            "r2" => lab.r2.clone(),
            other => panic!("unexpected node {other}"),
        };
    }
    cfg
}

/// A proxy running in this test process; stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start_proxy(cfg: Config) -> Proxy {
    // RUST_LOG=debug cargo test … shows the proxy's own logs.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let server = Server::bind(cfg).await.expect("bind proxy");
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr().expect("admin listener");
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Proxy {
        addr,
        admin,
        stop: Some(stop),
        done: Some(done),
    }
}

impl Proxy {
    /// Stops the proxy and waits until it has let go of its ports and
    /// background tasks (used before starting another on the same state).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }

    pub fn url(&self, db: Option<&str>) -> String {
        url(&self.addr.to_string(), db)
    }

    pub async fn conn(&self) -> Conn {
        connect(&self.url(Some(DB))).await
    }
}

/// Logs in to `addr` (the proxy or a node) as `app` with splitrail's own
/// protocol client: for tests that send hand-made packets or read packets
/// a driver would hide.
pub async fn raw_client(
    addr: &str,
) -> Result<splitrail::backend::BackendConn, splitrail::backend::BackendError> {
    let key = splitrail::backend::PoolKey::new("app".into(), Default::default(), 45);
    splitrail::backend::BackendConn::connect(
        0,
        addr,
        &key,
        &splitrail::backend::Credential::password(b"app"),
        Duration::from_secs(5),
        None,
        false,
    )
    .await
    .map(|(conn, _greeting)| conn)
}

/// COM_STMT_EXECUTE of statement `id` (no parameters) asking for a
/// read-only cursor: the response is metadata only, rows wait for
/// COM_STMT_FETCH. Relays the response into `sink`.
pub async fn execute_with_cursor<C>(
    conn: &mut splitrail::backend::BackendConn,
    id: u32,
    sink: splitrail::backend::relay::Sink<'_, C>,
) -> splitrail::backend::relay::Outcome
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let execute = [&[0x17][..], &id.to_le_bytes(), &[0x01, 1, 0, 0, 0]].concat();
    command_response(
        conn,
        &execute,
        sink,
        splitrail::backend::relay::ResponseKind::Query,
    )
    .await
}

/// COM_STMT_FETCH of up to `rows` rows from statement `id`'s cursor.
pub async fn fetch_rows<C>(
    conn: &mut splitrail::backend::BackendConn,
    id: u32,
    rows: u32,
    sink: splitrail::backend::relay::Sink<'_, C>,
) -> splitrail::backend::relay::Outcome
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let fetch = [&[0x1c][..], &id.to_le_bytes(), &rows.to_le_bytes()].concat();
    command_response(
        conn,
        &fetch,
        sink,
        splitrail::backend::relay::ResponseKind::Rows,
    )
    .await
}

async fn command_response<C>(
    conn: &mut splitrail::backend::BackendConn,
    command: &[u8],
    sink: splitrail::backend::relay::Sink<'_, C>,
    kind: splitrail::backend::relay::ResponseKind,
) -> splitrail::backend::relay::Outcome
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.stream().send(0, command).await.unwrap();
    splitrail::backend::relay::relay_response(conn.stream(), sink, kind, false)
        .await
        .unwrap()
}

/// `prefer_socket=false`: otherwise mysql_async asks for @@socket and
/// silently reconnects over the backend's unix socket, bypassing the proxy.
pub fn url(addr: &str, db: Option<&str>) -> String {
    format!(
        "mysql://app:app@{addr}/{}?prefer_socket=false",
        db.unwrap_or("")
    )
}

pub async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

pub async fn direct(addr: &str) -> Conn {
    connect(&url(addr, Some(DB))).await
}

/// A table name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn server_id(conn: &mut Conn) -> u32 {
    conn.query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap()
}

/// Creates `table` (`columns`, as in CREATE TABLE) through `proxy` and
/// waits until both replicas have it; returns the connection that made it.
pub async fn create_on_replicas(proxy: &Proxy, table: &str, columns: &str) -> Conn {
    let lab = lab();
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} ({columns})"))
        .await
        .unwrap();
    wait_everywhere(
        &[&lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {table}"),
        0,
    )
    .await;
    conn
}

/// Waits until `sql` returns `expected` on every node in `addrs`.
/// The sum of the `/metrics` samples whose line starts with `prefix`
/// (a metric name and the start of its labels); 0 when there is none.
pub async fn metric_sum(proxy: &Proxy, prefix: &str) -> i64 {
    let (_, metrics) = admin(proxy, "GET", "/metrics", None).await;
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

/// A new session through `proxy` whose reads go to the replica with this
/// `@@server_id` (a session keeps its replica; new sessions take turns).
pub async fn session_on_replica(proxy: &Proxy, id: u32) -> Conn {
    for _ in 0..20 {
        let mut conn = proxy.conn().await;
        if server_id(&mut conn).await == id {
            return conn;
        }
    }
    panic!("20 new sessions and none read from server_id {id}");
}

pub async fn wait_everywhere(addrs: &[&str], sql: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in addrs {
        let mut conn = direct(addr).await;
        loop {
            let got: Option<i64> = conn.query_first(sql).await.unwrap_or(None);
            if got == Some(expected) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{sql} on {addr}: {got:?}, want {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn server_error_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(e) => Some(e.code),
        _ => None,
    }
}

/// Runs `proto-tests/lab ARGS...` (start, stop, kill, sql...); true when
/// it succeeded.
pub fn lab_cmd(args: &[&str]) -> bool {
    std::process::Command::new(lab_script())
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits (bounded) until `check` holds; returns how long it took.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// The proxy's `/health` body.
pub async fn health(proxy: &Proxy) -> serde_json::Value {
    let (_, body) = admin(proxy, "GET", "/health", None).await;
    serde_json::from_str(&body).expect("health is JSON")
}

/// The proxy's node table (`/nodes`), one JSON object per node.
pub async fn node_views(proxy: &Proxy) -> Vec<serde_json::Value> {
    let (status, body) = admin(proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("nodes is JSON")
}

/// One field of one node's row in `/nodes` (null when absent).
pub async fn node_field(proxy: &Proxy, node: &str, field: &str) -> serde_json::Value {
    node_views(proxy)
        .await
        .into_iter()
        .find(|v| v["name"] == node)
        .map(|v| v[field].clone())
        .unwrap_or_default()
}

/// Path of the lab script, for tests that stop and start nodes.
pub fn lab_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto-tests/lab")
}

/// Tests that disturb shared lab state (or measure it) take this lock so
/// they do not overlap within one test binary.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub const ADMIN_TOKEN: &str = "lab-admin-token";

/// An admin HTTP request; returns (status, body).
pub async fn admin(proxy: &Proxy, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("http://{}{}", proxy.admin, path);
    let method = method.to_string();
    let token = token.map(String::from);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
        let mut response = if method == "POST" {
            agent.post(&url).header("Authorization", &auth).send_empty()
        } else {
            agent.get(&url).header("Authorization", &auth).call()
        }
        .expect("admin endpoint reachable");
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    })
    .await
    .unwrap()
}

/// `SHOW GLOBAL STATUS` counter, on a connection opened beforehand (a new
/// connection runs SELECTs of its own while it sets up).
pub async fn global_status(conn: &mut Conn, name: &str) -> u64 {
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .unwrap();
    row.map(|(_, v)| v.parse().unwrap_or(0)).unwrap_or(0)
}
