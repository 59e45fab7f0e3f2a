//! Hostile input must get an error packet or a clean disconnect: no panic,
//! no hang, and the proxy keeps serving well-formed clients.
//!
//! Property tests (proptest) feed arbitrary bytes to every parser a client
//! can reach; socket tests throw malformed packets and wrong passwords at a
//! running proxy.

mod support;

use proptest::prelude::*;
use splitrail::protocol::packets;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// The pre-lexer, classifier and route decision accept any bytes.
    #[test]
    fn classifier_never_panics(sql in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = splitrail::router::classify(&sql);
        let _ = splitrail::router::route(&c, Default::default());
        let _ = splitrail::router::use_database(&sql);
    }

    /// SQL-ish text (keywords, quotes, comments) in random order.
    #[test]
    fn classifier_never_panics_on_sqlish_text(parts in proptest::collection::vec(
        prop::sample::select(vec![
            "SELECT", "INSERT", "/*", "*/", "/*!", "--", "#", "'", "\"", "`", "\\", ";", "(", ")",
            "@", "@@", ":=", "FOR", "UPDATE", "WITH", "AS", "x", "1", " ", "\n", "/*+", "SET", "USE",
        ]), 0..40)) {
        let sql = parts.concat();
        let c = splitrail::router::classify(sql.as_bytes());
        let _ = splitrail::router::Classifier::new(4).classify(sql.as_bytes());
        let _ = c;
    }

    /// OK/EOF/ERR/lenenc parsers accept any bytes.
    #[test]
    fn packet_parsers_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = packets::parse_ok(&payload);
        let _ = packets::parse_eof(&payload);
        let _ = packets::parse_err(&payload);
        let _ = packets::is_end_of_rows(&payload, true);
        let mut pos = 0;
        let _ = packets::read_lenenc(&payload, &mut pos);
    }
}

