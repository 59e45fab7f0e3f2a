//! Bad input gets a proper MySQL error or a clean disconnect — never a
//! panic or a hang — and the proxy keeps serving well-formed clients.

mod support;

use splitrail::backend::conn::BackendConn;
use splitrail::protocol::packets;
use splitrail::protocol::PacketStream;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(5);

/// Reads until the proxy closes the connection; returns what it sent.
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut all))
        .await
        .expect("proxy must close the connection, not hang")
        .ok();
    all
}

async fn logged_in(proxy: &Proxy) -> BackendConn {
    raw_client(&proxy.addr.to_string())
        .await
        .expect("login through the proxy")
}

async fn still_serves(proxy: &Proxy) {
    let mut conn = proxy.conn().await;
    let id = server_id(&mut conn).await;
    assert!(id > 0);
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let mut cfg = config();
    cfg.proxy.handshake_timeout_ms = 300;
    let proxy = start_proxy(cfg).await;
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let started = std::time::Instant::now();
    let greeting_and_rest = read_until_closed(&mut tcp).await;
    assert!(!greeting_and_rest.is_empty(), "a greeting was sent first");
    assert!(started.elapsed() < Duration::from_secs(2));
    still_serves(&proxy).await;
}

#[tokio::test]
async fn garbage_handshake_response_is_rejected() {
    let proxy = start_proxy(config()).await;
    for garbage in [
        &b"\x05\x00\x00\x01hello"[..],
        b"\x01\x00\x00\x01\x00",
        b"\xff\xff\xff\x01",
    ] {
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let mut greeting = PacketStream::new(&mut tcp);
        greeting.read_packet().await.unwrap().unwrap();
        tcp.write_all(garbage).await.unwrap();
        let reply = read_until_closed(&mut tcp).await;
        if reply.len() > 4 {
            assert_eq!(
                reply[4],
                packets::ERR_HEADER,
                "an answer, if any, is an ERR packet"
            );
        }
    }
    still_serves(&proxy).await;
}

#[tokio::test]
async fn unknown_and_empty_commands() {
    let proxy = start_proxy(config()).await;
    let mut conn = logged_in(&proxy).await;
    // Unknown command: ERR 1047, the session stays usable.
    conn.stream().send(0, &[0x99, 1, 2, 3]).await.unwrap();
    let reply = conn.stream().read_packet().await.unwrap().unwrap();
    assert_eq!(packets::parse_err(&reply.payload).unwrap().code, 1047);
    let ok = conn.run_sql(b"SELECT 1").await;
    assert!(ok.is_ok(), "session survives an unknown command: {ok:?}");
    // Empty packet: ERR and disconnect.
    conn.stream().send(0, &[]).await.unwrap();
    let reply = conn.stream().read_packet().await.unwrap().unwrap();
    assert_eq!(packets::parse_err(&reply.payload).unwrap().code, 1835);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn out_of_order_sequence_id_is_an_error_and_a_disconnect() {
    let proxy = start_proxy(config()).await;
    let mut conn = logged_in(&proxy).await;
    conn.stream().send(5, b"\x03SELECT 1").await.unwrap();
    let reply = conn.stream().read_packet().await.unwrap().unwrap();
    assert_eq!(packets::parse_err(&reply.payload).unwrap().code, 1156);
    let closed = tokio::time::timeout(LIMIT, conn.stream().read_packet())
        .await
        .unwrap();
    assert!(matches!(closed, Ok(None) | Err(_)), "connection closed");
    still_serves(&proxy).await;
}

#[tokio::test]
async fn packet_over_max_allowed_packet_is_refused_without_buffering_it() {
    let mut cfg = config();
    cfg.proxy.max_allowed_packet = 4096;
    let proxy = start_proxy(cfg).await;
    let mut conn = logged_in(&proxy).await;
    let mut big = b"\x03SELECT '".to_vec();
    big.resize(10_000, b'a');
    big.push(b'\'');
    conn.stream().send(0, &big).await.unwrap();
    let reply = conn.stream().read_packet().await.unwrap().unwrap();
    assert_eq!(packets::parse_err(&reply.payload).unwrap().code, 1153);
    still_serves(&proxy).await;
}

#[tokio::test]
async fn garbage_sql_gets_what_the_server_itself_answers() {
    let proxy = start_proxy(config()).await;
    let mut via_proxy = logged_in(&proxy).await;
    let mut direct = raw_client(&lab().m1).await.unwrap();
    let code = |r: Result<packets::OkInfo, splitrail::backend::conn::CommandError>| match r {
        Ok(_) => 0,
        Err(splitrail::backend::conn::CommandError::Server(e)) => e.code,
        Err(e) => panic!("no answer: {e:?}"),
    };
    for sql in [
        &b"\xff\xfe\x00garbage"[..],
        b"'unterminated",
        b"SELEC 1",
        b"/* only a comment */",
        b"",
    ] {
        let want = code(direct.run_sql(sql).await);
        let got = code(via_proxy.run_sql(sql).await);
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(sql));
    }
    assert!(via_proxy.run_sql(b"SELECT 1").await.is_ok());
}
