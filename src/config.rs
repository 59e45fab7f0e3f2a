//! The TOML configuration: its shape, defaults and validation.
//!
//! Loading a config never touches the network; `splitrail check` uses the
//! same [`Config::from_toml`] as `splitrail serve`. Every key is documented
//! in `docs/configuration.md` (a test keeps the two in step).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// The configuration used by `splitrail serve` without `--config`: the
/// script lab's default topology (`proto-tests/lab up`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../proto-tests/lab.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub monitor: MonitorConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub backend_tls: BackendTlsConfig,
    #[serde(default)]
    pub coordination: CoordinationConfig,
    #[serde(default)]
    pub failover: FailoverConfig,
    #[serde(default)]
    pub accounts: AccountsConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub nodes: Vec<NodeConfig>,
    /// The file this config was read from (for `splitrail reload`).
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address the MySQL protocol listener binds to.
    pub listen: String,
    /// Client connections accepted at once; more get error 1040.
    pub max_connections: usize,
    /// Largest client command accepted, in bytes; larger gets error 1153.
    pub max_allowed_packet: usize,
    /// Timeout for TCP connect plus handshake to a backend.
    pub connect_timeout_ms: u64,
    /// A client must finish its handshake within this time.
    pub handshake_timeout_ms: u64,
    /// A client silent this long between commands is disconnected
    /// (0 = never), like the server's wait_timeout.
    pub client_idle_timeout_ms: u64,
    /// How long a node that failed a connect is skipped before it is tried
    /// again (until the health monitor takes over this job).
    pub retry_down_after_ms: u64,
    /// Runtime threads: 1 = a single current-thread runtime, 0 = one
    /// worker per core, N = N workers.
    pub threads: usize,
    /// Server version announced to clients before any backend was reached.
    /// Once a backend answers, its own version string is announced.
    pub fallback_server_version: String,
    /// Authentication plugin announced in the greeting (clients may answer
    /// with the other one; both are accepted).
    pub auth_plugin: AuthPluginName,
    /// Peers (addresses, `addr/prefix` networks, `localhost`, `*`) that may
    /// start their connection with a PROXY protocol header naming the real
    /// client (a load balancer in front of splitrail).
    pub proxy_protocol_networks: Vec<String>,
    /// Offer the compressed protocol (zlib, `CLIENT_COMPRESS`) to clients;
    /// those that ask for it get it.
    pub compression: bool,
}

/// The authentication plugins splitrail can announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuthPluginName {
    /// MariaDB's and MySQL 5.x's default.
    #[default]
    #[serde(rename = "mysql_native_password")]
    MysqlNativePassword,
    /// MySQL 8's default.
    #[serde(rename = "caching_sha2_password")]
    CachingSha2Password,
}

impl AuthPluginName {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthPluginName::MysqlNativePassword => "mysql_native_password",
            AuthPluginName::CachingSha2Password => "caching_sha2_password",
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:6033".into(),
            max_connections: 10_000,
            max_allowed_packet: 64 * 1024 * 1024,
            connect_timeout_ms: 1000,
            handshake_timeout_ms: 10_000,
            client_idle_timeout_ms: 8 * 3600 * 1000,
            retry_down_after_ms: 5000,
            threads: 0,
            fallback_server_version: "5.5.5-10.11.0-splitrail".into(),
            auth_plugin: AuthPluginName::default(),
            proxy_protocol_networks: Vec::new(),
            compression: true,
        }
    }
}

impl ProxyConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `None` when idle clients are never disconnected.
    pub fn client_idle_timeout(&self) -> Option<Duration> {
        (self.client_idle_timeout_ms > 0)
            .then(|| Duration::from_millis(self.client_idle_timeout_ms))
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn retry_down_after(&self) -> Duration {
        Duration::from_millis(self.retry_down_after_ms)
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin endpoint (HTTP); empty disables it.
    pub listen: String,
    /// Bearer token required by the node and reload endpoints. The
    /// environment variable SPLITRAIL_ADMIN_TOKEN overrides it.
    pub token: String,
    /// Where operator marks and the active writer are kept across restarts;
    /// empty: not kept.
    pub state_file: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:6034".into(),
            token: String::new(),
            state_file: "splitrail.state.json".into(),
        }
    }
}

