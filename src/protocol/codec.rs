//! Framing of the MySQL client/server protocol: bytes ↔ [`Packet`]s.
//!
//! Owns one socket and its two buffers. It knows nothing about commands,
//! result sets or routing; both the client side (`frontend`) and the
//! backend side (`backend`) speak through it.
//!
//! Protocol rule (MySQL "Protocol Basics: MySQL Packets"): every packet is a
//! 3-byte little-endian payload length, a 1-byte sequence id, then the
//! payload. A payload of 2^24-1 bytes or more is split into chunks of
//! exactly 0xFF_FFFF bytes, the last chunk being shorter (possibly empty).

use crate::tls::Stream;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload one physical packet can carry; a packet of exactly this
/// size announces that the next packet continues the same logical payload.
pub const MAX_CHUNK: usize = 0xFF_FFFF;

const HEADER_LEN: usize = 4;
/// Responses are flushed once per response, or earlier when this much is
/// queued: keeps memory bounded while a large result streams through.
const FLUSH_THRESHOLD: usize = 64 * 1024;
const READ_RESERVE: usize = 16 * 1024;
/// Most a large announced packet makes us reserve ahead of its bytes.
const RESERVE_STEP: usize = 1024 * 1024;

/// One physical packet as it came off the wire.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u8,
    pub payload: Bytes,
}

impl Packet {
    /// True when the next packet carries the rest of this payload.
    pub fn continues(&self) -> bool {
        self.payload.len() == MAX_CHUNK
    }

    /// First byte of the payload, the packet's "header" in protocol terms.
    pub fn header(&self) -> Option<u8> {
        self.payload.first().copied()
    }
}

/// A socket speaking MySQL packets, with buffered reads and writes.
pub struct PacketStream<S = Stream> {
    stream: S,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// Largest physical packet accepted: a peer announcing more is refused
    /// before we buffer anything (an unauthenticated client must not make
    /// us reserve 16 MiB).
    max_packet: usize,
}

/// Marker inside the `io::Error` for a packet over `max_packet`.
#[derive(Debug, thiserror::Error)]
#[error("packet larger than the allowed maximum")]
struct PacketTooLarge;

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<PacketTooLarge>())
}

impl<S: AsyncRead + AsyncWrite + Unpin> PacketStream<S> {
    pub fn new(stream: S) -> Self {
        PacketStream {
            stream,
            rbuf: BytesMut::with_capacity(READ_RESERVE),
            wbuf: Vec::with_capacity(READ_RESERVE),
            max_packet: MAX_CHUNK,
        }
    }

    /// Refuses physical packets longer than `max` (at most [`MAX_CHUNK`]).
    pub fn set_max_packet(&mut self, max: usize) {
        self.max_packet = max.min(MAX_CHUNK);
    }

