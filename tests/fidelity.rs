//! Byte-for-byte fidelity: what a client reads through splitrail must be
//! exactly what the backend sent — column definitions (schema, table,
//! org_table, name, org_name, charset, length, type, flags, decimals), row
//! bytes, warning counts and status flags.
//!
//! The raw client here is splitrail's own backend connector (it speaks the
//! client side of the protocol) plus the relay, capturing every packet.

mod support;

use mysql_async::prelude::*;
use mysql_common::constants::CapabilityFlags;
use splitrail::backend::conn::BackendConn;
use splitrail::backend::relay::{relay_response, ResponseKind, Sink};
use splitrail::backend::PoolKey;
use splitrail::protocol::PacketStream;
use std::time::Duration;
use support::*;

const UTF8MB4_GENERAL_CI: u8 = 45;

fn key(caps: CapabilityFlags) -> PoolKey {
    PoolKey::new("app".into(), caps, UTF8MB4_GENERAL_CI)
}

/// Runs `sql` on `addr` as a raw client and returns every response packet
/// (sequence id and payload).
async fn raw_response(addr: &str, caps: CapabilityFlags, sql: &str) -> Vec<(u8, Vec<u8>)> {
    let (mut conn, _) = BackendConn::connect(
        0,
        addr,
        &key(caps),
        &splitrail::backend::Credential::password(b"app"),
        Duration::from_secs(5),
        None,
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut payload = vec![0x03];
    payload.extend_from_slice(sql.as_bytes());
    conn.stream().send(0, &payload).await.unwrap();
    let (capture_end, reader_end) = tokio::io::duplex(64 << 20);
    let mut capture = PacketStream::new(capture_end);
    let deprecate_eof = caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    relay_response(
        conn.stream(),
        Sink::Client(&mut capture),
        ResponseKind::Query,
        deprecate_eof,
    )
    .await
    .unwrap();
    drop(capture);
    let mut reader = PacketStream::new(reader_end);
    let mut packets = Vec::new();
    while let Some(p) = reader.read_packet().await.unwrap() {
        packets.push((p.seq, p.payload.to_vec()));
    }
    packets
}

const ALL_TYPES: &str = "CREATE TABLE {t} (
    id INT PRIMARY KEY,
    ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
    dec3 DECIMAL(10,3), f FLOAT, d DOUBLE, bits BIT(5),
    dt6 DATETIME(6), ts3 TIMESTAMP(3) NULL, dte DATE, tm TIME, tm6 TIME(6), yr YEAR,
    ch CHAR(5), vc VARCHAR(100), vb VARBINARY(50), bl BLOB, tx TEXT, lt LONGTEXT,
    en ENUM('a','b'), st SET('x','y'), js JSON, pt POINT NULL,
    emoji VARCHAR(20) CHARACTER SET utf8mb4, lat VARCHAR(20) CHARACTER SET latin1
)";

const ALL_TYPES_ROWS: &str = "INSERT INTO {t} VALUES
    (1, -128, 65535, -8388608, -2147483648, -9223372036854775808, 18446744073709551615,
     -1234567.891, 3.14, 1e300, b'10101',
     '2024-02-29 23:59:59.123456', '2024-01-01 00:00:00.125', '0000-00-00', '-838:59:59', '-12:34:56.789012', 2155,
     'abc', 'plain text', X'00FF10', X'DEADBEEF', 'text', REPEAT('x', 70000),
     'b', 'x,y', '{\"k\": [1, 2.5, null]}', POINT(1, 2),
     'héllo 😀', 'café'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 0, 0, 0, 0, 0, 0, 0.000, -0.5, -2.5e-300, b'0',
     '1000-01-01 00:00:00.000000', NULL, '9999-12-31', '838:59:59', '00:00:00', 1901,
     '', '', X'', X'', '', '',
     'a', '', '[]', NULL, '', '')";