impl AdminConfig {
    /// The token in force: the environment wins over the file.
    pub fn effective_token(&self) -> Option<String> {
        std::env::var("SPLITRAIL_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| Some(self.token.clone()).filter(|t| !t.is_empty()))
    }
}

impl std::fmt::Debug for AdminConfig {
    // The token never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// TLS towards clients: splitrail offers it when a certificate is set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain presented to clients; empty: no TLS offered.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate.
    pub key_file: String,
    /// Refuse every login that did not upgrade to TLS (error 3159), like
    /// the server's require_secure_transport.
    pub require: bool,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }
}

/// How splitrail connects to backends, after MySQL's `--ssl-mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendTlsMode {
    /// Plain TCP.
    #[default]
    Disabled,
    /// Encrypted; the server's certificate is not checked.
    Required,
    /// Encrypted; the certificate must chain to `ca_file`.
    VerifyCa,
    /// As `verify_ca`, and the certificate must name the node's host (or
    /// `server_name`).
    VerifyIdentity,
}

/// TLS towards backends (data path; the health monitor uses the same mode).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendTlsConfig {
    pub mode: BackendTlsMode,
    /// PEM CA certificate(s) the backends' certificates must chain to.
    pub ca_file: String,
    /// Client certificate presented to backends (for `REQUIRE X509`
    /// accounts); empty: none.
    pub cert_file: String,
    pub key_file: String,
    /// Name checked against every backend's certificate instead of the
    /// host in its `addr` (`verify_identity` only).
    pub server_name: String,
    /// Without TLS, a MySQL 8 backend's caching_sha2_password full
    /// authentication needs its RSA public key; fetching it unauthenticated
    /// lets a man in the middle read the password, so it is opt-in (MySQL's
    /// `--get-server-public-key`).
    pub allow_public_key_retrieval: bool,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Login for health checks (needs REPLICATION CLIENT / SLAVE MONITOR and
    /// PROCESS only). Empty: no monitor; health comes from the data path.
    pub user: String,
    pub password: String,
    /// Time between two checks of a node.
    pub interval_ms: u64,
    /// Time allowed for one check (connect + queries).
    pub timeout_ms: u64,
    /// Consecutive failed checks before a node is marked down.
    pub down_after: u32,
    /// Consecutive good checks before a down node is marked up again.
    pub up_after: u32,
    /// Replicas lagging more than this (seconds), or whose replication
    /// threads stopped, get no reads.
    pub max_replica_lag_s: u64,
    /// Replicas' lag from the age of a heartbeat row the writer's monitor
    /// stamps every interval, instead of Seconds_Behind_Master (see
    /// `heartbeat`).
    pub heartbeat: bool,
}

/// Logins read from the servers' account tables, as MaxScale does, so a
/// user created with `CREATE USER` logs in through splitrail without a
/// config change. `[[users]]` entries override loaded accounts of the same
/// name.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Load accounts from the writer (`mysql.global_priv` on MariaDB,
    /// `mysql.user` on MySQL).
    pub from_backend: bool,
    /// Login that reads the account tables (needs only SELECT on
    /// `mysql.global_priv`, or on `mysql.user`). Empty: the monitor's.
    pub user: String,
    pub password: String,
    /// Time between two loads; an unknown user or a wrong password also
    /// triggers one at once (at most two a second).
    pub refresh_s: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            from_backend: false,
            user: String::new(),
            password: String::new(),
            refresh_s: 60,
        }
    }
}

impl std::fmt::Debug for AccountsConfig {
    // The password never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountsConfig")
            .field("from_backend", &self.from_backend)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("refresh_s", &self.refresh_s)
            .finish()
    }
}

impl AccountsConfig {
    /// The login the loader uses: this section's, else the monitor's.
    pub fn login<'a>(&'a self, monitor: &'a MonitorConfig) -> (&'a str, &'a str) {
        if self.user.is_empty() {
            (&monitor.user, &monitor.password)
        } else {
            (&self.user, &self.password)
        }
    }
}

