//! Routing behaviour through a real proxy in front of the real lab.

mod support;

use mysql_async::prelude::*;
use std::collections::HashSet;
use support::*;

const MASTER_IDS: [u32; 2] = [1, 2];
const REPLICA_IDS: [u32; 2] = [3, 4];

#[tokio::test]
async fn each_session_reads_from_one_replica_and_sessions_are_spread_over_both() {
    let proxy = start_proxy(config()).await;
    let mut all = HashSet::new();
    // New sessions take turns (other tests' sessions may take some turns
    // meanwhile, hence up to 20).
    for _ in 0..20 {
        let mut conn = proxy.conn().await;
        let mut seen = HashSet::new();
        for _ in 0..5 {
            seen.insert(server_id(&mut conn).await);
        }
        assert_eq!(seen.len(), 1, "one session, one replica: {seen:?}");
        all.extend(seen);
        if all.len() == REPLICA_IDS.len() {
            break;
        }
    }
    assert_eq!(
        all,
        HashSet::from(REPLICA_IDS),
        "reads must reach r1 and r2 only"
    );
}

#[tokio::test]
async fn insert_lands_on_m1_and_is_read_back() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("ins");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} (v) VALUES ('hello')"))
        .await
        .unwrap();

    // On m1 at once (it was the writer), replicated to the rest.
    let mut m1 = direct(&lab.m1).await;
    let on_m1: Option<String> = m1
        .query_first(format!("SELECT v FROM {table}"))
        .await
        .unwrap();
    assert_eq!(on_m1.as_deref(), Some("hello"));
    let count = format!("SELECT COUNT(*) FROM {table} WHERE v = 'hello'");
    wait_everywhere(&[&lab.m2, &lab.r1, &lab.r2], &count, 1).await;
    let (v, id): (String, u32) = conn
        .query_first(format!("SELECT v, @@server_id FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, "hello");
    assert!(
        REPLICA_IDS.contains(&id),
        "read back from a replica, got server {id}"
    );
}

#[tokio::test]
async fn select_inside_transaction_sees_own_uncommitted_write() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("tx");
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let (n, id): (i64, u32) = conn
        .query_first(format!("SELECT COUNT(*), @@server_id FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        n, 1,
        "the uncommitted row must be visible inside the transaction"
    );
    assert_eq!(id, 1);
    conn.query_drop("ROLLBACK").await.unwrap();
    // After the transaction, reads go back to replicas.
    assert!(REPLICA_IDS.contains(&server_id(&mut conn).await));
}

#[tokio::test]
async fn start_transaction_and_autocommit_off_keep_reads_on_the_writer() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("START TRANSACTION").await.unwrap();
    assert_eq!(server_id(&mut conn).await, 1);
    conn.query_drop("COMMIT").await.unwrap();

    conn.query_drop("SET autocommit = 0").await.unwrap();
    for _ in 0..4 {
        assert_eq!(
            server_id(&mut conn).await,
            1,
            "autocommit=0: every statement is in a transaction"
        );
    }
    conn.query_drop("COMMIT").await.unwrap();
    conn.query_drop("SET autocommit = 1").await.unwrap();
    assert!(REPLICA_IDS.contains(&server_id(&mut conn).await));
}

#[tokio::test]
async fn use_db_then_replica_read_uses_that_db() {
    let proxy = start_proxy(config()).await;
    let mut conn = support::connect(&proxy.url(None)).await;
    let none: Option<Option<String>> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(none, Some(None));
    conn.query_drop(format!("USE {DB}")).await.unwrap();
    for _ in 0..4 {
        let (db, id): (String, u32) = conn
            .query_first("SELECT DATABASE(), @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(db, DB);
        assert!(REPLICA_IDS.contains(&id));
    }
}

#[tokio::test]
async fn set_time_zone_is_honoured_by_replica_reads() {
    let proxy = start_proxy(config()).await;
    let mut conn = session_on_replica(&proxy, 3).await;
    conn.query_drop("SET time_zone = '+05:00'").await.unwrap();
    let mut read = async || -> (u32, i64) {
        conn.query_first("SELECT @@server_id, TIMESTAMPDIFF(MINUTE, UTC_TIMESTAMP(), NOW())")
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(read().await, (3, 300), "the session's replica");
    // Its replica gone, the session reads from a new connection to r2,
    // which must get the SET first.
    let (status, body) = admin(&proxy, "POST", "/nodes/r1/down", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read().await, (4, 300), "time zone replayed on r2");
}

#[tokio::test]
async fn last_insert_id_after_insert_is_not_zero() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("lid");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} (v) VALUES (1)"))
        .await
        .unwrap();
    let id: u64 = conn
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    assert!(id > 0);
}

