//! Statement classification (src/router): the pre-lexer's token loop, the
//! classifier, `USE` parsing, routing, and the `Classifier` with its
//! sqlparser fallback for the shapes the pre-lexer gives up on.
//!
//! Input: statement text as a client's COM_QUERY carries it (any bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitrail::router::lexer::{Lexer, Tok, Word};
use splitrail::router::{
    classify, route, use_database, Classifier, Route, SessionFlags, StatementKind,
};
use std::sync::OnceLock;

fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| Classifier::new(64))
}

fuzz_target!(|data: &[u8]| {
    // The lexer always moves forward and ends, and words are input bytes
    // with the key a word of those bytes has.
    let mut lx = Lexer::new(data);
    let mut last = 0;
    while let Some(tok) = lx.next_token() {
        let now = lx.offset();
        assert!(
            now > last && now <= data.len(),
            "lexer stuck or past the end"
        );
        let text = match tok {
            Tok::Word(w) => {
                assert_eq!(w, Word::new(w.text()), "lexed key differs");
                Some(w.text())
            }
            Tok::SysVar(v) => Some(v),
            _ => None,
        };
        if let Some(w) = text {
            let start = w.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start + w.len() <= now);
        }
        last = now;
    }

    let c = classify(data);
    let full = classifier().classify(data);
    if !c.unsure {
        assert_eq!(
            full, c,
            "the fallback only answers when the pre-lexer is unsure"
        );
    } else {
        // The parser may only turn an unsure write into a read.
        assert_eq!(c.kind, StatementKind::Write);
        assert!(matches!(
            full.kind,
            StatementKind::Write | StatementKind::Read
        ));
    }
    if let Some(db) = use_database(data) {
        assert!(!db.is_empty());
    }

    for flags in [
        SessionFlags::default(),
        SessionFlags {
            in_transaction: true,
            ..Default::default()
        },
        SessionFlags {
            pinned: true,
            ..Default::default()
        },
    ] {
        let r = route(&full, flags);
        // Outside the default state, only the writer or the previous
        // backend may answer.
        if flags != SessionFlags::default() {
            assert!(matches!(r, Route::Writer | Route::Previous), "{r:?}");
        }
    }
});