/// Several splitrail instances of one cluster agreeing on the writer
/// through etcd v3 (see docs/architecture.md, "Coordination"). Without
/// endpoints, a single instance decides alone (and keeps its state file).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinationConfig {
    /// etcd client endpoints (`host:port`). Empty: no coordination.
    pub etcd_endpoints: Vec<String>,
    /// Key prefix shared by the instances of one cluster.
    pub cluster: String,
    /// This instance's name among them (default: hostname:listen port).
    pub instance: String,
    /// etcd authentication (empty: none).
    pub etcd_user: String,
    pub etcd_password: String,
    /// TLS towards etcd: the CA that signed the members' certificates
    /// (set: connections are TLS); a client certificate and key for
    /// members that require one (`--client-cert-auth`).
    pub etcd_ca_file: String,
    pub etcd_cert_file: String,
    pub etcd_key_file: String,
    /// An instance that stops renewing its view is no longer counted
    /// after this long (its etcd lease's TTL, seconds).
    pub lease_ttl_s: u64,
    /// How often each instance publishes its view and checks whether the
    /// writer must move.
    pub interval_ms: u64,
    /// Timeout of one etcd request.
    pub etcd_timeout_ms: u64,
}

/// How the writer role moves: fencing, and the operator's switchover.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// A switchover (and, with coordination, the instance that moves the
    /// writer) sets `read_only=ON` on the old writer and `read_only=OFF`
    /// on the new one, with the monitor's login (which then needs
    /// READ_ONLY ADMIN or SUPER).
    pub fence: bool,
    /// How long `node promote` waits for the target to apply everything
    /// the old writer has; then it undoes the fence and reports.
    pub switchover_timeout_ms: u64,
    /// After the writer moved, re-point the replicas of the old writer to
    /// the new one by GTID (see `repoint`).
    pub repoint_replicas: bool,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            fence: true,
            switchover_timeout_ms: 10_000,
            repoint_replicas: false,
        }
    }
}

impl FailoverConfig {
    pub fn switchover_timeout(&self) -> Duration {
        Duration::from_millis(self.switchover_timeout_ms)
    }
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        CoordinationConfig {
            etcd_endpoints: Vec::new(),
            cluster: "splitrail".into(),
            instance: String::new(),
            etcd_user: String::new(),
            etcd_password: String::new(),
            etcd_ca_file: String::new(),
            etcd_cert_file: String::new(),
            etcd_key_file: String::new(),
            lease_ttl_s: 3,
            interval_ms: 300,
            etcd_timeout_ms: 1000,
        }
    }
}

impl CoordinationConfig {
    pub fn enabled(&self) -> bool {
        !self.etcd_endpoints.is_empty()
    }
}

impl std::fmt::Debug for CoordinationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinationConfig")
            .field("etcd_endpoints", &self.etcd_endpoints)
            .field("cluster", &self.cluster)
            .field("instance", &self.instance)
            .field("etcd_user", &self.etcd_user)
            .field("etcd_password", &"<hidden>")
            .field("etcd_ca_file", &self.etcd_ca_file)
            .field("etcd_cert_file", &self.etcd_cert_file)
            .field("etcd_key_file", &self.etcd_key_file)
            .field("lease_ttl_s", &self.lease_ttl_s)
            .field("interval_ms", &self.interval_ms)
            .field("etcd_timeout_ms", &self.etcd_timeout_ms)
            .finish()
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            user: String::new(),
            password: String::new(),
            interval_ms: 1000,
            timeout_ms: 1000,
            down_after: 2,
            up_after: 2,
            max_replica_lag_s: 5,
            heartbeat: false,
        }
    }
}

impl MonitorConfig {
    pub fn enabled(&self) -> bool {
        !self.user.is_empty()
    }
}

impl std::fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("interval_ms", &self.interval_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("down_after", &self.down_after)
            .field("up_after", &self.up_after)
            .field("max_replica_lag_s", &self.max_replica_lag_s)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Idle backend connections kept per node; extra ones are closed.
    pub max_idle_per_node: usize,
    /// Backend connections per node, in use or idle (0 = no limit).
    pub max_per_node: usize,
    /// How long a statement waits for a free connection when a node is at
    /// `max_per_node`; then it fails with error 1040.
    pub queue_timeout_ms: u64,
    /// A session idle this long outside any transaction, lock or other
    /// connection-bound state gives its backend connections back to the
    /// pools (0 = never): idle clients then hold no backend connection.
    pub release_idle_after_ms: u64,
    /// A pooled connection given to a new session is reset again when it
    /// was last reset before the session began, so the session's variables
    /// come from the globals of now (a `SET GLOBAL` made while it sat idle
    /// shows, as on a direct connection). Costs one round trip per node on
    /// a new session's first statement.
    pub fresh_defaults: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_node: 64,
            max_per_node: 0,
            queue_timeout_ms: 5000,
            release_idle_after_ms: 1000,
            fresh_defaults: true,
        }
    }
}