fn caps_variants() -> [(&'static str, CapabilityFlags); 2] {
    let base = CapabilityFlags::CLIENT_MULTI_RESULTS | CapabilityFlags::CLIENT_SESSION_TRACK;
    [
        ("classic EOF", base),
        (
            "DEPRECATE_EOF",
            base | CapabilityFlags::CLIENT_DEPRECATE_EOF,
        ),
    ]
}

#[tokio::test]
async fn every_column_type_is_relayed_byte_for_byte() {
    let lab = lab();
    let table = unique("alltypes");
    let mut m1 = direct(&lab.m1).await;
    m1.query_drop(ALL_TYPES.replace("{t}", &table))
        .await
        .unwrap();
    m1.query_drop(ALL_TYPES_ROWS.replace("{t}", &table))
        .await
        .unwrap();
    let count = format!("SELECT COUNT(*) FROM {DB}.{table}");
    wait_everywhere(&[&lab.r1, &lab.r2], &count, 3).await;

    let proxy = start_proxy(config()).await;
    let proxy_addr = proxy.addr.to_string();
    let sql = format!("SELECT * FROM {DB}.{table} ORDER BY id");
    for (label, caps) in caps_variants() {
        let direct = raw_response(&lab.r1, caps, &sql).await;
        // Several times: new sessions take turns between r1 and r2, whose
        // bytes must both match.
        for _ in 0..4 {
            let via_proxy = raw_response(&proxy_addr, caps, &sql).await;
            assert_eq!(via_proxy.len(), direct.len(), "{label}: packet count");
            for (n, (got, want)) in via_proxy.iter().zip(&direct).enumerate() {
                assert_eq!(got, want, "{label}: packet {n} differs");
            }
        }
        // 1 column count + 29 definitions + (EOF) + 3 rows + terminator.
        let expected =
            1 + 29 + 3 + 1 + usize::from(!caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
        assert_eq!(
            direct.len(),
            expected,
            "{label}: the table has all columns and rows"
        );
    }
}

#[tokio::test]
async fn column_metadata_seen_by_a_client_library_matches_direct() {
    let lab = lab();
    let table = unique("meta");
    let mut m1 = direct(&lab.m1).await;
    m1.query_drop(ALL_TYPES.replace("{t}", &table))
        .await
        .unwrap();
    m1.query_drop(ALL_TYPES_ROWS.replace("{t}", &table))
        .await
        .unwrap();
    wait_everywhere(
        &[&lab.r1, &lab.r2],
        &format!("SELECT COUNT(*) FROM {DB}.{table}"),
        3,
    )
    .await;

    let proxy = start_proxy(config()).await;
    let describe = |cols: &[mysql_async::Column]| -> Vec<String> {
        cols.iter()
            .map(|c| {
                format!(
                    "{}.{}.{}.{}.{} cs={} len={} type={:?} flags={:?} dec={}",
                    c.schema_str(),
                    c.table_str(),
                    c.org_table_str(),
                    c.name_str(),
                    c.org_name_str(),
                    c.character_set(),
                    c.column_length(),
                    c.column_type(),
                    c.flags(),
                    c.decimals()
                )
            })
            .collect()
    };
    let sql = format!("SELECT * FROM {table} ORDER BY id");
    let mut r1 = direct(&lab.r1).await;
    let want = describe(&r1.query_iter(&sql).await.unwrap().columns().unwrap());
    let mut via = proxy.conn().await;
    let got = describe(&via.query_iter(&sql).await.unwrap().columns().unwrap());
    assert_eq!(got, want);
    assert!(
        want.iter()
            .any(|c| c.contains(".vb.") && c.contains("cs=63")),
        "VARBINARY is binary"
    );
}

#[tokio::test]
async fn warnings_of_an_insert_are_preserved() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let proxy_addr = proxy.addr.to_string();
    let caps = caps_variants()[1].1;
    let mut ok_packets = Vec::new();
    for addr in [lab.m1.as_str(), proxy_addr.as_str()] {
        let table = unique("warn");
        let mut m1 = direct(&lab.m1).await;
        m1.query_drop(format!("CREATE TABLE {table} (c VARCHAR(3))"))
            .await
            .unwrap();
        let response = raw_response(
            addr,
            caps,
            &format!("INSERT IGNORE INTO {DB}.{table} VALUES ('toolong'), ('abcdef')"),
        )
        .await;
        assert_eq!(response.len(), 1);
        ok_packets.push(response[0].clone());
    }
    assert_eq!(
        ok_packets[0], ok_packets[1],
        "OK packet (affected rows, status, warnings, info) differs"
    );
    let ok = splitrail::protocol::packets::parse_ok(&ok_packets[1].1).unwrap();
    assert_eq!(ok.warnings, 2);
    assert_eq!(ok.affected_rows, 2);

    // And a client library sees them too, plus SHOW WARNINGS from the same node.
    let mut conn = proxy.conn().await;
    let table = unique("warn2");
    conn.query_drop(format!("CREATE TABLE {table} (c VARCHAR(3))"))
        .await
        .unwrap();
    conn.query_drop(format!("INSERT IGNORE INTO {table} VALUES ('toolong')"))
        .await
        .unwrap();
    let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(
        warnings.len(),
        1,
        "SHOW WARNINGS must run where the INSERT ran"
    );
    assert_eq!(warnings[0].1, 1265);
}

#[tokio::test]
async fn large_value_split_over_packets_is_relayed_intact() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let sql = "SELECT REPEAT('z', 20000000) AS big, 1 AS after";
    let caps = caps_variants()[1].1;
    let direct = raw_response(&lab.r1, caps, sql).await;
    let via_proxy = raw_response(&proxy.addr.to_string(), caps, sql).await;
    assert_eq!(via_proxy, direct);
    assert!(
        direct.iter().any(|(_, p)| p.len() == 0xFF_FFFF),
        "the row spans two packets"
    );
}

/// The answer to one single-packet command: OK, or the error code.
async fn single_command(addr: &str, payload: &[u8]) -> Result<(), u16> {
    let mut conn = raw_client(addr).await.unwrap();
    match conn.simple_command(payload).await {
        Ok(_) => Ok(()),
        Err(splitrail::backend::conn::CommandError::Server(e)) => Err(e.code),
        Err(other) => panic!("{addr}: {other:?}"),
    }
}

#[tokio::test]
async fn com_refresh_and_com_debug_answer_as_the_writer_does() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let through = proxy.addr.to_string();
    // COM_REFRESH (REFRESH_GRANT) needs RELOAD, COM_DEBUG needs SUPER: the
    // lab's app user has neither, and gets the server's error either way
    // (splitrail answered "Unknown command" before).
    for payload in [&[0x07, 0x01][..], &[0x0d][..]] {
        let direct = single_command(&lab.m1, payload).await;
        let proxied = single_command(&through, payload).await;
        assert_eq!(proxied, direct, "command 0x{:02x}", payload[0]);
        assert_ne!(proxied, Err(1047), "command 0x{:02x}", payload[0]);
    }
}
