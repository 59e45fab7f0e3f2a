//! Connection ids through splitrail are its own session ids: the
//! handshake's id is what `CONNECTION_ID()` returns, `KILL` and
//! `COM_PROCESS_KILL` of it act on that session, and a number that is not
//! one of splitrail's sessions never reaches a server thread of another
//! user (before, a pool's `KILL <id>` went to the writer as it was).

mod support;

use mysql_async::prelude::*;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test]
async fn connection_id_is_the_session_id_of_the_handshake() {
    let proxy = start_proxy(config()).await;
    let mut a = proxy.conn().await;
    let mut b = proxy.conn().await;
    let id = a.id();
    assert!(
        id >= 1 << 30,
        "session ids start far above server thread ids: {id}"
    );
    assert_ne!(id, b.id());
    let text: Option<u32> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_eq!(text, Some(id));
    // The column keeps its name, and other positions work too.
    let row: mysql_async::Row = a
        .query_first("SELECT CONNECTION_ID(), 1 FROM DUAL")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*row.columns_ref()[0].name_str(), "CONNECTION_ID()");
    let same: Option<i64> = a
        .query_first("SELECT CONNECTION_ID() = CONNECTION_ID() + 0")
        .await
        .unwrap();
    assert_eq!(same, Some(1));
    let prepared: Option<u32> = a.exec_first("SELECT CONNECTION_ID()", ()).await.unwrap();
    assert_eq!(prepared, Some(id));
    let other: Option<u32> = b.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_eq!(other, Some(b.id()));
}

#[tokio::test]
async fn kill_query_interrupts_the_statement_of_a_session() {
    let proxy = start_proxy(config()).await;
    let mut victim = proxy.conn().await;
    let id = victim.id();
    let started = Instant::now();
    let sleeping = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = victim.query_first("SELECT SLEEP(20)").await;
        (r.map_err(|e| e.to_string()), victim)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killer = proxy.conn().await;
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let (result, mut victim) = sleeping.await.unwrap();
    eprintln!(
        "KILL QUERY: the sleeping statement ended after {:?} with {result:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{result:?}");
    // Interrupted, not ended: the session goes on.
    let one: Option<i64> = victim.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn kill_connection_ends_the_session_by_statement_and_by_command() {
    let proxy = start_proxy(config()).await;
    let mut killer = proxy.conn().await;

    let mut idle = proxy.conn().await;
    killer
        .query_drop(format!("KILL {}", idle.id()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "killed session still serves"
    );

    // COM_PROCESS_KILL, as old drivers send it, of a session in a long
    // statement.
    let mut busy = proxy.conn().await;
    let id = busy.id();
    let sleeping = tokio::spawn(async move { busy.query_drop("SELECT SLEEP(20)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut raw = raw_client(&proxy.addr.to_string()).await.unwrap();
    let mut command = vec![0x0c];
    command.extend_from_slice(&id.to_le_bytes());
    raw.simple_command(&command).await.unwrap();
    // Interrupted at once (whatever the statement then answered), and
    // the session is gone.
    tokio::time::timeout(Duration::from_secs(5), sleeping)
        .await
        .expect("the killed session's statement ended")
        .unwrap()
        .ok();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        metric_sum(&proxy, "splitrail_client_connections").await,
        2,
        "only the killer and the raw client are left"
    );
    // Its own id: the server's answer, 1927, and the connection closes.
    let own = killer
        .query_drop(format!("KILL {}", killer.id()))
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&own), Some(1927), "{own}");
}

#[tokio::test]
async fn a_number_that_is_no_session_never_kills_a_server_thread_of_another_user() {
    let lab = lab();
    let proxy = start_proxy(config()).await;
    let mut m1 = direct(&lab.m1).await;
    // m1's replication SQL thread (system user): the thread a pool's KILL
    // of its backend thread id once hit.
    let sql_thread: Option<u64> = m1
        .query_first(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL' LIMIT 1",
        )
        .await
        .unwrap();
    let sql_thread = sql_thread.expect("m1 replicates");
    let mut conn = proxy.conn().await;
    let refused = conn
        .query_drop(format!("KILL {sql_thread}"))
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&refused), Some(1094), "{refused}");
    let refused = conn.query_drop("KILL QUERY 4000000000").await.unwrap_err();
    assert_eq!(server_error_code(&refused), Some(1094), "{refused}");
    let running: Option<String> = m1
        .query_first("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL' LIMIT 1")
        .await
        .unwrap();
    assert_eq!(running.as_deref(), Some("Slave_SQL"));

    // A thread of the same user on the writer (a direct connection):
    // forwarded, as a direct client's KILL would be.
    let mut own_direct = connect(&url(&lab.m1, Some(DB))).await;
    let thread = own_direct.id();
    conn.query_drop(format!("KILL {thread}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(own_direct.query_drop("SELECT 1").await.is_err());
}

#[tokio::test]
async fn only_a_session_of_the_same_user_may_be_killed() {
    assert!(lab_cmd(&[
        "sql",
        "m1",
        "CREATE USER IF NOT EXISTS 'other'@'%' IDENTIFIED BY 'other'; GRANT SELECT ON *.* TO 'other'@'%'",
    ]));
    let mut cfg = config();
    let mut other = cfg.users[0].clone();
    other.name = "other".into();
    other.password = "other".into();
    cfg.users.push(other);
    let proxy = start_proxy(cfg).await;
    let app = proxy.conn().await;
    let other_url = proxy.url(None).replacen("app:app", "other:other", 1);
    let mut stranger = connect(&other_url).await;
    let denied = stranger
        .query_drop(format!("KILL {}", app.id()))
        .await
        .unwrap_err();
    assert_eq!(server_error_code(&denied), Some(1095), "{denied}");
}
