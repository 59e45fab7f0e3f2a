//! The PROXY protocol (v1 text, v2 binary; HAProxy's specification), both
//! ways, so the real client's address survives the hops:
//! - accepted from the networks in `proxy.proxy_protocol_networks` (a load
//!   balancer in front of splitrail): the header that starts the client's
//!   byte stream names the client, and accounts' host patterns, error
//!   messages and the header towards backends use that address;
//! - sent to backends with `nodes.proxy_protocol` (a server whose
//!   `proxy_protocol_networks` lists splitrail), so host-based grants and
//!   the server's logs see the client rather than splitrail.
//!
//! As on MariaDB, a header is optional from a trusted network (a client
//! there may connect directly) and refused from any other.

use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The addresses of the connection a client opened: where from, and to
/// which address (of splitrail, or of the load balancer in front).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddrs {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

impl ClientAddrs {
    /// A v2 `PROXY` header naming these addresses (IPv4-mapped IPv6
    /// addresses are sent as IPv4).
    pub fn header(&self) -> Vec<u8> {
        let canon = |a: SocketAddr| SocketAddr::new(crate::accounts::canonical(a.ip()), a.port());
        let (source, destination) = (canon(self.source), canon(self.destination));
        let addresses: ppp::v2::Addresses = if source.is_ipv4() == destination.is_ipv4() {
            (source, destination).into()
        } else {
            // One side IPv4, the other IPv6: both as IPv6.
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
                IpAddr::V6(_) => a,
            };
            (v6(source), v6(destination)).into()
        };
        ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            addresses,
        )
        .build()
        .unwrap_or_else(|_| LOCAL_HEADER.to_vec())
    }
}

/// A v2 `LOCAL` header: "no client to name" (health checks, a session
/// without a known client address); the server then uses the real peer.
pub const LOCAL_HEADER: &[u8] = &[
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00,
];

/// v1 headers are at most 107 bytes (the specification's bound).
const V1_MAX: usize = 107;
/// The v2 signature; also as many bytes as are read before deciding.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v2 address blocks beyond this (TLVs included) are refused.
const V2_MAX_BODY: usize = 512;

/// What starts a client's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// A header naming the client.
    Proxied(ClientAddrs),
    /// A header that names no client (v1 `UNKNOWN`, v2 `LOCAL`, a Unix
    /// socket): the connection's own addresses stand.
    Local,
    /// No header: these bytes are the start of the first MySQL packet.
    Plain(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed PROXY protocol header")]
    Malformed,
}

/// Reads a PROXY header if the stream starts with one, without reading a
/// byte past it (TLS may follow at once). Reads 12 bytes to decide: any
/// client's first packet (an SSL Request or Handshake Response) is longer.
pub async fn read_start(stream: &mut (impl AsyncRead + Unpin)) -> Result<Start, HeaderError> {
    let mut bytes = vec![0u8; V2_SIGNATURE.len()];
    stream.read_exact(&mut bytes).await?;
    if bytes == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await?;
        let body = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if body > V2_MAX_BODY {
            return Err(HeaderError::Malformed);
        }
        bytes.extend_from_slice(&fixed);
        let start = bytes.len();
        bytes.resize(start + body, 0);
        stream.read_exact(&mut bytes[start..]).await?;
        return parse_v2(&bytes);
    }
    if bytes.starts_with(b"PROXY ") {
        while !bytes.ends_with(b"\r\n") {
            if bytes.len() >= V1_MAX {
                return Err(HeaderError::Malformed);
            }
            bytes.push(stream.read_u8().await?);
        }
        return parse_v1(&bytes);
    }
    Ok(Start::Plain(bytes))
}

fn parse_v2(bytes: &[u8]) -> Result<Start, HeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let header = Header::try_from(bytes).map_err(|_| HeaderError::Malformed)?;
    if header.command == Command::Local {
        return Ok(Start::Local);
    }
    Ok(match header.addresses {
        Addresses::IPv4(a) => proxied(
            (a.source_address.into(), a.source_port),
            (a.destination_address.into(), a.destination_port),
        ),
        Addresses::IPv6(a) => proxied(
            (a.source_address.into(), a.source_port),
            (a.destination_address.into(), a.destination_port),
        ),
        Addresses::Unix(_) | Addresses::Unspecified => Start::Local,
    })
}

/// A header naming `source` connected to `destination`.
fn proxied(source: (IpAddr, u16), destination: (IpAddr, u16)) -> Start {
    Start::Proxied(ClientAddrs {
        source: SocketAddr::from(source),
        destination: SocketAddr::from(destination),
    })
}

