//! Failover time over repeated trials: how long after m1 is killed
//! (SIGKILL) or frozen (SIGSTOP) a client's write succeeds on m2. Prints
//! median and max; fails if any trial exceeds its bound. After each trial
//! m1 is restarted (or resumed), and promoted back once healthy.

mod support;

use mysql_async::prelude::*;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const TRIALS: usize = 10;

fn lab(args: &[&str]) -> bool {
    Command::new(lab_script())
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn m1_pid() -> String {
    let dir = std::env::var("LAB_DIR").unwrap_or_else(|_| "/tmp/splitrail-lab".into());
    std::fs::read_to_string(format!("{dir}/m1/mariadbd.pid"))
        .unwrap()
        .trim()
        .to_string()
}

/// Writes through a fresh connection every 10 ms until one succeeds;
/// returns the time since `since`.
async fn until_a_write_succeeds(proxy: &Proxy, table: &str, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(15);
    loop {
        if let Ok(mut conn) = mysql_async::Conn::from_url(proxy.url(Some(DB))).await {
            if conn
                .query_drop(format!("INSERT INTO {table} VALUES ()"))
                .await
                .is_ok()
            {
                return since.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "no write succeeded within 15 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// m1 healthy again as the monitor sees it, then promoted back.
async fn restore_m1(proxy: &Proxy) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = admin(proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
        let nodes: Vec<splitrail::admin::NodeView> = serde_json::from_str(&body).unwrap();
        if nodes[0].health == "up" {
            break;
        }
        assert!(Instant::now() < deadline, "m1 did not come back: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = admin(proxy, "POST", "/nodes/m1/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    // The switchover fenced m2; a single instance lifts the fence shortly
    // after. The next trial starts from a writable standby.
    loop {
        let (_, body) = admin(proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
        let nodes: Vec<splitrail::admin::NodeView> = serde_json::from_str(&body).unwrap();
        if nodes[1].read_only == Some(false) {
            break;
        }
        assert!(Instant::now() < deadline, "m2 stayed read-only: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn summary(label: &str, mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
    println!("{label}: {TRIALS} trials, median {median:?}, max {max:?}, all {times:?}");
    (median, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_time_for_kill_and_sigstop() {
    let _serial = exclusive().await;
    let proxy = start_proxy(config()).await;
    let table = unique("ftime");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    drop(conn);

    let mut killed = Vec::new();
    for _ in 0..TRIALS {
        assert!(lab(&["kill", "m1"]));
        let since = Instant::now();
        killed.push(until_a_write_succeeds(&proxy, &table, since).await);
        assert!(lab(&["start", "m1"]));
        restore_m1(&proxy).await;
    }

    let mut frozen = Vec::new();
    for _ in 0..TRIALS {
        let pid = m1_pid();
        assert!(Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success());
        let since = Instant::now();
        frozen.push(until_a_write_succeeds(&proxy, &table, since).await);
        assert!(Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success());
        restore_m1(&proxy).await;
    }

    let (_, kill_max) = summary("kill -9 m1 -> first write on m2", killed);
    let (_, stop_max) = summary("SIGSTOP m1 -> first write on m2", frozen);
    let connect_timeout = Duration::from_millis(1000);
    assert!(
        kill_max < Duration::from_millis(500),
        "kill -9 failover too slow: {kill_max:?}"
    );
    assert!(
        stop_max < connect_timeout + Duration::from_secs(1),
        "SIGSTOP failover too slow: {stop_max:?}"
    );
}