impl PoolConfig {
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    /// `None` when sessions keep their connections until they end.
    pub fn release_idle_after(&self) -> Option<Duration> {
        (self.release_idle_after_ms > 0).then(|| Duration::from_millis(self.release_idle_after_ms))
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// Used both to check the client's password and to log in to backends.
    #[serde(default)]
    pub password: String,
    /// The password comes from this environment variable instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_env: String,
    /// The password is the first line of this file instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_file: String,
    /// Check clients against this MySQL native hash (`*` + 40 hex digits,
    /// as in `mysql.user`) rather than against the password. Backend logins
    /// use `password` (or `password_env`/`password_file`) when given, else
    /// what the client's proof reveals (SHA1 of its password).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_hash: String,
    /// Overrides `routing.consistency` for this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// Connections this user may hold at once (0 = no limit beyond
    /// `proxy.max_connections`); more get error 1203.
    #[serde(default)]
    pub max_connections: usize,
    /// This user must log in over TLS (like `REQUIRE SSL`); a plain-TCP
    /// login is refused with error 1045.
    #[serde(default)]
    pub require_tls: bool,
}

impl UserConfig {
    /// Resolves `password_env` / `password_file` into `password`, and
    /// checks that the user can both be authenticated and log in to
    /// backends.
    fn resolve(&mut self) -> Result<(), String> {
        let sources = [
            !self.password.is_empty(),
            !self.password_env.is_empty(),
            !self.password_file.is_empty(),
        ];
        if sources.iter().filter(|&&s| s).count() > 1 {
            return Err(format!(
                "user {}: give only one of password, password_env, password_file",
                self.name
            ));
        }
        if !self.password_env.is_empty() {
            self.password = std::env::var(&self.password_env).map_err(|_| {
                format!(
                    "user {}: environment variable {} is not set",
                    self.name, self.password_env
                )
            })?;
        }
        if !self.password_file.is_empty() {
            let text = std::fs::read_to_string(&self.password_file).map_err(|e| {
                format!(
                    "user {}: cannot read password_file {}: {e}",
                    self.name, self.password_file
                )
            })?;
            self.password = text.lines().next().unwrap_or_default().to_string();
        }
        if !self.password_hash.is_empty()
            && crate::frontend::auth::parse_native_hash(&self.password_hash).is_none()
        {
            return Err(format!(
                "user {}: password_hash must be '*' followed by 40 hex digits",
                self.name
            ));
        }
        Ok(())
    }
}

/// What a session's reads see after its own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Reads go to replicas at once; they may not show the session's own
    /// latest writes yet.
    None,
    /// Reads go to the writer for `routing.window_ms` after a write.
    Window,
    /// After a write, splitrail learns its GTID; a replica serves the
    /// session's next read only once it has applied that GTID (waiting up
    /// to `routing.causal_timeout_ms`), otherwise the writer does.
    Causal,
    /// Read-your-writes across connections: a replica serves a read only
    /// once it has applied every write this instance acknowledged to any
    /// session before the read arrived (the writer's position, read when
    /// writes happened since; waited for up to `routing.causal_timeout_ms`),
    /// otherwise the writer does.
    Global,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub consistency: Consistency,
    pub window_ms: u64,
    pub causal_timeout_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            consistency: Consistency::Causal,
            window_ms: 1000,
            causal_timeout_ms: 200,
        }
    }
}

