//! One test per routing rule that users have seen broken in other proxies
//! (DESIGN §3): pins, previous-backend statements, multi-results, hints,
//! read-only transactions. Each fails if its rule is switched off.

mod support;

use mysql_async::prelude::*;
use std::collections::HashSet;
use std::time::Duration;
use support::*;

const REPLICAS: [u32; 2] = [3, 4];

#[tokio::test]
async fn temp_table_visible_after_create() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("CREATE TEMPORARY TABLE scratch (id INT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO scratch VALUES (1), (2)")
        .await
        .unwrap();
    for _ in 0..4 {
        let n: i64 = conn
            .query_first("SELECT COUNT(*) FROM scratch")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n, 2,
            "the temporary table exists only on the writer connection"
        );
    }
}

#[tokio::test]
async fn lock_tables_keeps_the_session_on_the_writer_until_unlock() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("locked");
    conn.query_drop(format!("CREATE TABLE {table} (id INT)"))
        .await
        .unwrap();
    conn.query_drop(format!("LOCK TABLES {table} READ"))
        .await
        .unwrap();
    let n: i64 = conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        server_id(&mut conn).await,
        1,
        "locked session reads on the writer"
    );
    conn.query_drop("UNLOCK TABLES").await.unwrap();
    assert!(
        REPLICAS.contains(&server_id(&mut conn).await),
        "UNLOCK TABLES releases the pin"
    );
}

#[tokio::test]
async fn get_lock_pins_until_release_all_locks() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let got: i64 = conn
        .query_first("SELECT GET_LOCK('splitrail_test_lock', 1)")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 1);
    let held: i64 = conn
        .query_first("SELECT IS_USED_LOCK('splitrail_test_lock') = @@pseudo_thread_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        held, 1,
        "lock functions run on the connection holding the lock"
    );
    assert_eq!(server_id(&mut conn).await, 1);
    let _: Option<i64> = conn
        .query_first("SELECT RELEASE_ALL_LOCKS()")
        .await
        .unwrap();
    assert!(REPLICAS.contains(&server_id(&mut conn).await));
}

#[tokio::test]
async fn user_variable_selected_into_is_readable() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SELECT @@server_id INTO @where_written")
        .await
        .unwrap();
    let v: i64 = conn
        .query_first("SELECT @where_written")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 1);
}

#[tokio::test]
async fn sql_prepare_and_execute_work() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("PREPARE twice FROM 'SELECT ? * 2'")
        .await
        .unwrap();
    conn.query_drop("SET @n = 21").await.unwrap();
    let v: i64 = conn
        .query_first("EXECUTE twice USING @n")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, 42);
}

#[tokio::test]
async fn found_rows_after_sql_calc_found_rows_is_right() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let rows: Vec<i64> = conn
        .query("SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_50 LIMIT 5")
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    let total: i64 = conn
        .query_first("SELECT FOUND_ROWS()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, 50);
}

#[tokio::test]
async fn show_warnings_comes_from_the_node_that_ran_the_statement() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    for _ in 0..6 {
        // Runs on a replica and leaves a truncation warning there.
        let _: Option<i64> = conn
            .query_first("SELECT CAST('12abc' AS SIGNED)")
            .await
            .unwrap();
        let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(warnings.len(), 1, "SHOW WARNINGS went elsewhere");
        let count: i64 = conn
            .query_first("SELECT @@warning_count")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(count, 1);
    }
}

#[tokio::test]
async fn multi_statement_packet_returns_every_result() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let mut results = conn
        .query_iter("SELECT 1; SELECT 2, 3; SELECT @@server_id")
        .await
        .unwrap();
    let first: Vec<i64> = results.collect().await.unwrap();
    let second: Vec<(i64, i64)> = results.collect().await.unwrap();
    let third: Vec<u32> = results.collect().await.unwrap();
    assert_eq!((first, second), (vec![1], vec![(2, 3)]));
    assert_eq!(third, vec![1], "multi-statement packets run on the writer");
}

#[tokio::test]
async fn procedure_with_two_result_sets_returns_both() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let proc_name = unique("two_sets");
    conn.query_drop(format!(
        "CREATE PROCEDURE {proc_name}() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END"
    ))
    .await
    .unwrap();
    let mut results = conn
        .query_iter(format!("CALL {proc_name}()"))
        .await
        .unwrap();
    let first: Vec<i64> = results.collect().await.unwrap();
    let second: Vec<(i64, i64)> = results.collect().await.unwrap();
    drop(results);
    assert_eq!((first, second), (vec![1], vec![(2, 3)]));
    // The connection is in sync afterwards.
    assert!(server_id(&mut conn).await > 0);
}

#[tokio::test]
async fn hints_choose_the_backend() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let id: u32 = conn
        .query_first("/* splitrail:master */ SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, 1);
    for _ in 0..4 {
        let id: u32 = conn
            .query_first("/* splitrail:node=r2 */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, 4);
    }
    // A hint never moves a statement out of a transaction.
    conn.query_drop("BEGIN").await.unwrap();
    let id: u32 = conn
        .query_first("/* splitrail:replica */ SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, 1);
    conn.query_drop("COMMIT").await.unwrap();
}

#[tokio::test]
async fn read_only_transaction_runs_whole_on_one_replica() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    let ids: HashSet<u32> = {
        let mut s = HashSet::new();
        for _ in 0..6 {
            s.insert(server_id(&mut conn).await);
        }
        s
    };
    assert_eq!(
        ids.len(),
        1,
        "one replica for the whole transaction: {ids:?}"
    );
    assert!(REPLICAS.contains(ids.iter().next().unwrap()));
    // Writes are refused by the server, as in any READ ONLY transaction.
    let table = unique("ro");
    let err = conn
        .query_drop(format!("CREATE TABLE {table} (a INT)"))
        .await;
    assert!(
        err.is_err(),
        "DDL inside START TRANSACTION READ ONLY must fail"
    );
    conn.query_drop("COMMIT").await.unwrap();
    let mut after = HashSet::new();
    for _ in 0..6 {
        after.insert(server_id(&mut conn).await);
    }
    assert!(!after.is_empty() && !after.contains(&1));
}

#[tokio::test]
async fn a_session_wait_timeout_closes_the_idle_client_as_the_server_would() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    for (label, url) in [
        ("direct", url(&lab.m1, Some(DB))),
        ("through splitrail", proxy.url(Some(DB))),
    ] {
        let mut c = connect(&url).await;
        c.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            c.query_drop("SELECT 1").await.is_err(),
            "{label}: the session outlived its wait_timeout"
        );
    }
    // Longer than the idle time, or back to the default: it stays.
    let mut c = proxy.conn().await;
    c.query_drop("SET wait_timeout = 1").await.unwrap();
    c.query_drop("SET wait_timeout = DEFAULT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.query_drop("SELECT 1").await.unwrap();
}
