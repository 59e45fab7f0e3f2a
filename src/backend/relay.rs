//! Copies one command's response from a backend to the client, packet by
//! packet and byte for byte, while reading just enough to know where the
//! response ends and what status flags it left behind.
//!
//! Protocol rules followed here (MySQL "Text Protocol: COM_QUERY Response"):
//! a response is an OK, an ERR, a LOCAL INFILE request, or a result set —
//! a column count, that many column definitions, an EOF unless
//! CLIENT_DEPRECATE_EOF, rows, and an EOF/OK terminator. When the final
//! OK/EOF carries SERVER_MORE_RESULTS_EXISTS, another response follows
//! (multi-statements, CALL).

use crate::protocol::packets::{self, ErrInfo, OkInfo};
use crate::protocol::{Packet, PacketStream};
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

/// Which response format the command that was sent produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// COM_QUERY: OK, ERR, LOCAL INFILE, or result sets.
    Query,
    /// COM_FIELD_LIST: column definitions ended by EOF, or ERR.
    FieldList,
    /// One packet whatever it is (COM_STATISTICS, COM_PING, …).
    Single,
    /// COM_STMT_FETCH: binary rows ended by EOF, or ERR.
    Rows,
}

/// What a successful COM_STMT_PREPARE returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    /// The backend's statement id (before any rewriting for the client).
    pub backend_id: u32,
    pub columns: u16,
    pub params: u16,
}

/// SERVER_STATUS_CURSOR_EXISTS: an EXECUTE opened a cursor; rows come
/// with COM_STMT_FETCH.
const CURSOR_EXISTS: u16 = 0x0040;

/// Where relayed packets go.
pub enum Sink<'a, C = crate::tls::Stream> {
    Client(&'a mut PacketStream<C>),
    /// splitrail's own statements (state replay): read and drop.
    Discard,
}

impl<C: AsyncRead + AsyncWrite + Unpin> Sink<'_, C> {
    async fn forward(&mut self, packet: &Packet) -> io::Result<()> {
        if let Sink::Client(client) = self {
            client.queue_packet(packet);
            client.flush_if_large().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Client(client) => client.flush().await,
            Sink::Discard => Ok(()),
        }
    }
}

/// What a relayed response amounted to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The last OK/EOF seen (its status flags are the session's truth).
    pub last: OkInfo,
    /// Set when the response ended with an ERR packet.
    pub error: Option<ErrInfo>,
    /// Sequence id the next packet to the client must carry.
    pub next_seq: u8,
    /// True when an OK or EOF was seen, i.e. `last.status` is real.
    pub status_seen: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend connection failed mid-response. `forwarded` tells whether
    /// the client already received part of it.
    #[error("backend connection broken: {source}")]
    Backend {
        source: io::Error,
        forwarded: bool,
        next_seq: u8,
    },
    /// Writing to (or reading LOCAL INFILE data from) the client failed.
    #[error("client connection broken: {0}")]
    Client(io::Error),
}

/// Reads packets of one response from `backend` and forwards each to `sink`.
pub async fn relay_response<B, C>(
    backend: &mut PacketStream<B>,
    mut sink: Sink<'_, C>,
    kind: ResponseKind,
    deprecate_eof: bool,
) -> Result<Outcome, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut relay = Relay::new(backend);
    match kind {
        ResponseKind::Single => {
            let p = relay.next(&mut sink).await?;
            relay.note_terminator(&p, false);
        }
        ResponseKind::FieldList => loop {
            let p = relay.next(&mut sink).await?;
            if p.header() == Some(packets::ERR_HEADER)
                || packets::is_end_of_rows(&p.payload, deprecate_eof)
            {
                relay.note_terminator(&p, deprecate_eof);
                break;
            }
        },
        ResponseKind::Query => relay.query_response(&mut sink, deprecate_eof).await?,
        ResponseKind::Rows => {
            relay.rows(&mut sink, deprecate_eof).await?;
        }
    }
    sink.flush().await.map_err(RelayError::Client)?;
    Ok(relay.outcome)
}

struct Relay<'a, B> {
    backend: &'a mut PacketStream<B>,
    outcome: Outcome,
    forwarded: bool,
}

