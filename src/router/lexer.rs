//! A byte-level pre-lexer for MySQL statements: just enough tokenising to
//! classify a statement without allocating.
//!
//! It understands what can hide or reveal keywords: `-- ` and `#` comments,
//! `/* */` comments, executable comments (`/*! … */`, `/*M! … */`, whose
//! content MySQL runs and so is lexed as code), single- and double-quoted
//! strings with backslash and doubled-quote escapes, backtick identifiers,
//! user variables (`@x`, `@'x'`), system variables (`@@x`), `:=` and `;`.
//! Anything it does not understand becomes [`Tok::Other`], which the
//! classifier treats conservatively.

/// One token. Words borrow from the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    /// Keyword, unquoted identifier or number.
    Word(&'a [u8]),
    /// `` `identifier` ``.
    QuotedIdent,
    /// A string literal.
    Str,
    /// `@name` (user variable).
    UserVar,
    /// `@@name`, `@@session.name`, … (the text after `@@`).
    SysVar(&'a [u8]),
    /// `:=`
    Assign,
    LParen,
    RParen,
    Comma,
    Dot,
    /// `;`
    Semicolon,
    Other(u8),
}

pub struct Lexer<'a> {
    sql: &'a [u8],
    pos: usize,
    /// Inside `/*! … */`: the next `*/` closes it and is skipped.
    in_exec_comment: bool,
    /// True once any token was returned (hints only count before that).
    started: bool,
    /// True when an executable comment opened before the first token.
    pub leading_exec_comment: bool,
    /// The text of a leading `/* splitrail:… */` comment, if any.
    pub hint: Option<&'a [u8]>,
    semicolon_seen: bool,
    /// True when a token follows a `;`: more than one statement.
    pub multi_statement: bool,
}

fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[b as usize]
}

