//! Statement classification on top of the pre-lexer: what kind of
//! statement this is, and whether it pins the session to the writer.

use super::functions::is_safe_before_paren;
use super::lexer::{strip_prefix_ignore_case, Lexer, Tok};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A plain read that may run on a replica.
    Read,
    /// Must run on the writer.
    Write,
    /// `USE db`: runs on the writer and is recorded as session state.
    Use,
    /// `SET` of session state. `replayable` = the same text gives the same
    /// result on any backend (no subquery, no function call), so it is
    /// recorded and replayed; otherwise the session is pinned to the writer.
    SessionSet { replayable: bool },
    /// Reads the diagnostics of the previous statement.
    PreviousBackend,
    /// `START TRANSACTION READ ONLY`: the whole transaction may run on one
    /// replica.
    BeginReadOnly,
}

/// Writer-only state a statement creates or releases. Most of it stays
/// until the session is reset (temporary tables, user variables, SQL-level
/// prepared statements, …: `Sticky`); table locks and named locks have a
/// statement that releases them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    Sticky,
    /// LOCK TABLES, FLUSH TABLES … WITH READ LOCK; released by UNLOCK TABLES.
    TableLocks,
    /// GET_LOCK(); released by RELEASE_ALL_LOCKS().
    NamedLocks,
    /// State for the session's next statement or transaction only (`SET
    /// TRANSACTION …`, `SET insert_id = …`): it lives on the writer
    /// connection, must not be replayed elsewhere, and is consumed by the
    /// next statement.
    NextStatement,
}

/// A routing hint from a leading `/* splitrail:… */` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    Writer,
    Replica,
    Node(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: StatementKind,
    /// Running this statement leaves state that only the writer
    /// connection has (LOCK TABLES, GET_LOCK, temporary tables, user
    /// variables assigned from data, SQL-level PREPARE, SQL_CALC_FOUND_ROWS).
    pub pins_writer: bool,
    /// What kind of state it pins (meaningful when `pins_writer`).
    pub pin: Pin,
    /// State this statement releases when it succeeds.
    pub releases: Option<Pin>,
    /// The pre-lexer could not follow the statement's shape and answered
    /// "writer" to be safe; `fallback::Classifier` asks the parser.
    pub unsure: bool,
    pub hint: Option<Hint>,
}

impl Classification {
    /// A plain read (for commands that are reads by nature, such as
    /// COM_FIELD_LIST).
    pub fn read() -> Self {
        Self::new(StatementKind::Read)
    }

    fn new(kind: StatementKind) -> Self {
        Classification {
            kind,
            pins_writer: false,
            pin: Pin::Sticky,
            releases: None,
            unsure: false,
            hint: None,
        }
    }

    fn unsure() -> Self {
        Classification {
            unsure: true,
            ..Self::new(StatementKind::Write)
        }
    }

    fn pinning(kind: StatementKind) -> Self {
        Classification {
            pins_writer: true,
            ..Self::new(kind)
        }
    }
}

// Inlined: it runs dozens of times per word, against constant keywords.
#[inline]
fn is(word: &[u8], keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword.as_bytes())
}

fn is_word(tok: Option<Tok<'_>>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if is(w, keyword))
}

