//! Reading and writing the generic response packets (OK, ERR, EOF) and the
//! command bytes.
//!
//! The relay parses only what it must: packet kinds and the status flags
//! that tell a session its true transaction state. Everything else passes
//! through verbatim.

use mysql_common::constants::{CapabilityFlags, StatusFlags};

/// Command bytes (first byte of a client command packet).
pub mod command {
    pub const SLEEP: u8 = 0x00;
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const REFRESH: u8 = 0x07;
    pub const STATISTICS: u8 = 0x09;
    pub const DEBUG: u8 = 0x0d;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
    /// MariaDB: many rows of parameters for one prepared statement.
    pub const STMT_BULK_EXECUTE: u8 = 0xfa;
}

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xfe;
pub const ERR_HEADER: u8 = 0xff;
pub const LOCAL_INFILE_HEADER: u8 = 0xfb;

/// Reads a length-encoded integer at `*pos`, advancing it.
pub fn read_lenenc(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    let (value, width) = match first {
        0..=0xfa => (first as u64, 1),
        0xfc => (
            u16::from_le_bytes(buf.get(*pos + 1..*pos + 3)?.try_into().ok()?) as u64,
            3,
        ),
        0xfd => {
            let b = buf.get(*pos + 1..*pos + 4)?;
            (u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64, 4)
        }
        0xfe => (
            u64::from_le_bytes(buf.get(*pos + 1..*pos + 9)?.try_into().ok()?),
            9,
        ),
        _ => return None,
    };
    *pos += width;
    Some(value)
}

pub fn write_lenenc(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfa => out.push(value as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// The fields of an OK packet (or of an EOF packet, which has no counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

impl OkInfo {
    pub fn status_flags(&self) -> StatusFlags {
        StatusFlags::from_bits_truncate(self.status)
    }

    pub fn more_results(&self) -> bool {
        self.status_flags()
            .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
    }
}

/// Parses an OK packet, or an OK-with-0xFE-header that ends a result set
/// when CLIENT_DEPRECATE_EOF is on: header, affected rows, last insert id,
/// status flags, warnings.
pub fn parse_ok(payload: &[u8]) -> Option<OkInfo> {
    let mut pos = 1;
    let affected_rows = read_lenenc(payload, &mut pos)?;
    let last_insert_id = read_lenenc(payload, &mut pos)?;
    let status = u16::from_le_bytes(payload.get(pos..pos + 2)?.try_into().ok()?);
    let warnings = payload
        .get(pos + 2..pos + 4)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .unwrap_or(0);
    Some(OkInfo {
        affected_rows,
        last_insert_id,
        status,
        warnings,
    })
}

/// Parses a classic EOF packet: 0xFE, warnings (2), status flags (2).
pub fn parse_eof(payload: &[u8]) -> Option<OkInfo> {
    let b = payload.get(1..5)?;
    Some(OkInfo {
        warnings: u16::from_le_bytes([b[0], b[1]]),
        status: u16::from_le_bytes([b[2], b[3]]),
        ..OkInfo::default()
    })
}

/// True when `payload` is the packet that ends a row stream: an EOF packet
/// (0xFE, shorter than 9 bytes) or, with CLIENT_DEPRECATE_EOF, an OK packet
/// with a 0xFE header. A *row* can only begin with 0xFE when its first value
/// is 2^24 bytes or longer, which makes the packet exactly 0xFF_FFFF long.
pub fn is_end_of_rows(payload: &[u8], deprecate_eof: bool) -> bool {
    payload.first() == Some(&EOF_HEADER)
        && if deprecate_eof {
            payload.len() < super::codec::MAX_CHUNK
        } else {
            payload.len() < 9
        }
}

/// Status of the packet that ends a row stream (see [`is_end_of_rows`]).
pub fn end_of_rows_info(payload: &[u8], deprecate_eof: bool) -> Option<OkInfo> {
    if deprecate_eof {
        parse_ok(payload)
    } else {
        parse_eof(payload)
    }
}

/// Builds an OK packet as a server would for these client capabilities.
pub fn ok_packet(info: OkInfo, client_caps: CapabilityFlags) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.push(OK_HEADER);
    write_lenenc(&mut out, info.affected_rows);
    write_lenenc(&mut out, info.last_insert_id);
    out.extend_from_slice(&info.status.to_le_bytes());
    out.extend_from_slice(&info.warnings.to_le_bytes());
    if client_caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
        // info: string<lenenc>, empty.
        out.push(0);
    }
    out
}