/// [`is_word_byte`] as a table: it runs for every byte of every word, and a
/// lookup is a fraction of the cost of the chain of comparisons.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    table
};

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a [u8]) -> Lexer<'a> {
        Lexer {
            sql,
            pos: 0,
            in_exec_comment: false,
            started: false,
            leading_exec_comment: false,
            hint: None,
            semicolon_seen: false,
            multi_statement: false,
        }
    }

    /// Byte offset just after the last token returned.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn next_token(&mut self) -> Option<Tok<'a>> {
        self.skip_space_and_comments();
        let b = *self.sql.get(self.pos)?;
        if self.semicolon_seen {
            self.multi_statement = true;
        }
        self.started = true;
        let start = self.pos;
        self.pos += 1;
        let tok = match b {
            b'\'' | b'"' => {
                self.skip_quoted(b);
                Tok::Str
            }
            b'`' => {
                self.skip_quoted(b'`');
                Tok::QuotedIdent
            }
            b'@' => self.variable(),
            b':' if self.peek() == Some(b'=') => {
                self.pos += 1;
                Tok::Assign
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b',' => Tok::Comma,
            b'.' => Tok::Dot,
            b';' => {
                self.semicolon_seen = true;
                Tok::Semicolon
            }
            _ if is_word_byte(b) => {
                let rest = &self.sql[self.pos..];
                self.pos += rest
                    .iter()
                    .position(|&b| !is_word_byte(b))
                    .unwrap_or(rest.len());
                Tok::Word(&self.sql[start..self.pos])
            }
            other => Tok::Other(other),
        };
        Some(tok)
    }

    fn peek(&self) -> Option<u8> {
        self.sql.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.sql.get(self.pos + offset).copied()
    }

    fn variable(&mut self) -> Tok<'a> {
        if self.peek() == Some(b'@') {
            self.pos += 1;
            let start = self.pos;
            // @@session.sql_mode: keep the dotted name together.
            while self.peek().is_some_and(|b| is_word_byte(b) || b == b'.') {
                self.pos += 1;
            }
            return Tok::SysVar(&self.sql[start..self.pos]);
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"' | b'`')) => {
                self.pos += 1;
                self.skip_quoted(q);
            }
            _ => {
                while self.peek().is_some_and(|b| is_word_byte(b) || b == b'.') {
                    self.pos += 1;
                }
            }
        }
        Tok::UserVar
    }

    /// Skips to after the closing `quote`. A doubled quote is an escaped
    /// quote; in strings a backslash escapes the next byte (the default
    /// sql_mode; with NO_BACKSLASH_ESCAPES a statement could be lexed
    /// differently, which at worst sends it to the writer or makes a
    /// misrouted write fail loudly on a read-only replica).
    fn skip_quoted(&mut self, quote: u8) {
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\\' && quote != b'`' {
                self.pos += 1;
            } else if b == quote {
                if self.peek() == Some(quote) {
                    self.pos += 1;
                } else {
                    return;
                }
            }
        }
        self.pos = self.sql.len();
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => self.skip_line(),
                // "-- " starts a comment only when followed by whitespace or
                // a control character (MySQL manual, "Comments").
                b'-' if self.peek_at(1) == Some(b'-')
                    && self.peek_at(2).is_none_or(|c| c <= b' ') =>
                {
                    self.skip_line()
                }
                b'/' if self.peek_at(1) == Some(b'*') => self.block_comment(),
                b'*' if self.in_exec_comment && self.peek_at(1) == Some(b'/') => {
                    self.in_exec_comment = false;
                    self.pos += 2;
                }
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\n' {
                return;
            }
        }
    }

    fn block_comment(&mut self) {
        let body = self.pos + 2;
        let exec = match (self.sql.get(body), self.sql.get(body + 1)) {
            (Some(b'!'), _) => Some(body + 1),
            (Some(b'M'), Some(b'!')) => Some(body + 2),
            _ => None,
        };
        if let Some(mut p) = exec {
            // Executable comment: its content is code. Skip the optional
            // version number and keep lexing inside.
            while self.sql.get(p).is_some_and(u8::is_ascii_digit) {
                p += 1;
            }
            self.pos = p;
            self.in_exec_comment = true;
            if !self.started {
                self.leading_exec_comment = true;
            }
            return;
        }
        let end = find(&self.sql[body..], b"*/").map(|i| body + i);
        let text = &self.sql[body..end.unwrap_or(self.sql.len())];
        if !self.started && self.hint.is_none() {
            let trimmed = text.trim_ascii();
            if let Some(h) = strip_prefix_ignore_case(trimmed, b"splitrail:") {
                self.hint = Some(h.trim_ascii());
            }
        }
        self.pos = end.map_or(self.sql.len(), |e| e + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        let mut lx = Lexer::new(sql.as_bytes());
        let mut out = Vec::new();
        while let Some(t) = lx.next_token() {
            out.push(match t {
                Tok::Word(w) => String::from_utf8_lossy(w).into_owned(),
                Tok::SysVar(v) => format!("@@{}", String::from_utf8_lossy(v)),
                other => format!("{other:?}"),
            });
        }
        out
    }

    #[test]
    fn comments_and_strings_hide_their_content() {
        assert_eq!(
            words("SELECT /* DELETE */ 'a;DELETE' -- x\n, 1 # y"),
            ["SELECT", "Str", "Comma", "1"]
        );
        assert_eq!(
            words(r"SELECT 'it\'s', 'a''b', `we``ird`"),
            ["SELECT", "Str", "Comma", "Str", "Comma", "QuotedIdent"]
        );
    }

    #[test]
    fn double_dash_needs_a_space_to_be_a_comment() {
        assert_eq!(
            words("SELECT 1--1"),
            ["SELECT", "1", "Other(45)", "Other(45)", "1"]
        );
    }

    #[test]
    fn executable_comments_are_code() {
        assert_eq!(
            words("SELECT /*!40001 SQL_NO_CACHE */ a"),
            ["SELECT", "SQL_NO_CACHE", "a"]
        );
        assert_eq!(words("/*M!100100 DELETE */ x"), ["DELETE", "x"]);
        let mut lx = Lexer::new(b"/*!50001 CREATE */");
        lx.next_token();
        assert!(lx.leading_exec_comment);
    }

    #[test]
    fn variables_and_assignment() {
        assert_eq!(
            words("SELECT @x := @@session.sql_mode"),
            ["SELECT", "UserVar", "Assign", "@@session.sql_mode"]
        );
    }

    #[test]
    fn multi_statement_needs_a_token_after_the_semicolon() {
        let mut lx = Lexer::new(b"SELECT 1; -- trailing\n");
        while lx.next_token().is_some() {}
        assert!(!lx.multi_statement);
        let mut lx = Lexer::new(b"SELECT 1; DELETE FROM t");
        while lx.next_token().is_some() {}
        assert!(lx.multi_statement);
    }

    #[test]
    fn leading_hint_is_captured() {
        let mut lx = Lexer::new(b"/* splitrail:node=r2 */ SELECT 1");
        lx.next_token();
        assert_eq!(lx.hint, Some(&b"node=r2"[..]));
        let mut lx = Lexer::new(b"SELECT /* splitrail:master */ 1");
        while lx.next_token().is_some() {}
        assert_eq!(lx.hint, None, "only a leading comment is a hint");
    }

    #[test]
    fn word_byte_table_is_the_rule() {
        for b in 0..=255u8 {
            let rule = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
            assert_eq!(is_word_byte(b), rule, "byte {b:#04x}");
        }
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for sql in [
            "'abc",
            "`abc",
            "/* abc",
            "/*!",
            "@",
            "@@",
            "-- ",
            "SELECT 'a\\",
        ] {
            let mut lx = Lexer::new(sql.as_bytes());
            while lx.next_token().is_some() {}
        }
    }
}
