//! COM_STMT_EXECUTE handling (src/session/prepared.rs): the layout parser
//! and the payload rewrites done before an EXECUTE goes to a backend.
//!
//! Input: `[params_lo, params_hi, backend_id(4), flags, payload…]`; the
//! parameter count is what the session remembers from the PREPARE, so it
//! is independent of the payload, as it is for a hostile client. `flags`
//! bit 0: the backend already has the parameter types; bit 1: the session
//! remembers types from an earlier EXECUTE (taken from the payload's end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitrail::backend::conn::BackendStmt;
use splitrail::session::prepared::{
    rewrite_execute, statement_id, with_statement_id, ExecuteLayout,
};

fuzz_target!(|data: &[u8]| {
    let [p0, p1, b0, b1, b2, b3, flags, payload @ ..] = data else {
        return;
    };
    // Real statements have at most 65,535 parameters; small counts are
    // where the layout is interesting, so fold most inputs down.
    let params = match u16::from_le_bytes([*p0, *p1]) {
        n if p1 & 0x80 != 0 => n,
        n => n % 64,
    };
    let backend = BackendStmt {
        id: u32::from_le_bytes([*b0, *b1, *b2, *b3]),
        types_bound: flags & 1 != 0,
    };

    let id = statement_id(payload);
    assert_eq!(id.is_some(), payload.len() >= 5);
    let renamed = with_statement_id(payload, backend.id);
    assert_eq!(renamed.len(), payload.len());
    if id.is_some() {
        assert_eq!(statement_id(&renamed), Some(backend.id));
        assert_eq!(renamed[5..], payload[5..]);
    }

    let Some(layout) = ExecuteLayout::parse(payload, params) else {
        return;
    };
    assert!(payload.len() >= 10);
    let _ = layout.opens_cursor();
    if let Some(at) = layout.bound_flag_at {
        assert!(at < payload.len());
    }
    if let Some(types) = &layout.types {
        assert_eq!(types.len(), 2 * params as usize);
        assert!(types.end <= payload.len());
    }

    let remembered =
        (flags & 2 != 0).then(|| &payload[payload.len().saturating_sub(2 * params as usize)..]);
    let out = rewrite_execute(payload, &layout, backend, remembered);
    assert_eq!(statement_id(&out), Some(backend.id));
    let inserted = layout.bound_flag_at.is_some()
        && layout.types.is_none()
        && remembered.is_some()
        && !backend.types_bound;
    if !inserted {
        assert_eq!(out, renamed);
        return;
    }
    // Types were inserted: the result has them bound, right where the
    // layout says, and everything else unchanged.
    let types = remembered.unwrap_or_default();
    assert_eq!(out.len(), payload.len() + types.len());
    if types.len() == 2 * params as usize {
        let again = ExecuteLayout::parse(&out, params).expect("rewritten EXECUTE parses");
        assert_eq!(again.flags, layout.flags);
        assert_eq!(again.bound_flag_at, layout.bound_flag_at);
        let range = again.types.expect("types are bound now");
        assert_eq!(&out[range.clone()], types);
        assert_eq!(
            out[range.end..],
            payload[layout.bound_flag_at.unwrap_or(0) + 1..]
        );
    }
});
