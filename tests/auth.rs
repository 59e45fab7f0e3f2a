//! Authentication paths: caching_sha2_password's fast path (MySQL 8
//! clients' default) is checked directly, since splitrail knows the
//! password; other plugins are switched to mysql_native_password.

mod support;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use mysql_common::scramble::scramble_sha256;
use splitrail::protocol::{packets, PacketStream};
use support::*;

/// Logs in with a caching_sha2_password proof in the first response;
/// returns the payloads the proxy answered with.
async fn sha2_login(proxy: &Proxy, password: &str) -> Vec<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut stream = PacketStream::new(tcp);
    let greeting = stream.read_packet().await.unwrap().unwrap();
    let hs: HandshakePacket = ParseBuf(&greeting.payload).parse(()).unwrap();
    let token = scramble_sha256(&hs.nonce(), password.as_bytes()).unwrap();
    let caps = CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_LONG_PASSWORD;
    let response = HandshakeResponse::new(
        Some(&token[..]),
        (8, 0, 0),
        Some(&b"app"[..]),
        None::<&[u8]>,
        Some(AuthPlugin::CachingSha2Password),
        caps,
        None,
        1 << 24,
    );
    let mut buf = Vec::new();
    response.serialize(&mut buf);
    stream.send(1, &buf).await.unwrap();
    let mut replies = Vec::new();
    while let Ok(Some(p)) =
        tokio::time::timeout(std::time::Duration::from_secs(2), stream.read_packet())
            .await
            .unwrap_or(Ok(None))
    {
        let done = matches!(
            p.header(),
            Some(packets::OK_HEADER) | Some(packets::ERR_HEADER)
        );
        replies.push(p.payload.to_vec());
        if done {
            break;
        }
    }
    replies
}

#[tokio::test]
async fn caching_sha2_fast_auth_is_accepted_and_wrong_proofs_refused() {
    let proxy = start_proxy(config()).await;
    let replies = sha2_login(&proxy, "app").await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0], vec![0x01, 0x03], "fast_auth_success");
    assert_eq!(replies[1][0], packets::OK_HEADER);
    let replies = sha2_login(&proxy, "wrong").await;
    assert_eq!(
        packets::parse_err(replies.last().unwrap()).unwrap().code,
        1045
    );
}
