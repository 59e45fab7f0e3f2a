//! Read-your-writes: a session's read right after its own write must see
//! that write (`causal`, `window`), and the same test shows stale reads
//! with `none` — so it can fail.

mod support;

use mysql_async::prelude::*;
use splitrail::config::Consistency;
use support::*;

fn with_policy(policy: Consistency) -> splitrail::config::Config {
    let mut cfg = config();
    cfg.routing.consistency = policy;
    cfg
}

/// 8 sessions each insert a row and read it back `rounds` times; returns
/// (stale reads, reads served by replicas).
async fn insert_then_read(proxy: &Proxy, table: &str, rounds: i64) -> (usize, usize) {
    let mut tasks = Vec::new();
    for s in 0..8i64 {
        let url = proxy.url(Some(DB));
        let table = table.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = support::connect(&url).await;
            let (mut stale, mut on_replica) = (0, 0);
            for i in 0..rounds {
                let id = s * 1_000_000 + i;
                conn.query_drop(format!("INSERT INTO {table} VALUES ({id})"))
                    .await
                    .unwrap();
                let (n, server): (i64, u32) = conn
                    .query_first(format!(
                        "SELECT COUNT(*), @@server_id FROM {table} WHERE id = {id}"
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                stale += usize::from(n == 0);
                on_replica += usize::from(server >= 3);
            }
            (stale, on_replica)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (stale, on_replica) = t.await.unwrap();
        total = (total.0 + stale, total.1 + on_replica);
    }
    total
}

async fn table(proxy: &Proxy) -> String {
    let table = unique("ryw");
    create_on_replicas(proxy, &table, "id BIGINT PRIMARY KEY").await;
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_after_write_sees_the_write_with_causal_reads_from_replicas() {
    let _serial = exclusive().await;
    let proxy = start_proxy(with_policy(Consistency::Causal)).await;
    let table = table(&proxy).await;
    let (stale, on_replica) = insert_then_read(&proxy, &table, 1000).await;
    println!("causal: {stale} stale of 8000 reads, {on_replica} served by replicas");
    assert_eq!(stale, 0, "causal reads must never be stale");
    assert!(
        on_replica > 4000,
        "causal reads should mostly stay on replicas, got {on_replica}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_after_write_with_a_window_goes_to_the_writer() {
    let _serial = exclusive().await;
    let proxy = start_proxy(with_policy(Consistency::Window)).await;
    let table = table(&proxy).await;
    let (stale, on_replica) = insert_then_read(&proxy, &table, 200).await;
    assert_eq!(stale, 0);
    assert_eq!(
        on_replica, 0,
        "inside the window every read is on the writer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_after_write_without_consistency_can_be_stale() {
    let _serial = exclusive().await;
    let proxy = start_proxy(with_policy(Consistency::None)).await;
    let table = table(&proxy).await;
    let (stale, on_replica) = insert_then_read(&proxy, &table, 1000).await;
    // Replication on loopback is fast, so this number varies; it is
    // reported, and it shows the causal test above is not vacuous.
    println!("none: {stale} stale of 8000 reads, {on_replica} served by replicas");
    assert_eq!(on_replica, 8000);
}
