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
//!
//! Words come with a [key](Word): their first bytes, case-folded, and their
//! length packed into a `u64` as the word is lexed, so that the classifier
//! compares a word with a keyword in one integer comparison and looks it up
//! in a [`KeywordIndex`] with one bit test for most words, instead of
//! comparing bytes case-insensitively against every keyword it knows.

/// One token. Words borrow from the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    /// Keyword, unquoted identifier or number.
    Word(Word<'a>),
    /// `` `identifier` ``: the text between the backticks (a doubled
    /// backtick inside stays doubled).
    QuotedIdent(&'a [u8]),
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

/// A word and its key.
///
/// The key packs the word's first [`KEY_BYTES`] bytes, case-folded,
/// little-endian into the low bytes of a `u64` (zero-padded), and its
/// length (capped at 255) into the high byte. A word has a keyword's key exactly
/// when it has the keyword's length and the same first seven bytes in any
/// case, so a keyword of up to seven bytes is recognised by the key alone
/// and a longer one by the key and then its remaining bytes.
///
/// Case folding clears bit 0x20 of each byte: for word bytes (letters,
/// digits, `_`, `$`, bytes ≥ 0x80) that merges exactly the two cases of a
/// letter, and a byte ≥ 0x80 keeps its high bit, so it never equals a
/// keyword byte. Text with any other byte is never a keyword; it gets
/// key 0, which no keyword has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Word<'a> {
    text: &'a [u8],
    key: u64,
}

/// How many leading bytes of a word its key holds.
pub const KEY_BYTES: usize = 7;

impl<'a> Word<'a> {
    /// A word from any bytes (the lexer builds its words faster, from a
    /// load of the eight bytes where the word starts).
    pub fn new(text: &'a [u8]) -> Word<'a> {
        let key = if text.iter().all(|&b| is_word_byte(b)) {
            key_of(text)
        } else {
            0
        };
        Word { text, key }
    }

    pub fn text(self) -> &'a [u8] {
        self.text
    }

    pub fn key(self) -> u64 {
        self.key
    }

    /// True when the word is `keyword` in any case. Inlined: called with a
    /// constant keyword it is one comparison for keywords of up to seven
    /// bytes.
    #[inline]
    pub fn is(self, keyword: &Keyword) -> bool {
        self.key == keyword.key && self.tail_is(keyword.text.as_bytes())
    }

    /// A number (or an identifier such as `1abc`, which MySQL allows): no
    /// keyword or function name starts with a digit. Read from the key,
    /// where case folding has mapped digits to 0x10..=0x19 (no other word
    /// byte lands there).
    #[inline]
    pub fn starts_with_digit(self) -> bool {
        (self.key as u8).wrapping_sub(b'0' & !0x20) < 10
    }

    /// The bytes past the key, compared case-insensitively; the key has
    /// already matched (so the lengths are equal).
    #[inline]
    fn tail_is(self, text: &[u8]) -> bool {
        if text.len() <= KEY_BYTES {
            return true;
        }
        match (self.text.get(KEY_BYTES..), text.get(KEY_BYTES..)) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// A keyword with its precomputed key, built at compile time with [`kw!`]
/// or [`Keyword::new`].
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    key: u64,
    text: &'static str,
}

impl Keyword {
    /// `text` must be an upper-case word (letters, digits, `_`, `$`); this
    /// is checked when the constant is evaluated.
    pub const fn new(text: &'static str) -> Keyword {
        let bytes = text.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() < 255, "keyword length");
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'$',
                "keywords are upper-case words"
            );
            i += 1;
        }
        Keyword {
            key: key_of(bytes),
            text,
        }
    }

    pub const fn text(&self) -> &'static str {
        self.text
    }
}

/// `kw!("SELECT")`: a `&Keyword` evaluated at compile time, for
/// [`Word::is`].
macro_rules! kw {
    ($text:literal) => {
        &const { $crate::router::lexer::Keyword::new($text) }
    };
}
pub(crate) use kw;