/// Classifies one COM_QUERY text.
pub fn classify(sql: &[u8]) -> Classification {
    let mut lx = Lexer::new(sql);
    let mut first = lx.next_token();
    let mut parens = 0;
    while first == Some(Tok::LParen) {
        parens += 1;
        first = lx.next_token();
    }
    let hint = lx.hint.and_then(parse_hint);
    let mut c = match first {
        // `/*!50001 … */` before the first keyword: a server of another
        // version may not run that part, so we cannot know the verb.
        // It may also change session state (mysqldump's `/*!40101 SET
        // NAMES … */`), so the session stays on the writer.
        _ if lx.leading_exec_comment => Classification::pinning(StatementKind::Write),
        Some(Tok::Word(w)) if is(w, "SELECT") => ReadScan::default().run(&mut lx),
        Some(Tok::Word(_)) if parens > 0 => Classification::unsure(),
        Some(Tok::Word(w)) if is(w, "TABLE") || is(w, "VALUES") => Classification::unsure(),
        Some(Tok::Word(w)) if is(w, "WITH") => with_statement(&mut lx),
        Some(Tok::Word(w)) if is(w, "SHOW") => show_statement(&mut lx),
        Some(Tok::Word(w)) if is(w, "DESCRIBE") || is(w, "DESC") || is(w, "EXPLAIN") => {
            explain_statement(&mut lx)
        }
        Some(Tok::Word(w)) if is(w, "USE") => {
            single(&mut lx, Classification::new(StatementKind::Use))
        }
        Some(Tok::Word(w)) if is(w, "SET") => set_statement(&mut lx),
        Some(Tok::Word(w)) if is(w, "START") || is(w, "BEGIN") => transaction_start(w, &mut lx),
        Some(Tok::Word(w)) if is(w, "UNLOCK") => Classification {
            releases: Some(Pin::TableLocks),
            ..Classification::new(StatementKind::Write)
        },
        Some(Tok::Word(w)) => {
            let pin = pins_on_write(w, &mut lx);
            Classification {
                pins_writer: pin.is_some(),
                pin: pin.unwrap_or(Pin::Sticky),
                ..Classification::new(StatementKind::Write)
            }
        }
        _ => Classification::new(StatementKind::Write),
    };
    // Several statements in one packet run in order on one connection:
    // that connection must be the writer's. We do not record what the later
    // statements change (USE, SET, temporary tables, locks), so the session
    // stays on the writer from then on.
    while lx.next_token().is_some() {}
    if lx.multi_statement {
        c.kind = StatementKind::Write;
        c.pins_writer = true;
        c.pin = Pin::Sticky;
        c.releases = None;
        c.unsure = false;
    }
    c.hint = hint;
    c
}

fn parse_hint(text: &[u8]) -> Option<Hint> {
    if is(text, "master") || is(text, "writer") || is(text, "primary") {
        Some(Hint::Writer)
    } else if is(text, "replica") || is(text, "slave") {
        Some(Hint::Replica)
    } else {
        let name = strip_prefix_ignore_case(text, b"node=")?;
        std::str::from_utf8(name.trim_ascii())
            .ok()
            .map(|n| Hint::Node(n.into()))
    }
}

/// A statement that must be alone: anything after it makes it a write.
fn single(lx: &mut Lexer<'_>, c: Classification) -> Classification {
    while lx.next_token().is_some() {}
    c
}

/// Writes that leave state only the writer connection has.
fn pins_on_write(verb: &[u8], lx: &mut Lexer<'_>) -> Option<Pin> {
    if is(verb, "LOCK") {
        return Some(Pin::TableLocks);
    }
    // CALL: a procedure can set user variables (OUT parameters), create
    // temporary tables or take locks on the writer connection.
    // HANDLER … OPEN keeps a table handle on the connection.
    if is(verb, "PREPARE") || is(verb, "EXECUTE") || is(verb, "CALL") || is(verb, "HANDLER") {
        return Some(Pin::Sticky);
    }
    if is(verb, "CREATE") {
        // CREATE [OR REPLACE] TEMPORARY TABLE
        for _ in 0..3 {
            match lx.next_token() {
                Some(Tok::Word(w)) if is(w, "TEMPORARY") => return Some(Pin::Sticky),
                Some(Tok::Word(w)) if is(w, "OR") || is(w, "REPLACE") => continue,
                _ => return None,
            }
        }
    }
    // GET_LOCK() / user variables inside a write (e.g. `DO GET_LOCK(…)`,
    // `UPDATE … SET x = @v := …`).
    let mut prev: Option<Tok<'_>> = None;
    let flush = is(verb, "FLUSH");
    while let Some(tok) = lx.next_token() {
        match (prev, tok) {
            (Some(Tok::Word(w)), Tok::LParen) if is(w, "GET_LOCK") => return Some(Pin::NamedLocks),
            (_, Tok::Assign) => return Some(Pin::Sticky),
            // FLUSH TABLES … WITH READ LOCK / FOR EXPORT hold a lock.
            (_, Tok::Word(w)) if flush && (is(w, "LOCK") || is(w, "EXPORT")) => {
                return Some(Pin::TableLocks)
            }
            _ => {}
        }
        prev = Some(tok);
    }
    None
}

