//! Backend connection pooling between sessions: idle sessions give their
//! connections back (`pool.release_idle_after_ms`) without the client
//! noticing, and `pool.max_per_node` bounds connections per node with a
//! queue that ends in a clear error (`pool.queue_timeout_ms`).

mod support;

use mysql_async::prelude::*;
use mysql_async::Conn;
use std::time::{Duration, Instant};
use support::*;

/// Open backend connections per node, from the admin endpoint.
async fn backend_connections(proxy: &Proxy) -> Vec<(String, u64)> {
    let (_, body) = admin(proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
    let nodes: serde_json::Value = serde_json::from_str(&body).unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["connections"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn releasing_config(after_ms: u64) -> splitrail::config::Config {
    let mut cfg = config();
    cfg.pool.release_idle_after_ms = after_ms;
    cfg.pool.max_idle_per_node = 4;
    cfg
}

#[tokio::test]
async fn idle_sessions_hold_no_more_backend_connections_than_the_idle_pool() {
    let proxy = start_proxy(releasing_config(200)).await;
    let table = unique("pool_idle");
    let mut setup = proxy.conn().await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
        ))
        .await
        .unwrap();
    let mut sessions: Vec<Conn> = Vec::new();
    for i in 0..24 {
        let mut c = proxy.conn().await;
        c.query_drop(format!("INSERT INTO {table} (v) VALUES ({i})"))
            .await
            .unwrap();
        let _: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM information_schema.tables")
            .await
            .unwrap();
        sessions.push(c);
    }
    let busy = backend_connections(&proxy).await;
    let total_busy: u64 = busy.iter().map(|(_, n)| n).sum();
    assert!(
        total_busy >= 24,
        "sessions should hold connections while active: {busy:?}"
    );

    tokio::time::sleep(Duration::from_millis(900)).await;
    let idle = backend_connections(&proxy).await;
    for (node, n) in &idle {
        assert!(
            *n <= 4,
            "{node}: {n} backend connections for idle clients: {idle:?}"
        );
    }
    // Every session still works, on fresh connections.
    for (i, c) in sessions.iter_mut().enumerate() {
        let v: Option<i64> = c
            .query_first(format!("SELECT v FROM {table} WHERE v = {i}"))
            .await
            .unwrap();
        assert_eq!(v, Some(i as i64));
    }
    setup
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn session_state_survives_a_release() {
    let mut cfg = releasing_config(100);
    // Released connections are closed, so the next ones are new.
    cfg.pool.max_idle_per_node = 0;
    let proxy = start_proxy(cfg).await;
    let table = unique("pool_state");
    let mut c = proxy.conn().await;
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ))
    .await
    .unwrap();
    c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES', @@session.time_zone = '+05:00'")
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO {table} (v) VALUES (1), (2)"))
        .await
        .unwrap();
    let id: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    let before: Option<u32> = c
        .query_first("/* splitrail:master */ SELECT @@pseudo_thread_id")
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;

    // A different backend connection now…
    c.query_drop("BEGIN").await.unwrap();
    let after: Option<u32> = c.query_first("SELECT @@pseudo_thread_id").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_ne!(before, after, "the writer connection was not released");
    // …with the same session state, on the writer and on replicas.
    let id_after: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(id_after, id, "LAST_INSERT_ID() after a release");
    let mode: Option<String> = c.query_first("SELECT @@session.sql_mode").await.unwrap();
    assert_eq!(mode.as_deref(), Some("ANSI_QUOTES"));
    c.query_drop("BEGIN").await.unwrap();
    let tz: Option<String> = c.query_first("SELECT @@session.time_zone").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(tz.as_deref(), Some("+05:00"));
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn transactions_and_pins_keep_their_connection_while_idle() {
    let proxy = start_proxy(releasing_config(100)).await;
    let mut c = proxy.conn().await;
    c.query_drop("BEGIN").await.unwrap();
    let id1: Option<u32> = c.query_first("SELECT @@pseudo_thread_id").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let id2: Option<u32> = c.query_first("SELECT @@pseudo_thread_id").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(id1, id2, "an open transaction lost its connection");

    let table = unique("pool_tmp");
    c.query_drop(format!("CREATE TEMPORARY TABLE {table} (x INT)"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let n: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(n, Some(0), "the temporary table must still be there");
}

/// `SET insert_id` (like `SET TRANSACTION`) describes the next statement
/// only: an idle session keeps it on its connection instead of releasing,
/// and it is never replayed on a later connection.
#[tokio::test]
async fn next_statement_settings_are_neither_lost_nor_replayed() {
    let proxy = start_proxy(releasing_config(100)).await;
    let table = unique("pool_next");
    let mut c = proxy.conn().await;
    c.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    c.query_drop("SET insert_id = 1000").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.query_drop(format!("INSERT INTO {table} VALUES ()"))
        .await
        .unwrap();
    let first: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(first, Some(1000), "the pending insert_id was lost");
    // Released now; a replayed insert_id would collide with row 1000.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.query_drop(format!("INSERT INTO {table} VALUES ()"))
        .await
        .expect("insert_id must not be replayed");
    let n: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    c.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

/// Sessions holding writer connections (open transactions) use up
/// `max_per_node`; the next one waits `queue_timeout_ms`, then gets 1040.
#[tokio::test]
async fn a_full_pool_queues_then_refuses_with_1040() {
    let mut cfg = config();
    cfg.pool.max_per_node = 2;
    cfg.pool.queue_timeout_ms = 300;
    cfg.pool.release_idle_after_ms = 0;
    let proxy = start_proxy(cfg).await;
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut c = proxy.conn().await;
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("SELECT 1 FOR UPDATE").await.unwrap();
        holders.push(c);
    }
    let mut third = connect(&proxy.url(None)).await;
    let started = Instant::now();
    let err = third
        .query_drop("SELECT 1 FOR UPDATE")
        .await
        .expect_err("no writer connection should be free");
    let waited = started.elapsed();
    assert_eq!(server_error_code(&err), Some(1040), "{err}");
    assert!(err.to_string().contains("pool.max_per_node"), "{err}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    // Reads still find replicas.
    let one: Option<i32> = third.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));

    // One holder finishes: its connection is reset and comes back idle (or
    // closes), and the queued statement gets it.
    let mut holder = holders.pop().unwrap();
    let waiting = tokio::spawn(async move {
        let r = third.query_drop("SELECT 2 FOR UPDATE").await;
        (third, r)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    holder.query_drop("COMMIT").await.unwrap();
    drop(holder);
    let (_third, result) = waiting.await.unwrap();
    result.expect("the queued statement should get the freed connection");
}

/// A session waiting for a slot gets one as soon as an idle session
/// releases its connection.
#[tokio::test]
async fn a_release_frees_a_slot_for_a_queued_session() {
    let mut cfg = releasing_config(150);
    cfg.pool.max_per_node = 1;
    cfg.pool.queue_timeout_ms = 3000;
    let proxy = start_proxy(cfg).await;
    let mut a = connect(&proxy.url(None)).await;
    a.query_drop("SELECT 1 FOR UPDATE").await.unwrap();
    let mut b = connect(&proxy.url(None)).await;
    let started = Instant::now();
    b.query_drop("SELECT 2 FOR UPDATE").await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1500),
        "b waited {waited:?} for a's idle connection"
    );
    drop(a);
}

/// A prepared statement's cursor keeps the session on its connection only
/// while the server has it open: once the last row was fetched, the idle
/// session gives its connections back like any other.
#[tokio::test]
async fn an_exhausted_cursor_no_longer_holds_the_connection() {
    use splitrail::backend::relay::Sink;
    let open_total = |nodes: Vec<(String, u64)>| -> u64 { nodes.iter().map(|(_, n)| n).sum() };
    let mut cfg = releasing_config(100);
    // Released connections are closed, so the count shows who holds one.
    cfg.pool.max_idle_per_node = 0;
    let proxy = start_proxy(cfg).await;
    let mut client = raw_client(&proxy.addr.to_string()).await.unwrap();
    let ok = client
        .prepare(b"SELECT seq FROM splitrail_test.seq_1_to_10")
        .await
        .unwrap();
    let discard = || Sink::<tokio::net::TcpStream>::Discard;
    let opened = execute_with_cursor(&mut client, ok.backend_id, discard()).await;
    assert_ne!(
        opened.last.status & 0x0040,
        0,
        "SERVER_STATUS_CURSOR_EXISTS"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        open_total(backend_connections(&proxy).await) > 0,
        "an open cursor keeps its connection"
    );
    let fetched = fetch_rows(&mut client, ok.backend_id, 100, discard()).await;
    assert_ne!(
        fetched.last.status & 0x0080,
        0,
        "SERVER_STATUS_LAST_ROW_SENT"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        open_total(backend_connections(&proxy).await),
        0,
        "the exhausted cursor still holds the connection"
    );
}

/// Puts `div_precision_increment` back to its default on every node.
struct RestoreDivPrecision;

impl Drop for RestoreDivPrecision {
    fn drop(&mut self) {
        for node in ["m1", "m2", "r1", "r2"] {
            lab_cmd(&["sql", node, "SET GLOBAL div_precision_increment = DEFAULT"]);
        }
    }
}

#[tokio::test]
async fn a_new_session_sees_globals_set_while_its_connection_was_pooled() {
    let _serial = exclusive().await;
    let _restore = RestoreDivPrecision;
    let proxy = start_proxy(config()).await;
    let writer_thread = "SELECT /* splitrail:master */ @@pseudo_thread_id";
    let mut first = proxy.conn().await;
    let before: Option<u64> = first.query_first(writer_thread).await.unwrap();
    let _: Option<i64> = first.query_first("SELECT 1").await.unwrap();
    first.disconnect().await.unwrap();
    // Back in the pool (reset there), then the global changes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in ["m1", "m2", "r1", "r2"] {
        assert!(lab_cmd(&[
            "sql",
            node,
            "SET GLOBAL div_precision_increment = 7"
        ]));
    }
    let mut next = proxy.conn().await;
    let after: Option<u64> = next.query_first(writer_thread).await.unwrap();
    assert_eq!(before, after, "the pooled writer connection was reused");
    for sql in [
        "SELECT /* splitrail:master */ @@div_precision_increment",
        "SELECT @@div_precision_increment",
    ] {
        let seen: Option<u64> = next.query_first(sql).await.unwrap();
        assert_eq!(seen, Some(7), "{sql}: as a direct connection would see it");
    }
}
