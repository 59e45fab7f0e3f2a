//! Accounts loaded from the servers (`[accounts] from_backend`), as
//! MaxScale does: a user created with `CREATE USER … IDENTIFIED BY` on
//! the writer logs in through splitrail without a config change.
//!
//! What is loaded: user, host pattern, the `mysql_native_password` hash
//! and `REQUIRE SSL`. A client is checked against the hash (it proves the
//! password without sending it); backend logins then use what its proof
//! reveals (see `backend::credential`). Accounts splitrail cannot check
//! honestly are not loaded, so their logins are denied: other plugins
//! (ed25519, unix_socket, caching_sha2 hashes of MySQL), `REQUIRE X509` /
//! `SUBJECT` / `ISSUER` / `CIPHER` (splitrail does not see the client's
//! certificate the way the server would), locked accounts and roles.
//!
//! Loads happen every `accounts.refresh_s` and at once when a login names
//! an unknown user or gives a wrong password (coalesced, at most one per
//! [`MIN_GAP`]): a new account logs in on its first try, a changed password
//! on the first try with the new one, and a client guessing passwords
//! costs the writer two small queries a second at most.

use crate::config::{Config, MonitorConfig, UserConfig};
use crate::topology::{Node, Topology};
use mysql_async::prelude::Queryable;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Two loads are at least this far apart.
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// A login waits at most this long for a load it asked for.
const WAIT_FOR_LOAD: Duration = Duration::from_secs(2);
/// Time allowed for one load from one node.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3);

/// One loaded account. Its hash is never logged (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub host: HostPattern,
    /// `*` + 40 hex digits, or empty for an account without a password.
    pub native_hash: String,
    pub require_tls: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("host", &self.host)
            .field("native_hash", &"<redacted>")
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

impl Account {
    fn as_user(&self) -> UserConfig {
        UserConfig {
            name: self.user.clone(),
            password: String::new(),
            password_env: String::new(),
            password_file: String::new(),
            password_hash: self.native_hash.clone(),
            consistency: None,
            max_connections: 0,
            require_tls: self.require_tls,
        }
    }
}

/// The accounts known now, and the machinery to ask for fresher ones.
#[derive(Default)]
pub struct Accounts {
    /// Most specific host pattern first (as the server matches).
    loaded: arc_swap::ArcSwap<Vec<Account>>,
    /// Number of the last load begun; a waiter wants one begun after it
    /// asked.
    begun: AtomicU64,
    /// Number of the last load finished (successful or not).
    finished: watch::Sender<u64>,
    wanted: Notify,
}

impl Accounts {
    /// The account `user` logs in as from `peer`: the first loaded entry of
    /// that name whose host pattern matches, most specific first.
    pub fn find(&self, user: &[u8], peer: IpAddr) -> Option<UserConfig> {
        let peer = canonical(peer);
        self.loaded
            .load()
            .iter()
            .find(|a| a.user.as_bytes() == user && a.host.matches(peer))
            .map(Account::as_user)
    }

    pub fn count(&self) -> usize {
        self.loaded.load().len()
    }

    /// Asks for a load that begins after this call and waits (bounded) for
    /// it to finish.
    pub async fn refreshed(&self) {
        let asked_after = self.begun.load(Ordering::SeqCst);
        let mut finished = self.finished.subscribe();
        self.wanted.notify_one();
        let done = finished.wait_for(|&n| n > asked_after);
        let _ = tokio::time::timeout(WAIT_FOR_LOAD, done).await;
    }

    pub(crate) fn replace(&self, mut accounts: Vec<Account>) -> bool {
        accounts.sort_by_key(|a| a.host.rank());
        let changed = **self.loaded.load() != accounts;
        self.loaded.store(Arc::new(accounts));
        changed
    }
}

