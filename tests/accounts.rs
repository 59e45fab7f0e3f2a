//! Accounts from the servers (`accounts.from_backend`): a user created with
//! `CREATE USER` on the writer logs in through splitrail at once, a changed
//! password takes effect on the first try, host patterns and REQUIRE SSL
//! are honoured as the server honours them.

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use splitrail::config::Config;
use std::time::{Duration, Instant};
use support::*;

/// Loads only on demand (the hourly refresh never comes during a test),
/// so what is checked is the load an unknown user or wrong password asks
/// for.
fn accounts_config() -> Config {
    let mut cfg = config();
    cfg.accounts.from_backend = true;
    cfg.accounts.refresh_s = 3600;
    cfg
}

async fn login(proxy: &Proxy, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(proxy.addr.ip().to_string())
        .tcp_port(proxy.addr.port())
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    Conn::new(opts).await
}

/// Root SQL on m1 (replicated to the other nodes like any statement).
fn on_writer(sql: &str) {
    assert!(lab_cmd(&["sql", "m1", sql]), "lab sql m1 {sql:?} failed");
}

/// Drops the test's accounts even when an assertion failed.
struct DropUsers(Vec<String>);

impl Drop for DropUsers {
    fn drop(&mut self) {
        for account in &self.0 {
            on_writer(&format!("DROP USER IF EXISTS {account}"));
        }
    }
}

fn denied(result: Result<Conn, mysql_async::Error>) -> bool {
    match result {
        Err(e) => server_error_code(&e) == Some(1045),
        Ok(_) => false,
    }
}

#[tokio::test]
async fn a_user_created_on_the_writer_logs_in_at_once_and_follows_password_changes() {
    let _serial = exclusive().await;
    let proxy = start_proxy(accounts_config()).await;
    let user = unique("acct");
    let _cleanup = DropUsers(vec![format!("'{user}'@'%'")]);
    assert!(denied(login(&proxy, &user, "pw1").await), "not created yet");

    on_writer(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw1'; GRANT SELECT ON *.* TO '{user}'@'%'"
    ));
    let created = Instant::now();
    let mut conn = login(&proxy, &user, "pw1")
        .await
        .expect("a new account logs in on its first try");
    // Answered by the writer, which has the account already (replicas
    // may not have applied the CREATE USER yet).
    let current: Option<String> = conn
        .query_first("SELECT /* splitrail:master */ CURRENT_USER()")
        .await
        .unwrap();
    let took = created.elapsed();
    eprintln!("CREATE USER to first statement through splitrail: {took:?}");
    assert_eq!(current, Some(format!("{user}@%")));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(denied(login(&proxy, &user, "wrong").await));
    drop(conn);

    on_writer(&format!("ALTER USER '{user}'@'%' IDENTIFIED BY 'pw2'"));
    let mut conn = login(&proxy, &user, "pw2")
        .await
        .expect("the new password works on its first try");
    let one: Option<i64> = conn
        .query_first("SELECT /* splitrail:master */ 1")
        .await
        .unwrap();
    assert_eq!(one, Some(1));
    assert!(
        denied(login(&proxy, &user, "pw1").await),
        "the old password"
    );
}

#[tokio::test]
async fn host_patterns_and_require_ssl_are_honoured() {
    let _serial = exclusive().await;
    let proxy = start_proxy(accounts_config()).await;
    let far = unique("acct_far");
    let near = unique("acct_near");
    let tls_only = unique("acct_tls");
    let _cleanup = DropUsers(vec![
        format!("'{far}'@'10.9.9.9'"),
        format!("'{near}'@'127.0.0.1'"),
        format!("'{near}'@'%'"),
        format!("'{tls_only}'@'%'"),
    ]);
    on_writer(&format!(
        "CREATE USER '{far}'@'10.9.9.9' IDENTIFIED BY 'pw'; \
         CREATE USER '{near}'@'127.0.0.1' IDENTIFIED BY 'exact'; \
         CREATE USER '{near}'@'%' IDENTIFIED BY 'anywhere'; \
         CREATE USER '{tls_only}'@'%' IDENTIFIED BY 'pw' REQUIRE SSL"
    ));
    // Only from 10.9.9.9, and this client is on 127.0.0.1.
    assert!(denied(login(&proxy, &far, "pw").await));
    // The most specific host matches first, as on the server: from
    // 127.0.0.1 that is '127.0.0.1', whose password is 'exact'.
    let mut conn = login(&proxy, &near, "exact").await.expect("exact host");
    let current: Option<String> = conn
        .query_first("SELECT /* splitrail:master */ CURRENT_USER()")
        .await
        .unwrap();
    assert_eq!(current, Some(format!("{near}@127.0.0.1")));
    assert!(denied(login(&proxy, &near, "anywhere").await));
    // REQUIRE SSL over plain TCP: refused like a wrong password.
    assert!(denied(login(&proxy, &tls_only, "pw").await));
}

#[tokio::test]
async fn configured_users_override_loaded_ones() {
    let _serial = exclusive().await;
    let mut cfg = accounts_config();
    let user = unique("acct_cfg");
    let _cleanup = DropUsers(vec![format!("'{user}'@'%'")]);
    on_writer(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'server-pw'"
    ));
    let mut entry = cfg.users[0].clone();
    entry.name = user.clone();
    entry.password = "server-pw".into();
    entry.max_connections = 1;
    cfg.users.push(entry);
    let proxy = start_proxy(cfg).await;
    let _first = login(&proxy, &user, "server-pw").await.expect("login");
    // The [[users]] entry's limit applies: it is the one in force.
    let second = login(&proxy, &user, "server-pw").await;
    assert_eq!(
        second.err().as_ref().and_then(server_error_code),
        Some(1203),
        "max_connections of the [[users]] entry"
    );
}

#[tokio::test]
async fn change_user_reaches_a_loaded_account() {
    let _serial = exclusive().await;
    let proxy = start_proxy(accounts_config()).await;
    let user = unique("acct_cu");
    let _cleanup = DropUsers(vec![format!("'{user}'@'%'")]);
    on_writer(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO '{user}'@'%'"
    ));
    let mut conn = proxy.conn().await;
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(user.clone()))
        .with_pass(Some("pw".into()));
    conn.change_user(opts)
        .await
        .expect("change to a loaded account");
    let current: Option<String> = conn
        .query_first("SELECT /* splitrail:master */ CURRENT_USER()")
        .await
        .unwrap();
    assert_eq!(current, Some(format!("{user}@%")));
}
