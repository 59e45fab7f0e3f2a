//! Prepared statements (binary protocol) for one session.
//!
//! The client sees one statement id per COM_STMT_PREPARE. Behind it the
//! statement may be prepared on several backend connections (lazily, on the
//! first EXECUTE routed there); each `BackendConn` maps the session's id to
//! its own. This module keeps the session-side registry and rewrites
//! COM_STMT_* payloads for a backend; it does no I/O.

use crate::backend::conn::BackendStmt;
use crate::router::Classification;
use crate::topology::NodeId;
use bytes::Bytes;
use std::collections::HashMap;

/// `flags` bits of COM_STMT_EXECUTE that ask for a cursor.
const CURSOR_TYPE_MASK: u8 = 0x0f;

#[derive(Debug)]
pub struct Statement {
    pub sql: Bytes,
    pub class: Classification,
    pub params: u16,
    /// Parameter types from the last EXECUTE that bound them, for backends
    /// that have not seen them yet (see [`rewrite_execute`]).
    pub param_types: Option<Bytes>,
    /// COM_STMT_SEND_LONG_DATA payloads waiting for the next EXECUTE; they
    /// are sent to whichever backend runs it.
    pub long_data: Vec<Bytes>,
    pub long_data_bytes: usize,
    /// The node where an EXECUTE opened a cursor; FETCH goes there.
    pub cursor_node: Option<NodeId>,
    /// The server still has that cursor open (it closes it once the last
    /// row was fetched); while it does, the session keeps its connection.
    pub cursor_open: bool,
}

#[derive(Debug, Default)]
pub struct Statements {
    by_id: HashMap<u32, Statement>,
    next_id: u32,
}

impl Statements {
    /// Registers a statement and returns the id the client will see.
    pub fn add(&mut self, sql: Bytes, class: Classification, params: u16) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.by_id.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        self.by_id.insert(
            self.next_id,
            Statement {
                sql,
                class,
                params,
                param_types: None,
                long_data: Vec::new(),
                long_data_bytes: 0,
                cursor_node: None,
                cursor_open: false,
            },
        );
        self.next_id
    }

    /// The id the next [`Statements::add`] will return (the PREPARE
    /// response is relayed before the statement is known to be valid).
    pub fn peek_next_id(&self) -> u32 {
        let mut id = self.next_id.wrapping_add(1).max(1);
        while self.by_id.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        id
    }

    pub fn get(&self, id: u32) -> Option<&Statement> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Statement> {
        self.by_id.get_mut(&id)
    }

    pub fn remove(&mut self, id: u32) -> Option<Statement> {
        self.by_id.remove(&id)
    }

    /// True when a statement has a cursor open (bound to its connection).
    pub fn has_open_cursor(&self) -> bool {
        self.by_id.values().any(|s| s.cursor_open)
    }

    pub fn clear(&mut self) {
        self.by_id.clear();
    }
}

/// The statement id of any COM_STMT_* payload (bytes 1..5).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let b = payload.get(1..5)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Copy of a COM_STMT_* payload with the statement id replaced.
pub fn with_statement_id(payload: &[u8], id: u32) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.len() >= 5 {
        out[1..5].copy_from_slice(&id.to_le_bytes());
    }
    out
}

/// The parts of a COM_STMT_EXECUTE payload we need (MySQL "COM_STMT_EXECUTE"):
/// `0x17, stmt_id(4), flags(1), iteration_count(4)`, then for statements
/// with parameters a NULL bitmap of (params+7)/8 bytes,
/// `new_params_bound_flag(1)`, the types (2 bytes each) when that flag is 1,
/// and the values.
#[derive(Debug, PartialEq, Eq)]
pub struct ExecuteLayout {
    pub flags: u8,
    /// Offset of new_params_bound_flag, if the statement has parameters.
    pub bound_flag_at: Option<usize>,
    /// Byte range of the types, when the client sent them.
    pub types: Option<std::ops::Range<usize>>,
}