/// Keeps `accounts` loaded from the writer (or, when it does not answer,
/// from any node that does: account tables replicate) until dropped.
pub async fn keep_loaded(ctx: Arc<crate::Context>) {
    let (accounts, topology, config) = (&ctx.accounts, &ctx.topology, &ctx.config);
    let (user, password) = config.accounts.login(&config.monitor);
    let login = MonitorConfig {
        user: user.to_string(),
        password: password.to_string(),
        ..config.monitor.clone()
    };
    let every = Duration::from_secs(config.accounts.refresh_s);
    let mut last_error = String::new();
    loop {
        let number = accounts.begun.fetch_add(1, Ordering::SeqCst) + 1;
        match load_any(topology, &login, config).await {
            Ok((node, loaded)) => {
                let count = loaded.accounts.len();
                if accounts.replace(loaded.accounts) || !last_error.is_empty() {
                    tracing::info!(
                        from = %node,
                        accounts = count,
                        skipped = %loaded.skipped.join(", "),
                        "accounts loaded"
                    );
                }
                last_error.clear();
            }
            Err(error) => {
                // Once per distinct failure: an outage does not repeat it
                // every refresh.
                if error != last_error {
                    tracing::warn!(%error, "cannot load accounts; keeping the ones known");
                    last_error = error;
                }
            }
        }
        accounts.finished.send_replace(number);
        tokio::time::sleep(MIN_GAP).await;
        let _ =
            tokio::time::timeout(every.saturating_sub(MIN_GAP), accounts.wanted.notified()).await;
    }
}

/// What one load found.
struct Loaded {
    accounts: Vec<Account>,
    /// `user@host (reason)` of each account left out.
    skipped: Vec<String>,
}

async fn load_any(
    topology: &Topology,
    login: &MonitorConfig,
    config: &Config,
) -> Result<(String, Loaded), String> {
    let snap = topology.load();
    let mut order: Vec<Node> = snap
        .writer()
        .map(|w| snap.node(w).clone())
        .into_iter()
        .collect();
    order.extend(
        snap.nodes
            .iter()
            .filter(|n| Some(n.id) != snap.writer())
            .cloned(),
    );
    drop(snap);
    let mut errors = Vec::new();
    for node in order {
        let work = load_from(&node, login, config);
        match crate::fence::bounded_by(LOAD_TIMEOUT, work).await {
            Ok(loaded) => return Ok((node.name, loaded)),
            Err(e) => errors.push(format!("{}: {e}", node.name)),
        }
    }
    Err(errors.join("; "))
}

/// One row of the account table, as text.
type Row = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// MariaDB 10.4+: accounts live in `mysql.global_priv` as JSON.
const MARIADB_ACCOUNTS: &str = "SELECT User, Host, JSON_VALUE(Priv, '$.plugin'), \
     JSON_VALUE(Priv, '$.authentication_string'), JSON_VALUE(Priv, '$.ssl_type'), \
     JSON_VALUE(Priv, '$.account_locked'), JSON_VALUE(Priv, '$.is_role') \
     FROM mysql.global_priv";
/// MySQL 5.7 / 8.x.
const MYSQL_ACCOUNTS: &str = "SELECT user, host, plugin, authentication_string, ssl_type, \
     account_locked, 'N' FROM mysql.user";

async fn load_from(
    node: &Node,
    login: &MonitorConfig,
    config: &Config,
) -> Result<Loaded, mysql_async::Error> {
    let mut conn = crate::monitor::connect(node, login, &config.backend_tls).await?;
    // MariaDB may announce itself as 5.5.5-10.x: its version text decides.
    let mariadb = conn
        .query_first::<String, _>("SELECT @@version")
        .await?
        .is_some_and(|v| v.contains("MariaDB"));
    let query = if mariadb {
        MARIADB_ACCOUNTS
    } else {
        MYSQL_ACCOUNTS
    };
    let rows: Vec<Row> = conn.query(query).await?;
    let _ = conn.disconnect().await;
    Ok(parse_rows(rows))
}