/// BEGIN / START TRANSACTION: a transaction declared READ ONLY (and not a
/// compound `BEGIN NOT ATOMIC` block or `START SLAVE`) may run on a replica.
fn transaction_start(verb: &[u8], lx: &mut Lexer<'_>) -> Classification {
    let mut c = Classification::new(StatementKind::Write);
    if is(verb, "START") && !is_word(lx.next_token(), "TRANSACTION") {
        return c;
    }
    // START TRANSACTION [WITH CONSISTENT SNAPSHOT] [, READ ONLY | READ WRITE]
    let mut prev = None;
    while let Some(tok) = lx.next_token() {
        if let (Some(Tok::Word(p)), Tok::Word(w)) = (prev, tok) {
            if is(p, "READ") && is(w, "ONLY") {
                c.kind = StatementKind::BeginReadOnly;
            }
        }
        prev = Some(tok);
    }
    c
}

/// Scans a SELECT (or the body of WITH/EXPLAIN) for anything that makes it
/// unsafe on a replica.
#[derive(Default)]
struct ReadScan<'a> {
    prev: Option<Tok<'a>>,
    before_prev: Option<Tok<'a>>,
    unsafe_for_replica: bool,
    pins: bool,
    pin: Option<Pin>,
    releases: Option<Pin>,
    previous_backend: bool,
    /// INSERT or REPLACE was the last word: a write verb unless `(` follows
    /// (then it is the string function).
    verb_or_function: bool,
    /// Function calls are judged elsewhere (the parser fallback).
    skip_call_check: bool,
}

impl<'a> ReadScan<'a> {
    fn run(mut self, lx: &mut Lexer<'a>) -> Classification {
        while let Some(tok) = lx.next_token() {
            if tok == Tok::Semicolon {
                break;
            }
            self.feed(tok);
        }
        self.finish()
    }

    fn finish(mut self) -> Classification {
        if self.verb_or_function {
            self.unsafe_for_replica = true;
        }
        if self.previous_backend && !self.unsafe_for_replica {
            return Classification::new(StatementKind::PreviousBackend);
        }
        let kind = if self.unsafe_for_replica {
            StatementKind::Write
        } else {
            StatementKind::Read
        };
        Classification {
            pins_writer: self.pins,
            pin: self.pin.unwrap_or(Pin::Sticky),
            releases: self.releases,
            ..Classification::new(kind)
        }
    }

    fn feed(&mut self, tok: Tok<'a>) {
        if std::mem::take(&mut self.verb_or_function) && tok != Tok::LParen {
            self.unsafe_for_replica = true;
        }
        match (self.prev, tok) {
            // A function call: safe only when it is a known built-in.
            (Some(Tok::Word(_)), Tok::LParen) if self.skip_call_check => {}
            (Some(Tok::QuotedIdent), Tok::LParen) if self.skip_call_check => {}
            (Some(Tok::Word(w)), Tok::LParen) => {
                let qualified = self.before_prev == Some(Tok::Dot);
                if qualified || !is_safe_before_paren(w) {
                    self.unsafe_for_replica = true;
                    if is(w, "GET_LOCK") {
                        self.pins = true;
                        self.pin = Some(Pin::NamedLocks);
                    }
                    if is(w, "RELEASE_ALL_LOCKS") {
                        self.releases = Some(Pin::NamedLocks);
                    }
                }
            }
            // `my_func`(…): a quoted name is never a built-in.
            (Some(Tok::QuotedIdent), Tok::LParen) => self.unsafe_for_replica = true,
            // information_schema.PROCESSLIST, performance_schema.x: the same
            // data as SHOW PROCESSLIST / SHOW STATUS. It describes the node
            // that answers, and the client means the primary.
            (Some(Tok::Dot), Tok::Word(w)) if NODE_STATE_TABLES.iter().any(|t| is(w, t)) => {
                self.unsafe_for_replica = true
            }
            (Some(Tok::Word(w)), Tok::Dot) if is(w, "PERFORMANCE_SCHEMA") => {
                self.unsafe_for_replica = true
            }
            // seq.NEXTVAL / seq.CURRVAL (MariaDB Oracle-mode sequences).
            (Some(Tok::Dot), Tok::Word(w))
                if is(w, "NEXTVAL") || is(w, "CURRVAL") || is(w, "LASTVAL") =>
            {
                self.unsafe_for_replica = true
            }
            (Some(Tok::Word(w)), Tok::Word(next)) => {
                // FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
                if (is(w, "FOR") && (is(next, "UPDATE") || is(next, "SHARE")))
                    || (is(w, "LOCK") && is(next, "IN"))
                {
                    self.unsafe_for_replica = true;
                }
                // NEXT VALUE FOR seq / PREVIOUS VALUE FOR seq
                if (is(w, "NEXT") || is(w, "PREVIOUS")) && is(next, "VALUE") {
                    self.unsafe_for_replica = true;
                }
            }
            _ => {}
        }
        match tok {
            Tok::Word(w) => self.word(w),
            Tok::Assign => {
                self.unsafe_for_replica = true;
                self.pins = true;
            }
            Tok::SysVar(name) => self.system_variable(name),
            _ => {}
        }
        self.before_prev = self.prev;
        self.prev = Some(tok);
    }

