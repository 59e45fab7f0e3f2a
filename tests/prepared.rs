//! Prepared statements (binary protocol) through splitrail: one statement
//! id for the client, prepared lazily on each backend that runs it.

mod support;

use mysql_async::prelude::*;
use mysql_async::Value;
use std::collections::HashSet;
use support::*;

const REPLICA_IDS: [u32; 2] = [3, 4];

#[tokio::test]
async fn a_prepared_select_follows_its_session_to_another_replica_under_one_id() {
    let proxy = start_proxy(config()).await;
    let mut conn = session_on_replica(&proxy, 3).await;
    let stmt = conn.prep("SELECT ? + 1, @@server_id").await.unwrap();
    let mut run = async |from: i64| {
        let mut seen = HashSet::new();
        for i in from..from + 4 {
            let (v, id): (i64, u32) = conn.exec_first(&stmt, (i,)).await.unwrap().unwrap();
            assert_eq!(v, i + 1);
            seen.insert(id);
        }
        seen
    };
    assert_eq!(run(0).await, HashSet::from([3]), "the session's replica");
    let (status, body) = admin(&proxy, "POST", "/nodes/r1/down", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        run(10).await,
        HashSet::from([4]),
        "prepared lazily on r2, same statement id"
    );
    conn.close(stmt).await.unwrap();
}

#[tokio::test]
async fn prepared_insert_goes_to_the_writer_and_generated_key_is_returned() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let table = unique("ps_ins");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50), src INT)"
    ))
    .await
    .unwrap();
    let stmt = conn
        .prep(format!(
            "INSERT INTO {table} (v, src) VALUES (?, @@server_id)"
        ))
        .await
        .unwrap();
    conn.exec_drop(&stmt, ("a",)).await.unwrap();
    let first_id = conn.last_insert_id().unwrap();
    conn.exec_drop(&stmt, ("b",)).await.unwrap();
    assert!(conn.last_insert_id().unwrap() > first_id);
    let mut m1 = direct(&lab.m1).await;
    let rows: Vec<(String, u32)> = m1
        .query(format!("SELECT v, src FROM {table} ORDER BY id"))
        .await
        .unwrap();
    assert_eq!(rows, vec![("a".to_string(), 1), ("b".to_string(), 1)]);
}

#[tokio::test]
async fn every_parameter_type_round_trips() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let big = vec![0xABu8; 3 * 1024 * 1024];
    let params: Vec<Value> = vec![
        Value::NULL,
        Value::Int(-42),
        Value::UInt(u64::MAX),
        Value::Double(3.5),
        Value::Bytes("héllo 😀".as_bytes().to_vec()),
        Value::Bytes(big.clone()),
        Value::Date(2024, 2, 29, 23, 59, 59, 123456),
        Value::Time(true, 1, 10, 20, 30, 0),
    ];
    let row: mysql_async::Row = conn
        .exec_first(
            "SELECT ? IS NULL, ?, ?, ?, ?, LENGTH(?), CAST(? AS DATETIME(6)), CAST(? AS TIME)",
            params,
        )
        .await
        .unwrap()
        .unwrap();
    let values: Vec<Value> = row.unwrap();
    assert_eq!(values[0], Value::Int(1));
    assert_eq!(values[1], Value::Int(-42));
    assert_eq!(values[2], Value::UInt(u64::MAX));
    assert_eq!(values[3], Value::Double(3.5));
    assert_eq!(values[4], Value::Bytes("héllo 😀".as_bytes().to_vec()));
    assert_eq!(values[5], Value::Int(big.len() as i64));
    assert_eq!(values[6], Value::Date(2024, 2, 29, 23, 59, 59, 123456));
    assert_eq!(values[7], Value::Time(true, 1, 10, 20, 30, 0));
}

