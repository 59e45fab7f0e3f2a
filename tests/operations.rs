//! Operating a running proxy: the admin endpoint, operator marks and their
//! persistence, draining. Marks are per proxy, so these tests use their own
//! proxies; they serialise because they measure shared node counters.

mod support;

use mysql_async::prelude::*;
use splitrail::admin::NodeView;
use std::collections::HashSet;
use support::*;

fn no_monitor() -> splitrail::config::Config {
    // Without a monitor, the only SELECTs reaching a node are proxied ones,
    // so the node's Com_select counter measures routing exactly.
    let mut cfg = config();
    cfg.monitor.user.clear();
    cfg
}

async fn reads(conn: &mut mysql_async::Conn, n: usize) -> HashSet<u32> {
    let mut seen = HashSet::new();
    for _ in 0..n {
        seen.insert(server_id(conn).await);
    }
    seen
}

/// `splitrail_pool_idle_connections` of one node.
async fn pool_idle(proxy: &Proxy, node: &str) -> i64 {
    metric_sum(
        proxy,
        &format!("splitrail_pool_idle_connections{{node=\"{node}\""),
    )
    .await
}

#[tokio::test]
async fn admin_endpoint_health_metrics_and_token() {
    let _serial = exclusive().await;
    let proxy = start_proxy(config()).await;
    let (status, body) = admin(&proxy, "GET", "/health", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"writer\":\"m1\""), "{body}");

    let mut conn = proxy.conn().await;
    reads(&mut conn, 5).await;
    let (status, metrics) = admin(&proxy, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("splitrail_queries_total{node=\"r1\",role=\"replica\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("splitrail_statement_duration_seconds_bucket"));
    assert!(metrics.contains("splitrail_client_connections 1"));

    assert_eq!(admin(&proxy, "GET", "/nodes", None).await.0, 401);
    assert_eq!(admin(&proxy, "GET", "/nodes", Some("wrong")).await.0, 401);
    assert_eq!(
        admin(&proxy, "POST", "/nodes/r1/down", Some("wrong"))
            .await
            .0,
        401
    );
    let (status, body) = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    let nodes: Vec<NodeView> = serde_json::from_str(&body).unwrap();
    let roles: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("m1", "writer"),
            ("m2", "standby"),
            ("r1", "replica"),
            ("r2", "replica")
        ]
    );
    assert!(
        !body.contains("monitor\""),
        "no credentials in the node table"
    );

    let (status, body) = admin(&proxy, "POST", "/nodes/nope/down", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin(&proxy, "POST", "/nodes/r1/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn node_down_stops_reads_at_once_up_restores_them_and_the_mark_survives_a_restart() {
    let _serial = exclusive().await;
    let lab = lab();
    let mut cfg = no_monitor();
    // Idle sessions keep their connections: what goes back to the pool
    // below goes back because the session moved.
    cfg.pool.release_idle_after_ms = 0;
    let proxy = start_proxy(cfg.clone()).await;
    let mut conn = session_on_replica(&proxy, 3).await;
    assert_eq!(reads(&mut conn, 10).await, HashSet::from([3]));

    let (status, body) = admin(&proxy, "POST", "/nodes/r1/down", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let mut r1 = direct(&lab.r1).await;
    let before = global_status(&mut r1, "Com_select").await;
    assert_eq!(
        reads(&mut conn, 50).await,
        HashSet::from([4]),
        "same session, next statement"
    );
    // The session gave its r1 connection back (reset, then idle in the pool).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while pool_idle(&proxy, "r1").await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session kept its connection to r1"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut fresh = proxy.conn().await;
    assert_eq!(reads(&mut fresh, 20).await, HashSet::from([4]));
    let after = global_status(&mut r1, "Com_select").await;
    assert_eq!(after - before, 0, "r1 ran SELECTs after being marked down");

    // The mark is saved: a restarted proxy on the same state file keeps it.
    drop((conn, fresh));
    proxy.shutdown().await;
    let proxy = start_proxy(cfg).await;
    let (_, body) = admin(&proxy, "GET", "/nodes", Some(ADMIN_TOKEN)).await;
    let nodes: Vec<NodeView> = serde_json::from_str(&body).unwrap();
    assert_eq!(nodes[2].mark, splitrail::topology::Mark::Down, "{body}");
    let mut conn = proxy.conn().await;
    assert_eq!(reads(&mut conn, 10).await, HashSet::from([4]));

    let (status, _) = admin(&proxy, "POST", "/nodes/r1/up", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    // The session that moved stays where it is; new ones reach r1 again.
    assert_eq!(reads(&mut conn, 10).await, HashSet::from([4]));
    session_on_replica(&proxy, 3).await;
}

#[tokio::test]
async fn drain_keeps_running_sessions_and_sends_new_ones_elsewhere() {
    let _serial = exclusive().await;
    let proxy = start_proxy(no_monitor()).await;
    let mut running = session_on_replica(&proxy, 4).await;
    assert_eq!(reads(&mut running, 10).await, HashSet::from([4]), "on r2");
    let (status, _) = admin(&proxy, "POST", "/nodes/r2/drain", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        reads(&mut running, 10).await,
        HashSet::from([4]),
        "a running session finishes on r2"
    );
    let mut newcomer = proxy.conn().await;
    assert_eq!(
        reads(&mut newcomer, 10).await,
        HashSet::from([3]),
        "no new sessions on r2"
    );
}

// The CLI is a separate process calling back into this test's runtime:
// give the proxy worker threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_cli_talks_to_the_admin_endpoint() {
    let _serial = exclusive().await;
    let proxy = start_proxy(no_monitor()).await;
    let admin = proxy.admin.to_string();
    let bin = env!("CARGO_BIN_EXE_splitrail");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&["nodes", "--admin", &admin, "--token", ADMIN_TOKEN]);
    assert!(ok, "{out}");
    assert!(
        out.contains("NAME") && out.contains("writer") && out.contains("r2"),
        "{out}"
    );
    let (ok, out) = run(&[
        "node",
        "drain",
        "r2",
        "--admin",
        &admin,
        "--token",
        ADMIN_TOKEN,
    ]);
    assert!(ok && out.contains("r2 draining"), "{out}");
    let (ok, out) = run(&[
        "node",
        "down",
        "nosuch",
        "--admin",
        &admin,
        "--token",
        ADMIN_TOKEN,
    ]);
    assert!(!ok && out.contains("no node named"), "{out}");
    let (ok, out) = run(&["nodes", "--admin", "127.0.0.1:1", "--token", ADMIN_TOKEN]);
    assert!(!ok && out.contains("cannot reach"), "{out}");
    let (ok, out) = run(&["nodes", "--admin", &admin, "--token", "wrong"]);
    assert!(!ok && out.contains("401"), "{out}");
    let (ok, out) = run(&["nodes", "--admin", &admin, "--token", ADMIN_TOKEN, "--json"]);
    assert!(ok && out.trim_start().starts_with('['), "{out}");
    assert!(out.contains("\"mark\":\"drain\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_side_by_side_follow_one_writer_and_take_marks_together() {
    let _serial = exclusive().await;
    let a = start_proxy(no_monitor()).await;
    let b = start_proxy(no_monitor()).await;
    let bin = env!("CARGO_BIN_EXE_splitrail");
    let both = format!("{},{}", a.admin, b.admin);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "node",
                "down",
                "r1",
                "--admin",
                &both,
                "--token",
                ADMIN_TOKEN,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().count(),
        2,
        "one confirmation per proxy: {text}"
    );
    let lab = lab();
    let table = unique("twoproxies");
    let mut m1 = direct(&lab.m1).await;
    m1.query_drop(format!("CREATE TABLE {table} (src INT)"))
        .await
        .unwrap();
    for proxy in [&a, &b] {
        let mut conn = proxy.conn().await;
        assert_eq!(
            reads(&mut conn, 10).await,
            HashSet::from([4]),
            "r1 is down on both"
        );
        conn.query_drop(format!("INSERT INTO {table} VALUES (@@server_id)"))
            .await
            .unwrap();
    }
    let srcs: Vec<u32> = m1.query(format!("SELECT src FROM {table}")).await.unwrap();
    assert_eq!(srcs, vec![1, 1], "both proxies write to the same writer");
}

/// Stopping the proxy lets a running statement finish, tells a client
/// waiting between commands (ERROR 1053, as a server shutting down does)
/// and ends within the shutdown grace period.
#[tokio::test]
async fn shutdown_finishes_running_statements_and_tells_idle_clients() {
    // Its reads would count in the other tests' per-node statement counters.
    let _serial = exclusive().await;
    let proxy = start_proxy(config()).await;
    // A raw client, to see the unsolicited error packet itself (a driver
    // reports it as out of sync at its next command).
    let limit = std::time::Duration::from_secs(5);
    let mut idle = raw_client(&proxy.addr.to_string())
        .await
        .expect("login through the proxy");
    let mut busy = proxy.conn().await;
    let running = tokio::spawn(async move {
        let slept: Option<i64> = busy.query_first("SELECT SLEEP(1)").await.unwrap();
        slept
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    proxy.shutdown().await;
    let took = started.elapsed();
    assert_eq!(
        running.await.unwrap(),
        Some(0),
        "the running statement finished"
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "shutdown took {took:?}"
    );
    let told = tokio::time::timeout(limit, idle.stream().read_packet())
        .await
        .expect("the idle client is told, not left hanging")
        .unwrap()
        .expect("an error packet before the close");
    assert_eq!(told.header(), Some(0xFF), "{:?}", told.payload);
    assert_eq!(u16::from_le_bytes([told.payload[1], told.payload[2]]), 1053);
}
