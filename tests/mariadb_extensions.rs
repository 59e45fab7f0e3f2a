//! MariaDB's protocol extensions through splitrail, compared with the
//! server itself: COM_STMT_BULK_EXECUTE (what Connector/J, /C and /Python
//! send for batches) and progress reports (long ALTER TABLE, LOAD DATA).
//!
//! The client is splitrail's own protocol client, asking for the
//! extended capabilities like a MariaDB connector does.

mod support;

use mysql_async::prelude::*;
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};
use splitrail::backend::conn::BackendConn;
use splitrail::backend::{Credential, PoolKey};
use splitrail::protocol::packets;
use std::time::Duration;
use support::*;

async fn mariadb_client(addr: &str, caps: MariadbCapabilities) -> BackendConn {
    let key = PoolKey::new("app".into(), CapabilityFlags::empty(), 45).with_mariadb_caps(caps);
    let (mut conn, _) = BackendConn::connect(
        0,
        addr,
        &key,
        &Credential::password(b"app"),
        Duration::from_secs(5),
        None,
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut use_db = vec![0x02];
    use_db.extend_from_slice(DB.as_bytes());
    conn.simple_command(&use_db).await.unwrap();
    conn
}

/// Packets of one response that is not a result set, up to its OK/ERR
/// (progress reports included), within 60 s.
async fn response(conn: &mut BackendConn) -> Vec<Vec<u8>> {
    let read = async {
        let mut packets = Vec::new();
        loop {
            let p = conn.stream().read_packet().await.unwrap().expect("open");
            let last = match p.header() {
                Some(packets::ERR_HEADER) => !packets::is_progress_report(&p.payload),
                Some(packets::OK_HEADER) => true,
                _ => false,
            };
            packets.push(p.payload.to_vec());
            if last {
                return packets;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the response ends")
}

/// Prepares `sql`; returns the statement id (the definitions that follow
/// are read and dropped).
async fn prepare(conn: &mut BackendConn, sql: &str) -> u32 {
    let mut payload = vec![0x16];
    payload.extend_from_slice(sql.as_bytes());
    conn.stream().send(0, &payload).await.unwrap();
    let ok = conn.stream().read_packet().await.unwrap().unwrap().payload;
    assert_eq!(
        ok[0],
        0,
        "prepare failed: {:?}",
        String::from_utf8_lossy(&ok)
    );
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let columns = u16::from_le_bytes([ok[5], ok[6]]);
    let params = u16::from_le_bytes([ok[7], ok[8]]);
    for count in [params, columns] {
        if count > 0 {
            // The definitions, then an EOF.
            for _ in 0..=count {
                conn.stream().read_packet().await.unwrap().unwrap();
            }
        }
    }
    id
}

/// COM_STMT_BULK_EXECUTE of `(id, v)` BIGINT rows, types sent.
fn bulk_insert(stmt: u32, rows: std::ops::Range<i64>) -> Vec<u8> {
    const SEND_TYPES_TO_SERVER: u16 = 128;
    const LONGLONG: u8 = 0x08;
    let mut payload = vec![0xfa];
    payload.extend_from_slice(&stmt.to_le_bytes());
    payload.extend_from_slice(&SEND_TYPES_TO_SERVER.to_le_bytes());
    payload.extend_from_slice(&[LONGLONG, 0, LONGLONG, 0]);
    for id in rows {
        for value in [id, id * 10] {
            payload.push(0); // indicator: a value follows
            payload.extend_from_slice(&value.to_le_bytes());
        }
    }
    payload
}

fn affected_rows(ok: &[u8]) -> u64 {
    let mut pos = 1;
    packets::read_lenenc(ok, &mut pos).expect("affected rows")
}

#[tokio::test]
async fn bulk_execute_runs_on_the_writer_like_on_the_server() {
    let proxy = start_proxy(config()).await;
    let table = unique("bulk");
    let mut sql = proxy.conn().await;
    sql.query_drop(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v BIGINT)"
    ))
    .await
    .unwrap();

    let caps = MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS;
    let insert = format!("INSERT INTO {table} VALUES (?, ?)");
    let mut direct = mariadb_client(&lab().m1, caps).await;
    let stmt = prepare(&mut direct, &insert).await;
    direct
        .stream()
        .send(0, &bulk_insert(stmt, 0..100))
        .await
        .unwrap();
    let direct_reply = response(&mut direct).await;

    let mut through = mariadb_client(&proxy.addr.to_string(), caps).await;
    let stmt = prepare(&mut through, &insert).await;
    through
        .stream()
        .send(0, &bulk_insert(stmt, 100..300))
        .await
        .unwrap();
    let reply = response(&mut through).await;
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert_eq!(
        reply[0][0],
        packets::OK_HEADER,
        "{:?}",
        String::from_utf8_lossy(&reply[0])
    );
    assert_eq!(affected_rows(&direct_reply[0]), 100);
    assert_eq!(affected_rows(&reply[0]), 200);

    // The same statement again: the writer's statement is reused.
    through
        .stream()
        .send(0, &bulk_insert(stmt, 300..310))
        .await
        .unwrap();
    assert_eq!(affected_rows(&response(&mut through).await[0]), 10);
    // A duplicate key: the server's error, the session goes on.
    through
        .stream()
        .send(0, &bulk_insert(stmt, 0..1))
        .await
        .unwrap();
    let dup = response(&mut through).await;
    assert_eq!(packets::parse_err(&dup[0]).map(|e| e.code), Some(1062));

    let count: Option<i64> = sql
        .query_first(format!(
            "SELECT /* splitrail:master */ COUNT(*) FROM {table}"
        ))
        .await
        .unwrap();
    assert_eq!(count, Some(310));
}

#[tokio::test]
async fn progress_reports_reach_the_client_and_the_response_goes_on() {
    let _serial = exclusive().await;
    let proxy = start_proxy(config()).await;
    let table = unique("progress");
    let mut sql = proxy.conn().await;
    sql.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, pad CHAR(200) NOT NULL DEFAULT 'x')"
    ))
    .await
    .unwrap();
    sql.query_drop(format!(
        "INSERT INTO {table} (id) SELECT seq FROM seq_1_to_400000"
    ))
    .await
    .unwrap();

    let mut through = mariadb_client(
        &proxy.addr.to_string(),
        MariadbCapabilities::MARIADB_CLIENT_PROGRESS,
    )
    .await;
    let mut set = vec![0x03];
    set.extend_from_slice(b"SET SESSION progress_report_time = 1");
    through.simple_command(&set).await.unwrap();
    let mut alter = vec![0x03];
    alter.extend_from_slice(format!("ALTER TABLE {table} FORCE, ALGORITHM=COPY").as_bytes());
    through.stream().send(0, &alter).await.unwrap();
    let reply = response(&mut through).await;
    let reports = reply
        .iter()
        .filter(|p| packets::is_progress_report(p))
        .count();
    eprintln!("ALTER TABLE through splitrail: {reports} progress reports, then the OK");
    assert!(reports >= 1, "no progress report: {reply:?}");
    assert_eq!(reply.last().unwrap()[0], packets::OK_HEADER);
    // The connection is in step: the next statement answers normally.
    let mut ping = vec![0x03];
    ping.extend_from_slice(b"SELECT 1");
    through.stream().send(0, &ping).await.unwrap();
    let first = through.stream().read_packet().await.unwrap().unwrap();
    assert_eq!(first.payload.as_ref(), &[1], "a one-column result set");
    sql.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}
