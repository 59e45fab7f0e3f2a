//! The second opinion for statements the pre-lexer cannot place by their
//! shape (a `WITH` it cannot follow, `TABLE t`, `VALUES …`, a parenthesised
//! start that is not a SELECT): `sqlparser` with the MySQL dialect decides
//! whether the text is one plain query, and every function it calls must be
//! a known side-effect-free built-in. A parse failure means writer.
//!
//! Parsing costs microseconds, so answers are cached by statement text in a
//! bounded LRU ([`Classifier`]); the pre-lexer's own answers are not cached
//! (they cost less than a hash of the text).

use super::classify::{classify, token_deny_list_ok, Classification, StatementKind};
use super::functions::is_safe_before_paren;
use lru::LruCache;
use sqlparser::ast::{visit_expressions, Expr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::Mutex;

/// True when `sql` is one query (SELECT, set operation, TABLE, VALUES,
/// WITH … SELECT) that calls only known-safe built-in functions.
pub fn parses_as_plain_read(sql: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(sql) else {
        return false;
    };
    let Ok(statements) = Parser::parse_sql(&MySqlDialect {}, text) else {
        return false;
    };
    let [Statement::Query(query)] = statements.as_slice() else {
        return false;
    };
    if !query.locks.is_empty() {
        return false;
    }
    let calls_only_builtins = visit_expressions(&statements, |expr| match expr {
        Expr::Function(f) => {
            let builtin = f.name.0.len() == 1
                && f.name.0[0].as_ident().is_some_and(|id| {
                    id.quote_style.is_none() && is_safe_before_paren(id.value.as_bytes())
                });
            if builtin {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
        _ => ControlFlow::Continue(()),
    });
    calls_only_builtins.is_continue()
}

/// The pre-lexer, with the parser as a cached second opinion where the
/// pre-lexer is unsure. Shared by all sessions; the lock is held only for
/// a cache lookup or insert, never while parsing.
pub struct Classifier {
    cache: Mutex<LruCache<Box<[u8]>, bool>>,
}

impl Classifier {
    pub fn new(capacity: usize) -> Classifier {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Classifier {
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn classify(&self, sql: &[u8]) -> Classification {
        let mut c = classify(sql);
        if !c.unsure {
            return c;
        }
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .copied();
        let is_read = match cached {
            Some(answer) => answer,
            None => {
                let answer = parses_as_plain_read(sql) && token_deny_list_ok(sql);
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .put(sql.into(), answer);
                answer
            }
        };
        if is_read {
            c.kind = StatementKind::Read;
        }
        c
    }

    pub fn cached_entries(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_the_pre_lexer_gives_up_on() {
        let c = Classifier::new(16);
        for sql in [
            "(WITH a AS (SELECT 1) SELECT * FROM a)",
            "VALUES ROW(1, 2), ROW(3, 4)",
            "(VALUES ROW(1)) UNION (SELECT 2)",
        ] {
            let got = c.classify(sql.as_bytes());
            assert!(got.unsure, "{sql}: expected the pre-lexer to be unsure");
            assert_eq!(got.kind, StatementKind::Read, "{sql}");
        }
        for sql in [
            "(WITH a AS (SELECT 1) SELECT my_func(1) FROM a)",
            "(WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE)",
            "(WITH a AS (SELECT 1) SELECT * FROM a INTO @x)",
            "(WITH x AS (SELECT 1) DELETE FROM t)",
            "TABLE t",
            "VALUES ROW(1, 2) garbage garbage",
        ] {
            assert_eq!(
                c.classify(sql.as_bytes()).kind,
                StatementKind::Write,
                "{sql}"
            );
        }
    }

    #[test]
    fn answers_are_cached_and_bounded() {
        let c = Classifier::new(2);
        for sql in [
            "VALUES ROW(1)",
            "VALUES ROW(2)",
            "VALUES ROW(3)",
            "VALUES ROW(1)",
        ] {
            c.classify(sql.as_bytes());
        }
        assert_eq!(c.cached_entries(), 2);
        // The pre-lexer's own answers are not cached.
        c.classify(b"SELECT 1");
        assert_eq!(c.cached_entries(), 2);
    }
}
