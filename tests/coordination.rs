//! Several instances, one writer: three splitrail instances of one cluster
//! agree on the writer through a real three-member etcd
//! (`proto-tests/etcd up 3`) in front of the real lab. Faults are real:
//! kill -9 of a master, an iptables blackhole of one instance's path to
//! m1, etcd members killed and stopped. Each test uses its own cluster
//! name (its own etcd keys) and restores the lab when it ends.

mod support;

use mysql_async::prelude::*;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::faults::{wait_replication_healthy, Rules};
use support::*;

fn etcd_endpoints() -> Vec<String> {
    std::env::var("ETCD_ENDPOINTS")
        .unwrap_or_else(|_| "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793".into())
        .split(',')
        .map(String::from)
        .collect()
}

fn etcd_script(args: &[&str]) -> bool {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto-tests/etcd");
    Command::new(script)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The config of instance `name` of cluster `cluster`.
fn instance_config(cluster: &str, name: &str) -> splitrail::config::Config {
    let mut cfg = config();
    cfg.coordination.etcd_endpoints = etcd_endpoints();
    cfg.coordination.cluster = cluster.into();
    cfg.coordination.instance = name.into();
    cfg.coordination.interval_ms = 200;
    cfg.coordination.lease_ttl_s = 2;
    cfg.coordination.etcd_timeout_ms = 500;
    cfg
}

async fn writers(proxies: &[Proxy]) -> Vec<String> {
    let mut out = Vec::new();
    for p in proxies {
        out.push(
            health(p).await["writer"]
                .as_str()
                .unwrap_or("none")
                .to_string(),
        );
    }
    out
}

/// How many times the cluster's writer record was written (1: never
/// moved since it was created).
async fn writer_record_version(cluster: &str) -> i64 {
    let mut client = etcd_client::Client::connect(etcd_endpoints(), None)
        .await
        .expect("etcd reachable");
    let resp = client
        .get(format!("/splitrail/{cluster}/writer"), None)
        .await
        .expect("get writer");
    resp.kvs().first().map_or(0, |kv| kv.version())
}

/// Three instances of a fresh cluster, all following writer m1.
async fn three_instances(
    cluster: &str,
    configure: impl Fn(&str, &mut splitrail::config::Config),
) -> Vec<Proxy> {
    let mut proxies = Vec::new();
    for name in ["a", "b", "c"] {
        let mut cfg = instance_config(cluster, name);
        configure(name, &mut cfg);
        proxies.push(start_proxy(cfg).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = writers(&proxies).await;
        if now.iter().all(|w| w == "m1") {
            break;
        }
        if Instant::now() > deadline {
            let h = health(&proxies[0]).await;
            panic!("instances do not all follow m1: {now:?}; a's health: {h}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxies
}

/// Restarts m1 (if killed), clears read_only the fencing may have set, and
/// waits for replication, whatever happened in the test.
struct RestoreLab;

impl Drop for RestoreLab {
    fn drop(&mut self) {
        etcd_script(&["up", "3"]);
        lab_cmd(&["start", "m1"]);
        for node in ["m1", "m2"] {
            lab_cmd(&["sql", node, "SET GLOBAL read_only = OFF"]);
        }
        wait_replication_healthy(Duration::from_secs(90));
    }
}

/// Every acknowledged write, with the time it was acknowledged.
#[derive(Default)]
struct Acks {
    ids: Vec<(i64, Instant)>,
    errors: BTreeMap<u16, usize>,
}

/// One writer per proxy, each inserting unique ids (and the server that
/// took them) until `stop`; records every acknowledged insert.
fn write_load(
    proxies: &[Proxy],
    table: &str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Acks>> {
    proxies
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let url = p.url(Some(DB));
            let table = table.to_string();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut acks = Acks::default();
                let mut conn: Option<mysql_async::Conn> = None;
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
                            .await
                            .ok();
                    }
                    let Some(c) = conn.as_mut() else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    i += 1;
                    let id = (n as i64 + 1) * 1_000_000 + i;
                    let sql = format!("INSERT INTO {table} (id, srv) VALUES ({id}, @@server_id)");
                    match tokio::time::timeout(Duration::from_secs(5), c.query_drop(sql)).await {
                        Ok(Ok(())) => acks.ids.push((id, Instant::now())),
                        Ok(Err(e)) => {
                            *acks
                                .errors
                                .entry(server_error_code(&e).unwrap_or(0))
                                .or_default() += 1;
                            conn = None;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(_) => conn = None,
                    }
                }
                acks
            })
        })
        .collect()
}

#[tokio::test]
async fn kill_9_of_the_writer_under_load_moves_all_instances_once() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let lab = lab();
    let cluster = unique("kill9");
    let proxies = three_instances(&cluster, |_, _| {}).await;
    assert_eq!(writer_record_version(&cluster).await, 1);
    let table = unique("acked");
    let mut setup = proxies[0].conn().await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, srv INT)"
        ))
        .await
        .unwrap();
    drop(setup);

    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(&proxies, &table, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(lab_cmd(&["kill", "m1"]));
    let moved = wait_for("all instances on m2", Duration::from_secs(15), || async {
        writers(&proxies).await.iter().all(|w| w == "m2")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<(i64, Instant)> = Vec::new();
    let mut errors = BTreeMap::new();
    for task in load {
        let a = task.await.unwrap();
        acked.extend(a.ids);
        for (code, n) in a.errors {
            *errors.entry(code).or_insert(0) += n;
        }
    }
    let version = writer_record_version(&cluster).await;

    // Every acknowledged write is on m2 exactly once (the primary key
    // refuses a second copy), and which master took it.
    let mut m2 = direct(&lab.m2).await;
    let rows: Vec<(i64, i64)> = m2
        .query(format!("SELECT id, srv FROM {table}"))
        .await
        .unwrap();
    let present: BTreeMap<i64, i64> = rows.into_iter().collect();
    let lost: Vec<i64> = acked
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !present.contains_key(id))
        .collect();
    // Two writers = m1 acknowledged a write after m2 took its first one.
    let last_on = |srv: i64, last: bool| {
        let times = acked
            .iter()
            .filter(|(id, _)| present.get(id) == Some(&srv))
            .map(|(_, at)| *at);
        if last {
            times.max()
        } else {
            times.min()
        }
    };
    let two_writers = match (last_on(1, true), last_on(2, false)) {
        (Some(last_m1), Some(first_m2)) => last_m1.saturating_duration_since(first_m2),
        _ => Duration::ZERO,
    };
    eprintln!(
        "kill -9 m1, 3 instances: all on m2 {:?} after the kill; {} writes acknowledged, {} lost, writer record version {version}, two writers for {two_writers:?}, errors by code {errors:?}",
        moved,
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(
        version, 2,
        "exactly one epoch change (three instances raced)"
    );
    assert_eq!(two_writers, Duration::ZERO, "m1 and m2 both took writes");
    assert!(acked.len() > 50, "the load ran: {}", acked.len());

    // m1 back: nobody fails back.
    assert!(lab_cmd(&["start", "m1"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(writers(&proxies).await.iter().all(|w| w == "m2"));
    assert_eq!(writer_record_version(&cluster).await, 2);
    m2.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

/// A TCP forwarder to `target` on a fixed loopback port: one instance's
/// own path to a node, which a test can blackhole alone.
async fn forwarder(port: u16, target: String) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("forwarder port free");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}

/// Instance a's path to m1, through a forwarder that can be blackholed.
const A_PATH_TO_M1: u16 = 25161;

#[tokio::test]
async fn an_instance_cut_off_from_the_writer_refuses_writes_and_the_majority_keeps_it() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let lab = lab();
    let path = forwarder(A_PATH_TO_M1, lab.m1.clone()).await;
    let cluster = unique("cut");
    let proxies = three_instances(&cluster, |name, cfg| {
        if name == "a" {
            cfg.nodes[0].addr = format!("127.0.0.1:{A_PATH_TO_M1}");
        }
    })
    .await;
    let table = unique("counters");
    let mut setup = proxies[1].conn().await;
    setup
        .query_drop(format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, n BIGINT NOT NULL)"
        ))
        .await
        .unwrap();
    setup
        .query_drop(format!("INSERT INTO {table} VALUES (1, 0), (2, 0)"))
        .await
        .unwrap();
    drop(setup);

    // Everyone increments the same two rows; count what is acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(0u64));
    // Sent, but the connection broke before the answer: may have run.
    let unknown = Arc::new(Mutex::new(0u64));
    let refused = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let mut load = Vec::new();
    for (n, p) in proxies.iter().enumerate() {
        let (url, table, stop) = (p.url(Some(DB)), table.clone(), Arc::clone(&stop));
        let (acked, refused) = (Arc::clone(&acked), Arc::clone(&refused));
        let name = ["a", "b", "c"][n].to_string();
        let unknown = Arc::clone(&unknown);
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let Ok(mut c) =
                    mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await
                else {
                    continue;
                };
                let sql = format!("UPDATE {table} SET n = n + 1 WHERE id = {}", 1 + i % 2);
                match tokio::time::timeout(Duration::from_secs(5), c.query_drop(sql)).await {
                    Ok(Ok(())) => *acked.lock().unwrap() += 1,
                    Ok(Err(e)) => {
                        let code = server_error_code(&e).unwrap_or(0);
                        if code == 1158 || code == 0 {
                            *unknown.lock().unwrap() += 1;
                        }
                        *refused
                            .lock()
                            .unwrap()
                            .entry(format!("{name} {code}"))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(_) => {
                        *unknown.lock().unwrap() += 1;
                        *refused
                            .lock()
                            .unwrap()
                            .entry(format!("{name} timeout"))
                            .or_default() += 1;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut cut = Rules::new();
    cut.blackhole_port(A_PATH_TO_M1);
    // a's monitor declares m1 down; a alone is no majority.
    wait_for("a sees m1 down", Duration::from_secs(10), || async {
        node_field(&proxies[0], "m1", "health").await == "down"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        writers(&proxies).await,
        vec!["m1", "m1", "m1"],
        "the majority keeps m1"
    );
    assert_eq!(writer_record_version(&cluster).await, 1, "no epoch change");
    // a refuses writes with a message naming the cause, and sends none.
    let mut a = proxies[0].conn().await;
    let err = a
        .query_drop(format!("UPDATE {table} SET n = n WHERE id = 1"))
        .await
        .expect_err("a cannot reach the writer");
    assert_eq!(server_error_code(&err), Some(1290), "{err}");
    assert!(
        err.to_string().contains("unreachable from this instance"),
        "{err}"
    );
    drop(a);
    // Its /health says so (503, for a load balancer's check); the
    // others' say ok.
    let (code, body) = admin(&proxies[0], "GET", "/health", None).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("\"writer_unreachable\"") && body.contains("\"read-only\""),
        "{body}"
    );
    let (code, body) = admin(&proxies[1], "GET", "/health", None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ok\""), "{body}");
    cut.heal();
    wait_for("a writes to m1 again", Duration::from_secs(15), || async {
        let Ok(mut c) =
            mysql_async::Conn::new(mysql_async::Opts::from_url(&proxies[0].url(Some(DB))).unwrap())
                .await
        else {
            return false;
        };
        c.query_drop(format!("UPDATE {table} SET n = n WHERE id = 1"))
            .await
            .is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let acked = *acked.lock().unwrap();
    // Of the increments whose outcome was reported unknown (1158), some
    // may have run.
    let unknown = *unknown.lock().unwrap();
    // Every acknowledged increment is there, on both masters.
    let sum = format!("SELECT CAST(SUM(n) AS SIGNED) FROM {table}");
    let mut m1 = direct(&lab.m1).await;
    let on_m1: i64 = m1.query_first(&sum).await.unwrap().unwrap();
    wait_everywhere(&[&lab.m2], &sum, on_m1).await;
    let checksum = format!("CHECKSUM TABLE {table}");
    let c1: Option<(String, i64)> = m1.query_first(&checksum).await.unwrap();
    let mut m2 = direct(&lab.m2).await;
    let c2: Option<(String, i64)> = m2.query_first(&checksum).await.unwrap();
    eprintln!(
        "one instance cut off from m1: {acked} increments acknowledged, {unknown} of unknown outcome, {on_m1} on m1; refused/failed {:?}",
        refused.lock().unwrap()
    );
    assert!(
        acked <= on_m1 as u64 && on_m1 as u64 <= acked + unknown,
        "acknowledged increments lost or doubled: {acked} acknowledged, {unknown} unknown, {on_m1} applied"
    );
    assert_eq!(c1.map(|c| c.1), c2.map(|c| c.1), "m1 and m2 differ");
    m1.query_drop(format!("DROP TABLE {table}")).await.unwrap();
    path.abort();
}

#[tokio::test]
async fn without_etcd_instances_keep_serving_and_never_fail_over_alone() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let lab = lab();
    let cluster = unique("noetcd");
    let proxies = three_instances(&cluster, |_, _| {}).await;
    let mut conns = Vec::new();
    for p in &proxies {
        conns.push(p.conn().await);
    }
    let table = unique("noetcd");
    conns[0]
        .query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    // One member killed: the other two are a quorum; nothing changes.
    assert!(etcd_script(&["kill", "e1"]));
    for (i, c) in conns.iter_mut().enumerate() {
        c.query_drop(format!("INSERT INTO {table} VALUES ({i})"))
            .await
            .unwrap();
    }
    // All of etcd stopped: writes and reads go on, to the writer they knew.
    assert!(etcd_script(&["stop", "e2"]));
    assert!(etcd_script(&["stop", "e3"]));
    wait_for(
        "instances see etcd unreachable",
        Duration::from_secs(10),
        || async {
            let mut all = true;
            for p in &proxies {
                all &= health(p).await["coordination"]["etcd"] == "unreachable";
            }
            all
        },
    )
    .await;
    for (i, c) in conns.iter_mut().enumerate() {
        c.query_drop(format!("INSERT INTO {table} VALUES ({})", 10 + i))
            .await
            .unwrap();
        let n: Option<i64> = c
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        assert!(n.is_some());
    }
    // m1 dies while etcd is away: nobody moves the writer alone; writes
    // are refused with a clear error instead.
    assert!(lab_cmd(&["kill", "m1"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(writers(&proxies).await, vec!["m1", "m1", "m1"]);
    let mut fresh = proxies[1].conn().await;
    let err = fresh
        .query_drop(format!("INSERT INTO {table} VALUES (100)"))
        .await
        .expect_err("no failover without etcd");
    assert_eq!(server_error_code(&err), Some(1290), "{err}");
    // etcd back: the cluster agrees, and moves the writer once.
    assert!(etcd_script(&["up", "3"]));
    wait_for(
        "all on m2 once etcd is back",
        Duration::from_secs(15),
        || async { writers(&proxies).await.iter().all(|w| w == "m2") },
    )
    .await;
    assert_eq!(writer_record_version(&cluster).await, 2);
    let mut m2 = direct(&lab.m2).await;
    m2.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn a_mark_through_one_instance_reaches_all_and_switches_over_once() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let cluster = unique("mark");
    let proxies = three_instances(&cluster, |_, _| {}).await;
    let (status, body) = admin(&proxies[2], "POST", "/nodes/m1/drain", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let moved = wait_for("all on m2", Duration::from_secs(5), || async {
        writers(&proxies).await.iter().all(|w| w == "m2")
    })
    .await;
    eprintln!("drain of m1 through instance c: all instances on m2 after {moved:?}");
    assert_eq!(writer_record_version(&cluster).await, 2);
    for p in &proxies {
        assert_eq!(node_field(p, "m1", "mark").await, "drain");
    }
    // Fenced: the old writer is read-only now.
    let mut m1 = direct(&lab().m1).await;
    let ro: Option<i64> = m1.query_first("SELECT @@read_only").await.unwrap();
    assert_eq!(ro, Some(1), "the old writer was fenced");
    // Promote back through another instance.
    let (_, _) = admin(&proxies[0], "POST", "/nodes/m1/up", Some(ADMIN_TOKEN)).await;
    let (status, body) = admin(&proxies[0], "POST", "/nodes/m1/promote", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    wait_for("all on m1", Duration::from_secs(5), || async {
        writers(&proxies).await.iter().all(|w| w == "m1")
    })
    .await;
    let ro: Option<i64> = m1.query_first("SELECT @@read_only").await.unwrap();
    assert_eq!(ro, Some(0), "the new writer is writable");
    assert_eq!(writer_record_version(&cluster).await, 3);
}

#[tokio::test]
async fn instances_racing_to_move_the_writer_change_the_epoch_once() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let cluster = unique("race");
    let proxies = three_instances(&cluster, |_, _| {}).await;
    let mut etcd = etcd_client::Client::connect(etcd_endpoints(), None)
        .await
        .expect("etcd reachable");
    // One etcd write marks the writer down: the watch wakes all three
    // instances at once, and each decides to move it from the same epoch.
    let rounds = 8;
    let mut writer = "m1";
    for round in 0..rounds {
        let next = if writer == "m1" { "m2" } else { "m1" };
        let before = writer_record_version(&cluster).await;
        let mark = format!("/splitrail/{cluster}/marks/{writer}");
        etcd.put(mark.clone(), "down", None).await.unwrap();
        wait_for(
            "all on the other master",
            Duration::from_secs(5),
            || async { writers(&proxies).await.iter().all(|w| w == next) },
        )
        .await;
        // Let every instance finish its round (a loser's swap comes late).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            writer_record_version(&cluster).await,
            before + 1,
            "round {round}: the epoch changed more than once"
        );
        etcd.delete(mark, None).await.unwrap();
        writer = next;
    }
    let mut won = 0;
    let mut lost = 0;
    for p in &proxies {
        won += metric_sum(p, "splitrail_writer_swaps_total{outcome=\"won\"}").await;
        lost += metric_sum(p, "splitrail_writer_swaps_total{outcome=\"lost\"}").await;
    }
    eprintln!(
        "{rounds} moves: {won} swaps won (incl. the first record), {lost} lost to another instance"
    );
    // The first record plus one per round; the races really happened.
    assert_eq!(won, rounds + 1);
    assert!(
        lost > 0,
        "no instance ever lost a race: the test raced nothing"
    );
}

#[tokio::test]
async fn repoint_replicas_moves_the_replicas_of_a_killed_writer_to_the_new_one() {
    let _serial = exclusive().await;
    let _restore = RestoreLab;
    let _back = support::faults::ReplicasBackOnM1;
    let lab = lab();
    let cluster = unique("repoint");
    let proxies = three_instances(&cluster, |_, cfg| {
        cfg.failover.repoint_replicas = true;
    })
    .await;
    let table = unique("fresh");
    let mut conn = proxies[0].conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    drop(conn);
    assert!(lab_cmd(&["kill", "m1"]));
    let killed = Instant::now();
    for replica in ["r1", "r2"] {
        wait_for(
            &format!("{replica} replicates from m2"),
            Duration::from_secs(15),
            || async {
                node_field(&proxies[1], replica, "source").await == "m2"
                    && node_field(&proxies[1], replica, "replication").await == "running"
            },
        )
        .await;
    }
    eprintln!(
        "kill -9 m1: r1 and r2 replicate from m2 {:?} after the kill",
        killed.elapsed()
    );
    // Writes on m2 reach them: new sessions read fresh rows from replicas
    // again, not from the writer.
    let mut conn = proxies[2].conn().await;
    conn.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    wait_everywhere(
        &[&lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {table}"),
        1,
    )
    .await;
    wait_for(
        "reads on replicas again",
        Duration::from_secs(5),
        || async {
            let mut fresh = proxies[2].conn().await;
            let id = server_id(&mut fresh).await;
            id == 3 || id == 4
        },
    )
    .await;
    conn.query_drop(format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// A one-member etcd that speaks TLS only and wants a client certificate
/// (the lab's CA, server and client certificates); killed on drop.
struct TlsEtcd {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TLS_ETCD: &str = "127.0.0.1:23796";

fn lab_tls_file(name: &str) -> String {
    let lab_dir = std::env::var("LAB_DIR").unwrap_or_else(|_| "/tmp/splitrail-lab".into());
    format!("{lab_dir}/tls/{name}")
}

fn tls_etcd() -> TlsEtcd {
    let dir = std::env::temp_dir().join(unique("etcd-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new("etcd")
        .args(["--name", "tls", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &format!("https://{TLS_ETCD}"),
            "--advertise-client-urls",
            &format!("https://{TLS_ETCD}"),
            "--listen-peer-urls",
            "http://127.0.0.1:23806",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23806",
            "--initial-cluster",
            "tls=http://127.0.0.1:23806",
            "--cert-file",
            &lab_tls_file("server.pem"),
            "--key-file",
            &lab_tls_file("server-key.pem"),
            "--trusted-ca-file",
            &lab_tls_file("ca.pem"),
            "--client-cert-auth",
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("etcd starts");
    TlsEtcd { child, dir }
}

#[tokio::test]
async fn coordination_over_tls_with_a_client_certificate() {
    let _serial = exclusive().await;
    let _etcd = tls_etcd();
    let cluster = unique("tls");
    let mut cfg = instance_config(&cluster, "a");
    cfg.coordination.etcd_endpoints = vec![TLS_ETCD.into()];
    cfg.coordination.etcd_ca_file = lab_tls_file("ca.pem");
    cfg.coordination.etcd_cert_file = lab_tls_file("client.pem");
    cfg.coordination.etcd_key_file = lab_tls_file("client-key.pem");
    let proxy = start_proxy(cfg).await;
    wait_for(
        "the writer record over TLS",
        Duration::from_secs(15),
        || async {
            let h = health(&proxy).await;
            h["coordination"]["etcd"] == "ok" && h["writer"] == "m1" && h["epoch"].is_i64()
        },
    )
    .await;
    // Without the client certificate the member refuses the instance.
    let mut plain = instance_config(&cluster, "b");
    plain.coordination.etcd_endpoints = vec![TLS_ETCD.into()];
    plain.coordination.etcd_ca_file = lab_tls_file("ca.pem");
    let refused = start_proxy(plain).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let h = health(&refused).await;
    assert_eq!(h["coordination"]["etcd"], "unreachable", "{h}");
    eprintln!(
        "without a client certificate: {}",
        h["coordination"]["problem"]
    );
}