/// The key of a text made of word bytes (see [`Word`]).
const fn key_of(text: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let mut i = 0;
    while i < text.len() && i < KEY_BYTES {
        head[i] = text[i];
        i += 1;
    }
    key_from_head(u64::from_le_bytes(head), text.len())
}

/// The key of a word of `len` bytes whose first eight bytes (or fewer,
/// followed by anything) are `head`, read little-endian.
#[inline(always)]
const fn key_from_head(head: u64, len: usize) -> u64 {
    /// For `n` bytes kept, the mask that keeps the low `n` bytes and clears
    /// their case bit 0x20 (see [`Word`]).
    const MASKS: [u64; KEY_BYTES + 1] = {
        let mut masks = [0u64; KEY_BYTES + 1];
        let mut n = 1;
        while n <= KEY_BYTES {
            masks[n] = ((1u64 << (8 * n)) - 1) & !0x2020_2020_2020_2020;
            n += 1;
        }
        masks
    };
    let kept = if len < KEY_BYTES { len } else { KEY_BYTES };
    let len_byte = if len < 255 { len as u64 } else { 255 };
    (head & MASKS[kept]) | len_byte << 56
}

/// A constant set of keywords looked up by a word's key, built at compile
/// time: a 1024-bit filter in front of an open-addressing table of `SLOTS`
/// slots (a power of two, at least twice the number of keywords).
///
/// A word that is none of the keywords is usually turned away by the
/// filter: one multiplication, one load and a bit test, inlined, over 128
/// bytes that stay in cache. The table behind it is probed out of line.
pub struct KeywordIndex<const SLOTS: usize> {
    texts: &'static [&'static str],
    /// Bit `filter_bit(key)` is set for the key of every keyword.
    filter: [u64; 16],
    /// The keys of the keywords; 0 marks an empty slot (a keyword's key is
    /// never 0: its length byte is not).
    keys: [u64; SLOTS],
    /// For each slot, the keyword's index in `texts`.
    entries: [u16; SLOTS],
}

impl<const SLOTS: usize> KeywordIndex<SLOTS> {
    /// Panics at compile time on a keyword that is not upper case, is
    /// listed twice, or on a table too small for the list.
    pub const fn new(texts: &'static [&'static str]) -> Self {
        assert!(SLOTS.is_power_of_two() && SLOTS >= 2 && texts.len() * 2 <= SLOTS);
        assert!(texts.len() <= u16::MAX as usize);
        let mut filter = [0u64; 16];
        let mut keys = [0u64; SLOTS];
        let mut entries = [0u16; SLOTS];
        let mut i = 0;
        while i < texts.len() {
            let key = Keyword::new(texts[i]).key;
            let bit = filter_bit(key);
            filter[bit / 64] |= 1 << (bit % 64);
            let mut s = slot_of(key, SLOTS);
            while keys[s] != 0 {
                let other = texts[entries[s] as usize].as_bytes();
                assert!(
                    !bytes_eq(other, texts[i].as_bytes()),
                    "a keyword is listed twice"
                );
                s = (s + 1) & (SLOTS - 1);
            }
            keys[s] = key;
            entries[s] = i as u16;
            i += 1;
        }
        KeywordIndex {
            texts,
            filter,
            keys,
            entries,
        }
    }

    /// The position of `word` in the list, in any case.
    #[inline(always)]
    pub fn find(&self, word: Word<'_>) -> Option<usize> {
        let bit = filter_bit(word.key);
        if *self.filter.get(bit / 64)? & (1 << (bit % 64)) == 0 {
            return None;
        }
        self.probe(word)
    }

    /// [`KeywordIndex::find`] behind the filter.
    #[inline(never)]
    fn probe(&self, word: Word<'_>) -> Option<usize> {
        let mut s = slot_of(word.key, SLOTS);
        loop {
            let key = *self.keys.get(s)?;
            if key == 0 {
                return None;
            }
            if key == word.key {
                let entry = usize::from(*self.entries.get(s)?);
                // Several keywords may share a key (JSON_ARRAY_APPEND and
                // JSON_ARRAY_INSERT): on a different tail, keep probing.
                if word.tail_is(self.texts.get(entry)?.as_bytes()) {
                    return Some(entry);
                }
            }
            s = (s + 1) & (SLOTS - 1);
        }
    }

    #[inline]
    pub fn contains(&self, word: Word<'_>) -> bool {
        self.find(word).is_some()
    }
}