impl<'a, B: AsyncRead + AsyncWrite + Unpin> Relay<'a, B> {
    fn new(backend: &'a mut PacketStream<B>) -> Self {
        Relay {
            backend,
            outcome: Outcome::default(),
            forwarded: false,
        }
    }

    /// Reads the next backend packet and forwards it.
    async fn next<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        sink: &mut Sink<'_, C>,
    ) -> Result<Packet, RelayError> {
        let packet = match self.backend.read_packet().await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(self.broken(io::ErrorKind::UnexpectedEof.into())),
            Err(e) => return Err(self.broken(e)),
        };
        sink.forward(&packet).await.map_err(RelayError::Client)?;
        self.forwarded = true;
        self.outcome.next_seq = packet.seq.wrapping_add(1);
        Ok(packet)
    }

    fn broken(&self, source: io::Error) -> RelayError {
        RelayError::Backend {
            source,
            forwarded: self.forwarded,
            next_seq: if self.forwarded {
                self.outcome.next_seq
            } else {
                1
            },
        }
    }

    /// Records the status of an OK/EOF/ERR that ends (part of) a response.
    fn note_terminator(&mut self, p: &Packet, deprecate_eof: bool) {
        match p.header() {
            Some(packets::ERR_HEADER) => self.outcome.error = packets::parse_err(&p.payload),
            Some(packets::OK_HEADER) => {
                if let Some(info) = packets::parse_ok(&p.payload) {
                    self.outcome.last = info;
                    self.outcome.status_seen = true;
                }
            }
            Some(packets::EOF_HEADER) => {
                if let Some(info) = packets::end_of_rows_info(&p.payload, deprecate_eof) {
                    self.outcome.last = info;
                    self.outcome.status_seen = true;
                }
            }
            _ => {}
        }
    }

    async fn query_response<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        sink: &mut Sink<'_, C>,
        deprecate_eof: bool,
    ) -> Result<(), RelayError> {
        loop {
            let first = self.next(sink).await?;
            match first.header() {
                Some(packets::OK_HEADER) => {
                    self.note_terminator(&first, deprecate_eof);
                    if !self.outcome.last.more_results() {
                        return Ok(());
                    }
                }
                // A MariaDB progress report (its client asked for them):
                // forwarded, and the response goes on.
                Some(packets::ERR_HEADER) if packets::is_progress_report(&first.payload) => {}
                Some(packets::ERR_HEADER) => {
                    self.note_terminator(&first, deprecate_eof);
                    return Ok(());
                }
                Some(packets::LOCAL_INFILE_HEADER) => {
                    self.send_local_file(sink, first.seq).await?;
                    // The server answers the file with an OK or ERR, which
                    // the next iteration reads.
                }
                _ => {
                    let mut pos = 0;
                    let columns =
                        packets::read_lenenc(&first.payload, &mut pos).ok_or_else(|| {
                            self.broken(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "bad column count",
                            ))
                        })?;
                    if !self.result_set(sink, columns, deprecate_eof).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Relays column definitions and rows. Returns true when another result
    /// follows.
    async fn result_set<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        sink: &mut Sink<'_, C>,
        columns: u64,
        deprecate_eof: bool,
    ) -> Result<bool, RelayError> {
        for _ in 0..columns {
            self.next(sink).await?;
        }
        if !deprecate_eof {
            let eof = self.next(sink).await?;
            self.note_terminator(&eof, deprecate_eof);
            if eof.header() == Some(packets::ERR_HEADER) {
                return Ok(false);
            }
            // A cursor was opened: no rows follow now (they come with
            // COM_STMT_FETCH).
            if self.outcome.last.status & CURSOR_EXISTS != 0 {
                return Ok(false);
            }
        }
        self.rows(sink, deprecate_eof).await
    }

    /// Relays rows up to and including their terminator. Returns true when
    /// another result follows.
    async fn rows<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        sink: &mut Sink<'_, C>,
        deprecate_eof: bool,
    ) -> Result<bool, RelayError> {
        // Inside a value split over several packets, the continuation
        // packets' first bytes are data, not headers.
        let mut continuing = false;
        loop {
            let row = self.next(sink).await?;
            if continuing {
                continuing = row.continues();
                continue;
            }
            if packets::is_end_of_rows(&row.payload, deprecate_eof) {
                self.note_terminator(&row, deprecate_eof);
                return Ok(self.outcome.last.more_results());
            }
            if row.header() == Some(packets::ERR_HEADER) {
                self.note_terminator(&row, deprecate_eof);
                return Ok(false);
            }
            continuing = row.continues();
        }
    }

    /// LOCAL INFILE: the server asked for a file. The client sends its
    /// content as packets ended by an empty one; relay them verbatim. With
    /// no client (our own statements) refuse by sending the empty packet.
    async fn send_local_file<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        sink: &mut Sink<'_, C>,
        request_seq: u8,
    ) -> Result<(), RelayError> {
        match sink {
            Sink::Client(client) => {
                client.flush().await.map_err(RelayError::Client)?;
                let mut expected_seq = request_seq.wrapping_add(1);
                loop {
                    let chunk = client
                        .read_packet()
                        .await
                        .map_err(RelayError::Client)?
                        .ok_or_else(|| RelayError::Client(io::ErrorKind::UnexpectedEof.into()))?;
                    self.backend.queue_packet(&chunk);
                    // A client that sends something else than the file (a
                    // new command, seq 0) gets the server's own answer
                    // (packets out of order) instead of a hang.
                    if chunk.seq != expected_seq {
                        break;
                    }
                    expected_seq = expected_seq.wrapping_add(1);
                    self.backend
                        .flush_if_large()
                        .await
                        .map_err(|e| self.broken(e))?;
                    if chunk.payload.is_empty() {
                        break;
                    }
                }
            }
            Sink::Discard => {
                self.backend.queue_payload(request_seq.wrapping_add(1), &[]);
            }
        }
        self.backend.flush().await.map_err(|e| self.broken(e))
    }
}