impl ExecuteLayout {
    pub fn parse(payload: &[u8], params: u16) -> Option<ExecuteLayout> {
        let flags = *payload.get(5)?;
        if payload.len() < 10 {
            return None;
        }
        if params == 0 {
            return Some(ExecuteLayout {
                flags,
                bound_flag_at: None,
                types: None,
            });
        }
        let bound_at = 10 + (params as usize).div_ceil(8);
        let bound = *payload.get(bound_at)?;
        let types = if bound == 1 {
            let range = bound_at + 1..bound_at + 1 + 2 * params as usize;
            payload.get(range.clone())?;
            Some(range)
        } else {
            None
        };
        Some(ExecuteLayout {
            flags,
            bound_flag_at: Some(bound_at),
            types,
        })
    }

    pub fn opens_cursor(&self) -> bool {
        self.flags & CURSOR_TYPE_MASK != 0
    }
}

/// The EXECUTE payload for one backend: its statement id, and the
/// parameter types inserted when the client relies on types it bound in an
/// earlier EXECUTE that ran on another connection.
pub fn rewrite_execute(
    payload: &[u8],
    layout: &ExecuteLayout,
    backend: BackendStmt,
    types: Option<&[u8]>,
) -> Vec<u8> {
    match (layout.bound_flag_at, &layout.types, types) {
        (Some(at), None, Some(types)) if !backend.types_bound => {
            let mut out = Vec::with_capacity(payload.len() + types.len());
            out.extend_from_slice(&payload[..at]);
            out.push(1);
            out.extend_from_slice(types);
            out.extend_from_slice(&payload[at + 1..]);
            out[1..5].copy_from_slice(&backend.id.to_le_bytes());
            out
        }
        _ => with_statement_id(payload, backend.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execute(stmt: u32, params: &[(u16, &[u8])], bound: bool) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        if !params.is_empty() {
            p.extend(std::iter::repeat_n(0u8, params.len().div_ceil(8)));
            p.push(bound as u8);
            if bound {
                for (t, _) in params {
                    p.extend_from_slice(&t.to_le_bytes());
                }
            }
            for (_, v) in params {
                p.extend_from_slice(v);
            }
        }
        p
    }

    #[test]
    fn layout_of_executes() {
        let with_types = execute(
            7,
            &[(3, &[1, 0, 0, 0]), (8, &[2, 0, 0, 0, 0, 0, 0, 0])],
            true,
        );
        let l = ExecuteLayout::parse(&with_types, 2).unwrap();
        assert_eq!(l.bound_flag_at, Some(11));
        assert_eq!(l.types, Some(12..16));
        let without = execute(7, &[(3, &[1, 0, 0, 0])], false);
        let l = ExecuteLayout::parse(&without, 1).unwrap();
        assert_eq!(l.types, None);
        assert_eq!(ExecuteLayout::parse(&[0x17, 1, 0], 0), None, "truncated");
        assert_eq!(ExecuteLayout::parse(&execute(1, &[], false)[..10], 3), None);
    }

    #[test]
    fn types_are_inserted_for_a_backend_that_never_saw_them() {
        let types = [3u8, 0];
        let client = execute(7, &[(3, &[9, 0, 0, 0])], false);
        let layout = ExecuteLayout::parse(&client, 1).unwrap();
        let fresh = BackendStmt {
            id: 42,
            types_bound: false,
        };
        let out = rewrite_execute(&client, &layout, fresh, Some(&types));
        assert_eq!(out, execute(42, &[(3, &[9, 0, 0, 0])], true));
        let bound = BackendStmt {
            id: 42,
            types_bound: true,
        };
        let out = rewrite_execute(&client, &layout, bound, Some(&types));
        assert_eq!(out, execute(42, &[(3, &[9, 0, 0, 0])], false));
    }

    #[test]
    fn ids_are_unique_and_never_zero() {
        let mut s = Statements::default();
        let c = crate::router::classify(b"SELECT 1");
        let a = s.add("SELECT 1".into(), c.clone(), 0);
        let b = s.add("SELECT 1".into(), c, 0);
        assert_ne!(a, b);
        assert!(a > 0 && b > 0);
    }
}
