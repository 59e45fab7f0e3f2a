//! Failures of real processes: masters killed (SIGKILL), frozen (SIGSTOP)
//! or both stopped, a replica's SQL thread stopped. Every test restores the
//! lab (even when it fails) and they run one at a time.

mod support;

use mysql_async::prelude::*;
use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::faults::wait_replication_healthy;
use support::*;

/// Restarts the named nodes (and resumes stopped ones) and waits until
/// every node runs and replicates again, whatever happened in the test.
struct Restore(&'static [&'static str]);

impl Drop for Restore {
    fn drop(&mut self) {
        for node in self.0 {
            if let Some(pid) = pid_of(node) {
                let _ = Command::new("kill")
                    .args(["-CONT", &pid.to_string()])
                    .status();
            }
            lab_cmd(&["start", node]);
        }
        lab_cmd(&["sql", "r1", "START SLAVE"]);
        wait_replication_healthy(Duration::from_secs(60));
    }
}

fn lab_dir() -> String {
    std::env::var("LAB_DIR").unwrap_or_else(|_| "/tmp/splitrail-lab".into())
}

fn pid_of(node: &str) -> Option<i32> {
    std::fs::read_to_string(format!("{}/{node}/mariadbd.pid", lab_dir()))
        .ok()?
        .trim()
        .parse()
        .ok()
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

    let _serial = exclusive().await;
    let _restore = Restore(&["m1"]);
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
    drop(_restore);
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

#[tokio::test]
async fn kill_m1_under_eight_writers_loses_and_duplicates_nothing() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("kill8");
    let mut setup = proxy.conn().await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, src INT)"
        ))
        .await
        .unwrap();
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 0).await;
    let _restore = Restore(&["m1"]);

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let url = proxy.url(Some(DB));
        let (stop, table) = (Arc::clone(&stop), table.clone());
        writers.push(tokio::spawn(async move {
            let mut conn = support::connect(&url).await;
            // (id, started, ok)
            let mut log: Vec<(i64, Instant, bool)> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = w * 1_000_000 + i;
                let started = Instant::now();
                let ok = conn
                    .query_drop(format!("INSERT INTO {table} VALUES ({id}, @@server_id)"))
                    .await
                    .is_ok();
                log.push((id, started, ok));
                i += 1;
            }
            log
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(lab_cmd(&["kill", "m1"]));
    wait_until_refused(&lab.m1).await;
    *killed_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let killed_at = killed_at.lock().unwrap().unwrap();

    let mut succeeded = HashSet::new();
    let mut attempted = HashSet::new();
    let (mut errors, mut after_kill, mut errors_after_kill) = (0, 0, 0);
    for writer in writers {
        for (id, started, ok) in writer.await.unwrap() {
            attempted.insert(id);
            if ok {
                succeeded.insert(id);
            } else {
                errors += 1;
            }
            if started > killed_at {
                after_kill += 1;
                if !ok {
                    errors_after_kill += 1;
                }
            }
        }
    }
    let mut m2 = direct(&lab.m2).await;
    let stored: HashSet<i64> = m2
        .query(format!("SELECT id FROM {table}"))
        .await
        .unwrap()
        .into_iter()
        .collect();
    println!(
        "kill -9 under 8 writers: {} attempted, {} succeeded, {} errors (all in flight at the kill), {} statements after the kill",
        attempted.len(),
        succeeded.len(),
        errors,
        after_kill
    );
    assert!(after_kill > 0, "the test must write after the kill");
    assert_eq!(
        errors_after_kill, 0,
        "a statement sent after the kill failed"
    );
    assert!(
        errors <= 8,
        "at most one in-flight statement per writer may fail, got {errors}"
    );
    let lost: Vec<_> = succeeded.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let phantom: Vec<_> = stored.difference(&attempted).collect();
    assert!(phantom.is_empty(), "rows nobody wrote: {phantom:?}");
}

#[tokio::test]
async fn sigstop_m1_moves_new_writes_to_m2_and_sigcont_brings_it_back_as_standby() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("stop");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, src INT)"
    ))
    .await
    .unwrap();
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 0).await;
    drop(conn);
    let _restore = Restore(&["m1"]);
    let pid = pid_of("m1").expect("m1 pid");
    assert!(Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap()
        .success());

    // A new client: its write must land on m2 within connect_timeout + 1 s.
    let started = Instant::now();
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("INSERT INTO {table} VALUES (1, @@server_id)"))
        .await
        .unwrap();
    let took = started.elapsed();
    println!("first write after SIGSTOP of m1 took {took:?}");
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    // Read on m2 itself: with m1 frozen, the replicas (fed by m1) cannot
    // have the row yet.
    let mut m2 = direct(&lab.m2).await;
    let src: i32 = m2
        .query_first(format!("SELECT src FROM {table} WHERE id = 1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(src, 2);

    assert!(Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    // The monitor sees m1 again; it stays a standby.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
        let nodes: Vec<splitrail::admin::NodeView> = serde_json::from_str(&body).unwrap();
        if nodes[0].health == "up" {
            assert_eq!(nodes[0].role, "standby", "{body}");
            assert_eq!(nodes[1].role, "writer", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "m1 not seen up again: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.query_drop(format!("INSERT INTO {table} VALUES (2, @@server_id)"))
        .await
        .unwrap();
    let src: i32 = m2
        .query_first(format!("SELECT src FROM {table} WHERE id = 2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(src, 2, "no automatic failback");
}

/// A statement running on m1 when it freezes ends once the monitor finds
/// m1 down (splitrail shuts down m1's sockets): the client gets an error,
/// since the outcome is unknown, instead of waiting forever, and nothing is
/// replayed; the connection stays usable.
#[tokio::test]
async fn a_statement_in_flight_on_a_frozen_master_ends_when_it_is_found_down() {
    let _serial = exclusive().await;
    let _lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    conn.query_drop("SELECT 1").await.unwrap();
    let _restore = Restore(&["m1"]);
    let pid = pid_of("m1").expect("m1 pid");
    let running = tokio::spawn(async move {
        let result = conn.query_drop("DO SLEEP(30)").await;
        (result, conn)
    });
    // Let the statement reach m1, then freeze m1 under it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen_at = Instant::now();
    assert!(Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let (result, mut conn) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the statement still waits 10 s after m1 froze")
        .unwrap();
    let took = frozen_at.elapsed();
    println!("statement on frozen m1 ended after {took:?}: {result:?}");
    assert!(result.is_err(), "an unknown outcome must be an error");
    conn.query_drop("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn both_masters_down_reads_still_work_writes_fail_fast_and_recover_on_the_same_connection() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("rfm");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    wait_everywhere(
        &[&lab.m2, &lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {table}"),
        0,
    )
    .await;
    let _restore = Restore(&["m1", "m2"]);
    assert!(lab_cmd(&["stop", "m1"]) && lab_cmd(&["stop", "m2"]));

    // Wait for the monitor to see both down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !admin(&proxy, "GET", "/health", None)
        .await
        .1
        .contains("\"writer\":null")
    {
        assert!(
            Instant::now() < deadline,
            "monitor never saw both masters down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await.1;
    let id: u32 = match conn.query_first("SELECT @@server_id").await {
        Ok(id) => id.unwrap(),
        Err(e) => panic!("read failed with both masters down: {e}; nodes: {nodes}"),
    };
    assert!([3, 4].contains(&id), "reads keep working on replicas");
    // New clients get in too, with a default database and connect-time SETs.
    let mut newcomer = proxy.conn().await;
    newcomer.query_drop("SET NAMES utf8mb4").await.unwrap();
    let id = server_id(&mut newcomer).await;
    assert!([3, 4].contains(&id), "a new session reads from replicas");
    let started = Instant::now();
    let err = conn
        .query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(server_error_code(&err), Some(1290), "{err}");
    assert!(took < Duration::from_millis(100), "refusal took {took:?}");

    assert!(lab_cmd(&["start", "m2"]));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match conn
            .query_drop(format!("INSERT INTO {table} VALUES (1)"))
            .await
        {
            Ok(()) => break,
            Err(e) => {
                assert_eq!(server_error_code(&e), Some(1290), "{e}");
                assert!(Instant::now() < deadline, "writes did not come back");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut m2 = direct(&lab.m2).await;
    let n: i64 = m2
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        n, 1,
        "the write landed on m2, on the same client connection"
    );
}

#[tokio::test]
async fn replica_with_stopped_sql_thread_gets_no_reads_until_restarted() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = session_on_replica(&proxy, 3).await;
    let _restore = Restore(&[]);
    assert!(lab_cmd(&["sql", "r1", "STOP SLAVE SQL_THREAD"]));
    let mut m1 = direct(&lab.m1).await;
    m1.query_drop(format!("CREATE TABLE {} (id INT)", unique("lagme")))
        .await
        .unwrap();
    // 2 × interval (200 ms) for the monitor, plus margin.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..20 {
        assert_eq!(
            server_id(&mut conn).await,
            4,
            "r1 must not get reads while its SQL thread is stopped"
        );
    }
    assert!(lab_cmd(&["sql", "r1", "START SLAVE SQL_THREAD"]));
    // The session that moved stays on r2; new sessions reach r1 again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_id(&mut proxy.conn().await).await != 3 {
        assert!(Instant::now() < deadline, "r1 never got reads again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server_id(&mut conn).await, 4);
}

/// The mariadb command-line client (libmariadb) connected to splitrail,
/// reading statements from its stdin (kept open for the caller to write
/// to), its stderr captured.
fn mariadb_cli(proxy: &Proxy) -> std::process::Child {
    Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            &format!("-P{}", proxy.addr.port()),
            "-uapp",
            "-papp",
            DB,
            "-n",
            "-q",
            // Keep comments (the hint below): the client strips them
            // by default.
            "--comments",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the mariadb client runs")
}

fn send(cli: &mut std::process::Child, sql: &str) {
    use std::io::Write;
    let stdin = cli.stdin.as_mut().unwrap();
    stdin.write_all(sql.as_bytes()).unwrap();
    stdin.flush().unwrap();
}

#[tokio::test]
async fn a_writer_killed_under_a_statement_gives_the_client_a_well_formed_error() {
    let _serial = exclusive().await;
    let _restore = Restore(&["m1"]);
    let proxy = start_proxy(config()).await;
    let table = unique("wellformed");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    drop(conn);
    let pid = || pid_of("m1").expect("m1 runs").to_string();

    // After the statement was sent: m1 frozen, the INSERT sent at once
    // (before the monitor's verdict), m1 killed while it waits.
    let mut cli = mariadb_cli(&proxy);
    send(&mut cli, "SELECT 1;\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = pid();
    assert!(Command::new("kill")
        .args(["-STOP", &frozen])
        .status()
        .unwrap()
        .success());
    send(&mut cli, &format!("INSERT INTO {table} VALUES (1);\n"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(Command::new("kill")
        .args(["-9", &frozen])
        .status()
        .unwrap()
        .success());
    drop(cli.stdin.take());
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("after send: {}", stderr.trim());
    assert!(stderr.contains("ERROR 1158 (08S01)"), "{stderr}");
    assert!(!stderr.contains("2027"), "{stderr}");

    // Mid-result: m1 killed while it streams a long result.
    lab_cmd(&["start", "m1"]);
    wait_replication_healthy(Duration::from_secs(60));
    let (status, body) = admin(&proxy, "POST", "/nodes/m1/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let mut cli = mariadb_cli(&proxy);
    send(
        &mut cli,
        "/* splitrail:master */ SELECT a.seq, REPEAT('x', 200) FROM seq_1_to_2000 a, seq_1_to_2000 b;\n",
    );
    drop(cli.stdin.take());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(Command::new("kill")
        .args(["-9", &pid()])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("mid-result: {}", stderr.trim());
    assert!(stderr.contains("ERROR 1158 (08S01)"), "{stderr}");
    assert!(!stderr.contains("2027"), "{stderr}");
    lab_cmd(&["start", "m1"]);
    wait_replication_healthy(Duration::from_secs(60));
    let mut m2 = direct(&lab().m2).await;
    m2.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
}