/// Builds an EOF packet (COM_SET_OPTION and pre-4.1-style terminators).
pub fn eof_packet(status: u16, warnings: u16) -> Vec<u8> {
    let mut out = vec![EOF_HEADER];
    out.extend_from_slice(&warnings.to_le_bytes());
    out.extend_from_slice(&status.to_le_bytes());
    out
}

/// An ERR packet, parsed: error code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

/// A MariaDB progress report: an ERR packet with error code 0xFFFF, sent
/// before the response to clients with MARIADB_CLIENT_PROGRESS.
pub fn is_progress_report(payload: &[u8]) -> bool {
    payload.get(..3) == Some(&[ERR_HEADER, 0xff, 0xff])
}

pub fn parse_err(payload: &[u8]) -> Option<ErrInfo> {
    if payload.first() != Some(&ERR_HEADER) {
        return None;
    }
    let code = u16::from_le_bytes(payload.get(1..3)?.try_into().ok()?);
    let (state, msg) = match payload.get(3) {
        Some(b'#') => {
            let state: [u8; 5] = payload.get(4..9)?.try_into().ok()?;
            (state, payload.get(9..).unwrap_or_default())
        }
        _ => (*b"HY000", payload.get(3..).unwrap_or_default()),
    };
    Some(ErrInfo {
        code,
        state,
        message: String::from_utf8_lossy(msg).into_owned(),
    })
}

pub fn err_packet(code: u16, state: &[u8; 5], message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + message.len());
    out.push(ERR_HEADER);
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    out.extend_from_slice(state);
    out.extend_from_slice(message.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_roundtrip() {
        for v in [
            0u64,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write_lenenc(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_lenenc(&buf, &mut pos), Some(v));
            assert_eq!(pos, buf.len());
        }
        assert_eq!(read_lenenc(&[0xfc, 1], &mut 0), None, "truncated");
        assert_eq!(read_lenenc(&[0xff], &mut 0), None, "0xff is not lenenc");
    }

    #[test]
    fn ok_packet_roundtrip() {
        let info = OkInfo {
            affected_rows: 3,
            last_insert_id: 300,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits(),
            warnings: 2,
        };
        let pkt = ok_packet(info, CapabilityFlags::CLIENT_SESSION_TRACK);
        assert_eq!(parse_ok(&pkt), Some(info));
    }

    #[test]
    fn truncated_ok_is_rejected() {
        assert_eq!(parse_ok(&[0x00, 0x01]), None);
        assert_eq!(parse_eof(&[0xfe, 0x00]), None);
    }

    #[test]
    fn eof_detection_depends_on_deprecate_eof() {
        let eof = eof_packet(2, 0);
        assert!(is_end_of_rows(&eof, false));
        let ok_style = [0xfe, 0, 0, 2, 0, 0, 0];
        assert!(is_end_of_rows(&ok_style, true));
        let long_row = vec![0xfe; 20];
        assert!(!is_end_of_rows(&long_row, false));
        assert!(is_end_of_rows(&long_row, true));
        assert!(!is_end_of_rows(&[0x01, b'a'], true));
    }

    #[test]
    fn err_roundtrip() {
        let pkt = err_packet(1045, b"28000", "Access denied");
        let err = parse_err(&pkt).unwrap();
        assert_eq!(err.code, 1045);
        assert_eq!(&err.state, b"28000");
        assert_eq!(err.message, "Access denied");
        assert_eq!(parse_err(&[0xff, 1]), None);
    }
}
