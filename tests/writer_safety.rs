//! What keeps one instance from splitting the writers or serving frozen
//! data, against the real lab: a master at its connection limit is busy,
//! not down; a write made directly on the standby raises the
//! second-writer alarm; replicas of a blackholed master get no reads.
//! One test at a time (they change global server settings and drop
//! traffic); each restores the lab even when it fails.

mod support;

use mysql_async::prelude::*;
use std::time::{Duration, Instant};
use support::faults::{port_of, wait_replication_healthy, Rules};
use support::*;

/// Puts m1's max_connections back whatever happens.
struct MaxConnections(i64);

impl Drop for MaxConnections {
    fn drop(&mut self) {
        let sql = format!("SET GLOBAL max_connections = {}", self.0);
        let _ = std::process::Command::new(lab_script())
            .args(["sql", "m1", &sql])
            .status();
    }
}

#[tokio::test]
async fn a_master_at_its_connection_limit_is_busy_not_down() {
    let _serial = exclusive().await;
    let lab = lab();
    let mut root = direct(&lab.m1).await;
    let before: i64 = root
        .query_first("SELECT @@max_connections")
        .await
        .unwrap()
        .unwrap();
    let _restore = MaxConnections(before);
    let connected: i64 = root
        .query_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST")
        .await
        .unwrap()
        .unwrap();
    // A few slots above what is connected now, then fill them.
    let sql = format!("SET GLOBAL max_connections = {}", connected + 4);
    assert!(std::process::Command::new(lab_script())
        .args(["sql", "m1", &sql])
        .status()
        .unwrap()
        .success());
    let mut held = vec![root];
    let mut full = false;
    for _ in 0..20 {
        match mysql_async::Conn::new(mysql_async::Opts::from_url(&url(&lab.m1, Some(DB))).unwrap())
            .await
        {
            Ok(c) => held.push(c),
            Err(e) => {
                assert_eq!(server_error_code(&e), Some(1040), "{e}");
                full = true;
                break;
            }
        }
    }
    assert!(full, "m1 never reached max_connections");

    let proxy = start_proxy(config()).await;
    // Without the distinction, m1 is down after down_after (2) checks of
    // 200 ms and the writer moves to m2 within a second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let h = health(&proxy).await;
    assert_eq!(h["writer"], "m1", "{h}");
    assert_ne!(node_field(&proxy, "m1", "health").await, "down");
    let last_error = node_field(&proxy, "m1", "last_error").await;
    assert!(
        last_error.as_str().unwrap_or_default().contains("1040"),
        "the busy answer is shown: {last_error}"
    );
    drop(held);
    // Load gone: still m1, and it is up.
    wait_for("m1 up", Duration::from_secs(5), || async {
        node_field(&proxy, "m1", "health").await == "up"
    })
    .await;
    assert_eq!(health(&proxy).await["writer"], "m1");
}