fn parse_v1(bytes: &[u8]) -> Result<Start, HeaderError> {
    use ppp::v1::{Addresses, Header};
    let text = std::str::from_utf8(bytes).map_err(|_| HeaderError::Malformed)?;
    let header = Header::try_from(text).map_err(|_| HeaderError::Malformed)?;
    Ok(match header.addresses {
        Addresses::Tcp4(a) => proxied(
            (a.source_address.into(), a.source_port),
            (a.destination_address.into(), a.destination_port),
        ),
        Addresses::Tcp6(a) => proxied(
            (a.source_address.into(), a.source_port),
            (a.destination_address.into(), a.destination_port),
        ),
        Addresses::Unknown => Start::Local,
    })
}

/// The peers allowed to send a header (`proxy.proxy_protocol_networks`):
/// addresses, `address/prefix` networks, `localhost` (loopback), or `*`.
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<Network>);

#[derive(Debug, Clone)]
enum Network {
    Any,
    Loopback,
    Prefix { net: IpAddr, bits: u8 },
}

impl Networks {
    pub fn parse(list: &[String]) -> Result<Networks, String> {
        list.iter()
            .map(|entry| {
                let entry = entry.trim();
                if entry == "*" {
                    return Ok(Network::Any);
                }
                if entry.eq_ignore_ascii_case("localhost") {
                    return Ok(Network::Loopback);
                }
                let (addr, bits) = entry.split_once('/').unwrap_or((entry, ""));
                let bad = || format!("proxy.proxy_protocol_networks: {entry:?} is not an address, network, `localhost` or `*`");
                let net: IpAddr = addr.parse().map_err(|_| bad())?;
                let max = if net.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    "" => max,
                    b => b.parse::<u8>().ok().filter(|&b| b <= max).ok_or_else(bad)?,
                };
                Ok(Network::Prefix { net, bits })
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = crate::accounts::canonical(peer);
        self.0.iter().any(|n| match n {
            Network::Any => true,
            Network::Loopback => peer.is_loopback(),
            Network::Prefix { net, bits } => same_prefix(*net, peer, *bits),
        })
    }
}

fn same_prefix(net: IpAddr, peer: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (net, peer) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(bytes: &[u8]) -> (Result<Start, HeaderError>, Vec<u8>) {
        let mut reader = bytes;
        let start = read_start(&mut reader).await;
        (start, reader.to_vec())
    }

    fn addrs(source: &str, destination: &str) -> ClientAddrs {
        ClientAddrs {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn v1_and_v2_headers_are_read_and_nothing_after_them() {
        let (found, rest) = start(b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 3306\r\nNEXT").await;
        assert_eq!(
            found.unwrap(),
            Start::Proxied(addrs("10.1.2.3:5555", "127.0.0.1:3306"))
        );
        assert_eq!(rest, b"NEXT");

        let sent = addrs("[2001:db8::7]:4000", "[2001:db8::1]:3306");
        let mut bytes = sent.header();
        bytes.extend_from_slice(b"NEXT");
        let (found, rest) = start(&bytes).await;
        assert_eq!(found.unwrap(), Start::Proxied(sent));
        assert_eq!(rest, b"NEXT");

        let v4 = addrs("10.0.0.9:1234", "10.0.0.1:3306");
        assert_eq!(start(&v4.header()).await.0.unwrap(), Start::Proxied(v4));
        assert_eq!(start(LOCAL_HEADER).await.0.unwrap(), Start::Local);
        assert_eq!(start(b"PROXY UNKNOWN\r\n").await.0.unwrap(), Start::Local);
    }

    #[tokio::test]
    async fn a_plain_start_is_handed_back_and_garbage_refused() {
        let packet = b"\x20\x00\x00\x01\x85\xa6\xff\x01\x00\x00\x00\x01\x2d rest";
        let (found, rest) = start(packet).await;
        assert_eq!(found.unwrap(), Start::Plain(packet[..12].to_vec()));
        assert_eq!(rest, &packet[12..]);
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            start(&endless).await.0,
            Err(HeaderError::Malformed)
        ));
        assert!(matches!(
            start(b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n").await.0,
            Err(HeaderError::Malformed)
        ));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(start(&huge).await.0, Err(HeaderError::Malformed)));
    }

    #[test]
    fn trusted_networks() {
        let nets =
            Networks::parse(&["10.0.0.0/8".into(), "::1".into(), "localhost".into()]).unwrap();
        assert!(nets.contains("10.200.0.1".parse().unwrap()));
        assert!(!nets.contains("11.0.0.1".parse().unwrap()));
        assert!(nets.contains("127.0.0.5".parse().unwrap()));
        assert!(nets.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(Networks::parse(&["*".into()])
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Networks::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Networks::parse(&["example.com".into()]).is_err());
        assert!(!Networks::default().contains("127.0.0.1".parse().unwrap()));
    }
}