/// Fibonacci hashing: the key times 2^64 / φ mixes every bit of the key
/// into the top bits of the product.
#[inline]
const fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The filter bit of a key: the top ten bits of its hash.
#[inline]
const fn filter_bit(key: u64) -> usize {
    (hash(key) >> 54) as usize
}

/// The first slot to probe for a key in a table of `slots` slots: the
/// hash bits just below the filter's.
#[inline]
const fn slot_of(key: u64, slots: usize) -> usize {
    (hash(key) >> 22) as usize & (slots - 1)
}

/// The first column of a table of (keyword, value) pairs, for
/// [`KeywordIndex::new`]; `N` must be the table's length.
pub const fn first_column<T, const N: usize>(pairs: &[(&'static str, T)]) -> [&'static str; N] {
    assert!(pairs.len() == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = pairs[i].0;
        i += 1;
    }
    out
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[derive(Clone)]
pub struct Lexer<'a> {
    sql: &'a [u8],
    pos: usize,
    /// Inside `/*! … */`: the next `*/` closes it and is skipped.
    in_exec_comment: bool,
    /// True when an executable comment opened before the first token.
    pub leading_exec_comment: bool,
    /// The text of the first `splitrail:…` comment (block or line, anywhere
    /// in the statement), if any.
    pub hint: Option<&'a [u8]>,
    /// True when a token follows a `;`: more than one statement. Known
    /// as soon as the `;` is lexed.
    pub multi_statement: bool,
}

/// What a byte can start; one table lookup picks the lexer's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    /// Letters, digits, `_`, `$` and every byte ≥ 0x80 (UTF-8 identifiers).
    Word,
    /// `'` or `"`
    Quote,
    Backtick,
    At,
    Colon,
    LParen,
    RParen,
    Comma,
    Dot,
    Semicolon,
    /// `#`: a comment to the end of the line.
    Hash,
    /// `-`: a comment when `--` is followed by whitespace.
    Dash,
    /// `/`: a comment when followed by `*`.
    Slash,
    /// `*`: closes an executable comment when followed by `/`.
    Star,
    Other,
}

const CLASSES: [Class; 256] = {
    let mut table = [Class::Other; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Class::Space,
            b'\'' | b'"' => Class::Quote,
            b'`' => Class::Backtick,
            b'@' => Class::At,
            b':' => Class::Colon,
            b'(' => Class::LParen,
            b')' => Class::RParen,
            b',' => Class::Comma,
            b'.' => Class::Dot,
            b';' => Class::Semicolon,
            b'#' => Class::Hash,
            b'-' => Class::Dash,
            b'/' => Class::Slash,
            b'*' => Class::Star,
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => Class::Word,
            _ => Class::Other,
        };
        b += 1;
    }
    table
};

/// `CLASSES[b] == Class::Word` as a table of its own: it is read for
/// every byte of every word, and a separate load keeps the test a plain
/// branch (the compiler folds a test of `CLASSES` into the jump table).
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(CLASSES[b], Class::Word);
        b += 1;
    }
    table
};

#[inline(always)]
fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[b as usize]
}