    /// Reads one physical packet.
    ///
    /// `Ok(None)` means the peer closed the connection cleanly between
    /// packets; a close in the middle of a packet is an `UnexpectedEof` error.
    pub async fn read_packet(&mut self) -> io::Result<Option<Packet>> {
        loop {
            if let Some(packet) = self.parse_buffered()? {
                return Ok(Some(packet));
            }
            self.rbuf.reserve(READ_RESERVE);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// True when a whole packet that completes its payload (no continuation
    /// chunk follows) is buffered: reading it will not wait for the peer.
    pub fn has_whole_packet(&self) -> bool {
        if self.rbuf.len() < HEADER_LEN {
            return false;
        }
        let len = payload_len(&self.rbuf);
        len < MAX_CHUNK && self.rbuf.len() >= HEADER_LEN + len
    }

    /// Waits until at least one byte is buffered; false when the peer
    /// closed the connection first. Cancel-safe (bytes read stay buffered),
    /// so it can race a timer without losing part of a command.
    pub async fn wait_for_input(&mut self) -> io::Result<bool> {
        if !self.rbuf.is_empty() {
            return Ok(true);
        }
        self.rbuf.reserve(READ_RESERVE);
        Ok(self.stream.read_buf(&mut self.rbuf).await? > 0)
    }

    /// Reads one packet of at most `max_packet` bytes without reading a
    /// byte past it: what follows may not be MySQL packets (after an SSL
    /// Request the client starts its TLS handshake at once).
    pub async fn read_packet_exact(&mut self) -> io::Result<Packet> {
        let mut header = [0u8; HEADER_LEN];
        self.read_exact_buffered(&mut header).await?;
        let len = payload_len(&header);
        if len > self.max_packet {
            return Err(io::Error::new(io::ErrorKind::InvalidData, PacketTooLarge));
        }
        let mut payload = vec![0u8; len];
        self.read_exact_buffered(&mut payload).await?;
        Ok(Packet {
            seq: header[3],
            payload: payload.into(),
        })
    }

    /// Fills `out` from bytes handed back with [`Self::unread`] first, then
    /// from the stream, reading nothing past it.
    async fn read_exact_buffered(&mut self, out: &mut [u8]) -> io::Result<()> {
        let buffered = self.rbuf.len().min(out.len());
        out[..buffered].copy_from_slice(&self.rbuf[..buffered]);
        self.rbuf.advance(buffered);
        self.stream.read_exact(&mut out[buffered..]).await?;
        Ok(())
    }

    /// Hands back bytes read from the stream by someone else (a PROXY
    /// header reader that found none): they are read again first.
    pub fn unread(&mut self, bytes: &[u8]) {
        debug_assert!(self.rbuf.is_empty());
        self.rbuf.extend_from_slice(bytes);
    }

    /// The stream itself, for a reader of something that is not MySQL
    /// packets (a PROXY header); nothing may be buffered yet.
    pub fn raw_stream(&mut self) -> &mut S {
        debug_assert!(self.rbuf.is_empty());
        &mut self.stream
    }

    /// Reads a whole logical payload (joining continuation chunks). Returns
    /// the first packet's sequence id and the last one's, so a reply can
    /// continue the sequence.
    ///
    /// A payload over `max_len` is read to its end but not kept, and
    /// refused with the sequence id the reply must carry: the way a server
    /// answers ER_NET_PACKET_TOO_LARGE without losing the packet framing.
    pub async fn read_payload(&mut self, max_len: usize) -> Result<Option<Payload>, ReadError> {
        let first = match self.read_packet().await {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(None),
            Err(e) if is_too_large(&e) => return Err(ReadError::TooLarge { last_seq: 0 }),
            Err(e) => return Err(e.into()),
        };
        if !first.continues() {
            if first.payload.len() > max_len {
                return Err(ReadError::TooLarge {
                    last_seq: first.seq,
                });
            }
            return Ok(Some(Payload {
                first_seq: first.seq,
                last_seq: first.seq,
                bytes: first.payload,
            }));
        }
        let mut too_large = first.payload.len() > max_len;
        let mut joined = BytesMut::new();
        if !too_large {
            joined.extend_from_slice(&first.payload);
        }
        let mut last_seq;
        loop {
            let chunk = self
                .read_packet()
                .await?
                .ok_or(ReadError::Io(io::ErrorKind::UnexpectedEof.into()))?;
            too_large |= joined.len() + chunk.payload.len() > max_len;
            if too_large {
                // Keep reading to the end of the payload, keep nothing.
                joined = BytesMut::new();
            } else {
                joined.extend_from_slice(&chunk.payload);
            }
            last_seq = chunk.seq;
            if !chunk.continues() {
                break;
            }
        }
        if too_large {
            return Err(ReadError::TooLarge { last_seq });
        }
        Ok(Some(Payload {
            first_seq: first.seq,
            last_seq,
            bytes: joined.freeze(),
        }))
    }

    fn parse_buffered(&mut self) -> io::Result<Option<Packet>> {
        if self.rbuf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = payload_len(&self.rbuf);
        if len > self.max_packet {
            return Err(io::Error::new(io::ErrorKind::InvalidData, PacketTooLarge));
        }
        if self.rbuf.len() < HEADER_LEN + len {
            // Room for the rest of the packet, but at most RESERVE_STEP more
            // at a time: memory follows the bytes that actually arrive, so a
            // peer announcing 16 MiB and sending nothing costs no 16 MiB
            // (growth stays amortised: the buffer at least doubles).
            let missing = HEADER_LEN + len - self.rbuf.len();
            self.rbuf.reserve(missing.min(RESERVE_STEP));
            return Ok(None);
        }
        let seq = self.rbuf[3];
        self.rbuf.advance(HEADER_LEN);
        let payload = self.rbuf.split_to(len).freeze();
        Ok(Some(Packet { seq, payload }))
    }

    /// Queues a logical payload, splitting it into chunks as the protocol
    /// requires; returns the sequence id the next packet must carry.
    pub fn queue_payload(&mut self, mut seq: u8, payload: &[u8]) -> u8 {
        let mut rest = payload;
        loop {
            let n = rest.len().min(MAX_CHUNK);
            self.queue_chunk(seq, &rest[..n]);
            seq = seq.wrapping_add(1);
            rest = &rest[n..];
            // A payload that is an exact multiple of MAX_CHUNK ends with an
            // empty packet so the reader knows it is complete.
            if n < MAX_CHUNK {
                return seq;
            }
        }
    }

    /// Queues one physical packet as received (relaying keeps its sequence id).
    pub fn queue_packet(&mut self, packet: &Packet) {
        self.queue_chunk(packet.seq, &packet.payload);
    }

    fn queue_chunk(&mut self, seq: u8, chunk: &[u8]) {
        debug_assert!(chunk.len() <= MAX_CHUNK);
        let len = (chunk.len() as u32).to_le_bytes();
        self.wbuf.extend_from_slice(&[len[0], len[1], len[2], seq]);
        self.wbuf.extend_from_slice(chunk);
    }

    /// Flushes when enough is queued; used while streaming large results so
    /// a slow reader applies backpressure instead of growing our buffer.
    pub async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.wbuf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.stream.flush().await
    }

    /// Queues and flushes a single logical payload.
    pub async fn send(&mut self, seq: u8, payload: &[u8]) -> io::Result<u8> {
        let next = self.queue_payload(seq, payload);
        self.flush().await?;
        Ok(next)
    }

    /// Bytes received but not yet returned as packets.
    pub fn has_buffered_input(&self) -> bool {
        !self.rbuf.is_empty()
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl PacketStream<Stream> {
    /// Upgrades the connection to TLS as the server (after the client's SSL
    /// Request).
    pub async fn accept_tls(&mut self, acceptor: &tokio_rustls::TlsAcceptor) -> io::Result<()> {
        let tcp = self.take_plain()?;
        let tls = acceptor.accept(tcp).await?;
        self.stream = Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls)));
        Ok(())
    }