    fn word(&mut self, w: &[u8]) {
        if is(w, "INTO") {
            // SELECT … INTO @var / OUTFILE / DUMPFILE
            self.unsafe_for_replica = true;
            self.pins = true;
        } else if is(w, "SQL_CALC_FOUND_ROWS") {
            self.unsafe_for_replica = true;
            self.pins = true;
        } else if may_be_write_verb(w) && WRITE_VERBS.iter().any(|v| is(w, v)) {
            // A write verb inside a read (`WITH … DELETE`, a second verb
            // that slipped through): not a plain read.
            // INSERT(…)/REPLACE(…)/TRUNCATE(…) functions are decided at `(`.
            if !(is(w, "INSERT") || is(w, "REPLACE") || is(w, "TRUNCATE")) {
                self.unsafe_for_replica = true;
            } else {
                self.verb_or_function = true;
            }
        }
    }

    fn system_variable(&mut self, name: &[u8]) {
        let name = strip_prefix_ignore_case(name, b"session.")
            .or_else(|| strip_prefix_ignore_case(name, b"local."))
            .unwrap_or(name);
        if is(name, "warning_count") || is(name, "error_count") {
            self.previous_backend = true;
        } else if is(name, "last_insert_id")
            || is(name, "identity")
            || strip_prefix_ignore_case(name, b"global.").is_some()
            || is_node_state_variable(name)
        {
            self.unsafe_for_replica = true;
        }
    }
}

/// Words naming tables whose rows describe the answering server itself.
const NODE_STATE_TABLES: &[&str] = &[
    "PROCESSLIST",
    "GLOBAL_STATUS",
    "GLOBAL_VARIABLES",
    "SESSION_STATUS",
    "SESSION_VARIABLES",
];

/// System variables that tell which role the answering server has or where
/// its replication stands. Drivers read `@@read_only` /
/// `@@innodb_read_only` to find the primary, so a replica must not answer.
/// (`@@server_id` and `@@hostname` stay replica-eligible: they are how people
/// see where a read went, as with MaxScale and ProxySQL.)
fn is_node_state_variable(name: &[u8]) -> bool {
    [
        "read_only",
        "super_read_only",
        "innodb_read_only",
        "log_bin",
    ]
    .iter()
    .any(|v| is(name, v))
        || strip_prefix_ignore_case(name, b"gtid_").is_some()
}

/// Verbs that make a statement a write wherever they stand outside quotes.
const WRITE_VERBS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "RENAME",
    "GRANT",
    "REVOKE",
    "CALL",
    "LOAD",
    "HANDLER",
    "UNLOCK",
    "OPTIMIZE",
    "REPAIR",
    "FLUSH",
    "PURGE",
    "KILL",
    "INSTALL",
    "UNINSTALL",
    "SHUTDOWN",
    "SAVEPOINT",
    "COMMIT",
    "ROLLBACK",
    "SIGNAL",
    "RESIGNAL",
];

