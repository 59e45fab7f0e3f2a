//! Statements about connection ids, which must mean splitrail's sessions,
//! not the pooled backend connections behind them: `KILL [CONNECTION |
//! QUERY] <id>` is recognised here, and `CONNECTION_ID()` is replaced by
//! the session's own id before a statement leaves for a backend (a pooled
//! connection's id names some other client's connection a minute later).

use super::lexer::{kw, Lexer, Tok};

/// What a `KILL` statement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub scope: KillScope,
    pub target: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillScope {
    /// `KILL [CONNECTION] n`: end the connection.
    Connection,
    /// `KILL QUERY n`: interrupt the statement it runs.
    Query,
}

/// `KILL [HARD | SOFT] [CONNECTION | QUERY] <number>`; `None` for any other
/// statement, and for the forms that do not name a connection id (`KILL
/// QUERY ID <query id>`, `KILL USER <name>`).
pub fn parse_kill(sql: &[u8]) -> Option<Kill> {
    let mut lx = Lexer::new(sql);
    let mut word = || match lx.next_token() {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    };
    let mut w = word()?;
    if !w.is(kw!("KILL")) {
        return None;
    }
    w = word()?;
    if w.is(kw!("HARD")) || w.is(kw!("SOFT")) {
        w = word()?;
    }
    let mut scope = KillScope::Connection;
    if w.is(kw!("CONNECTION")) {
        w = word()?;
    } else if w.is(kw!("QUERY")) {
        scope = KillScope::Query;
        w = word()?;
    }
    let target = std::str::from_utf8(w.text()).ok()?.parse().ok()?;
    match lx.next_token() {
        None | Some(Tok::Semicolon) if lx.next_token().is_none() => Some(Kill { scope, target }),
        _ => None,
    }
}

/// `sql` with every `CONNECTION_ID()` call (outside strings, quoted names
/// and comments) replaced by `id`; `None` when it has none. A select-list
/// item that is only the call keeps its column name: `SELECT
/// CONNECTION_ID()` becomes ``SELECT 1073741825 AS `CONNECTION_ID()` ``.
pub fn rewrite_connection_id(sql: &[u8], id: u32) -> Option<Vec<u8>> {
    // Cheap test first: built-in function names take no space before `(`.
    const NAME: &[u8] = b"CONNECTION_ID";
    let mentions = memchr::memchr_iter(b'(', sql)
        .any(|p| p >= NAME.len() && sql[p - NAME.len()..p].eq_ignore_ascii_case(NAME));
    if !mentions {
        return None;
    }
    let base = sql.as_ptr() as usize;
    let mut lx = Lexer::new(sql);
    let mut toks: Vec<(Tok<'_>, usize, usize)> = Vec::new();
    while let Some(tok) = lx.next_token() {
        let end = lx.offset();
        let start = match tok {
            Tok::Word(w) => w.text().as_ptr() as usize - base,
            _ => end.saturating_sub(1),
        };
        toks.push((tok, start, end));
    }
    let mut out = Vec::with_capacity(sql.len() + 32);
    let mut copied = 0;
    let mut i = 0;
    while i + 2 < toks.len() {
        let is_call = matches!(toks[i].0, Tok::Word(w) if w.is(kw!("CONNECTION_ID")))
            && toks[i + 1].0 == Tok::LParen
            && toks[i + 2].0 == Tok::RParen
            && toks[i + 1].1 == toks[i].2;
        if !is_call {
            i += 1;
            continue;
        }
        let (start, end) = (toks[i].1, toks[i + 2].2);
        out.extend_from_slice(&sql[copied..start]);
        out.extend_from_slice(id.to_string().as_bytes());
        // Alone between SELECT or `,` and `,`, FROM or the end: a column
        // of its own, named as the server would name it.
        let before = i.checked_sub(1).map(|b| toks[b].0);
        let after = toks.get(i + 3).map(|t| t.0);
        let starts_item = matches!(before, Some(Tok::Comma))
            || matches!(before, Some(Tok::Word(w)) if w.is(kw!("SELECT")));
        let ends_item = matches!(after, None | Some(Tok::Comma) | Some(Tok::Semicolon))
            || matches!(after, Some(Tok::Word(w)) if w.is(kw!("FROM")));
        if starts_item && ends_item {
            out.extend_from_slice(b" AS `");
            out.extend_from_slice(&sql[start..end]);
            out.push(b'`');
        }
        copied = end;
        i += 3;
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&sql[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(sql: &str) -> Option<Kill> {
        parse_kill(sql.as_bytes())
    }

    #[test]
    fn kill_forms() {
        let conn = |target| {
            Some(Kill {
                scope: KillScope::Connection,
                target,
            })
        };
        let query = |target| {
            Some(Kill {
                scope: KillScope::Query,
                target,
            })
        };
        assert_eq!(kill("KILL 12"), conn(12));
        assert_eq!(kill("kill connection 1073741825;"), conn(1073741825));
        assert_eq!(kill("KILL HARD QUERY 7"), query(7));
        assert_eq!(kill("/* pool */ KILL SOFT 9"), conn(9));
        assert_eq!(kill("KILL QUERY ID 7"), None);
        assert_eq!(kill("KILL USER app"), None);
        assert_eq!(kill("KILL 7; DROP TABLE t"), None);
        assert_eq!(kill("KILL @id"), None);
        assert_eq!(kill("SELECT 1"), None);
        assert_eq!(kill("KILL"), None);
    }

    fn rewrite(sql: &str) -> Option<String> {
        rewrite_connection_id(sql.as_bytes(), 1073741825).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn connection_id_becomes_the_session_id() {
        assert_eq!(
            rewrite("SELECT CONNECTION_ID()").as_deref(),
            Some("SELECT 1073741825 AS `CONNECTION_ID()`")
        );
        assert_eq!(
            rewrite("select connection_id(), 1 from dual").as_deref(),
            Some("select 1073741825 AS `connection_id()`, 1 from dual")
        );
        assert_eq!(
            rewrite("SELECT * FROM t WHERE owner = CONNECTION_ID()").as_deref(),
            Some("SELECT * FROM t WHERE owner = 1073741825")
        );
        assert_eq!(
            rewrite("SELECT CONNECTION_ID() AS id").as_deref(),
            Some("SELECT 1073741825 AS id")
        );
        assert_eq!(
            rewrite("SELECT CONNECTION_ID()+1").as_deref(),
            Some("SELECT 1073741825+1")
        );
        // Not a call of it: strings, comments, quoted names, other words.
        assert_eq!(rewrite("SELECT 'CONNECTION_ID()'"), None);
        assert_eq!(rewrite("SELECT 1 /* CONNECTION_ID() */"), None);
        assert_eq!(rewrite("SELECT `CONNECTION_ID()` FROM t"), None);
        assert_eq!(rewrite("SELECT MY_CONNECTION_ID()"), None);
        assert_eq!(rewrite("SELECT 1"), None);
    }
}
