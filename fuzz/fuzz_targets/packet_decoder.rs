//! Packet framing (src/protocol/codec.rs): arbitrary bytes as they would
//! arrive from a client or a backend, delivered in arbitrary slices.
//!
//! Input: `[chunk, flags, max_lo, max_hi, stream bytes…]`
//! - `chunk`: how many bytes each read returns (1–256), so headers and
//!   payloads get split across reads.
//! - `flags` bit 0: read whole payloads (`read_payload`) rather than
//!   physical packets; bit 1: keep the default packet limit (16 MiB) rather
//!   than `max` as `set_max_packet`.
//! - `max`: the payload / packet limit.
//!
//! Must never panic; every payload read is re-encoded and must decode to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitrail::protocol::codec::{ReadError, MAX_CHUNK};
use splitrail::protocol::PacketStream;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Plays back `data` `chunk` bytes at a time; writes go to `written`.
struct Replay {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let n = this
            .chunk
            .min(buf.remaining())
            .min(this.data.len() - this.pos);
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn replay(data: &[u8], chunk: usize) -> PacketStream<Replay> {
    PacketStream::new(Replay {
        data: data.to_vec(),
        pos: 0,
        chunk,
        written: Vec::new(),
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

/// Encodes `payload` and decodes it again: must give it back unchanged.
async fn roundtrip(payload: &[u8], seq: u8) {
    let mut writer = replay(&[], 1);
    let next = writer.send(seq, payload).await.expect("in-memory write");
    assert_eq!(next, seq.wrapping_add(1), "one packet for a short payload");
    let wire = writer.get_ref().written.clone();
    let mut reader = replay(&wire, 4096);
    let back = reader
        .read_payload(usize::MAX)
        .await
        .expect("decoding what we encoded")
        .expect("a payload");
    assert_eq!(&back.bytes[..], payload);
    assert_eq!((back.first_seq, back.last_seq), (seq, seq));
    assert!(reader.read_packet().await.expect("clean end").is_none());
}

fuzz_target!(|data: &[u8]| {
    let [chunk, flags, max_lo, max_hi, stream @ ..] = data else {
        return;
    };
    let chunk = *chunk as usize + 1;
    let max = u16::from_le_bytes([*max_lo, *max_hi]) as usize;
    let whole_payloads = flags & 1 != 0;
    runtime().block_on(async {
        let mut ps = replay(stream, chunk);
        if flags & 2 == 0 {
            ps.set_max_packet(max);
        }
        // A round consumes at least a header, or fails, or ends the loop.
        for _ in 0..=stream.len() / 4 {
            if whole_payloads {
                match ps.read_payload(max).await {
                    Ok(Some(p)) => {
                        assert!(p.bytes.len() <= max);
                        roundtrip(&p.bytes, p.first_seq).await;
                    }
                    Ok(None) => break,
                    // Dropped (or refused at its header, which then stays
                    // buffered and is refused again): keep going, the loop
                    // is bounded.
                    Err(ReadError::TooLarge { .. }) => continue,
                    Err(ReadError::Io(_)) => break,
                }
            } else {
                match ps.read_packet().await {
                    Ok(Some(p)) => {
                        assert!(p.payload.len() <= MAX_CHUNK);
                        if flags & 2 == 0 {
                            assert!(p.payload.len() <= max);
                        }
                        roundtrip(&p.payload, p.seq).await;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    });
});