    /// Upgrades the connection to TLS as the client (after our SSL Request
    /// to a backend at `addr`).
    pub async fn connect_tls(
        &mut self,
        tls: &crate::tls::BackendTls,
        addr: &str,
    ) -> io::Result<()> {
        let tcp = self.take_plain()?;
        self.stream = tls.connect(addr, tcp).await?;
        Ok(())
    }

    /// The plain socket, for an upgrade; the stream is left closed (a failed
    /// upgrade ends the connection).
    fn take_plain(&mut self) -> io::Result<tokio::net::TcpStream> {
        if self.has_buffered_input() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected data before the TLS handshake",
            ));
        }
        match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(tcp) => Ok(tcp),
            other => {
                self.stream = other;
                Err(io::Error::new(io::ErrorKind::InvalidInput, "already TLS"))
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Switches to the compressed protocol (after the handshake's OK).
    /// `towards_server`: packets read are renumbered (see `compress`).
    pub fn enable_compression(&mut self, towards_server: bool) -> io::Result<()> {
        if self.has_buffered_input() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected data before compression starts",
            ));
        }
        let plain = std::mem::replace(&mut self.stream, Stream::Closed);
        self.stream = Stream::Compressed(Box::new(crate::protocol::compress::Compressed::new(
            plain,
            towards_server,
        )));
        Ok(())
    }

    /// True when the peer has closed the socket or sent something while we
    /// were not expecting anything (a server-initiated error before it hangs
    /// up, e.g. after `wait_timeout` or a shutdown).
    ///
    /// This is how a statement is known to be *not yet sent* when a backend
    /// died: the check runs right before the statement is written.
    ///
    /// It first asks the reactor's cached readiness, which costs no system
    /// call: tokio clears it when a read comes back short (the socket was
    /// drained), so it is clear after a complete response, and set again by
    /// the next epoll turn that sees bytes or a FIN arrive. Only then does
    /// it ask the kernel (a non-blocking `MSG_PEEK`). What it can miss is a
    /// FIN that arrived after the reactor's last turn, a few microseconds
    /// before the statement goes out; such a statement then meets a dead
    /// socket and is reported as of unknown outcome, like a statement in
    /// flight when a backend dies (never replayed).
    pub fn is_broken(&mut self) -> bool {
        if self.has_buffered_input() || self.stream.has_buffered_input() {
            return true;
        }
        let Some(tcp) = self.stream.tcp() else {
            return true;
        };
        // Nobody waits on this socket between statements, so the no-op
        // waker replaces no one; the next read registers its own.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if tcp.poll_read_ready(&mut cx).is_pending() {
            return false;
        }
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match socket2::SockRef::from(tcp).peek(&mut probe) {
            Ok(_) => true, // 0 = closed; >0 = unsolicited bytes
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// The payload length a packet header announces (its first 3 bytes, little
/// endian); `header` holds at least [`HEADER_LEN`] bytes.
fn payload_len(header: &[u8]) -> usize {
    u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize
}

/// A logical payload assembled from one or more physical packets.
#[derive(Debug)]
pub struct Payload {
    pub first_seq: u8,
    pub last_seq: u8,
    pub bytes: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The payload was over the limit; `last_seq` is its last packet's
    /// sequence id (0 when refused before reading it).
    #[error("packet larger than max_allowed_packet")]
    TooLarge { last_seq: u8 },
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(payload: &[u8]) -> (Vec<Packet>, Payload) {
        let (a, b) = tokio::io::duplex(64 * 1024 * 1024);
        let mut writer = PacketStream::new(a);
        let mut reader = PacketStream::new(b);
        writer.send(0, payload).await.unwrap();
        writer.send(0, payload).await.unwrap();
        drop(writer);
        let joined = reader.read_payload(usize::MAX).await.unwrap().unwrap();
        let mut raw = Vec::new();
        while let Some(p) = reader.read_packet().await.unwrap() {
            raw.push(p);
        }
        (raw, joined)
    }

    #[tokio::test]
    async fn small_payload_is_one_packet() {
        let (raw, joined) = roundtrip(b"\x03SELECT 1").await;
        assert_eq!(raw.len(), 1);
        assert_eq!(&raw[0].payload[..], b"\x03SELECT 1");
        assert_eq!(&joined.bytes[..], b"\x03SELECT 1");
    }

    #[tokio::test]
    async fn exact_chunk_size_ends_with_empty_packet() {
        let payload = vec![7u8; MAX_CHUNK];
        let (raw, joined) = roundtrip(&payload).await;
        assert_eq!(raw.len(), 2);
        assert_eq!(raw[0].payload.len(), MAX_CHUNK);
        assert_eq!(raw[1].payload.len(), 0);
        assert_eq!((raw[0].seq, raw[1].seq), (0, 1));
        assert_eq!(joined.bytes.len(), MAX_CHUNK);
        assert_eq!(joined.last_seq, 1);
    }

    #[tokio::test]
    async fn large_payload_is_split_and_joined() {
        let payload: Vec<u8> = (0..MAX_CHUNK + 10).map(|i| i as u8).collect();
        let (raw, joined) = roundtrip(&payload).await;
        assert_eq!(raw.len(), 2);
        assert_eq!(raw[1].payload.len(), 10);
        assert_eq!(&joined.bytes[..], &payload[..]);
    }

    #[tokio::test]
    async fn oversized_payload_is_refused() {
        let (a, b) = tokio::io::duplex(64 * 1024 * 1024);
        let mut writer = PacketStream::new(a);
        let mut reader = PacketStream::new(b);
        writer.send(0, &vec![1u8; MAX_CHUNK + 5]).await.unwrap();
        assert!(matches!(
            reader.read_payload(MAX_CHUNK).await,
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn announced_oversized_packet_is_refused_before_buffering() {
        let (mut a, b) = tokio::io::duplex(1024);
        // Announces 16 MiB - 1 but sends nothing more.
        a.write_all(&[0xff, 0xff, 0xff, 0]).await.unwrap();
        let mut reader = PacketStream::new(b);
        reader.set_max_packet(1024);
        assert!(matches!(
            reader.read_payload(usize::MAX).await,
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn an_announced_large_packet_is_not_reserved_before_it_arrives() {
        let (mut a, b) = tokio::io::duplex(1024);
        // Announces 16 MiB - 1, allowed, then sends 10 bytes and waits.
        a.write_all(&[0xff, 0xff, 0xff, 0]).await.unwrap();
        a.write_all(&[1; 10]).await.unwrap();
        let mut reader = PacketStream::new(b);
        let read =
            tokio::time::timeout(std::time::Duration::from_millis(100), reader.read_packet()).await;
        assert!(read.is_err(), "the packet is incomplete");
        assert!(
            reader.rbuf.capacity() <= 2 * RESERVE_STEP,
            "reserved {} bytes for 14 received",
            reader.rbuf.capacity()
        );
    }

    #[tokio::test]
    async fn close_mid_packet_is_an_error_and_clean_close_is_none() {
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(&[5, 0, 0, 0, b'a']).await.unwrap();
        drop(a);
        let mut reader = PacketStream::new(b);
        assert!(reader.read_packet().await.is_err());

        let (a, b) = tokio::io::duplex(1024);
        drop(a);
        let mut reader = PacketStream::new(b);
        assert!(reader.read_packet().await.unwrap().is_none());
    }
}
