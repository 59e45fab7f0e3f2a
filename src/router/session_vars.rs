//! Session variables splitrail itself must act on, read from the `SET`
//! statements that assign them: `wait_timeout`, which splitrail enforces
//! for the client (its backend connections are pooled, so the server's
//! own timeout would close a backend connection, never the client's).

use super::classify::session_scoped;
use super::lexer::{kw, Lexer, Tok, Word};

/// What a `SET` does to the session's `wait_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTimeout {
    Seconds(u64),
    /// `= DEFAULT`: back to the global value.
    Default,
}

/// The last `wait_timeout` assignment of a session `SET` statement, when
/// its value is a number or `DEFAULT` (an expression is not evaluated:
/// the timeout then stays as it was).
pub fn wait_timeout(sql: &[u8]) -> Option<WaitTimeout> {
    let mut lx = Lexer::new(sql);
    if !matches!(lx.next_token(), Some(Tok::Word(w)) if w.is(kw!("SET"))) {
        return None;
    }
    let mut found = None;
    // The variable being assigned is wait_timeout.
    let mut target = false;
    // The value's tokens (for the assignment to wait_timeout).
    let mut value: Vec<Tok<'_>> = Vec::new();
    let mut in_value = false;
    let mut depth = 0usize;
    while let Some(tok) = lx.next_token() {
        if !in_value {
            match tok {
                Tok::Word(w) if w.is(kw!("WAIT_TIMEOUT")) => target = true,
                Tok::SysVar(name) => {
                    target = Word::new(session_scoped(name)).is(kw!("WAIT_TIMEOUT"))
                }
                Tok::Other(b'=') | Tok::Assign => in_value = true,
                _ => {}
            }
            continue;
        }
        match tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth = depth.saturating_sub(1),
            Tok::Comma | Tok::Semicolon if depth == 0 => {
                finish(target, &mut value, &mut found);
                in_value = false;
                target = false;
                continue;
            }
            _ => {}
        }
        value.push(tok);
    }
    if in_value {
        finish(target, &mut value, &mut found);
    }
    found
}

/// Ends one assignment: records it when it was to wait_timeout and its
/// value is a number or DEFAULT.
fn finish(target: bool, value: &mut Vec<Tok<'_>>, found: &mut Option<WaitTimeout>) {
    if target {
        match value.as_slice() {
            [Tok::Word(w)] if w.is(kw!("DEFAULT")) => *found = Some(WaitTimeout::Default),
            [Tok::Word(w)] => {
                if let Some(n) = std::str::from_utf8(w.text())
                    .ok()
                    .and_then(|t| t.parse().ok())
                {
                    *found = Some(WaitTimeout::Seconds(n));
                }
            }
            _ => {}
        }
    }
    value.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt(sql: &str) -> Option<WaitTimeout> {
        wait_timeout(sql.as_bytes())
    }

    #[test]
    fn wait_timeout_assignments() {
        use WaitTimeout::*;
        assert_eq!(wt("SET wait_timeout = 1"), Some(Seconds(1)));
        assert_eq!(wt("set session wait_timeout=30"), Some(Seconds(30)));
        assert_eq!(wt("SET @@session.wait_timeout = 5"), Some(Seconds(5)));
        assert_eq!(wt("SET @@wait_timeout=7, NAMES utf8mb4"), Some(Seconds(7)));
        assert_eq!(
            wt("SET NAMES utf8mb4, LOCAL wait_timeout = 9"),
            Some(Seconds(9))
        );
        assert_eq!(wt("SET wait_timeout = DEFAULT"), Some(Default));
        assert_eq!(
            wt("SET wait_timeout = 1, wait_timeout = 2"),
            Some(Seconds(2))
        );
        // Not evaluated, or not this variable.
        assert_eq!(wt("SET wait_timeout = 1 + 1"), None);
        assert_eq!(wt("SET wait_timeout = @x"), None);
        assert_eq!(wt("SET interactive_timeout = 1"), None);
        assert_eq!(wt("SET net_read_timeout = 1"), None);
        assert_eq!(wt("SET @wait_timeout = 1"), None);
        assert_eq!(wt("SELECT 1"), None);
    }
}