impl std::fmt::Debug for UserConfig {
    // Passwords never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field(
                "password_hash",
                &if self.password_hash.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("consistency", &self.consistency)
            .field("max_connections", &self.max_connections)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Replica,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    /// `host:port`.
    pub addr: String,
    pub role: Role,
    /// Share of reads relative to other replicas; 0 takes the node out of
    /// read rotation.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Start every client connection to this node with a PROXY protocol
    /// (v2) header naming the client, for a server whose
    /// `proxy_protocol_networks` lists splitrail.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Use the compressed protocol (zlib) on client connections to this
    /// node, when it offers it: for a node across a slow link.
    #[serde(default)]
    pub compress: bool,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text)?;
        config.validate()?;
        for user in &mut config.users {
            user.resolve().map_err(ConfigError::Invalid)?;
        }
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml(&text)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn embedded_default() -> Config {
        Self::from_toml(EMBEDDED_DEFAULT).expect("the embedded default config is valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.users.is_empty() && !self.accounts.from_backend {
            return invalid(
                "at least one [[users]] entry is required (or accounts.from_backend = true)".into(),
            );
        }
        if self.accounts.from_backend {
            if self.accounts.login(&self.monitor).0.is_empty() {
                return invalid(
                    "accounts.from_backend needs accounts.user or a [monitor] user".into(),
                );
            }
            if self.accounts.refresh_s == 0 {
                return invalid("accounts.refresh_s must be > 0".into());
            }
        }
        if !self.nodes.iter().any(|n| n.role == Role::Master) {
            return invalid("at least one node with role = \"master\" is required".into());
        }
        let mut names = HashSet::new();
        for node in &self.nodes {
            if node.name.is_empty() || !names.insert(node.name.as_str()) {
                return invalid(format!("node name {:?} is empty or repeated", node.name));
            }
            if !has_port(&node.addr) {
                return invalid(format!(
                    "node {}: addr {:?} must be host:port",
                    node.name, node.addr
                ));
            }
        }
        if self.coordination.enabled() {
            if !self.monitor.enabled() {
                return invalid(
                    "[coordination] needs a [monitor] user: each instance's view of the nodes comes from its monitor".into(),
                );
            }
            if self.coordination.cluster.is_empty() {
                return invalid("coordination.cluster must not be empty".into());
            }
            let c = &self.coordination;
            if c.etcd_cert_file.is_empty() != c.etcd_key_file.is_empty()
                || (!c.etcd_cert_file.is_empty() && c.etcd_ca_file.is_empty())
            {
                return invalid("coordination.etcd_cert_file and etcd_key_file go together, and need etcd_ca_file".into());
            }
            for path in [&c.etcd_ca_file, &c.etcd_cert_file, &c.etcd_key_file] {
                if !path.is_empty() && std::fs::metadata(path).is_err() {
                    return invalid(format!("cannot read {path} ([coordination] TLS)"));
                }
            }
        }
        let mut users = HashSet::new();
        for user in &self.users {
            user.clone().resolve().map_err(ConfigError::Invalid)?;
            if user.name.is_empty() || !users.insert(user.name.as_str()) {
                return invalid(format!("user name {:?} is empty or repeated", user.name));
            }
        }
        if !has_port(&self.proxy.listen) {
            return invalid(format!(
                "proxy.listen {:?} must be host:port",
                self.proxy.listen
            ));
        }
        if self.proxy.max_connections == 0 || self.proxy.connect_timeout_ms == 0 {
            return invalid(
                "proxy.max_connections and proxy.connect_timeout_ms must be > 0".into(),
            );
        }
        let m = &self.monitor;
        if m.interval_ms == 0 || m.timeout_ms == 0 || m.down_after == 0 || m.up_after == 0 {
            return invalid(
                "monitor.interval_ms, timeout_ms, down_after and up_after must be > 0".into(),
            );
        }
        if !self.admin.listen.is_empty() && !has_port(&self.admin.listen) {
            return invalid(format!(
                "admin.listen {:?} must be host:port",
                self.admin.listen
            ));
        }
        crate::proxy_protocol::Networks::parse(&self.proxy.proxy_protocol_networks)
            .map_err(ConfigError::Invalid)?;
        if self.proxy.max_allowed_packet < 1024 {
            return invalid("proxy.max_allowed_packet must be at least 1024".into());
        }
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let tls = &self.tls;
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            return invalid("tls.cert_file and tls.key_file go together".into());
        }
        let tls_required = tls.require || self.users.iter().any(|u| u.require_tls);
        if tls_required && !tls.enabled() {
            return invalid(
                "tls.require or a user's require_tls needs tls.cert_file and tls.key_file".into(),
            );
        }
        let backend = &self.backend_tls;
        if backend.cert_file.is_empty() != backend.key_file.is_empty() {
            return invalid("backend_tls.cert_file and backend_tls.key_file go together".into());
        }
        let verifies = matches!(
            backend.mode,
            BackendTlsMode::VerifyCa | BackendTlsMode::VerifyIdentity
        );
        if verifies && backend.ca_file.is_empty() {
            return invalid("backend_tls.mode verify_ca/verify_identity needs ca_file".into());
        }
        // Load the files now: a bad path is a config error at start-up (and
        // in `splitrail check`), not a failure on the first connection.
        crate::tls::acceptor(tls).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        crate::tls::BackendTls::from_config(backend)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(())
    }

    pub fn user(&self, name: &[u8]) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name.as_bytes() == name)
    }
}