#[tokio::test]
async fn a_write_made_directly_on_the_standby_raises_the_second_writer_alarm() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("second_writer");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    wait_everywhere(
        &[&lab.m2],
        &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '{table}'"),
        1,
    )
    .await;
    // The monitor has seen m2 as a standby (its baseline), and writes
    // through splitrail raise nothing.
    wait_for("m2's own GTID known", Duration::from_secs(5), || async {
        node_field(&proxy, "m2", "own_gtid").await.is_string()
    })
    .await;
    for i in 0..20 {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(health(&proxy).await["status"], "ok");

    // An application bypassing splitrail writes to m2.
    let mut m2 = direct(&lab.m2).await;
    m2.query_drop(format!("INSERT INTO {table} VALUES (1000)"))
        .await
        .unwrap();
    let latency = wait_for("second-writer alarm", Duration::from_secs(2), || async {
        health(&proxy).await["status"] == "second_writer"
    })
    .await;
    eprintln!("second-writer alarm after {latency:?}");
    let h = health(&proxy).await;
    let alarm = h["second_writer"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(alarm.contains("m2") && alarm.contains("2-2-"), "{h}");
    assert!(
        node_field(&proxy, "m2", "second_writer")
            .await
            .as_str()
            .is_some_and(|a| a.contains("m2")),
        "shown in the node table"
    );
    assert_eq!(
        metric_sum(&proxy, "splitrail_second_writer{node=\"m2\"").await,
        1
    );
    assert_eq!(
        metric_sum(&proxy, "splitrail_second_writer{node=\"m1\"").await,
        0
    );
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn replicas_of_a_blackholed_master_serve_no_stale_reads() {
    let _serial = exclusive().await;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("frozen");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let exists =
        format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '{table}'");
    wait_everywhere(&[&lab.m2, &lab.r1, &lab.r2], &exists, 1).await;
    wait_for("replica sources known", Duration::from_secs(5), || async {
        node_field(&proxy, "r1", "source").await == "m1"
            && node_field(&proxy, "r2", "source").await == "m1"
    })
    .await;
    drop(conn);

    let mut cut = Rules::new();
    cut.blackhole_port(port_of(&lab.m1));
    let moved = wait_for("writer moved to m2", Duration::from_secs(10), || async {
        health(&proxy).await["writer"] == "m2"
    })
    .await;
    eprintln!("writer on m2 {moved:?} after m1 was blackholed");
    // r1 and r2 still say Running, 0 s behind: they replicate from m1,
    // which gets nothing of what m2 takes now.
    let (mut stale, mut reads) = (0, 0);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        i += 1;
        let mut writer = proxy.conn().await;
        writer
            .query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
        drop(writer);
        let mut reader = proxy.conn().await;
        let seen: Option<i64> = reader
            .query_first(format!("SELECT COUNT(*) FROM {table} WHERE id = {i}"))
            .await
            .unwrap();
        reads += 1;
        if seen != Some(1) {
            stale += 1;
        }
    }
    cut.heal();
    eprintln!("{stale} of {reads} new-session reads stale after the failover");
    assert_eq!(stale, 0, "{stale} of {reads} new-session reads were stale");
    assert!(reads > 5);
    drop(proxy);
    tokio::task::spawn_blocking(|| wait_replication_healthy(Duration::from_secs(90)))
        .await
        .unwrap();
    // On m2: its stream carries the inserts, so the drop reaches m1 after
    // them.
    let mut m2 = direct(&lab.m2).await;
    m2.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
}

/// Starts `node`'s replication again whatever happens, and waits until
/// the lab replicates everywhere.
struct ResumeReplication(&'static str);

impl Drop for ResumeReplication {
    fn drop(&mut self) {
        lab_cmd(&["sql", self.0, "START SLAVE"]);
        wait_replication_healthy(Duration::from_secs(60));
    }
}

#[tokio::test]
async fn promote_refuses_a_master_with_transactions_the_writer_lacks() {
    let _serial = exclusive().await;
    let _writable = MastersWritable;
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let table = unique("errant");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 0).await;
    drop(conn);

    // m2 split off from m1 (m1 stops applying m2's stream) takes writes.
    let _resume = ResumeReplication("m1");
    assert!(lab_cmd(&["sql", "m1", "STOP SLAVE"]));
    let mut m2 = direct(&lab.m2).await;
    for i in 0..3 {
        m2.query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
    }
    wait_for(
        "m2's errant transactions shown",
        Duration::from_secs(5),
        || async {
            node_field(&proxy, "m2", "errant")
                .await
                .as_str()
                .is_some_and(|e| e.contains("2-2-") && e.contains("3 transactions"))
        },
    )
    .await;
    let (status, body) = admin(&proxy, "POST", "/nodes/m2/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("errant") && body.contains("2-2-"), "{body}");
    assert_eq!(health(&proxy).await["writer"], "m1");

    // m1 applies them: nothing is errant any more, and promote works.
    assert!(lab_cmd(&["sql", "m1", "START SLAVE"]));
    wait_everywhere(&[&lab.m1], &format!("SELECT COUNT(*) FROM {table}"), 3).await;
    wait_for("errant cleared", Duration::from_secs(5), || async {
        node_field(&proxy, "m2", "errant").await.is_null()
    })
    .await;
    let (status, body) = admin(&proxy, "POST", "/nodes/m2/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(health(&proxy).await["writer"], "m2");

    // --force promotes even with errant transactions. (The switchover
    // fenced m1; a single instance lifts the fence 250 ms later.)
    wait_writable(&lab.m1).await;
    assert!(lab_cmd(&["sql", "m2", "STOP SLAVE"]));
    let resume_m2 = ResumeReplication("m2");
    let mut m1 = direct(&lab.m1).await;
    m1.query_drop(format!("INSERT INTO {table} VALUES (100)"))
        .await
        .unwrap();
    wait_for(
        "m1's errant transaction shown",
        Duration::from_secs(5),
        || async { node_field(&proxy, "m1", "errant").await.is_string() },
    )
    .await;
    let (status, body) = admin(&proxy, "POST", "/nodes/m1/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin(
        &proxy,
        "POST",
        "/nodes/m1/promote?force=true",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(health(&proxy).await["writer"], "m1");
    drop(resume_m2);
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 4).await;
    m1.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

/// Waits until the server at `addr` is `read_only=OFF` (a single
/// instance lifts a switchover's fence shortly after the move).
async fn wait_writable(addr: &str) {
    wait_for("writable again", Duration::from_secs(5), || async {
        let ro: Option<i64> = direct(addr)
            .await
            .query_first("SELECT @@read_only")
            .await
            .unwrap();
        ro == Some(0)
    })
    .await;
}

/// Leaves both masters writable whatever happens (a failed switchover
/// test may leave one fenced).
struct MastersWritable;

impl Drop for MastersWritable {
    fn drop(&mut self) {
        for node in ["m1", "m2"] {
            lab_cmd(&["sql", node, "SET GLOBAL read_only = OFF"]);
        }
    }
}

async fn counter(conn: &mut mysql_async::Conn, table: &str) -> i64 {
    // FOR UPDATE: read on the writer.
    conn.query_first(format!("SELECT n FROM {table} WHERE id = 1 FOR UPDATE"))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn promote_waits_for_a_lagging_target_and_undoes_the_fence_on_timeout() {
    let _serial = exclusive().await;
    let lab = lab();
    let mut cfg = config();
    cfg.failover.switchover_timeout_ms = 1500;
    let proxy = start_proxy(cfg).await;
    let _writable = MastersWritable;
    let table = unique("switch");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO {table} VALUES (1, 0)"))
        .await
        .unwrap();
    wait_everywhere(&[&lab.m2], &format!("SELECT COUNT(*) FROM {table}"), 1).await;

    // m2 stops applying m1's stream: it lags behind every increment below.
    let resume = ResumeReplication("m2");
    assert!(lab_cmd(&["sql", "m2", "STOP SLAVE SQL_THREAD"]));
    let increment = format!("UPDATE {table} SET n = n + 1 WHERE id = 1");
    let mut acknowledged = 0;
    for _ in 0..50 {
        conn.query_drop(&increment).await.unwrap();
        acknowledged += 1;
    }
    // `splitrail nodes` shows it: replication stopped, 50 behind.
    wait_for("m2 shown 50 behind", Duration::from_secs(5), || async {
        node_field(&proxy, "m2", "behind_writer").await == 50
    })
    .await;
    assert_eq!(node_field(&proxy, "m2", "replication").await, "stopped");

    // It never catches up: the switchover gives up, undoes the fence, and
    // m1 takes writes again.
    let (status, body) = admin(&proxy, "POST", "/nodes/m2/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("did not catch up"), "{body}");
    assert_eq!(health(&proxy).await["writer"], "m1");
    let mut m1 = direct(&lab.m1).await;
    let ro: Option<i64> = m1.query_first("SELECT @@read_only").await.unwrap();
    assert_eq!(ro, Some(0), "the fence was undone");
    conn.query_drop(&increment).await.unwrap();
    acknowledged += 1;

    // It catches up while the switchover waits: writes meanwhile are
    // refused by the fenced writer (never sent to m2), then the writer
    // moves with every acknowledged increment on m2.
    let promote = admin(&proxy, "POST", "/nodes/m2/promote", Some(ADMIN_TOKEN));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            health(&proxy).await["writer"],
            "m1",
            "moved before m2 caught up"
        );
        let mut other = proxy.conn().await;
        let refused = other.query_drop(&increment).await.unwrap_err();
        assert_eq!(server_error_code(&refused), Some(1290), "{refused}");
        assert!(lab_cmd(&["sql", "m2", "START SLAVE SQL_THREAD"]));
        Instant::now()
    };
    let ((status, body), resumed) = tokio::join!(promote, meanwhile);
    assert_eq!(status, 200, "{body}");
    eprintln!(
        "switchover returned {:?} after m2 resumed applying",
        resumed.elapsed()
    );
    assert_eq!(health(&proxy).await["writer"], "m2");
    let mut fresh = proxy.conn().await;
    assert_eq!(
        counter(&mut fresh, &table).await,
        acknowledged,
        "the new writer has every acknowledged increment"
    );
    fresh.query_drop(&increment).await.unwrap();
    acknowledged += 1;
    drop(resume);
    wait_everywhere(
        &[&lab.m1, &lab.m2],
        &format!("SELECT n FROM {table} WHERE id = 1"),
        acknowledged,
    )
    .await;
    // Single instance: the old writer becomes a writable standby again.
    wait_writable(&lab.m1).await;
    fresh
        .query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_single_instance_repoints_the_replicas_of_a_killed_writer() {
    let _serial = exclusive().await;
    let _back = support::faults::ReplicasBackOnM1;
    let mut cfg = config();
    cfg.failover.repoint_replicas = true;
    let proxy = start_proxy(cfg).await;
    wait_for("r1's source known", Duration::from_secs(5), || async {
        node_field(&proxy, "r1", "source").await == "m1"
    })
    .await;
    assert!(lab_cmd(&["kill", "m1"]));
    // The data path fails over at the first write (or the monitor's
    // verdict); the replicas follow.
    let mut conn = proxy.conn().await;
    let _ = conn.query_drop("CREATE TEMPORARY TABLE t (i INT)").await;
    for replica in ["r1", "r2"] {
        wait_for(
            &format!("{replica} replicates from m2"),
            Duration::from_secs(15),
            || async {
                node_field(&proxy, replica, "source").await == "m2"
                    && node_field(&proxy, replica, "replication").await == "running"
            },
        )
        .await;
    }
}

#[tokio::test]
async fn heartbeat_lag_sees_a_replica_cut_from_its_source_that_seconds_behind_master_hides() {
    let _serial = exclusive().await;
    let lab = lab();
    let mut cfg = config();
    cfg.monitor.heartbeat = true;
    cfg.monitor.max_replica_lag_s = 1;
    let proxy = start_proxy(cfg).await;
    let table = unique("beat");
    let mut conn = create_on_replicas(&proxy, &table, "id INT PRIMARY KEY").await;
    wait_for(
        "the heartbeat reaches r1",
        Duration::from_secs(5),
        || async {
            support::faults::lab_value("r1", "SELECT COUNT(*) FROM splitrail.heartbeat")
                .parse::<i64>()
                .is_ok_and(|n| n > 0)
        },
    )
    .await;

    // r1's and r2's replication connections to m1 vanish; splitrail's own
    // traffic to m1 flows.
    let m1_port = port_of(&lab.m1);
    let mut cut = Rules::new();
    cut.blackhole_replication("r1", m1_port)
        .blackhole_replication("r2", m1_port);
    let seen = wait_for("r1 and r2 lagging", Duration::from_secs(8), || async {
        let r1 = node_field(&proxy, "r1", "lag_seconds").await.as_u64();
        let r2 = node_field(&proxy, "r2", "lag_seconds").await.as_u64();
        r1.unwrap_or(0) >= 2 && r2.unwrap_or(0) >= 2
    })
    .await;
    let io = lab_slave_field("r1", "Slave_IO_Running");
    let behind = lab_slave_field("r1", "Seconds_Behind_Master");
    eprintln!("replication of r1 and r2 black-holed: heartbeat lag over the limit after {seen:?}, while r1 says Slave_IO_Running={io}, Seconds_Behind_Master={behind}");

    // New sessions read fresh rows: the replicas are out, reads go to m1.
    let mut stale = 0;
    for id in 0..30 {
        conn.query_drop(format!("INSERT INTO {table} VALUES ({id})"))
            .await
            .unwrap();
        let mut fresh = proxy.conn().await;
        let n: i64 = fresh
            .query_first(format!("SELECT COUNT(*) FROM {table} WHERE id = {id}"))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            stale += 1;
        }
    }
    cut.heal();
    eprintln!("{stale} of 30 new-session reads stale");
    assert_eq!(
        stale, 0,
        "stale reads from replicas cut off from their source"
    );
    wait_everywhere(
        &[&lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {table}"),
        30,
    )
    .await;
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// One field of `SHOW SLAVE STATUS` on a lab node.
fn lab_slave_field(node: &str, field: &str) -> String {
    let out = std::process::Command::new(lab_script())
        .args(["sql", node, "SHOW SLAVE STATUS\\G"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Puts m1's global autocommit back on whatever happens.
struct GlobalAutocommit;

impl Drop for GlobalAutocommit {
    fn drop(&mut self) {
        lab_cmd(&["sql", "m1", "SET GLOBAL autocommit = 1"]);
    }
}

#[tokio::test]
async fn a_server_with_autocommit_off_starts_sessions_with_autocommit_off() {
    let _serial = exclusive().await;
    let _restore = GlobalAutocommit;
    assert!(lab_cmd(&["sql", "m1", "SET GLOBAL autocommit = 0"]));
    // The writer's greeting is read when splitrail starts.
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    // Directly, this SELECT would open a transaction on the server: it
    // runs on the writer, not on a replica (which would also read outside
    // the session's transaction).
    let id: u32 = conn
        .query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        id, 1,
        "the first read of a session with autocommit off went to a replica"
    );
    let autocommit: i64 = conn
        .query_first("SELECT @@autocommit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(autocommit, 0);
    drop(conn);
    drop(proxy);
}

/// Starts both replicas' threads again, then waits for the lab.
struct ResumeReplicas;

impl Drop for ResumeReplicas {
    fn drop(&mut self) {
        for node in ["r1", "r2"] {
            lab_cmd(&["sql", node, "START SLAVE"]);
        }
        wait_replication_healthy(Duration::from_secs(60));
    }
}

/// Writes a row on one new connection and reads it on another, `rounds`
/// times; returns (stale reads, reads served by a replica).
async fn write_then_read_elsewhere(proxy: &Proxy, table: &str, rounds: i64) -> (i64, i64) {
    let (mut stale, mut on_replica) = (0, 0);
    for id in 0..rounds {
        let mut writer = proxy.conn().await;
        writer
            .query_drop(format!("INSERT INTO {table} VALUES ({id})"))
            .await
            .unwrap();
        drop(writer);
        let mut reader = proxy.conn().await;
        let (n, server): (i64, u32) = reader
            .query_first(format!(
                "SELECT COUNT(*), @@server_id FROM {table} WHERE id = {id}"
            ))
            .await
            .unwrap()
            .unwrap();
        stale += i64::from(n == 0);
        on_replica += i64::from(server >= 3);
    }
    (stale, on_replica)
}

#[tokio::test]
async fn global_consistency_reads_every_acknowledged_write_on_any_new_connection() {
    let _serial = exclusive().await;
    let mut cfg = config();
    cfg.routing.consistency = splitrail::config::Consistency::Global;
    cfg.routing.causal_timeout_ms = 100;
    let proxy = start_proxy(cfg).await;
    let table = unique("global");
    let setup = create_on_replicas(&proxy, &table, "id INT PRIMARY KEY").await;

    // Replicating normally: fresh reads, mostly from replicas.
    let rounds = 300;
    let (stale, on_replica) = write_then_read_elsewhere(&proxy, &table, rounds).await;
    eprintln!("global, replicating: {stale} of {rounds} new-connection reads stale, {on_replica} served by a replica");
    assert_eq!(stale, 0);

    // The replicas stop applying: reads that would be stale go to the
    // writer (after the wait) instead.
    let _resume = ResumeReplicas;
    assert!(lab_cmd(&["sql", "r1", "STOP SLAVE SQL_THREAD"]));
    assert!(lab_cmd(&["sql", "r2", "STOP SLAVE SQL_THREAD"]));
    let mut more = 0;
    let mut stale_lagging = 0;
    for id in rounds..rounds + 30 {
        let mut writer = proxy.conn().await;
        writer
            .query_drop(format!("INSERT INTO {table} VALUES ({id})"))
            .await
            .unwrap();
        drop(writer);
        let mut reader = proxy.conn().await;
        let n: i64 = reader
            .query_first(format!("SELECT COUNT(*) FROM {table} WHERE id = {id}"))
            .await
            .unwrap()
            .unwrap();
        stale_lagging += i64::from(n == 0);
        more += 1;
    }
    eprintln!(
        "global, replicas not applying: {stale_lagging} of {more} new-connection reads stale"
    );
    assert_eq!(
        stale_lagging, 0,
        "new-connection reads missed acknowledged writes"
    );
    drop(setup);
}

/// Puts m1's global wait_timeout back whatever happens.
struct GlobalWaitTimeout(i64);

impl Drop for GlobalWaitTimeout {
    fn drop(&mut self) {
        let sql = format!("SET GLOBAL wait_timeout = {}", self.0);
        lab_cmd(&["sql", "m1", &sql]);
    }
}

#[tokio::test]
async fn the_servers_global_wait_timeout_closes_idle_clients_as_directly() {
    let _serial = exclusive().await;
    let lab = lab();
    let before: i64 = direct(&lab.m1)
        .await
        .query_first("SELECT @@global.wait_timeout")
        .await
        .unwrap()
        .unwrap();
    let _restore = GlobalWaitTimeout(before);
    assert!(lab_cmd(&["sql", "m1", "SET GLOBAL wait_timeout = 2"]));
    // Read when splitrail starts.
    let proxy = start_proxy(config()).await;
    for (label, url) in [
        ("direct", url(&lab.m1, Some(DB))),
        ("through splitrail", proxy.url(Some(DB))),
    ] {
        let mut c = connect(&url).await;
        c.query_drop("SELECT 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(
            c.query_drop("SELECT 1").await.is_err(),
            "{label}: an idle session outlived the server's wait_timeout"
        );
    }
    // A session that sets a longer one keeps it.
    let mut c = proxy.conn().await;
    c.query_drop("SET wait_timeout = 60").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    c.query_drop("SELECT 1").await.unwrap();
}