/// A cheap pre-test for `WRITE_VERBS.iter().any(|v| is(w, v))`, which runs
/// for every word of every SELECT: false when no write verb has `w`'s first
/// letter and length (most words of a SELECT), so the list is scanned only
/// for the few words that pass.
fn may_be_write_verb(w: &[u8]) -> bool {
    /// For each letter A–Z, bit n is set when a write verb of n bytes starts
    /// with it.
    const LENGTHS_BY_LETTER: [u32; 26] = {
        let mut table = [0u32; 26];
        let mut i = 0;
        while i < WRITE_VERBS.len() {
            let verb = WRITE_VERBS[i].as_bytes();
            assert!(verb[0].is_ascii_uppercase() && verb.len() < 32);
            table[(verb[0] - b'A') as usize] |= 1 << verb.len();
            i += 1;
        }
        table
    };
    match w.first() {
        Some(b) if b.is_ascii_alphabetic() && w.len() < 32 => {
            LENGTHS_BY_LETTER[(b.to_ascii_uppercase() - b'A') as usize] & (1 << w.len()) != 0
        }
        _ => false,
    }
}

/// `WITH [RECURSIVE] name [(columns)] AS (query) [, …] main-statement`:
/// a read only when every CTE body and the main statement are reads.
fn with_statement(lx: &mut Lexer<'_>) -> Classification {
    let mut scan = ReadScan::default();
    let mut tok = lx.next_token();
    if is_word(tok, "RECURSIVE") {
        tok = lx.next_token();
    }
    loop {
        // CTE name, then an optional column list (names only, no calls).
        if !matches!(tok, Some(Tok::Word(_) | Tok::QuotedIdent)) {
            return single(lx, Classification::unsure());
        }
        tok = lx.next_token();
        if tok == Some(Tok::LParen) {
            if !skip_balanced(lx) {
                return Classification::unsure();
            }
            tok = lx.next_token();
        }
        if !is_word(tok, "AS") || lx.next_token() != Some(Tok::LParen) {
            return single(lx, Classification::unsure());
        }
        // The CTE body, up to its closing parenthesis.
        let mut depth = 1;
        while depth > 0 {
            let Some(t) = lx.next_token() else {
                return Classification::unsure();
            };
            match t {
                Tok::LParen => depth += 1,
                Tok::RParen => depth -= 1,
                _ => {}
            }
            scan.feed(t);
        }
        scan.prev = None;
        scan.before_prev = None;
        tok = lx.next_token();
        if tok == Some(Tok::Comma) {
            tok = lx.next_token();
            continue;
        }
        break;
    }
    // The main statement must itself be a SELECT.
    let mut main = tok;
    while main == Some(Tok::LParen) {
        main = lx.next_token();
    }
    if !is_word(main, "SELECT") {
        return single(lx, Classification::unsure());
    }
    scan.run(lx)
}

/// The pre-lexer's token rules alone (locking clauses, INTO, `:=`, write
/// verbs, session-bound variables, several statements), with function calls
/// left to the parser: used with the parser's verdict on shape.
pub fn token_deny_list_ok(sql: &[u8]) -> bool {
    let mut lx = Lexer::new(sql);
    let mut scan = ReadScan {
        skip_call_check: true,
        ..ReadScan::default()
    };
    while let Some(tok) = lx.next_token() {
        if tok == Tok::Semicolon {
            break;
        }
        scan.feed(tok);
    }
    while lx.next_token().is_some() {}
    let c = scan.finish();
    !lx.multi_statement
        && !lx.leading_exec_comment
        && c.kind == StatementKind::Read
        && !c.pins_writer
}

/// Skips to the parenthesis that closes one already opened; false at end
/// of input.
fn skip_balanced(lx: &mut Lexer<'_>) -> bool {
    let mut depth = 1;
    while depth > 0 {
        match lx.next_token() {
            Some(Tok::LParen) => depth += 1,
            Some(Tok::RParen) => depth -= 1,
            Some(_) => {}
            None => return false,
        }
    }
    true
}