#[tokio::test]
async fn user_variable_set_to_a_constant_is_visible_on_replicas() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SET @greeting = 'hi'").await.unwrap();
    for _ in 0..4 {
        let (v, id): (String, u32) = conn
            .query_first("SELECT @greeting, @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, "hi");
        assert!(REPLICA_IDS.contains(&id));
    }
}

#[tokio::test]
async fn user_variable_from_data_pins_the_session_to_the_writer() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SET @m = (SELECT @@server_id)")
        .await
        .unwrap();
    let (m, id): (u32, u32) = conn
        .query_first("SELECT @m, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m, id),
        (1, 1),
        "a variable holding writer data must be read on the writer"
    );
}

#[tokio::test]
async fn session_state_does_not_leak_between_clients() {
    let proxy = start_proxy(config()).await;
    for round in 0..5 {
        let mut a = proxy.conn().await;
        a.query_drop("SET @leak = 'secret', SESSION sql_mode = 'ANSI_QUOTES'")
            .await
            .unwrap();
        let _: Option<u32> = a.query_first("SELECT @@server_id").await.unwrap();
        drop(a);
        // Give the pool's background reset a moment; a connection is only
        // reusable after its reset anyway.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut b = proxy.conn().await;
        for _ in 0..3 {
            let (leak, mode): (Option<String>, String) = b
                .query_first("SELECT @leak, @@sql_mode")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(leak, None, "round {round}: user variable leaked");
            assert!(
                !mode.contains("ANSI_QUOTES"),
                "round {round}: sql_mode leaked"
            );
        }
    }
}

#[tokio::test]
async fn writes_never_reach_a_replica() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("w");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, src INT)"
    ))
    .await
    .unwrap();
    for i in 0..20 {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({i}, @@server_id)"))
            .await
            .unwrap();
    }
    let mut m1 = direct(&lab.m1).await;
    let srcs: Vec<u32> = m1
        .query(format!("SELECT DISTINCT src FROM {table}"))
        .await
        .unwrap();
    assert_eq!(srcs, vec![1], "every INSERT evaluated @@server_id on m1");
    assert!(MASTER_IDS.contains(&srcs[0]));
}

#[tokio::test]
async fn wrong_password_gets_1045_not_a_hang() {
    let proxy = start_proxy(config()).await;
    let url = format!("mysql://app:wrong@{}/?prefer_socket=false", proxy.addr);
    let started = std::time::Instant::now();
    let err = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let url = format!("mysql://nobody:x@{}/?prefer_socket=false", proxy.addr);
    let err = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
}

#[tokio::test]
async fn unknown_database_at_connect_is_1049() {
    let proxy = start_proxy(config()).await;
    let url = format!(
        "mysql://app:app@{}/no_such_db?prefer_socket=false",
        proxy.addr
    );
    let err = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1049), "{err}");
}

#[tokio::test]
async fn change_user_starts_a_clean_session() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SET @x = 1").await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some("app".into()))
        .with_db_name(Some(DB.into()));
    conn.change_user(opts).await.unwrap();
    let (x, id): (Option<i64>, u32) = conn
        .query_first("SELECT @x, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x, None, "user variables are gone");
    assert!(
        REPLICA_IDS.contains(&id),
        "the transaction is gone: reads go to replicas"
    );

    let bad = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some("wrong".into()));
    let err = conn.change_user(bad).await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045), "{err}");
}

#[tokio::test]
async fn backend_errors_are_relayed_with_code_and_sqlstate() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let err = conn
        .query_drop("SELECT * FROM no_such_table_anywhere")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1146);
            assert_eq!(e.state, "42S02");
        }
        other => panic!("{other}"),
    }
    let err = conn.query_drop("SELEC garbage").await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1064));
    assert!(REPLICA_IDS.contains(&server_id(&mut conn).await));
}

