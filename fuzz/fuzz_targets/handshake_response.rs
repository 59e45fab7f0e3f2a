//! The connection phase towards a client (src/frontend/handshake.rs).
//!
//! The input is everything a client sends after our greeting, as raw bytes
//! on the socket (packet headers included): its Handshake Response and any
//! later replies (auth switch, caching_sha2_password exchanges). Two
//! things are driven with it:
//! - the Handshake Response parser as `handshake()` calls it
//!   (`ParseBuf(payload).parse::<HandshakeResponse>(())`), on the input
//!   after its 4-byte packet header;
//! - the whole `splitrail::frontend::handshake::handshake()` over a real
//!   loopback TCP connection (`PacketStream` wants a socket), with a fixed
//!   user list, no TLS acceptor, and `require_tls` / a MariaDB backend
//!   greeting chosen by the low bits of the first payload byte.
//!
//! Must never panic or hang (the client side closes after the input, so
//! every read ends).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakeResponse;
use mysql_common::proto::MySerialize;
use splitrail::backend::conn::ServerGreeting;
use splitrail::config::UserConfig;
use splitrail::frontend::handshake::{handshake, Settings};
use splitrail::protocol::PacketStream;
use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

/// Users the fuzzer may log in as: an empty password (its proof is empty,
/// so logins can succeed), a clear-text password, a native hash only
/// (caching_sha2_password full authentication, RSA), and a REQUIRE SSL one.
const USERS: &str = r#"
[[users]]
name = "root"
password = ""

[[users]]
name = "app"
password = "secret"

[[users]]
name = "hashed"
password_hash = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"

[[users]]
name = "tlsonly"
password = ""
require_tls = true
"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    users: Vec<UserConfig>,
    mariadb: ServerGreeting,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut users: HashMap<String, Vec<UserConfig>> =
            toml::from_str(USERS).expect("fuzz user list");
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            listener: TcpListener::bind("127.0.0.1:0").expect("loopback listener"),
            users: users.remove("users").expect("users"),
            mariadb: ServerGreeting {
                version: b"5.5.5-10.11.6-MariaDB".to_vec(),
                caps: CapabilityFlags::all() - CapabilityFlags::CLIENT_LONG_PASSWORD,
                mariadb_caps: MariadbCapabilities::all(),
                collation: 45,
                status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            },
        }
    })
}

/// Parses like `handshake()` does, and uses every accessor it uses.
fn parse_response(payload: &[u8]) {
    let Ok(parsed) = ParseBuf(payload).parse::<HandshakeResponse>(()) else {
        return;
    };
    let _ = parsed.capabilities();
    let _ = String::from_utf8_lossy(parsed.user());
    let _ = parsed.db_name().map(String::from_utf8_lossy);
    let _ = parsed.scramble_buf().len();
    let _ = parsed.auth_plugin();
    let _ = parsed.collation();
    let _ = parsed.mariadb_ext_capabilities();
    let _ = parsed.connect_attributes();
    let mut out = Vec::new();
    parsed.serialize(&mut out);
}

/// A connected pair of loopback sockets that close with a reset (no
/// TIME_WAIT: a fuzzer opens thousands per second).
fn socket_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        socket2::SockRef::from(s)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
    }
    (client, server)
}

fuzz_target!(
    init: {
        // The RSA key for caching_sha2_password full authentication takes
        // seconds to generate: do it before the first input is timed.
        let fx = fixture();
        let key = fx.runtime.block_on(splitrail::frontend::auth::rsa_key());
        assert!(key.is_some(), "RSA key generation failed");
    },
    |data: &[u8]| {
    let payload = data.get(4..).unwrap_or_default();
    parse_response(payload);

    let fx = fixture();
    let (mut client, server) = socket_pair(&fx.listener);
    // Everything the client will ever say, then EOF: no read can wait.
    client.write_all(data).expect("loopback write");
    client.shutdown(Shutdown::Write).expect("shutdown");
    server.set_nonblocking(true).expect("nonblocking");
    let knobs = payload.first().copied().unwrap_or(0);
    let backend = (knobs & 1 != 0).then_some(&fx.mariadb);
    fx.runtime.block_on(async {
        let tcp = tokio::net::TcpStream::from_std(server).expect("tokio socket");
        let mut stream = PacketStream::new(tcp.into());
        let settings = Settings {
            connection_id: 7,
            backend,
            fallback_version: "8.0.36-splitrail-fuzz",
            tls: None,
            require_tls: knobs & 2 != 0,
            auth_plugin: if knobs & 4 != 0 {
                "caching_sha2_password"
            } else {
                "mysql_native_password"
            },
            client: splitrail::proxy_protocol::ClientAddrs {
                source: "127.0.0.1:40000".parse().expect("addr"),
                destination: "127.0.0.1:6033".parse().expect("addr"),
            },
            // Also the PROXY header reader before the handshake response.
            accept_proxy_header: knobs & 8 != 0,
            compression: knobs & 16 != 0,
        };
        if let Ok(login) = handshake(&mut stream, &settings, fx.users.as_slice()).await {
            // Only the user whose proof the fuzzer can produce (empty, for
            // an empty password) gets in; never the REQUIRE SSL one.
            assert_eq!(login.user.name, "root");
            assert!(!login.tls);
        }
    });
    }
);
