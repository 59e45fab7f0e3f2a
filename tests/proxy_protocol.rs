//! The PROXY protocol: a header from a trusted load balancer names the
//! real client (accounts' host patterns and error messages use it), and
//! nodes with `proxy_protocol` are told that client, so `USER()`, grants
//! and the servers' logs see it instead of splitrail.

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use std::net::SocketAddr;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// A stand-in load balancer: forwards each connection to `target`,
/// starting it with `header`.
async fn balancer(target: SocketAddr, header: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                if outbound.write_all(header).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(DB))
        .prefer_socket(false);
    Conn::new(opts).await
}

const FROM_10_1_2_3: &[u8] = b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 6033\r\n";

#[tokio::test]
async fn a_trusted_balancer_names_the_client() {
    let _serial = exclusive().await;
    let mut cfg = config();
    cfg.proxy.proxy_protocol_networks = vec!["127.0.0.1".into()];
    let proxy = start_proxy(cfg).await;
    let via = balancer(proxy.addr, FROM_10_1_2_3).await;

    // The server's own wording, with the address the header named.
    let err = login(via, "app", "wrong").await.unwrap_err();
    assert_eq!(server_error_code(&err), Some(1045));
    assert!(err.to_string().contains("'app'@'10.1.2.3'"), "{err}");

    // A client on a trusted network may still connect directly.
    let mut plain = proxy.conn().await;
    let one: Option<i64> = plain.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn a_header_from_an_untrusted_peer_is_refused() {
    let proxy = start_proxy(config()).await;
    let via = balancer(proxy.addr, FROM_10_1_2_3).await;
    let result = login(via, "app", "app").await;
    assert!(
        result.is_err(),
        "a header from a peer not in proxy_protocol_networks"
    );
    // The same peer without a header is fine.
    let mut conn = proxy.conn().await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// Lets every lab node accept PROXY headers from loopback while alive
/// (a header is optional there, so other clients are not affected).
struct ServersAcceptHeaders;

impl ServersAcceptHeaders {
    fn set(value: &str) {
        for node in ["m1", "m2", "r1", "r2"] {
            let sql = format!("SET GLOBAL proxy_protocol_networks = '{value}'");
            assert!(lab_cmd(&["sql", node, &sql]), "{node}: {sql}");
        }
    }
    fn on() -> ServersAcceptHeaders {
        Self::set("127.0.0.0/8");
        ServersAcceptHeaders
    }
}

impl Drop for ServersAcceptHeaders {
    fn drop(&mut self) {
        Self::set("");
    }
}

#[tokio::test]
async fn nodes_with_proxy_protocol_see_the_client() {
    let _serial = exclusive().await;
    let _servers = ServersAcceptHeaders::on();
    let mut cfg = config();
    cfg.proxy.proxy_protocol_networks = vec!["127.0.0.1".into()];
    cfg.accounts.from_backend = true;
    cfg.accounts.refresh_s = 3600;
    for node in &mut cfg.nodes {
        node.proxy_protocol = std::env::var_os("SABOTAGE").is_none();
    }
    let proxy = start_proxy(cfg).await;
    let via = balancer(proxy.addr, FROM_10_1_2_3).await;

    let mut far = login(via, "app", "app").await.unwrap();
    let on_writer: Option<String> = far
        .query_first("SELECT /* splitrail:master */ USER()")
        .await
        .unwrap();
    assert_eq!(on_writer.as_deref(), Some("app@10.1.2.3"));
    let on_replica: Option<String> = far.query_first("SELECT USER()").await.unwrap();
    assert_eq!(on_replica.as_deref(), Some("app@10.1.2.3"));
    drop(far);

    // An account only for 10.1.2.3, loaded from the servers: in through
    // the balancer (and the servers, told the client, agree), not without.
    let user = unique("pp_far");
    assert!(lab_cmd(&[
        "sql",
        "m1",
        &format!("CREATE USER '{user}'@'10.1.2.3' IDENTIFIED BY 'pw'"),
    ]));
    let through = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(via.port())
        .user(Some(user.clone()))
        .pass(Some("pw"))
        .prefer_socket(false);
    let admitted = Conn::new(through).await;
    let direct = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(proxy.addr.port())
        .user(Some(user.clone()))
        .pass(Some("pw"))
        .prefer_socket(false);
    let refused = Conn::new(direct).await;
    assert!(lab_cmd(&[
        "sql",
        "m1",
        &format!("DROP USER '{user}'@'10.1.2.3'")
    ]));
    assert!(admitted.is_ok(), "{:?}", admitted.err());
    assert_eq!(
        refused.err().as_ref().and_then(server_error_code),
        Some(1045)
    );

    // Another client: the pool does not hand it 10.1.2.3's connections.
    let mut near = proxy.conn().await;
    for sql in ["SELECT /* splitrail:master */ USER()", "SELECT USER()"] {
        let seen: Option<String> = near.query_first(sql).await.unwrap();
        assert_eq!(seen.as_deref(), Some("app@127.0.0.1"), "{sql}");
    }
}
