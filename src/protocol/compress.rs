//! The MySQL compressed protocol (`CLIENT_COMPRESS`, zlib), as a byte
//! stream adapter under [`super::PacketStream`]: what it reads and writes
//! are ordinary MySQL packets; on the wire they travel inside compressed
//! packets (a 7-byte header: compressed length, compressed sequence id,
//! uncompressed length, 0 when the payload is sent as it is).
//!
//! Compressed sequence ids follow the servers' rule: a new command starts
//! at 0, and each side's first packet of a turn continues from the last id
//! it read. The servers also reset the ids of the packets *inside* to the
//! compressed id after every flush, so packets read from a compressing
//! server are renumbered here into one continuous sequence, which is what
//! a client on a plain link expects.

use bytes::{Buf, BytesMut};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HEADER: usize = 7;
/// Uncompressed bytes per compressed packet written (servers flush every
/// `net_buffer_length`, 16 KiB by default; larger compresses better).
const CHUNK: usize = 64 * 1024;
/// Shorter payloads are sent uncompressed (MySQL's MIN_COMPRESS_LENGTH).
const MIN_COMPRESS: usize = 50;
/// A compressed packet announcing more than this is refused.
const MAX_PACKET: usize = 0xff_ffff;
/// Buffered uncompressed output beyond this is written out before more is
/// taken.
const HIGH_WATER: usize = 4 * CHUNK;

/// Follows the 4-byte headers of the MySQL packets in one direction.
#[derive(Debug, Default)]
struct PacketWalk {
    /// Body bytes of the current packet still to pass.
    body_left: usize,
    /// Header bytes seen of the next packet (0..4) and its length bytes.
    header_seen: usize,
    len: [u8; 3],
}

impl PacketWalk {
    /// Walks `bytes`; calls `at_seq` with each packet's sequence byte.
    fn walk(&mut self, bytes: &mut [u8], mut at_seq: impl FnMut(&mut u8)) {
        let mut i = 0;
        while i < bytes.len() {
            if self.body_left > 0 {
                let skip = self.body_left.min(bytes.len() - i);
                self.body_left -= skip;
                i += skip;
                continue;
            }
            if self.header_seen < 3 {
                self.len[self.header_seen] = bytes[i];
                self.header_seen += 1;
            } else {
                at_seq(&mut bytes[i]);
                self.header_seen = 0;
                self.body_left =
                    u32::from_le_bytes([self.len[0], self.len[1], self.len[2], 0]) as usize;
            }
            i += 1;
        }
    }

    fn at_boundary(&self) -> bool {
        self.body_left == 0 && self.header_seen == 0
    }
}

pub struct Compressed<S> {
    inner: S,
    /// Decompressed bytes not yet read.
    plain: BytesMut,
    /// The compressed packet being read: header, then payload.
    head: [u8; HEADER],
    head_filled: usize,
    payload: Vec<u8>,
    payload_filled: usize,
    reading_payload: bool,
    /// Compressed id of the last packet read.
    last_read_seq: u8,
    /// Renumber the packets read (from a server; see the module doc).
    renumber: bool,
    read_walk: PacketWalk,
    next_inner_seq: u8,
    /// Uncompressed bytes written, not yet framed.
    pending: Vec<u8>,
    /// Framed bytes not yet written to `inner`.
    out: Vec<u8>,
    out_pos: usize,
    /// Compressed id of the next packet written.
    write_seq: u8,
    /// Something was read since the last write: the next write starts a
    /// turn.
    new_turn: bool,
    write_walk: PacketWalk,
    last_written_inner_seq: u8,
}

