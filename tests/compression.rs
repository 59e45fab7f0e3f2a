//! The compressed protocol (zlib, `CLIENT_COMPRESS`): towards clients that
//! ask for it (mysql_async's codec, and libmariadb through the mariadb
//! CLI), and towards nodes with `compress = true`, each compared with the
//! same statements on a plain path.

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use support::*;

async fn compressed_client(proxy: &Proxy) -> Conn {
    let opts = OptsBuilder::from_opts(mysql_async::Opts::from_url(&proxy.url(Some(DB))).unwrap())
        .compression(Some(mysql_async::Compression::default()));
    Conn::new(opts).await.unwrap()
}

/// A result of about 2 MB spread over many packets and compressed
/// packets, and whose rows are checked one by one.
const WIDE: &str =
    "SELECT seq, CONCAT('customer-', seq, '@example.com'), REPEAT('lorem ipsum ', 1 + seq % 7) \
     FROM seq_1_to_20000";

async fn session_compression(conn: &mut Conn, hint: &str) -> String {
    let sql = format!(
        "SELECT {hint} VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME = 'COMPRESSION'"
    );
    conn.query_first(sql).await.unwrap().unwrap()
}

async fn check_statements(conn: &mut Conn, plain: &mut Conn) {
    let rows: Vec<(u64, String, String)> = conn.query(WIDE).await.unwrap();
    let expected: Vec<(u64, String, String)> = plain.query(WIDE).await.unwrap();
    assert_eq!(rows.len(), 20_000);
    assert!(rows == expected, "rows differ from the plain path");
    let prepared: Vec<(u64, String)> = conn
        .exec("SELECT seq, REPEAT('x', ?) FROM seq_1_to_3000", (300,))
        .await
        .unwrap();
    assert_eq!(prepared.len(), 3000);
    assert_eq!(prepared[2999].1.len(), 300);
    let table = unique("zip");
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, t MEDIUMTEXT)"
    ))
    .await
    .unwrap();
    conn.exec_drop(
        format!("INSERT INTO {table} VALUES (?, ?)"),
        (1, "y".repeat(200_000)),
    )
    .await
    .unwrap();
    let back: Option<String> = conn
        .query_first(format!("SELECT /* splitrail:master */ t FROM {table}"))
        .await
        .unwrap();
    assert_eq!(back.map(|t| t.len()), Some(200_000));
    // A statement that fails, then the session goes on.
    assert!(conn
        .query_drop("SELECT * FROM no_such_table")
        .await
        .is_err());
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn clients_that_ask_for_compression_get_it() {
    let proxy = start_proxy(config()).await;
    let mut zipped = compressed_client(&proxy).await;
    let mut plain = direct(&lab().r1).await;
    check_statements(&mut zipped, &mut plain).await;

    // libmariadb's implementation (the mariadb CLI) too; not a blocking
    // call: the proxy runs on this test's runtime.
    let port = proxy.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("mariadb")
            .args([
                "--compress",
                "-h127.0.0.1",
                &format!("-P{port}"),
                "-uapp",
                "-papp",
                "-N",
                "-Dsplitrail_test",
                "-e",
                "SELECT COUNT(*), SUM(LENGTH(REPEAT('abc', seq))) FROM seq_1_to_5000;\nstatus",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("mariadb CLI");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("5000\t37507500"), "{text}");
    // The CLI's own account of the link it got.
    assert!(text.contains("Protocol:\t\tCompressed"), "{text}");
}

#[tokio::test]
async fn nodes_with_compress_get_compressed_connections() {
    let mut cfg = config();
    for node in &mut cfg.nodes {
        node.compress = std::env::var_os("SABOTAGE").is_none();
    }
    let proxy = start_proxy(cfg).await;
    let mut conn = proxy.conn().await;
    assert_eq!(
        session_compression(&mut conn, "/* splitrail:master */").await,
        "ON"
    );
    assert_eq!(session_compression(&mut conn, "").await, "ON");
    let mut plain = direct(&lab().r1).await;
    check_statements(&mut conn, &mut plain).await;
    // And with a compressing client on the other side as well.
    let mut both = compressed_client(&proxy).await;
    check_statements(&mut both, &mut plain).await;
}

#[tokio::test]
async fn nodes_without_compress_stay_plain() {
    let proxy = start_proxy(config()).await;
    let mut zipped = compressed_client(&proxy).await;
    assert_eq!(
        session_compression(&mut zipped, "/* splitrail:master */").await,
        "OFF"
    );
}