fn text(field: &Option<Vec<u8>>) -> String {
    field
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn parse_rows(rows: Vec<Row>) -> Loaded {
    let mut loaded = Loaded {
        accounts: Vec::new(),
        skipped: Vec::new(),
    };
    for (user, host, plugin, auth, ssl, locked, role) in rows {
        if matches!(text(&role).as_str(), "true" | "Y") {
            continue;
        }
        let (user, host) = (text(&user), text(&host));
        let verdict = match text(&locked).as_str() {
            "true" | "Y" => Err("locked"),
            _ => account(&user, &host, &text(&plugin), &text(&auth), &text(&ssl)),
        };
        match verdict {
            Ok(account) => loaded.accounts.push(account),
            Err(reason) => loaded.skipped.push(format!("{user}@{host} ({reason})")),
        }
    }
    loaded
}

/// An account splitrail can check, or why not.
fn account(
    user: &str,
    host: &str,
    plugin: &str,
    auth: &str,
    ssl: &str,
) -> Result<Account, &'static str> {
    if user.is_empty() {
        return Err("anonymous");
    }
    // An account migrated from before 10.4 may lack the plugin field:
    // it is a native one.
    if !matches!(plugin, "" | "mysql_native_password") {
        return Err("plugin not mysql_native_password");
    }
    if !auth.is_empty() && crate::frontend::auth::parse_native_hash(auth).is_none() {
        return Err("not a native password hash");
    }
    let require_tls = match ssl {
        "" | "0" | "NONE" => false,
        "1" | "ANY" => true,
        _ => return Err("REQUIRE X509/SUBJECT/ISSUER/CIPHER"),
    };
    Ok(Account {
        user: user.to_string(),
        host: HostPattern::parse(host),
        native_hash: auth.to_string(),
        require_tls,
    })
}

/// A `Host` of an account, matched against a client's address as the
/// server does with `skip_name_resolve` (splitrail resolves no names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `%` (or empty): anywhere.
    Any,
    /// `localhost`: loopback addresses (the server means its Unix socket;
    /// through splitrail that is a client on the same machine).
    Localhost,
    Exact(IpAddr),
    /// `a.b.c.d/m.m.m.m`.
    Netmask {
        net: u32,
        mask: u32,
    },
    /// With `%` / `_` wildcards, matched against the address's text.
    Wildcard(String),
    /// A host name: never matched without name resolution.
    Name(String),
}

impl HostPattern {
    pub fn parse(host: &str) -> HostPattern {
        if host.is_empty() || host == "%" {
            return HostPattern::Any;
        }
        if host.eq_ignore_ascii_case("localhost") {
            return HostPattern::Localhost;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return HostPattern::Exact(canonical(ip));
        }
        if let Some((net, mask)) = host.split_once('/') {
            if let (Ok(net), Ok(mask)) = (
                net.parse::<std::net::Ipv4Addr>(),
                mask.parse::<std::net::Ipv4Addr>(),
            ) {
                let mask = u32::from(mask);
                return HostPattern::Netmask {
                    net: u32::from(net) & mask,
                    mask,
                };
            }
        }
        if host.contains(['%', '_']) {
            return HostPattern::Wildcard(host.to_ascii_lowercase());
        }
        HostPattern::Name(host.to_string())
    }

    pub fn matches(&self, peer: IpAddr) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Localhost => peer.is_loopback(),
            HostPattern::Exact(ip) => *ip == peer,
            HostPattern::Netmask { net, mask } => match peer {
                IpAddr::V4(v4) => u32::from(v4) & mask == *net,
                IpAddr::V6(_) => false,
            },
            HostPattern::Wildcard(pattern) => like(pattern.as_bytes(), peer.to_string().as_bytes()),
            HostPattern::Name(_) => false,
        }
    }

    /// Sort key: literal hosts before netmasks before wildcards (longer
    /// literal prefix first) before `%`, as the server orders its account
    /// list.
    fn rank(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(_) | HostPattern::Localhost | HostPattern::Name(_) => (0, 0),
            HostPattern::Netmask { mask, .. } => (1, 32 - mask.count_ones() as usize),
            HostPattern::Wildcard(p) => (2, usize::MAX - p.find(['%', '_']).unwrap_or(0)),
            HostPattern::Any => (3, 0),
        }
    }
}