/// Relays a COM_STMT_PREPARE response: a STMT_PREPARE_OK (whose statement
/// id is replaced by `client_id`, the only byte splitrail ever changes in a
/// response, because the client must see one id whichever backends the
/// statement lives on), parameter and column definitions each followed by
/// an EOF unless CLIENT_DEPRECATE_EOF; or an ERR.
pub async fn relay_prepare_response<B, C>(
    backend: &mut PacketStream<B>,
    mut sink: Sink<'_, C>,
    client_id: Option<u32>,
    deprecate_eof: bool,
) -> Result<Result<PrepareOk, ErrInfo>, RelayError>
where
    B: AsyncRead + AsyncWrite + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut relay = Relay::new(backend);
    let first = match relay.backend.read_packet().await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(relay.broken(io::ErrorKind::UnexpectedEof.into())),
        Err(e) => return Err(relay.broken(e)),
    };
    let ok = match (first.header(), first.payload.get(1..9)) {
        (Some(packets::OK_HEADER), Some(b)) => PrepareOk {
            backend_id: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            columns: u16::from_le_bytes([b[4], b[5]]),
            params: u16::from_le_bytes([b[6], b[7]]),
        },
        _ => {
            sink.forward(&first).await.map_err(RelayError::Client)?;
            sink.flush().await.map_err(RelayError::Client)?;
            let err = packets::parse_err(&first.payload).unwrap_or(ErrInfo {
                code: 2027,
                state: *b"HY000",
                message: "Malformed packet".into(),
            });
            return Ok(Err(err));
        }
    };
    let mut rewritten = first.payload.to_vec();
    if let Some(id) = client_id {
        rewritten[1..5].copy_from_slice(&id.to_le_bytes());
    }
    let first = Packet {
        seq: first.seq,
        payload: rewritten.into(),
    };
    sink.forward(&first).await.map_err(RelayError::Client)?;
    relay.forwarded = true;
    relay.outcome.next_seq = first.seq.wrapping_add(1);
    for count in [ok.params, ok.columns] {
        if count == 0 {
            continue;
        }
        for _ in 0..count {
            relay.next(&mut sink).await?;
        }
        if !deprecate_eof {
            relay.next(&mut sink).await?;
        }
    }
    sink.flush().await.map_err(RelayError::Client)?;
    Ok(Ok(ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Writes `packets` (with sequence ids from 1) as a backend would, relays
    /// them, and returns what the client received plus the outcome.
    async fn relay(
        kind: ResponseKind,
        deprecate_eof: bool,
        packets: &[Vec<u8>],
    ) -> (Vec<Vec<u8>>, Outcome) {
        let (backend_end, server_end) = duplex(1 << 20);
        let (client_end, app_end) = duplex(1 << 20);
        let mut server = PacketStream::new(server_end);
        for (i, p) in packets.iter().enumerate() {
            server.queue_payload((i + 1) as u8, p);
        }
        server.flush().await.unwrap();
        let mut backend = PacketStream::new(backend_end);
        let mut client = PacketStream::new(client_end);
        let outcome = relay_response(&mut backend, Sink::Client(&mut client), kind, deprecate_eof)
            .await
            .unwrap();
        drop(client);
        let mut app = PacketStream::new(app_end);
        let mut got = Vec::new();
        while let Some(p) = app.read_packet().await.unwrap() {
            got.push(p.payload.to_vec());
        }
        (got, outcome)
    }

    fn ok(status: u16) -> Vec<u8> {
        packets::ok_packet(
            OkInfo {
                status,
                ..OkInfo::default()
            },
            Default::default(),
        )
    }

    const MORE: u16 = 0x0008;
    const IN_TRANS: u16 = 0x0001;

    #[tokio::test]
    async fn result_set_with_eof_packets() {
        let pkts = vec![
            vec![1],                          // one column
            b"\x03defcoldef".to_vec(),        // column definition (opaque here)
            packets::eof_packet(0, 0),        // end of columns
            b"\x01a".to_vec(),                // row
            packets::eof_packet(IN_TRANS, 3), // end of rows
        ];
        let (got, outcome) = relay(ResponseKind::Query, false, &pkts).await;
        assert_eq!(got, pkts, "relayed verbatim");
        assert_eq!(outcome.last.status, IN_TRANS);
        assert_eq!(outcome.last.warnings, 3);
        assert_eq!(outcome.next_seq, 6);
    }

    #[tokio::test]
    async fn multiple_results_are_all_relayed() {
        let mut end_first = vec![0xfe, 0, 0];
        end_first.extend_from_slice(&MORE.to_le_bytes());
        end_first.extend_from_slice(&[0, 0]);
        let pkts = vec![
            vec![1],
            b"coldef".to_vec(),
            b"\x01a".to_vec(),
            end_first, // OK-style terminator with MORE_RESULTS
            vec![1],
            b"coldef".to_vec(),
            b"\x01b".to_vec(),
            {
                let mut p = vec![0xfe, 0, 0];
                p.extend_from_slice(&MORE.to_le_bytes());
                p.extend_from_slice(&[0, 0]);
                p
            },
            ok(0), // the trailing OK of a CALL
        ];
        let (got, outcome) = relay(ResponseKind::Query, true, &pkts).await;
        assert_eq!(got.len(), pkts.len());
        assert_eq!(outcome.last.status, 0);
        assert!(outcome.error.is_none());
    }

    #[tokio::test]
    async fn error_mid_rows_ends_the_response() {
        let err = packets::err_packet(1317, b"70100", "Query execution was interrupted");
        let pkts = vec![vec![1], b"coldef".to_vec(), b"\x01a".to_vec(), err];
        let (got, outcome) = relay(ResponseKind::Query, true, &pkts).await;
        assert_eq!(got.len(), 4);
        assert_eq!(outcome.error.unwrap().code, 1317);
    }

    #[tokio::test]
    async fn field_list_ends_at_eof() {
        let pkts = vec![
            b"coldef1".to_vec(),
            b"coldef2".to_vec(),
            packets::eof_packet(2, 0),
        ];
        let (got, _) = relay(ResponseKind::FieldList, false, &pkts).await;
        assert_eq!(got.len(), 3);
    }

    #[tokio::test]
    async fn backend_closing_mid_response_is_reported_with_progress() {
        let (backend_end, server_end) = duplex(1 << 16);
        let (client_end, _app_end) = duplex(1 << 16);
        let mut server = PacketStream::new(server_end);
        server.queue_payload(1, &[1]);
        server.queue_payload(2, b"coldef");
        server.flush().await.unwrap();
        drop(server);
        let mut backend = PacketStream::new(backend_end);
        let mut client = PacketStream::new(client_end);
        let err = relay_response(
            &mut backend,
            Sink::Client(&mut client),
            ResponseKind::Query,
            true,
        )
        .await
        .unwrap_err();
        match err {
            RelayError::Backend {
                forwarded,
                next_seq,
                ..
            } => {
                assert!(forwarded);
                assert_eq!(next_seq, 3);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