/// SHOW statements about schema objects read the same on every node; the
/// ones about the server or the session (VARIABLES, STATUS, PROCESSLIST,
/// MASTER STATUS, GRANTS, PROFILE, …) describe the node that answers, and
/// the client means the primary.
fn show_statement(lx: &mut Lexer<'_>) -> Classification {
    const SCHEMA_SHOWS: &[&str] = &[
        "TABLES",
        "COLUMNS",
        "FIELDS",
        "INDEX",
        "INDEXES",
        "KEYS",
        "CREATE",
        "DATABASES",
        "SCHEMAS",
        "TABLE",
        "CHARACTER",
        "CHARSET",
        "COLLATION",
        "ENGINES",
        "STORAGE",
        "TRIGGERS",
        "EVENTS",
        "PLUGINS",
        "PRIVILEGES",
        "FUNCTION",
        "PROCEDURE",
    ];
    let mut tok = lx.next_token();
    if is_word(tok, "WARNINGS") || is_word(tok, "ERRORS") {
        return single(lx, Classification::new(StatementKind::PreviousBackend));
    }
    if is_word(tok, "COUNT") {
        // SHOW COUNT(*) WARNINGS / ERRORS
        return single(lx, Classification::new(StatementKind::PreviousBackend));
    }
    if is_word(tok, "FULL") || is_word(tok, "EXTENDED") {
        tok = lx.next_token();
        if is_word(tok, "FULL") {
            tok = lx.next_token();
        }
    }
    let kind = match tok {
        Some(Tok::Word(w)) if SCHEMA_SHOWS.iter().any(|s| is(w, s)) => StatementKind::Read,
        _ => StatementKind::Write,
    };
    single(lx, Classification::new(kind))
}

/// DESCRIBE t / EXPLAIN SELECT …: reads, except EXPLAIN ANALYZE (which runs
/// the statement), EXPLAIN FOR CONNECTION, and explaining a write.
fn explain_statement(lx: &mut Lexer<'_>) -> Classification {
    let mut tok = lx.next_token();
    loop {
        match tok {
            Some(Tok::Word(w)) if is(w, "EXTENDED") || is(w, "PARTITIONS") => tok = lx.next_token(),
            Some(Tok::Word(w)) if is(w, "FORMAT") => {
                // FORMAT = JSON|TREE|TRADITIONAL
                lx.next_token();
                lx.next_token();
                tok = lx.next_token();
            }
            _ => break,
        }
    }
    match tok {
        Some(Tok::Word(w)) if is(w, "SELECT") => ReadScan::default().run(lx),
        Some(Tok::Word(w)) if is(w, "WITH") => with_statement(lx),
        Some(Tok::LParen) => {
            let mut t = lx.next_token();
            while t == Some(Tok::LParen) {
                t = lx.next_token();
            }
            if is_word(t, "SELECT") {
                ReadScan::default().run(lx)
            } else {
                single(lx, Classification::new(StatementKind::Write))
            }
        }
        Some(Tok::Word(w))
            if is(w, "ANALYZE")
                || is(w, "FOR")
                || WRITE_VERBS.iter().any(|v| is(w, v))
                || is(w, "TABLE")
                || is(w, "VALUES") =>
        {
            single(lx, Classification::new(StatementKind::Write))
        }
        // DESCRIBE table [column]
        Some(Tok::Word(_) | Tok::QuotedIdent) => {
            let mut c = Classification::new(StatementKind::Read);
            while let Some(t) = lx.next_token() {
                if !matches!(
                    t,
                    Tok::Word(_) | Tok::QuotedIdent | Tok::Dot | Tok::Str | Tok::Semicolon
                ) {
                    c.kind = StatementKind::Write;
                }
            }
            c
        }
        _ => single(lx, Classification::new(StatementKind::Write)),
    }
}