#[tokio::test]
async fn reset_connection_clears_session_state() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SET @x = 42").await.unwrap();
    assert!(
        conn.reset().await.unwrap(),
        "COM_RESET_CONNECTION must be offered (MariaDB version string)"
    );
    let x: Option<Option<i64>> = conn.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
    let db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.as_deref(), Some(DB), "the database survives a reset");
}

#[tokio::test]
async fn a_user_checked_against_a_native_hash_logs_in() {
    let mut cfg = config();
    // The backend password comes from the environment; clients are checked
    // against the hash (no plain-text password in the file).
    std::env::set_var("SPLITRAIL_TEST_APP_PASSWORD", "app");
    cfg.users[0].password = String::new();
    cfg.users[0].password_env = "SPLITRAIL_TEST_APP_PASSWORD".into();
    cfg.users[0].password_hash = "*5BCB3E6AC345B435C7C2E6B7949A04CE6F6563D3".into();
    let text = toml::to_string(&cfg).unwrap();
    let cfg = splitrail::config::Config::from_toml(&text).unwrap();
    let proxy = start_proxy(cfg).await;
    let mut conn = proxy.conn().await;
    assert!(REPLICA_IDS.contains(&server_id(&mut conn).await));
    let url = format!("mysql://app:wrong@{}/?prefer_socket=false", proxy.addr);
    let err = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045));
}

#[tokio::test]
async fn a_hint_counts_in_any_comment_of_the_statement() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    // m1 is server 1; a plain read of @@server_id goes to a replica (3, 4).
    let plain: u32 = conn
        .query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert!(plain == 3 || plain == 4, "{plain}");
    for sql in [
        "/* splitrail:master */ SELECT @@server_id",
        "select /* splitrail:master */ @@server_id",
        "SELECT @@server_id /* splitrail:writer */",
        "SELECT @@server_id -- splitrail:master",
        "SELECT @@server_id # splitrail:master",
    ] {
        let id: u32 = conn.query_first(sql).await.unwrap().unwrap();
        assert_eq!(id, 1, "{sql}");
    }
    // Inside a string it is data, not a hint.
    let (id, _): (u32, String) = conn
        .query_first("SELECT @@server_id, '/* splitrail:master */'")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(id, 1);
}

#[tokio::test]
async fn change_user_fails_like_the_server_and_releases_locks_before_its_ok() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let app = || {
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("app".into()))
            .with_pass(Some("app".into()))
            .with_db_name(Some(DB.into()))
    };
    // A wrong password: refused, and the session goes on as before, as
    // it does directly.
    for (label, url) in [
        ("direct", url(&lab.m1, Some(DB))),
        ("through splitrail", proxy.url(Some(DB))),
    ] {
        let mut conn = connect(&url).await;
        conn.query_drop("SET @kept = 7").await.unwrap();
        let bad = mysql_async::ChangeUserOpts::default()
            .with_user(Some("app".into()))
            .with_pass(Some("wrong".into()));
        let err = conn.change_user(bad).await.unwrap_err();
        assert_eq!(server_error_code(&err), Some(1045), "{label}: {err}");
        let user: Option<String> = conn
            .query_first("SELECT CURRENT_USER()")
            .await
            .unwrap_or_else(|e| panic!("{label}: the session ended: {e}"));
        assert!(user.is_some_and(|u| u.starts_with("app@")), "{label}");
    }

    // The old session's named lock is free when the OK arrives (checked
    // on the writer directly, at once).
    let mut watcher = direct(&lab.m1).await;
    let mut held_after_ok = 0;
    for round in 0..16 {
        let mut conn = proxy.conn().await;
        let lock = format!("splitrail_cu_{round}");
        let got: Option<i64> = conn
            .query_first(format!("SELECT GET_LOCK('{lock}', 1)"))
            .await
            .unwrap();
        assert_eq!(got, Some(1));
        conn.change_user(app()).await.unwrap();
        let free: Option<i64> = watcher
            .query_first(format!("SELECT IS_FREE_LOCK('{lock}')"))
            .await
            .unwrap();
        if free != Some(1) {
            held_after_ok += 1;
        }
    }
    assert_eq!(
        held_after_ok, 0,
        "locks still held right after the OK of a change of user"
    );
}