fn has_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_matches_the_lab() {
        let cfg = Config::embedded_default();
        assert_eq!(cfg.proxy.listen, "127.0.0.1:6033");
        let masters: Vec<_> = cfg
            .nodes
            .iter()
            .filter(|n| n.role == Role::Master)
            .collect();
        assert_eq!(masters.len(), 2);
        assert_eq!(masters[0].name, "m1");
        assert_eq!(masters[0].addr, "127.0.0.1:13301");
    }

    #[test]
    fn rejects_bad_configs() {
        let base = r#"
            [[users]]
            name = "app"
            password = "app"
            [[nodes]]
            name = "m1"
            addr = "127.0.0.1:3306"
            role = "master"
        "#;
        assert!(Config::from_toml(base).is_ok());
        let no_master = base.replace("\"master\"", "\"replica\"");
        assert!(Config::from_toml(&no_master).is_err());
        let no_port = base.replace("127.0.0.1:3306", "127.0.0.1");
        assert!(Config::from_toml(&no_port).is_err());
        let unknown_key = format!("{base}\nfoo = 1");
        assert!(Config::from_toml(&unknown_key).is_err());
        let bad_role = base.replace("\"master\"", "\"primary\"");
        assert!(Config::from_toml(&bad_role).is_err());
        let dup = format!("{base}\n[[nodes]]\nname = \"m1\"\naddr = \"h:1\"\nrole = \"replica\"");
        assert!(Config::from_toml(&dup).is_err());
    }

    /// Every key of the config structs must be documented in
    /// docs/configuration.md as `section.key`, and the doc's full example
    /// must be a valid config.
    #[test]
    fn every_key_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/configuration.md"
        ))
        .expect("docs/configuration.md");
        let full = toml::Value::try_from(Config::embedded_default()).unwrap();
        let mut missing = Vec::new();
        for (section, value) in full.as_table().unwrap() {
            let tables: Vec<&toml::value::Table> = match value {
                toml::Value::Table(t) => vec![t],
                toml::Value::Array(a) => a.iter().filter_map(|v| v.as_table()).collect(),
                _ => continue,
            };
            for key in tables.iter().flat_map(|t| t.keys()) {
                let path = format!("`{section}.{key}`");
                if !doc.contains(&path) && !missing.contains(&path) {
                    missing.push(path);
                }
            }
        }
        assert!(missing.is_empty(), "undocumented config keys: {missing:?}");
        let example = doc
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a ```toml example in docs/configuration.md");
        Config::from_toml(example).expect("the documented example is a valid config");
    }

    #[test]
    fn passwords_from_env_file_and_hash() {
        let base = |user: &str| {
            format!(
                "[[users]]\nname = \"app\"\n{user}\n[[nodes]]\nname = \"m1\"\naddr = \"h:1\"\nrole = \"master\""
            )
        };
        std::env::set_var("SPLITRAIL_TEST_PW", "from-env");
        let cfg = Config::from_toml(&base("password_env = \"SPLITRAIL_TEST_PW\"")).unwrap();
        assert_eq!(cfg.users[0].password, "from-env");
        let file = std::env::temp_dir().join(format!("splitrail-pw-{}", std::process::id()));
        std::fs::write(&file, "from-file\n").unwrap();
        let cfg = Config::from_toml(&base(&format!(
            "password_file = {:?}",
            file.display().to_string()
        )))
        .unwrap();
        assert_eq!(cfg.users[0].password, "from-file");
        // app/app's hash, as in mysql.user.
        let hashed = "password_hash = \"*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3\"\npassword_env = \"SPLITRAIL_TEST_PW\"";
        assert!(Config::from_toml(&base(hashed)).is_ok());
        // Without a backend password, backend logins reuse the client's proof.
        assert!(Config::from_toml(&base(
            "password_hash = \"*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3\""
        ))
        .is_ok());
        assert!(Config::from_toml(&base("password_hash = \"nothex\"\npassword = \"x\"")).is_err());
        assert!(Config::from_toml(&base(
            "password = \"a\"\npassword_env = \"SPLITRAIL_TEST_PW\""
        ))
        .is_err());
        assert!(Config::from_toml(&base("password_env = \"SPLITRAIL_NO_SUCH_VAR\"")).is_err());
    }

    #[test]
    fn debug_output_hides_passwords() {
        let cfg = Config::embedded_default();
        let dump = format!("{:?}", cfg);
        assert!(!dump.contains("password: \"app\""), "{dump}");
    }
}