/// SET statements: session state is recorded and replayed; global state,
/// passwords, default roles, the next transaction's characteristics and
/// SET STATEMENT … FOR are plain writes.
///
/// A SET is replayable only if every value is a constant: a subquery, a
/// function call, a system variable or a parameterless function like
/// CURRENT_TIMESTAMP would give another value on another node (or later).
/// Such a SET runs on the writer and pins the session there.
fn set_statement(lx: &mut Lexer<'_>) -> Classification {
    let write = |lx: &mut Lexer<'_>| single(lx, Classification::new(StatementKind::Write));
    let next_statement = |lx: &mut Lexer<'_>| {
        let c = Classification {
            pin: Pin::NextStatement,
            ..Classification::pinning(StatementKind::Write)
        };
        single(lx, c)
    };
    let mut replayable = true;
    // True between `=` and the next top-level `,`.
    let mut in_value = false;
    let mut depth = 0usize;
    let mut first = true;
    while let Some(tok) = lx.next_token() {
        if !in_value {
            match tok {
                // SET TRANSACTION (no SESSION/GLOBAL): the next transaction only.
                Tok::Word(w) if first && is(w, "TRANSACTION") => return next_statement(lx),
                Tok::Word(w) if is_one_shot_variable(w) => return next_statement(lx),
                Tok::SysVar(name) if is_one_shot_variable(session_scoped(name)) => {
                    return next_statement(lx)
                }
                Tok::Word(w) if first && SET_WRITES.iter().any(|k| is(w, k)) => return write(lx),
                Tok::Word(w) if is(w, "GLOBAL") || is(w, "PERSIST") || is(w, "PERSIST_ONLY") => {
                    return write(lx)
                }
                Tok::SysVar(name)
                    if ["global.", "persist.", "persist_only."]
                        .iter()
                        .any(|p| strip_prefix_ignore_case(name, p.as_bytes()).is_some()) =>
                {
                    return write(lx)
                }
                Tok::Other(b'=') | Tok::Assign => in_value = true,
                _ => {}
            }
            first = false;
            continue;
        }
        match tok {
            Tok::LParen => {
                depth += 1;
                replayable = false;
            }
            Tok::RParen => depth = depth.saturating_sub(1),
            Tok::Comma if depth == 0 => in_value = false,
            Tok::SysVar(_) => replayable = false,
            Tok::Word(w) if is(w, "SELECT") || NOW_WORDS.iter().any(|k| is(w, k)) => {
                replayable = false
            }
            _ => {}
        }
    }
    if first {
        return Classification::new(StatementKind::Write);
    }
    if replayable {
        Classification::new(StatementKind::SessionSet { replayable: true })
    } else {
        Classification::pinning(StatementKind::SessionSet { replayable: false })
    }
}

/// First words after SET that make it something other than session state.
/// Session variables that describe the next statement only; replaying them
/// on another connection (or later) would be wrong.
fn is_one_shot_variable(name: &[u8]) -> bool {
    ["insert_id", "last_insert_id", "rand_seed1", "rand_seed2"]
        .iter()
        .any(|v| is(name, v))
}

/// `session.x` / `local.x` → `x` (the text of a `@@…` token).
fn session_scoped(name: &[u8]) -> &[u8] {
    strip_prefix_ignore_case(name, b"session.")
        .or_else(|| strip_prefix_ignore_case(name, b"local."))
        .unwrap_or(name)
}

const SET_WRITES: &[&str] = &[
    "GLOBAL",
    "PERSIST",
    "PERSIST_ONLY",
    "PASSWORD",
    "DEFAULT",
    "TRANSACTION",
    "STATEMENT",
];

/// Functions that may be written without parentheses and whose value
/// depends on when or where they run.
const NOW_WORDS: &[&str] = &[
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "UTC_TIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
    "CURRENT_USER",
    "CURRENT_ROLE",
];

/// The database named by `USE db` (unquoting a backtick identifier).
pub fn use_database(sql: &[u8]) -> Option<String> {
    let mut lx = Lexer::new(sql);
    if !is_word(lx.next_token(), "USE") {
        return None;
    }
    let text = std::str::from_utf8(sql.get(lx.offset()..)?).ok()?;
    let rest = text.trim_start();
    let name = if let Some(quoted) = rest.strip_prefix('`') {
        let mut out = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '`' {
                if chars.peek() == Some(&'`') {
                    chars.next();
                    out.push('`');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        rest.split(|c: char| c.is_whitespace() || c == ';')
            .next()?
            .to_string()
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_verb_pretest_passes_every_verb_in_any_case() {
        for verb in WRITE_VERBS {
            let lower = verb.to_ascii_lowercase();
            let mixed: String = verb
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect();
            for spelling in [verb.to_string(), lower, mixed] {
                assert!(may_be_write_verb(spelling.as_bytes()), "{spelling}");
            }
        }
        for word in ["", "id", "4242", "WHERE", "sbtest1", "_x", "é", "INSERTED"] {
            assert!(!may_be_write_verb(word.as_bytes()), "{word}");
        }
    }
}