impl<S> Compressed<S> {
    /// `renumber`: true on a link to a server (packets read are renumbered).
    pub fn new(inner: S, renumber: bool) -> Compressed<S> {
        Compressed {
            inner,
            plain: BytesMut::new(),
            head: [0; HEADER],
            head_filled: 0,
            payload: Vec::new(),
            payload_filled: 0,
            reading_payload: false,
            last_read_seq: 0,
            renumber,
            read_walk: PacketWalk::default(),
            next_inner_seq: 0,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            write_seq: 0,
            new_turn: true,
            write_walk: PacketWalk::default(),
            last_written_inner_seq: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Decompressed input not yet read.
    pub fn has_buffered_input(&self) -> bool {
        !self.plain.is_empty() || self.head_filled > 0
    }

    /// Frames everything pending into `out` as compressed packets.
    fn frame_pending(&mut self) -> io::Result<()> {
        if self.new_turn {
            // A new command (its first packet has id 0) starts the
            // compressed ids again; anything else (a response, LOCAL
            // INFILE data) continues from the peer's last one.
            let starts_command = self.write_walk.at_boundary() && self.pending.get(3) == Some(&0);
            self.write_seq = if starts_command {
                0
            } else {
                self.last_read_seq.wrapping_add(1)
            };
            self.new_turn = false;
        }
        let mut last = self.last_written_inner_seq;
        self.write_walk.walk(&mut self.pending, |seq| last = *seq);
        self.last_written_inner_seq = last;
        for chunk in self.pending.chunks(CHUNK) {
            let start = self.out.len();
            self.out.extend_from_slice(&[0; HEADER]);
            let uncompressed_len = if chunk.len() >= MIN_COMPRESS {
                let mut encoder = flate2::write::ZlibEncoder::new(
                    std::mem::take(&mut self.out),
                    flate2::Compression::default(),
                );
                encoder.write_all(chunk)?;
                self.out = encoder.finish()?;
                if self.out.len() - start - HEADER < chunk.len() {
                    chunk.len()
                } else {
                    // Did not shrink: sent as it is.
                    self.out.truncate(start + HEADER);
                    self.out.extend_from_slice(chunk);
                    0
                }
            } else {
                self.out.extend_from_slice(chunk);
                0
            };
            let compressed_len = self.out.len() - start - HEADER;
            let header = &mut self.out[start..start + HEADER];
            header[..3].copy_from_slice(&(compressed_len as u32).to_le_bytes()[..3]);
            header[3] = self.write_seq;
            header[4..].copy_from_slice(&(uncompressed_len as u32).to_le_bytes()[..3]);
            self.write_seq = self.write_seq.wrapping_add(1);
        }
        self.pending.clear();
        Ok(())
    }

    /// Turns the compressed packet just read into plain bytes.
    fn decode_packet(&mut self) -> io::Result<()> {
        let uncompressed_len =
            u32::from_le_bytes([self.head[4], self.head[5], self.head[6], 0]) as usize;
        let start = self.plain.len();
        if uncompressed_len == 0 {
            self.plain.extend_from_slice(&self.payload);
        } else {
            let mut decoder =
                flate2::read::ZlibDecoder::new(&self.payload[..]).take(uncompressed_len as u64);
            let mut out = Vec::with_capacity(uncompressed_len);
            decoder.read_to_end(&mut out)?;
            if out.len() != uncompressed_len {
                return Err(invalid("compressed packet shorter than announced"));
            }
            self.plain.extend_from_slice(&out);
        }
        self.last_read_seq = self.head[3];
        if !self.new_turn {
            // The first packet read after our write: the peer's response
            // numbering follows our last packet.
            self.new_turn = true;
            self.next_inner_seq = self.last_written_inner_seq.wrapping_add(1);
            self.read_walk = PacketWalk::default();
        }
        if self.renumber {
            let next = &mut self.next_inner_seq;
            self.read_walk.walk(&mut self.plain[start..], |seq| {
                *seq = *next;
                *next = next.wrapping_add(1);
            });
        }
        Ok(())
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl<S: AsyncRead + Unpin> Compressed<S> {
    /// Reads one whole compressed packet into `plain`; `false` at a clean
    /// end of stream.
    fn poll_packet(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        while !self.reading_payload {
            let mut buf = ReadBuf::new(&mut self.head[self.head_filled..]);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(match self.head_filled {
                    0 => Ok(false),
                    _ => Err(io::ErrorKind::UnexpectedEof.into()),
                });
            }
            self.head_filled += n;
            if self.head_filled == HEADER {
                let len =
                    u32::from_le_bytes([self.head[0], self.head[1], self.head[2], 0]) as usize;
                let uncompressed =
                    u32::from_le_bytes([self.head[4], self.head[5], self.head[6], 0]) as usize;
                if len > MAX_PACKET || uncompressed > MAX_PACKET {
                    return Poll::Ready(Err(invalid("compressed packet too large")));
                }
                self.payload.clear();
                self.payload.resize(len, 0);
                self.payload_filled = 0;
                self.reading_payload = true;
            }
        }
        while self.payload_filled < self.payload.len() {
            let mut buf = ReadBuf::new(&mut self.payload[self.payload_filled..]);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            self.payload_filled += n;
        }
        self.reading_payload = false;
        self.head_filled = 0;
        self.decode_packet()?;
        Poll::Ready(Ok(true))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Compressed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.plain.is_empty() {
            if !ready!(this.poll_packet(cx))? {
                return Poll::Ready(Ok(()));
            }
        }
        let n = this.plain.len().min(buf.remaining());
        buf.put_slice(&this.plain[..n]);
        this.plain.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> Compressed<S> {
    /// Frames what is pending and writes every framed byte to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            while self.out_pos < self.out.len() {
                let n =
                    ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.out_pos += n;
            }
            self.out.clear();
            self.out_pos = 0;
            if self.pending.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.frame_pending()?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Compressed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.len() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn packet(seq: u8, body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(seq);
        p.extend_from_slice(body);
        p
    }

    #[tokio::test]
    async fn round_trip_small_and_large_and_incompressible() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut client = Compressed::new(a, true);
        let mut server = Compressed::new(b, false);
        let text = "lorem ipsum dolor sit amet ".repeat(20_000);
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let command = packet(0, &[b"\x03SELECT ".as_slice(), &[b'1'; 100]].concat());
        client.write_all(&command).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0; command.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got == command, "the command differs");

        let response = [
            packet(1, text.as_bytes()),
            packet(2, &noise),
            packet(3, b"\xfe"),
        ]
        .concat();
        server.write_all(&response).await.unwrap();
        server.flush().await.unwrap();
        let mut got = vec![0; response.len()];
        client.read_exact(&mut got).await.unwrap();
        assert!(got == response, "the response differs");
        assert!(!client.has_buffered_input());
    }

    #[tokio::test]
    async fn compressed_ids_restart_per_command_and_continue_in_a_response() {
        let (a, mut wire) = tokio::io::duplex(1 << 20);
        let mut client = Compressed::new(a, true);
        client.write_all(&packet(0, b"\x03SELECT 1")).await.unwrap();
        client.flush().await.unwrap();
        let mut head = [0u8; HEADER];
        wire.read_exact(&mut head).await.unwrap();
        assert_eq!(head[3], 0, "a command starts at 0");
        let mut rest = vec![0; u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize];
        wire.read_exact(&mut rest).await.unwrap();
        // The server answers in two compressed packets (ids 1, 2): three
        // packets, then one whose inner id was reset to the compressed id
        // after the server's flush.
        let first = [
            packet(1, b"\x01"),
            packet(2, b"\x03def"),
            packet(3, b"\x03ghi"),
        ]
        .concat();
        for (seq, inner) in [(1u8, first), (2, packet(2, b"\xfe"))] {
            let mut frame = (inner.len() as u32).to_le_bytes()[..3].to_vec();
            frame.extend_from_slice(&[seq, 0, 0, 0]);
            frame.extend_from_slice(&inner);
            wire.write_all(&frame).await.unwrap();
        }
        let mut got = vec![0; 5 + 8 + 8 + 5];
        client.read_exact(&mut got).await.unwrap();
        let seqs = [got[3], got[5 + 3], got[13 + 3], got[21 + 3]];
        assert_eq!(seqs, [1, 2, 3, 4], "renumbered into one sequence");
        // The next command starts again at 0.
        client.write_all(&packet(0, b"\x0e")).await.unwrap();
        client.flush().await.unwrap();
        wire.read_exact(&mut head).await.unwrap();
        assert_eq!(head[3], 0);
    }

    #[tokio::test]
    async fn a_lying_packet_is_refused() {
        let (a, mut wire) = tokio::io::duplex(1 << 16);
        let mut client = Compressed::new(a, true);
        // Announces 1,000 uncompressed bytes, holds 3.
        let body = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"abc").unwrap();
            e.finish().unwrap()
        };
        let mut frame = (body.len() as u32).to_le_bytes()[..3].to_vec();
        frame.extend_from_slice(&[0, 0xe8, 0x03, 0]);
        frame.extend_from_slice(&body);
        wire.write_all(&frame).await.unwrap();
        let mut got = [0u8; 3];
        assert!(client.read_exact(&mut got).await.is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever a peer sends, reading ends in bytes or an error, never
        /// a panic or a hang.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let mut reader = Compressed::new(&bytes[..], true);
                let mut out = Vec::new();
                let _ = reader.read_to_end(&mut out).await;
            });
        }
    }
}
