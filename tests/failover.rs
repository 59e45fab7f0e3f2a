//! Master failover against real processes: m1 is killed with SIGKILL and
//! writes must continue on m2 without the client seeing an error.
//!
//! This test stops and restarts a lab node; it restarts m1 even when it
//! fails, and leaves the lab healthy for the tests that follow.

mod support;

use mysql_async::prelude::*;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn lab_cmd(args: &[&str]) -> bool {
    Command::new(lab_script())
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Restarts m1 and waits for the whole lab to replicate again, whatever
/// happened in the test.
struct RestartM1;

impl Drop for RestartM1 {
    fn drop(&mut self) {
        lab_cmd(&["start", "m1"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lab_cmd(&["status"]) {
            assert!(
                Instant::now() < deadline,
                "lab did not recover after restarting m1"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

async fn wait_until_refused(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn killing_m1_moves_writes_to_m2_without_client_errors() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("failover");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, src INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1, @@server_id)"))
        .await
        .unwrap();
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 1).await;

    let _restart = RestartM1;
    assert!(lab_cmd(&["kill", "m1"]), "lab kill m1");
    wait_until_refused(&lab.m1).await;

    // The same client connection: its writer connection died while idle,
    // so the INSERT was never sent there and goes to m2 instead.
    let started = Instant::now();
    conn.query_drop(format!("INSERT INTO {table} VALUES (2, @@server_id)"))
        .await
        .expect("write after the kill must succeed on m2");
    let failover_time = started.elapsed();
    // A new client as well.
    let mut fresh = proxy.conn().await;
    fresh
        .query_drop(format!("INSERT INTO {table} VALUES (3, @@server_id)"))
        .await
        .unwrap();

    let mut m2 = direct(&lab.m2).await;
    let rows: Vec<(i32, i32)> = m2
        .query(format!("SELECT id, src FROM {table} ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(rows, vec![(1, 1), (2, 2), (3, 2)]);
    println!("first write after kill -9 of m1 took {failover_time:?}");

    // m1 comes back as a standby: writes stay on m2 (no automatic failback).
    drop(_restart);
    let mut after = proxy.conn().await;
    after
        .query_drop(format!("INSERT INTO {table} VALUES (4, @@server_id)"))
        .await
        .unwrap();
    let src: i32 = m2
        .query_first(format!("SELECT src FROM {table} WHERE id = 4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(src, 2, "a recovered m1 must not take writes back by itself");
    // And m1 caught up with what m2 took while it was down.
    wait_everywhere(
        &[&lab.m1, &lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {table}"),
        4,
    )
    .await;
}