/// An IPv4 client seen through an IPv6 socket is an IPv4 client.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// SQL `LIKE` matching: `%` any run, `_` one character, `\` escapes.
fn like(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'%', rest)) => (0..=text.len()).any(|skip| like(rest, &text[skip..])),
        Some((b'_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some((b'\\', [escaped, rest @ ..])) => {
            text.first() == Some(escaped) && like(rest, &text[1..])
        }
        Some((c, rest)) => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && like(rest, &text[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_patterns_match_as_the_server_does() {
        assert!(HostPattern::parse("%").matches(ip("10.1.2.3")));
        assert!(HostPattern::parse("localhost").matches(ip("127.0.0.1")));
        assert!(HostPattern::parse("localhost").matches(ip("::1")));
        assert!(!HostPattern::parse("localhost").matches(ip("10.0.0.1")));
        assert!(HostPattern::parse("10.0.%").matches(ip("10.0.7.1")));
        assert!(!HostPattern::parse("10.0.%").matches(ip("10.1.7.1")));
        assert!(HostPattern::parse("10.0.0._").matches(ip("10.0.0.7")));
        assert!(!HostPattern::parse("10.0.0._").matches(ip("10.0.0.17")));
        assert!(HostPattern::parse("192.168.1.0/255.255.255.0").matches(ip("192.168.1.77")));
        assert!(!HostPattern::parse("192.168.1.0/255.255.255.0").matches(ip("192.168.2.77")));
        assert!(HostPattern::parse("127.0.0.1").matches(canonical(ip("::ffff:127.0.0.1"))));
        assert!(!HostPattern::parse("app.example.com").matches(ip("127.0.0.1")));
    }

    #[test]
    fn the_most_specific_host_wins() {
        let accounts = Accounts::default();
        let hash_a = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3";
        let entry = |host: &str, hash: &str| Account {
            user: "app".into(),
            host: HostPattern::parse(host),
            native_hash: hash.into(),
            require_tls: false,
        };
        accounts.replace(vec![
            entry("%", ""),
            entry("127.%", hash_a),
            entry("127.0.0.1", "*0000000000000000000000000000000000000001"),
        ]);
        let found = |peer: &str| accounts.find(b"app", ip(peer)).unwrap().password_hash;
        assert_eq!(
            found("127.0.0.1"),
            "*0000000000000000000000000000000000000001"
        );
        assert_eq!(found("127.0.0.2"), hash_a);
        assert_eq!(found("10.0.0.1"), "");
        assert!(accounts.find(b"other", ip("127.0.0.1")).is_none());
    }

    #[test]
    fn only_accounts_splitrail_can_check_are_loaded() {
        let row = |user: &str, plugin: &str, auth: &str, ssl: &str, locked: &str, role: &str| {
            let f = |s: &str| Some(s.as_bytes().to_vec());
            (
                f(user),
                f("%"),
                f(plugin),
                f(auth),
                f(ssl),
                f(locked),
                f(role),
            )
        };
        let hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3";
        let loaded = parse_rows(vec![
            row("app", "mysql_native_password", hash, "0", "false", "false"),
            row("tls", "mysql_native_password", hash, "1", "false", "false"),
            row("cert", "mysql_native_password", hash, "2", "false", "false"),
            row("sock", "unix_socket", "", "0", "false", "false"),
            row(
                "locked",
                "mysql_native_password",
                hash,
                "0",
                "true",
                "false",
            ),
            row("a_role", "", "", "0", "false", "true"),
            row(
                "mysql8",
                "caching_sha2_password",
                "$A$005$xyz",
                "",
                "N",
                "N",
            ),
            row("old", "", hash, "", "N", "N"),
        ]);
        let names: Vec<_> = loaded.accounts.iter().map(|a| a.user.as_str()).collect();
        assert_eq!(names, ["app", "tls", "old"]);
        assert!(loaded.accounts[1].require_tls);
        assert_eq!(loaded.skipped.len(), 4, "{:?}", loaded.skipped);
        assert!(
            !format!("{:?}", loaded.accounts).contains("5BCB"),
            "hash logged"
        );
    }
}