impl<'a> Lexer<'a> {
    /// A lexer at the first token of `sql`: the whitespace and comments
    /// before it are read here, where a hint or an executable comment is
    /// noted, so that lexing tokens needs no "first token yet?" state.
    pub fn new(sql: &'a [u8]) -> Lexer<'a> {
        let mut lexer = Lexer {
            sql,
            pos: 0,
            in_exec_comment: false,
            leading_exec_comment: false,
            hint: None,
            multi_statement: false,
        };
        lexer.skip_to_token(true);
        lexer
    }

    /// Byte offset just after the last token returned.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The next token, or `None` at the end of the text.
    #[inline]
    pub fn next_token(&mut self) -> Option<Tok<'a>> {
        let mut next = None;
        self.scan(|tok| {
            next = Some(tok);
            false
        });
        next
    }

    /// Lexes the rest of the text.
    pub fn skip_to_end(&mut self) {
        self.scan(|_| true);
    }

    /// Calls `f` with each token in turn, until `f` returns false or the
    /// text ends.
    ///
    /// The classifier's hot loops run through here. Inlined, with `f`
    /// called from the arm that lexed the token: the compiler specialises
    /// `f` for each kind of token, instead of storing the token and
    /// dispatching on it a second time. Words, whitespace and punctuation
    /// (nearly every byte of most statements) take a table lookup and a few
    /// instructions; strings, variables, comments and `;` go through
    /// [`Lexer::rare_token`].
    #[inline(always)]
    pub fn scan(&mut self, mut f: impl FnMut(Tok<'a>) -> bool) {
        // The text and the position stay in locals (registers) in the loop;
        // `self.pos` is brought up to date before anything else reads it:
        // `rare_token` and the caller after the loop. (`f` cannot reach the
        // lexer: this call borrows it.)
        let sql = self.sql;
        let mut pos = self.pos;
        while let Some(&b) = sql.get(pos) {
            let start = pos;
            pos += 1;
            // Most whitespace is one space between two tokens.
            if b == b' ' {
                continue;
            }
            // Most tokens are words: a branch of their own, before the
            // jump table of the other classes.
            if WORD_BYTES[b as usize] {
                let word = word_at(sql, start);
                pos = start + word.text.len();
                if !f(Tok::Word(word)) {
                    break;
                }
                continue;
            }
            let more = match CLASSES[b as usize] {
                // (Words were handled above.)
                Class::Space | Class::Word => true,
                Class::LParen => f(Tok::LParen),
                Class::RParen => f(Tok::RParen),
                Class::Comma => f(Tok::Comma),
                Class::Dot => f(Tok::Dot),
                Class::Other => f(Tok::Other(b)),
                // ORMs quote every name, so backtick names are lexed here,
                // not in `rare_token`.
                Class::Backtick => {
                    let (name, end) = quoted_ident_at(sql, start);
                    pos = end;
                    f(Tok::QuotedIdent(name))
                }
                _ => {
                    self.pos = pos;
                    let tok = self.rare_token(b, start, false);
                    pos = self.pos;
                    match tok {
                        Some(tok) => f(tok),
                        None => true,
                    }
                }
            };
            if !more {
                break;
            }
        }
        self.pos = pos;
    }

    /// Skips whitespace and comments up to the first byte of a token.
    /// `leading`: before the first token, where a comment may be a hint or
    /// open an executable comment that makes the statement's verb unknown.
    fn skip_to_token(&mut self, leading: bool) {
        while let Some(&b) = self.sql.get(self.pos) {
            let start = self.pos;
            match CLASSES[b as usize] {
                Class::Space => self.pos += 1,
                Class::Hash | Class::Dash | Class::Slash | Class::Star => {
                    self.pos += 1;
                    if self.rare_token(b, start, leading).is_some() {
                        // Not a comment after all (`-`, `/`, `*`): a token.
                        self.pos = start;
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The token that starts with `b` at `start` (the lexer is past `b`),
    /// for the byte classes [`Lexer::scan`] does not handle itself; `None`
    /// after a comment. `leading` as for [`Lexer::skip_to_token`].
    #[inline(never)]
    fn rare_token(&mut self, b: u8, start: usize, leading: bool) -> Option<Tok<'a>> {
        let tok = match CLASSES[b as usize] {
            Class::Quote => {
                self.skip_quoted(b);
                Tok::Str
            }
            Class::At => self.variable(),
            Class::Colon if self.peek() == Some(b'=') => {
                self.pos += 1;
                Tok::Assign
            }
            Class::Semicolon => {
                // Look ahead (on a copy) for a token after the `;`.
                let mut next = self.clone();
                next.skip_to_token(false);
                if next.pos < self.sql.len() {
                    self.multi_statement = true;
                }
                Tok::Semicolon
            }
            Class::Hash => {
                self.skip_line();
                return None;
            }
            // "-- " starts a comment only when followed by whitespace or a
            // control character (MySQL manual, "Comments").
            Class::Dash
                if self.peek() == Some(b'-') && self.peek_at(1).is_none_or(|c| c <= b' ') =>
            {
                self.skip_line();
                return None;
            }
            Class::Slash if self.peek() == Some(b'*') => {
                self.block_comment(start, leading);
                return None;
            }
            Class::Star if self.in_exec_comment && self.peek() == Some(b'/') => {
                self.in_exec_comment = false;
                self.pos += 1;
                return None;
            }
            _ => Tok::Other(b),
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

    /// The rest of a `#` or `-- ` comment line (the lexer is past `#` or
    /// the first `-`), which may be a hint.
    fn skip_line(&mut self) {
        let body = self.pos;
        while let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\n' {
                break;
            }
        }
        let text = self.sql.get(body..self.pos).unwrap_or_default();
        self.note_hint(text.strip_prefix(b"-").unwrap_or(text));
    }

    /// A comment's text `/* splitrail:… */`, `-- splitrail:…` or
    /// `# splitrail:…` is a hint, wherever the comment stands (leading,
    /// after the verb, trailing: ORMs and query builders put comments
    /// anywhere, and MaxScale accepts them anywhere). The first one counts.
    fn note_hint(&mut self, comment: &'a [u8]) {
        if self.hint.is_none() {
            if let Some(h) = strip_prefix_ignore_case(comment.trim_ascii(), b"splitrail:") {
                self.hint = Some(h.trim_ascii());
            }
        }
    }

    /// A `/*` comment starting at `start`; `leading` as for
    /// [`Lexer::skip_to_token`].
    fn block_comment(&mut self, start: usize, leading: bool) {
        let body = start + 2;
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
            if leading {
                self.leading_exec_comment = true;
            }
            return;
        }
        let text = self.sql.get(body..).unwrap_or_default();
        let end = comment_end(text);
        self.note_hint(text.get(..end.unwrap_or(text.len())).unwrap_or_default());
        self.pos = end.map_or(self.sql.len(), |e| body + e + 2);
    }
}

/// The word starting at `start` in `sql` (a word byte), with its key taken
/// from one load of the eight bytes there (fewer near the end of the text).
/// (Finding the word's end in those eight bytes with bit tricks instead of
/// a byte loop was measured: more instructions, and slower on a 100-byte
/// SELECT.)
#[inline(always)]
fn word_at(sql: &[u8], start: usize) -> Word<'_> {
    let rest = sql.get(start..).unwrap_or_default();
    let len = word_len(rest);
    let text = rest.get(..len).unwrap_or_default();
    let key = match rest.first_chunk::<8>() {
        Some(head) => key_from_head(u64::from_le_bytes(*head), len),
        None => key_of(text),
    };
    Word { text, key }
}

/// The number of word bytes at the start of `text`.
#[inline(always)]
fn word_len(text: &[u8]) -> usize {
    text.iter()
        .position(|&b| !is_word_byte(b))
        .unwrap_or(text.len())
}

/// The offset of the first `*/` in `text`.
fn comment_end(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let star = from + text.get(from..)?.iter().position(|&b| b == b'*')?;
        if text.get(star + 1) == Some(&b'/') {
            return Some(star);
        }
        from = star + 1;
    }
}

pub fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// The backtick-quoted name starting at `start`: the text between the
/// backticks (a doubled backtick inside stays doubled; an unterminated name
/// runs to the end) and the position after it.
#[inline(always)]
fn quoted_ident_at(sql: &[u8], start: usize) -> (&[u8], usize) {
    let mut from = start + 1;
    loop {
        let Some(n) = sql[from..].iter().position(|&b| b == b'`') else {
            return (&sql[start + 1..], sql.len());
        };
        let close = from + n;
        if sql.get(close + 1) != Some(&b'`') {
            return (&sql[start + 1..close], close + 1);
        }
        from = close + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        let mut lx = Lexer::new(sql.as_bytes());
        let mut out = Vec::new();
        while let Some(t) = lx.next_token() {
            out.push(match t {
                Tok::Word(w) => String::from_utf8_lossy(w.text()).into_owned(),
                Tok::SysVar(v) => format!("@@{}", String::from_utf8_lossy(v)),
                Tok::QuotedIdent(v) => format!("`{}`", String::from_utf8_lossy(v)),
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
            ["SELECT", "Str", "Comma", "Str", "Comma", "`we``ird`"]
        );
        assert_eq!(
            words("SELECT `a`.`b`, ``"),
            ["SELECT", "`a`", "Dot", "`b`", "Comma", "``"]
        );
        assert_eq!(words("SELECT `unterminated"), ["SELECT", "`unterminated`"]);
    }

    #[test]
    fn double_dash_needs_a_space_to_be_a_comment() {
        assert_eq!(
            words("SELECT 1--1"),
            ["SELECT", "1", "Other(45)", "Other(45)", "1"]
        );
        assert_eq!(words("SELECT 1--\t2"), ["SELECT", "1"]);
        assert_eq!(words("SELECT 1--"), ["SELECT", "1"]);
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
        // Outside an executable comment, `*/` is two tokens.
        assert_eq!(words("a */ b"), ["a", "Other(42)", "Other(47)", "b"]);
    }

    #[test]
    fn variables_and_assignment() {
        assert_eq!(
            words("SELECT @x := @@session.sql_mode"),
            ["SELECT", "UserVar", "Assign", "@@session.sql_mode"]
        );
        assert_eq!(words("a : b"), ["a", "Other(58)", "b"]);
    }

    #[test]
    fn multi_statement_needs_a_token_after_the_semicolon() {
        let mut lx = Lexer::new(b"SELECT 1; -- trailing\n");
        while lx.next_token().is_some() {}
        assert!(!lx.multi_statement);
        let mut lx = Lexer::new(b"SELECT 1; DELETE FROM t");
        while lx.next_token().is_some() {}
        assert!(lx.multi_statement);
        let mut lx = Lexer::new(b"SELECT 1;;");
        while lx.next_token().is_some() {}
        assert!(lx.multi_statement, "a second `;` is a second statement");
        for sql in [
            "SELECT 1; /* c */ # d\n",
            "SELECT 1; /*!*/",
            "SELECT 1;\t-- e",
        ] {
            let mut lx = Lexer::new(sql.as_bytes());
            while lx.next_token().is_some() {}
            assert!(!lx.multi_statement, "{sql:?}: only comments follow");
        }
        // Known when the `;` is lexed, before what follows it.
        let mut lx = Lexer::new(b"SELECT 1; /* c */ SELECT 2");
        while lx.next_token() != Some(Tok::Semicolon) {}
        assert!(lx.multi_statement);
    }

    #[test]
    fn leading_hint_is_captured() {
        let mut lx = Lexer::new(b"/* splitrail:node=r2 */ SELECT 1");
        lx.next_token();
        assert_eq!(lx.hint, Some(&b"node=r2"[..]));
        // Any comment may be the hint: after the verb, trailing, a line
        // comment; never text inside a string.
        let mut lx = Lexer::new(b"SELECT /* splitrail:master */ 1");
        while lx.next_token().is_some() {}
        assert_eq!(lx.hint, Some(&b"master"[..]));
        let mut lx = Lexer::new(b"SELECT 1 FROM t -- splitrail:node=r1\n");
        while lx.next_token().is_some() {}
        assert_eq!(lx.hint, Some(&b"node=r1"[..]));
        let mut lx = Lexer::new(b"SELECT 1 # splitrail:writer");
        while lx.next_token().is_some() {}
        assert_eq!(lx.hint, Some(&b"writer"[..]));
        let mut lx = Lexer::new(b"SELECT '/* splitrail:master */' /* other */");
        while lx.next_token().is_some() {}
        assert_eq!(lx.hint, None);
        let mut lx = Lexer::new(b"/* splitrail:replica");
        lx.next_token();
        assert_eq!(lx.hint, Some(&b"replica"[..]), "unterminated comment");
        // Leading comments are read by `new`, and each may be the hint.
        let lx = Lexer::new(b"-- x\n/* a */ # b\n /*SPLITRAIL:writer*/ SELECT 1");
        assert_eq!(lx.hint, Some(&b"writer"[..]));
        let mut lx = Lexer::new(b"/*!*/ /* splitrail:master */ x");
        assert!(lx.leading_exec_comment);
        assert_eq!(lx.hint, Some(&b"master"[..]));
        assert!(matches!(lx.next_token(), Some(Tok::Word(_))));
        // The content of an executable comment is code: a token.
        let lx = Lexer::new(b"/*!40101 SET */ /* splitrail:master */ x");
        assert!(lx.leading_exec_comment);
        assert_eq!(lx.hint, None);
    }

    #[test]
    fn word_bytes_are_the_rule() {
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

    #[test]
    fn folding_merges_exactly_the_two_cases_of_a_letter() {
        // A word byte folds like a keyword byte iff they are equal ignoring
        // ASCII case; in every byte of the key. (Bytes ≥ 0x80 may fold
        // together, but never like a keyword byte.)
        let word_bytes: Vec<u8> = (0..=255u8).filter(|&b| is_word_byte(b)).collect();
        let keyword_bytes = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$";
        for &a in &word_bytes {
            for &b in keyword_bytes {
                for at in 0..KEY_BYTES {
                    let (mut x, mut y) = (*b"xxxxxxx", *b"xxxxxxx");
                    x[at] = a;
                    y[at] = b;
                    assert_eq!(
                        key_of(&x) == key_of(&y),
                        a.eq_ignore_ascii_case(&b),
                        "{a:#04x} {b:#04x} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn text_with_non_word_bytes_is_no_keyword() {
        // Folding alone would merge `_` (0x5f) with DEL (0x7f).
        assert!(!Word::new(b"GET\x7fLOCK").is(kw!("GET_LOCK")));
        assert_eq!(Word::new(b"SEL ECT").key(), 0);
        assert_eq!(Word::new(b"@x").key(), 0);
        assert!(Word::new(b"GET_LOCK").is(kw!("GET_LOCK")));
    }

    #[test]
    fn word_is_keyword_in_any_case_and_only_then() {
        let select = kw!("SELECT");
        for text in ["SELECT", "select", "SeLeCt"] {
            assert!(Word::new(text.as_bytes()).is(select), "{text}");
        }
        for text in ["SELEC", "SELECTS", "SELECT_", "XSELECT", "", "SEL ECT"] {
            assert!(!Word::new(text.as_bytes()).is(select), "{text}");
        }
        // A NUL can only come from bytes not lexed as a word; it still must
        // not pass for the zero padding of a shorter keyword.
        assert!(!Word::new(b"SELECT\0").is(select));
        assert!(!Word::new(b"SELE\0\0").is(kw!("SELE")));
    }

    #[test]
    fn keywords_longer_than_the_key_compare_their_tail() {
        let long = kw!("SQL_CALC_FOUND_ROWS");
        assert!(Word::new(b"sql_calc_found_rows").is(long));
        assert!(Word::new(b"Sql_Calc_Found_Rows").is(long));
        for text in [
            "SQL_CALC_FOUND_ROWX",
            "SQL_CALX_FOUND_ROWS",
            "SQL_CALC_FOUND_ROW",
            "SQL_CALC_FOUND_ROWSS",
        ] {
            assert!(!Word::new(text.as_bytes()).is(long), "{text}");
        }
        // Exactly seven and eight bytes: the boundary of the key.
        assert!(Word::new(b"replace").is(kw!("REPLACE")));
        assert!(!Word::new(b"replaced").is(kw!("REPLACE")));
        assert!(Word::new(b"truncate").is(kw!("TRUNCATE")));
        assert!(!Word::new(b"truncatx").is(kw!("TRUNCATE")));
        // A word of 255 bytes or more never equals a keyword.
        let huge = "A".repeat(300);
        assert!(!Word::new(huge.as_bytes()).is(kw!("A")));
    }

    #[test]
    fn bytes_from_0x80_never_equal_a_keyword_byte() {
        let keyword = kw!("DELETE_ALL_ROWS");
        let text = keyword.text().as_bytes();
        for i in 0..text.len() {
            for high in 0x80..=0xffu8 {
                let mut word = text.to_vec();
                word[i] = high;
                assert!(!Word::new(&word).is(keyword), "{word:?}");
            }
        }
    }

    #[test]
    fn lexed_words_have_the_key_of_their_text() {
        // Words at every distance from the end: the lexer loads eight bytes
        // where it can and falls back to a byte copy near the end.
        let sql = b"a Bc dEf ghiJ klmno pqrstu VWXYZab cdefghij klmnopqrs t\xc3\xa9l 42x";
        for start in 0..sql.len() {
            let mut lx = Lexer::new(&sql[start..]);
            while let Some(tok) = lx.next_token() {
                if let Tok::Word(w) = tok {
                    assert_eq!(w.key(), key_of(w.text()), "{:?}", w.text());
                    assert_eq!(w, Word::new(w.text()));
                }
            }
        }
    }

    #[test]
    fn digits_start_numbers_only() {
        assert!(Word::new(b"4242").starts_with_digit());
        assert!(Word::new(b"1abc").starts_with_digit());
        assert!(!Word::new(b"a1").starts_with_digit());
        assert!(!Word::new(b"_1").starts_with_digit());
        assert!(!Word::new(b"").starts_with_digit());
    }

    static INDEX: KeywordIndex<16> = KeywordIndex::new(&[
        "IN",
        "INTO",
        "JSON_ARRAY_APPEND",
        "JSON_ARRAY_INSERT",
        "SELECT",
    ]);

    #[test]
    fn keyword_index_finds_each_keyword_in_any_case() {
        for (i, text) in INDEX.texts.iter().enumerate() {
            assert_eq!(INDEX.find(Word::new(text.as_bytes())), Some(i), "{text}");
            let lower = text.to_ascii_lowercase();
            assert_eq!(INDEX.find(Word::new(lower.as_bytes())), Some(i), "{lower}");
        }
        // Same key as two entries (same length, same first seven bytes).
        assert!(!INDEX.contains(Word::new(b"JSON_ARRAY_REMOVE")));
        for text in ["", "I", "INT", "INTOO", "SELECTS", "JSON_ARRAY", "séLECT"] {
            assert!(!INDEX.contains(Word::new(text.as_bytes())), "{text}");
        }
    }
}