#[tokio::test]
async fn prepared_statements_inside_a_transaction_stay_on_the_writer() {
    let proxy = start_proxy(config()).await;
    let mut conn = proxy.conn().await;
    let stmt = conn.prep("SELECT @@server_id").await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    for _ in 0..3 {
        let id: u32 = conn.exec_first(&stmt, ()).await.unwrap().unwrap();
        assert_eq!(id, 1);
    }
    conn.query_drop("COMMIT").await.unwrap();
    let id: u32 = conn.exec_first(&stmt, ()).await.unwrap().unwrap();
    assert!(REPLICA_IDS.contains(&id));
}

#[tokio::test]
async fn prepare_and_close_in_a_loop_does_not_leak_backend_statements() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let count_on = |addr: String| async move {
        let mut c = direct(&addr).await;
        let row: Option<(String, u64)> = c
            .query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
            .await
            .unwrap();
        row.unwrap().1
    };
    let before = count_on(lab.r1.clone()).await + count_on(lab.r2.clone()).await;
    let mut conn = proxy.conn().await;
    for i in 0..300 {
        let stmt = conn.prep(format!("SELECT {i} + ?")).await.unwrap();
        let _: Option<i64> = conn.exec_first(&stmt, (1,)).await.unwrap();
        conn.close(stmt).await.unwrap();
    }
    let _: Option<u32> = conn.query_first("SELECT 1").await.unwrap();
    let after = count_on(lab.r1.clone()).await + count_on(lab.r2.clone()).await;
    assert!(
        after <= before + 4,
        "prepared statements leaked: {before} -> {after}"
    );
}

#[tokio::test]
async fn unknown_statement_id_is_an_error_not_a_hang() {
    let proxy = start_proxy(config()).await;
    let mut raw = raw_client(&proxy.addr.to_string()).await.unwrap();
    let mut execute = vec![0x17];
    execute.extend_from_slice(&999u32.to_le_bytes());
    execute.extend_from_slice(&[0, 1, 0, 0, 0]);
    raw.stream().send(0, &execute).await.unwrap();
    let reply = raw.stream().read_packet().await.unwrap().unwrap();
    let err = splitrail::protocol::packets::parse_err(&reply.payload).unwrap();
    assert_eq!(err.code, 1243);
}

/// Raw COM_STMT_EXECUTE with a read-only cursor, then COM_STMT_FETCH in
/// two steps, through splitrail and directly: identical packets, and the
/// fetches reach the connection that holds the cursor.
#[tokio::test]
async fn cursor_fetch_follows_the_connection_that_opened_the_cursor() {
    use splitrail::backend::relay::Sink;
    use splitrail::protocol::PacketStream;

    async fn run(addr: &str) -> Vec<Vec<u8>> {
        let mut conn = raw_client(addr).await.unwrap();
        let ok = conn
            .prepare(b"SELECT seq FROM splitrail_test.seq_1_to_10")
            .await;
        // The SEQUENCE engine table lives in every database; fall back to a
        // plain one if the lab lacks it.
        let ok = match ok {
            Ok(ok) => ok,
            Err(_) => conn.prepare(b"SELECT seq FROM seq_1_to_10").await.unwrap(),
        };
        let (capture_end, reader_end) = tokio::io::duplex(1 << 20);
        let mut capture = PacketStream::new(capture_end);
        let outcome =
            execute_with_cursor(&mut conn, ok.backend_id, Sink::Client(&mut capture)).await;
        assert_ne!(
            outcome.last.status & 0x0040,
            0,
            "SERVER_STATUS_CURSOR_EXISTS"
        );
        for rows in [4u32, 100] {
            fetch_rows(&mut conn, ok.backend_id, rows, Sink::Client(&mut capture)).await;
        }
        drop(capture);
        let mut reader = PacketStream::new(reader_end);
        let mut packets = Vec::new();
        while let Some(p) = reader.read_packet().await.unwrap() {
            packets.push(p.payload.to_vec());
        }
        packets
    }

    let proxy = start_proxy(config()).await;
    let direct = run(&lab().r1).await;
    let via_proxy = run(&proxy.addr.to_string()).await;
    // 1 column count + 1 definition + EOF, then 4 rows + EOF, then 6 rows + EOF.
    assert_eq!(direct.len(), 3 + 5 + 7, "{direct:?}");
    assert_eq!(via_proxy, direct);
}