/// Reads whatever the proxy sends until it closes or goes quiet.
async fn drain(tcp: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_packets_leave_the_proxy_serving() {
    let proxy = start_proxy(config()).await;
    // A tiny xorshift: deterministic garbage without another dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut sent = 0;
    let mut tasks = Vec::new();
    for conn in 0..100 {
        let mut packets = Vec::new();
        for _ in 0..100 {
            let len = (next() % 64) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like framed packets, the rest is raw noise.
            if next() % 2 == 0 {
                let mut framed = vec![len as u8, 0, 0, (next() % 4) as u8];
                framed.append(&mut p);
                p = framed;
            }
            packets.push(p);
            sent += 1;
        }
        let addr = proxy.addr;
        let authenticated = conn % 2 == 0;
        tasks.push(tokio::spawn(async move {
            if authenticated {
                // After a real login, garbage arrives as commands.
                let Ok(mut c) = raw_client(&addr.to_string()).await else {
                    return;
                };
                for p in packets {
                    if c.stream().send(0, &p).await.is_err() {
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), c.stream().read_packet())
                            .await;
                }
            } else {
                // Before login: garbage as the handshake response.
                let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
                    return;
                };
                for p in packets {
                    if tcp.write_all(&p).await.is_err() {
                        break;
                    }
                }
                drain(&mut tcp).await;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a connection hung")
            .expect("client task");
    }
    assert_eq!(sent, 10_000);
    let mut conn = proxy.conn().await;
    assert!(server_id(&mut conn).await > 0, "the proxy still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_is_refused_and_good_clients_are_unaffected() {
    let proxy = start_proxy(config()).await;
    let addr = proxy.addr;
    // 2,000 attempts, up to 250 in flight at once (beyond that the test
    // measures this machine's loopback SYN handling, not splitrail).
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(250));
    let mut attempts = Vec::new();
    for i in 0..2000 {
        let in_flight = std::sync::Arc::clone(&in_flight);
        attempts.push(tokio::spawn(async move {
            let _slot = in_flight.acquire_owned().await.unwrap();
            let key = splitrail::backend::PoolKey::new("app".into(), Default::default(), 45);
            let wrong = format!("wrong{i}");
            match splitrail::backend::BackendConn::connect(
                0,
                &addr.to_string(),
                &key,
                &splitrail::backend::Credential::password(wrong.as_bytes()),
                Duration::from_secs(20),
                None,
                false,
            )
            .await
            {
                Err(splitrail::backend::BackendError::Refused(e)) => e.code,
                Err(e) => panic!("attempt {i}: {e}"),
                Ok(_) => panic!("attempt {i}: a wrong password was accepted"),
            }
        }));
    }
    // Meanwhile a well-formed client works.
    let mut good = proxy.conn().await;
    assert!(server_id(&mut good).await > 0);
    for a in attempts {
        assert_eq!(a.await.unwrap(), 1045);
    }
    assert!(server_id(&mut good).await > 0);
    // The refused logins did not take backend connections.
    let conns = metric_sum(&proxy, "splitrail_backend_connections{").await;
    assert!(conns <= 4, "backend connections after the burst: {conns}");
}

#[tokio::test]
async fn idle_clients_are_disconnected_after_the_idle_timeout() {
    let mut cfg = config();
    cfg.proxy.client_idle_timeout_ms = 300;
    let proxy = start_proxy(cfg).await;
    let mut conn = proxy.conn().await;
    assert!(server_id(&mut conn).await > 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        mysql_async::prelude::Queryable::query_drop(&mut conn, "SELECT 1")
            .await
            .is_err(),
        "an idle client must have been disconnected"
    );
}

#[tokio::test]
async fn a_user_over_its_connection_limit_gets_1203() {
    let mut cfg = config();
    cfg.users[0].max_connections = 2;
    let proxy = start_proxy(cfg).await;
    let first = proxy.conn().await;
    let _second = proxy.conn().await;
    let err = mysql_async::Conn::new(mysql_async::Opts::from_url(&proxy.url(None)).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&err), Some(1203), "{err}");
    // A slot frees when a session ends.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match mysql_async::Conn::new(mysql_async::Opts::from_url(&proxy.url(None)).unwrap()).await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(server_error_code(&e), Some(1203));
                assert!(std::time::Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A backend connection the server closed between two statements (KILL,
/// wait_timeout, a restart) is noticed before the next statement goes out:
/// the statement runs once on a fresh connection, with no error, instead
/// of being sent into a dead socket and reported as of unknown outcome.
#[tokio::test]
async fn a_backend_connection_killed_between_statements_is_replaced_without_an_error() {
    use mysql_async::prelude::Queryable;
    let mut cfg = config();
    cfg.pool.release_idle_after_ms = 0; // the session keeps its connection
    let proxy = start_proxy(cfg).await;
    let table = unique("killed");
    let mut conn = proxy.conn().await;
    conn.query_drop(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let mut m1 = direct(&lab().m1).await;
    for round in 0..5 {
        // In a transaction everything runs on the session's writer connection.
        conn.query_drop("BEGIN").await.unwrap();
        let backend_id: u64 = conn
            .query_first("SELECT @@pseudo_thread_id")
            .await
            .unwrap()
            .unwrap();
        conn.query_drop("COMMIT").await.unwrap();
        m1.query_drop(format!("KILL {backend_id}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.query_drop(format!("INSERT INTO {table} VALUES ({round})"))
            .await
            .unwrap_or_else(|e| panic!("round {round}: write after KILL failed: {e}"));
    }
    let rows: i64 = m1
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows, 5);
    m1.query_drop(format!("DROP TABLE {table}")).await.unwrap();
}

/// COM_CHANGE_USER moves the session from the old user's
/// `max_connections` to the new user's: the old user gets its slot back,
/// and the new user's limit counts the session (1203 beyond it).
#[tokio::test]
async fn change_user_moves_the_session_between_user_limits() {
    use mysql_async::prelude::Queryable;
    let other = "app_limit2";
    for node in ["m1", "m2", "r1", "r2"] {
        let sql = format!(
            "SET sql_log_bin=0; CREATE USER IF NOT EXISTS '{other}'@'%' IDENTIFIED BY 'pw2'; \
             GRANT SELECT ON *.* TO '{other}'@'%'"
        );
        let status = std::process::Command::new(lab_script())
            .args(["sql", node, &sql])
            .status()
            .unwrap();
        assert!(status.success(), "creating {other} on {node}");
    }
    let mut cfg = config();
    cfg.users[0].max_connections = 1;
    let mut second = cfg.users[0].clone();
    second.name = other.into();
    second.password = "pw2".into();
    cfg.users.push(second);
    let proxy = start_proxy(cfg).await;
    let other_url = format!("mysql://{other}:pw2@{}/?prefer_socket=false", proxy.addr);
    let login = |url: String| async move {
        mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap()).await
    };

    let mut conn = proxy.conn().await;
    let err = login(proxy.url(None)).await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1203), "app is at its limit");
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(other.into()))
        .with_pass(Some("pw2".into()));
    conn.change_user(opts).await.unwrap();
    let user: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(user.unwrap_or_default().starts_with(other));
    // app's slot is free again; app_limit2's only slot is this session.
    let _app = login(proxy.url(None)).await.expect("app got its slot back");
    let err = login(other_url).await.unwrap_err();
    assert_eq!(
        server_error_code(&err),
        Some(1203),
        "{other} is at its limit"
    );
}
