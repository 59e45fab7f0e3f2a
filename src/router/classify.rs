//! Statement classification on top of the pre-lexer: what kind of
//! statement this is, and whether it pins the session to the writer.

use super::functions::is_safe_call;
use super::lexer::{
    first_column, kw, strip_prefix_ignore_case, Keyword, KeywordIndex, Lexer, Tok, Word,
};

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

fn is_word(tok: Option<Tok<'_>>, keyword: &Keyword) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.is(keyword))
}

/// Case-insensitive comparison for text that is not a lexed word (hints,
/// system variable names).
fn is_text(text: &[u8], name: &str) -> bool {
    text.eq_ignore_ascii_case(name.as_bytes())
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
    let mut c = match first {
        // `/*!50001 … */` before the first keyword: a server of another
        // version may not run that part, so we cannot know the verb.
        // It may also change session state (mysqldump's `/*!40101 SET
        // NAMES … */`), so the session stays on the writer.
        _ if lx.leading_exec_comment => Classification::pinning(StatementKind::Write),
        Some(Tok::Word(w)) if w.is(kw!("SELECT")) => ReadScan::default().run(&mut lx),
        Some(Tok::Word(_)) if parens > 0 => Classification::unsure(),
        Some(Tok::Word(w)) if w.is(kw!("TABLE")) || w.is(kw!("VALUES")) => Classification::unsure(),
        Some(Tok::Word(w)) if w.is(kw!("WITH")) => with_statement(&mut lx),
        Some(Tok::Word(w)) if w.is(kw!("SHOW")) => show_statement(&mut lx),
        Some(Tok::Word(w))
            if w.is(kw!("DESCRIBE")) || w.is(kw!("DESC")) || w.is(kw!("EXPLAIN")) =>
        {
            explain_statement(&mut lx)
        }
        Some(Tok::Word(w)) if w.is(kw!("USE")) => {
            single(&mut lx, Classification::new(StatementKind::Use))
        }
        Some(Tok::Word(w)) if w.is(kw!("SET")) => set_statement(&mut lx),
        Some(Tok::Word(w)) if w.is(kw!("START")) || w.is(kw!("BEGIN")) => {
            transaction_start(w, &mut lx)
        }
        Some(Tok::Word(w)) if w.is(kw!("UNLOCK")) => Classification {
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
    lx.skip_to_end();
    if lx.multi_statement {
        c.kind = StatementKind::Write;
        c.pins_writer = true;
        c.pin = Pin::Sticky;
        c.releases = None;
        c.unsure = false;
    }
    // Read after the whole text: a hint may be in any comment.
    c.hint = lx.hint.and_then(parse_hint);
    c
}

fn parse_hint(text: &[u8]) -> Option<Hint> {
    if is_text(text, "master") || is_text(text, "writer") || is_text(text, "primary") {
        Some(Hint::Writer)
    } else if is_text(text, "replica") || is_text(text, "slave") {
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
    lx.skip_to_end();
    c
}

/// Writes that leave state only the writer connection has.
fn pins_on_write(verb: Word<'_>, lx: &mut Lexer<'_>) -> Option<Pin> {
    if verb.is(kw!("LOCK")) {
        return Some(Pin::TableLocks);
    }
    // CALL: a procedure can set user variables (OUT parameters), create
    // temporary tables or take locks on the writer connection.
    // HANDLER … OPEN keeps a table handle on the connection.
    if verb.is(kw!("PREPARE"))
        || verb.is(kw!("EXECUTE"))
        || verb.is(kw!("CALL"))
        || verb.is(kw!("HANDLER"))
    {
        return Some(Pin::Sticky);
    }
    if verb.is(kw!("CREATE")) {
        // CREATE [OR REPLACE] TEMPORARY TABLE
        for _ in 0..3 {
            match lx.next_token() {
                Some(Tok::Word(w)) if w.is(kw!("TEMPORARY")) => return Some(Pin::Sticky),
                Some(Tok::Word(w)) if w.is(kw!("OR")) || w.is(kw!("REPLACE")) => continue,
                _ => return None,
            }
        }
    }
    // GET_LOCK() / user variables inside a write (e.g. `DO GET_LOCK(…)`,
    // `UPDATE … SET x = @v := …`).
    let flush = verb.is(kw!("FLUSH"));
    let mut after_get_lock = false;
    let mut pin = None;
    lx.scan(
        #[inline(always)]
        |tok| {
            pin = match tok {
                Tok::LParen if after_get_lock => Some(Pin::NamedLocks),
                Tok::Assign => Some(Pin::Sticky),
                // FLUSH TABLES … WITH READ LOCK / FOR EXPORT hold a lock.
                Tok::Word(w) if flush && (w.is(kw!("LOCK")) || w.is(kw!("EXPORT"))) => {
                    Some(Pin::TableLocks)
                }
                _ => None,
            };
            after_get_lock = matches!(tok, Tok::Word(w) if w.is(kw!("GET_LOCK")));
            pin.is_none()
        },
    );
    pin
}

/// BEGIN / START TRANSACTION: a transaction declared READ ONLY (and not a
/// compound `BEGIN NOT ATOMIC` block or `START SLAVE`) may run on a replica.
fn transaction_start(verb: Word<'_>, lx: &mut Lexer<'_>) -> Classification {
    let mut c = Classification::new(StatementKind::Write);
    if verb.is(kw!("START")) && !is_word(lx.next_token(), kw!("TRANSACTION")) {
        return c;
    }
    // START TRANSACTION [WITH CONSISTENT SNAPSHOT] [, READ ONLY | READ WRITE]
    let mut prev = None;
    while let Some(tok) = lx.next_token() {
        if let (Some(Tok::Word(p)), Tok::Word(w)) = (prev, tok) {
            if p.is(kw!("READ")) && w.is(kw!("ONLY")) {
                c.kind = StatementKind::BeginReadOnly;
            }
        }
        prev = Some(tok);
    }
    c
}

/// What a word means to [`ReadScan`]. Looked up once per word in
/// [`READ_WORDS`]; most words of a SELECT (names, FROM, WHERE, …) are
/// `Plain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadWord {
    Plain,
    /// A verb that makes a statement a write wherever it stands outside
    /// quotes (`WITH … DELETE`, a second verb that slipped through).
    WriteVerb,
    /// UPDATE: a write verb, and the end of `FOR UPDATE`.
    Update,
    /// INSERT, REPLACE, TRUNCATE: write verbs, or functions when `(`
    /// follows.
    VerbOrFunction,
    /// INTO (`SELECT … INTO @var / OUTFILE / DUMPFILE`) and
    /// SQL_CALC_FOUND_ROWS: they leave state on the writer.
    Pinning,
    /// The words of the locking clauses FOR UPDATE, FOR SHARE and LOCK IN
    /// SHARE MODE, and of NEXT VALUE FOR / PREVIOUS VALUE FOR (sequences).
    For,
    Share,
    Lock,
    In,
    Next,
    Previous,
    Value,
    /// `seq.NEXTVAL`, `seq.CURRVAL`, `seq.LASTVAL` (MariaDB Oracle-mode
    /// sequences).
    SequenceFunction,
    /// Tables whose rows describe the answering server itself, after a `.`
    /// (`information_schema.PROCESSLIST`): the same data as SHOW
    /// PROCESSLIST / SHOW STATUS, and the client means the primary.
    NodeStateTable,
    /// `performance_schema.x`: likewise.
    PerformanceSchema,
    /// Not built-ins known to be safe, so a call of them is a write anyway;
    /// they also take or release named locks.
    GetLock,
    ReleaseAllLocks,
}

impl ReadWord {
    /// Inlined: it runs for every word of every SELECT.
    #[inline(always)]
    fn of(w: Word<'_>) -> ReadWord {
        if w.starts_with_digit() {
            return ReadWord::Plain;
        }
        READ_WORD_INDEX
            .find(w)
            .and_then(|i| READ_WORDS.get(i))
            .map_or(ReadWord::Plain, |&(_, what)| what)
    }

    fn is_write_verb(self) -> bool {
        matches!(
            self,
            ReadWord::WriteVerb | ReadWord::Update | ReadWord::VerbOrFunction
        )
    }
}

/// Every word [`ReadScan`] reacts to, with its meaning.
const READ_WORDS: &[(&str, ReadWord)] = {
    use ReadWord::*;
    &[
        // Write verbs.
        ("INSERT", VerbOrFunction),
        ("UPDATE", Update),
        ("DELETE", WriteVerb),
        ("REPLACE", VerbOrFunction),
        ("CREATE", WriteVerb),
        ("DROP", WriteVerb),
        ("ALTER", WriteVerb),
        ("TRUNCATE", VerbOrFunction),
        ("RENAME", WriteVerb),
        ("GRANT", WriteVerb),
        ("REVOKE", WriteVerb),
        ("CALL", WriteVerb),
        ("LOAD", WriteVerb),
        ("HANDLER", WriteVerb),
        ("UNLOCK", WriteVerb),
        ("OPTIMIZE", WriteVerb),
        ("REPAIR", WriteVerb),
        ("FLUSH", WriteVerb),
        ("PURGE", WriteVerb),
        ("KILL", WriteVerb),
        ("INSTALL", WriteVerb),
        ("UNINSTALL", WriteVerb),
        ("SHUTDOWN", WriteVerb),
        ("SAVEPOINT", WriteVerb),
        ("COMMIT", WriteVerb),
        ("ROLLBACK", WriteVerb),
        ("SIGNAL", WriteVerb),
        ("RESIGNAL", WriteVerb),
        // Writer state.
        ("INTO", Pinning),
        ("SQL_CALC_FOUND_ROWS", Pinning),
        // Locking clauses and sequence values.
        ("FOR", For),
        ("SHARE", Share),
        ("LOCK", Lock),
        ("IN", In),
        ("NEXT", Next),
        ("PREVIOUS", Previous),
        ("VALUE", Value),
        ("NEXTVAL", SequenceFunction),
        ("CURRVAL", SequenceFunction),
        ("LASTVAL", SequenceFunction),
        // The answering server's own state.
        ("PROCESSLIST", NodeStateTable),
        ("GLOBAL_STATUS", NodeStateTable),
        ("GLOBAL_VARIABLES", NodeStateTable),
        ("SESSION_STATUS", NodeStateTable),
        ("SESSION_VARIABLES", NodeStateTable),
        ("PERFORMANCE_SCHEMA", PerformanceSchema),
        // Named locks.
        ("GET_LOCK", GetLock),
        ("RELEASE_ALL_LOCKS", ReleaseAllLocks),
    ]
};

static READ_WORD_TEXTS: [&str; READ_WORDS.len()] = first_column(READ_WORDS);

/// Bit `n` is set when a [`ReadWord::NodeStateTable`] or
/// [`ReadWord::PerformanceSchema`] name is `n` bytes long.
const NODE_STATE_NAME_LENGTHS: u64 = {
    let mut mask = 0u64;
    let mut i = 0;
    while i < READ_WORDS.len() {
        let (text, what) = READ_WORDS[i];
        if matches!(what, ReadWord::NodeStateTable | ReadWord::PerformanceSchema) {
            assert!(text.len() < 64);
            mask |= 1 << text.len();
        }
        i += 1;
    }
    mask
};

/// False for a quoted name that cannot be a node-state schema or table
/// (most: ORMs quote every name), from its length alone.
#[inline(always)]
fn may_name_node_state(name: &[u8]) -> bool {
    name.len() < 64 && NODE_STATE_NAME_LENGTHS >> name.len() & 1 == 1
}
static READ_WORD_INDEX: KeywordIndex<128> = KeywordIndex::new(&READ_WORD_TEXTS);

/// The previous token, as much as [`ReadScan`] needs of it: two bytes,
/// written for every token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Prev {
    #[default]
    None,
    /// A word (its text is `ReadScan::last_word`); `after_dot` when a `.`
    /// came before it, so that `db.f(` calls a qualified name.
    Word {
        what: ReadWord,
        after_dot: bool,
    },
    QuotedIdent,
    Dot,
    Other,
}

/// Scans a SELECT (or the body of WITH/EXPLAIN) for anything that makes it
/// unsafe on a replica.
#[derive(Default)]
struct ReadScan<'a> {
    prev: Prev,
    /// The last word seen: the name called when `(` follows it.
    last_word: &'a [u8],
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
        self.feed_statement(lx);
        self.finish()
    }

    /// Feeds the tokens up to the first `;`: the hot loop, with the lexer
    /// and [`ReadScan::feed`] inlined into one another.
    fn feed_statement(&mut self, lx: &mut Lexer<'a>) {
        lx.scan(
            #[inline(always)]
            |tok| {
                if tok == Tok::Semicolon {
                    return false;
                }
                self.feed(tok);
                true
            },
        );
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

    /// Inlined into the scanning loops: plain words and punctuation (most
    /// tokens of most SELECTs) only update `prev` here; everything else is
    /// handled out of line.
    #[inline(always)]
    fn feed(&mut self, tok: Tok<'a>) {
        match tok {
            Tok::Word(w) => {
                let what = ReadWord::of(w);
                if what != ReadWord::Plain || self.verb_or_function {
                    return self.keyword(w, what);
                }
                self.prev = Prev::Word {
                    what,
                    after_dot: self.prev == Prev::Dot,
                };
                self.last_word = w.text();
            }
            Tok::Comma | Tok::RParen | Tok::Str | Tok::Other(_) if !self.verb_or_function => {
                self.prev = Prev::Other
            }
            // `table`.`column`, as ORMs write names (one as long as a
            // node-state name is looked at out of line).
            Tok::QuotedIdent(name) if !self.verb_or_function && !may_name_node_state(name) => {
                self.prev = Prev::QuotedIdent
            }
            Tok::Dot if !self.verb_or_function && self.prev == Prev::QuotedIdent => {
                self.prev = Prev::Dot
            }
            _ => self.other_token(tok),
        }
    }

    /// After INSERT/REPLACE/TRUNCATE: the verb, unless `(` follows.
    fn verb_or_function_followed_by(&mut self, tok: Tok<'a>) {
        if std::mem::take(&mut self.verb_or_function) && tok != Tok::LParen {
            self.unsafe_for_replica = true;
        }
    }

    /// A word that is not [`ReadWord::Plain`] (or follows a possible verb).
    #[inline(never)]
    fn keyword(&mut self, w: Word<'a>, what: ReadWord) {
        use ReadWord::*;
        self.verb_or_function_followed_by(Tok::Word(w));
        match (self.prev, what) {
            (Prev::Dot, NodeStateTable | SequenceFunction)
            | (Prev::Word { what: For, .. }, Update | Share)
            | (Prev::Word { what: Lock, .. }, In)
            | (
                Prev::Word {
                    what: Next | Previous,
                    ..
                },
                Value,
            ) => self.unsafe_for_replica = true,
            _ => {}
        }
        match what {
            Pinning => {
                self.unsafe_for_replica = true;
                self.pins = true;
            }
            WriteVerb | Update => self.unsafe_for_replica = true,
            // INSERT(…)/REPLACE(…)/TRUNCATE(…) functions are decided at `(`.
            VerbOrFunction => self.verb_or_function = true,
            _ => {}
        }
        self.prev = Prev::Word {
            what,
            after_dot: self.prev == Prev::Dot,
        };
        self.last_word = w.text();
    }

    /// Any token but a word, out of line.
    #[inline(never)]
    fn other_token(&mut self, tok: Tok<'a>) {
        self.verb_or_function_followed_by(tok);
        self.prev = match tok {
            Tok::Word(w) => return self.keyword(w, ReadWord::of(w)),
            Tok::LParen => {
                self.call();
                Prev::Other
            }
            Tok::Dot => {
                if let Prev::Word {
                    what: ReadWord::PerformanceSchema,
                    ..
                } = self.prev
                {
                    self.unsafe_for_replica = true;
                }
                Prev::Dot
            }
            Tok::QuotedIdent(name) => self.quoted_name(name),
            Tok::Assign => {
                self.unsafe_for_replica = true;
                self.pins = true;
                Prev::Other
            }
            Tok::SysVar(name) => {
                self.system_variable(name);
                Prev::Other
            }
            Tok::Str | Tok::UserVar | Tok::RParen | Tok::Comma | Tok::Semicolon | Tok::Other(_) => {
                Prev::Other
            }
        };
    }

    /// A quoted name is a name whatever its text (`` `update` `` is a
    /// column), except that it names the same schemas and tables as the
    /// bare word: `` `performance_schema`.x `` and
    /// ``information_schema.`PROCESSLIST` `` describe the answering server
    /// as much as their unquoted spellings do.
    fn quoted_name(&mut self, name: &'a [u8]) -> Prev {
        let after_dot = self.prev == Prev::Dot;
        match ReadWord::of(Word::new(name)) {
            ReadWord::NodeStateTable if after_dot => self.unsafe_for_replica = true,
            what @ ReadWord::PerformanceSchema => {
                self.last_word = name;
                return Prev::Word { what, after_dot };
            }
            _ => {}
        }
        Prev::QuotedIdent
    }

    /// `(` after `prev`: a function call, safe only when it is a known
    /// built-in.
    #[inline(never)]
    fn call(&mut self) {
        match self.prev {
            Prev::Word { .. } | Prev::QuotedIdent if self.skip_call_check => {}
            Prev::Word { what, after_dot } => {
                // Keyed again here rather than kept for every word.
                if after_dot || !is_safe_call(Word::new(self.last_word)) {
                    self.unsafe_for_replica = true;
                    if what == ReadWord::GetLock {
                        self.pins = true;
                        self.pin = Some(Pin::NamedLocks);
                    }
                    if what == ReadWord::ReleaseAllLocks {
                        self.releases = Some(Pin::NamedLocks);
                    }
                }
            }
            // `my_func`(…): a quoted name is never a built-in.
            Prev::QuotedIdent => self.unsafe_for_replica = true,
            Prev::None | Prev::Dot | Prev::Other => {}
        }
    }

    fn system_variable(&mut self, name: &[u8]) {
        let name = session_scoped(name);
        if is_text(name, "warning_count") || is_text(name, "error_count") {
            self.previous_backend = true;
        } else if is_text(name, "last_insert_id")
            || is_text(name, "identity")
            || strip_prefix_ignore_case(name, b"global.").is_some()
            || is_node_state_variable(name)
        {
            self.unsafe_for_replica = true;
        }
    }
}

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
    .any(|v| is_text(name, v))
        || strip_prefix_ignore_case(name, b"gtid_").is_some()
}

/// `WITH [RECURSIVE] name [(columns)] AS (query) [, …] main-statement`:
/// a read only when every CTE body and the main statement are reads.
fn with_statement(lx: &mut Lexer<'_>) -> Classification {
    let mut scan = ReadScan::default();
    let mut tok = lx.next_token();
    if is_word(tok, kw!("RECURSIVE")) {
        tok = lx.next_token();
    }
    loop {
        // CTE name, then an optional column list (names only, no calls).
        if !matches!(tok, Some(Tok::Word(_) | Tok::QuotedIdent(_))) {
            return single(lx, Classification::unsure());
        }
        tok = lx.next_token();
        if tok == Some(Tok::LParen) {
            if !skip_balanced(lx) {
                return Classification::unsure();
            }
            tok = lx.next_token();
        }
        if !is_word(tok, kw!("AS")) || lx.next_token() != Some(Tok::LParen) {
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
        scan.prev = Prev::None;
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
    if !is_word(main, kw!("SELECT")) {
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
    scan.feed_statement(&mut lx);
    lx.skip_to_end();
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
    static SCHEMA_SHOWS: KeywordIndex<64> = KeywordIndex::new(&[
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
    ]);
    let mut tok = lx.next_token();
    if is_word(tok, kw!("WARNINGS")) || is_word(tok, kw!("ERRORS")) {
        return single(lx, Classification::new(StatementKind::PreviousBackend));
    }
    if is_word(tok, kw!("COUNT")) {
        // SHOW COUNT(*) WARNINGS / ERRORS
        return single(lx, Classification::new(StatementKind::PreviousBackend));
    }
    if is_word(tok, kw!("FULL")) || is_word(tok, kw!("EXTENDED")) {
        tok = lx.next_token();
        if is_word(tok, kw!("FULL")) {
            tok = lx.next_token();
        }
    }
    let kind = match tok {
        Some(Tok::Word(w)) if SCHEMA_SHOWS.contains(w) => StatementKind::Read,
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
            Some(Tok::Word(w)) if w.is(kw!("EXTENDED")) || w.is(kw!("PARTITIONS")) => {
                tok = lx.next_token()
            }
            Some(Tok::Word(w)) if w.is(kw!("FORMAT")) => {
                // FORMAT = JSON|TREE|TRADITIONAL
                lx.next_token();
                lx.next_token();
                tok = lx.next_token();
            }
            _ => break,
        }
    }
    match tok {
        Some(Tok::Word(w)) if w.is(kw!("SELECT")) => ReadScan::default().run(lx),
        Some(Tok::Word(w)) if w.is(kw!("WITH")) => with_statement(lx),
        Some(Tok::LParen) => {
            let mut t = lx.next_token();
            while t == Some(Tok::LParen) {
                t = lx.next_token();
            }
            if is_word(t, kw!("SELECT")) {
                ReadScan::default().run(lx)
            } else {
                single(lx, Classification::new(StatementKind::Write))
            }
        }
        Some(Tok::Word(w))
            if w.is(kw!("ANALYZE"))
                || w.is(kw!("FOR"))
                || ReadWord::of(w).is_write_verb()
                || w.is(kw!("TABLE"))
                || w.is(kw!("VALUES")) =>
        {
            single(lx, Classification::new(StatementKind::Write))
        }
        // DESCRIBE table [column]
        Some(Tok::Word(_) | Tok::QuotedIdent(_)) => {
            let mut c = Classification::new(StatementKind::Read);
            while let Some(t) = lx.next_token() {
                if !matches!(
                    t,
                    Tok::Word(_) | Tok::QuotedIdent(_) | Tok::Dot | Tok::Str | Tok::Semicolon
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
                Tok::Word(w) if first && w.is(kw!("TRANSACTION")) => return next_statement(lx),
                Tok::Word(w) if ONE_SHOT_VARIABLES.contains(w) => return next_statement(lx),
                Tok::SysVar(name)
                    if ONE_SHOT_VARIABLES.contains(Word::new(session_scoped(name))) =>
                {
                    return next_statement(lx)
                }
                Tok::Word(w) if first && SET_WRITES.contains(w) => return write(lx),
                Tok::Word(w)
                    if w.is(kw!("GLOBAL")) || w.is(kw!("PERSIST")) || w.is(kw!("PERSIST_ONLY")) =>
                {
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
            Tok::Word(w) if w.is(kw!("SELECT")) || NOW_WORDS.contains(w) => replayable = false,
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

/// Session variables that describe the next statement only; replaying them
/// on another connection (or later) would be wrong.
static ONE_SHOT_VARIABLES: KeywordIndex<8> =
    KeywordIndex::new(&["INSERT_ID", "LAST_INSERT_ID", "RAND_SEED1", "RAND_SEED2"]);

/// `session.x` / `local.x` → `x` (the text of a `@@…` token).
pub(super) fn session_scoped(name: &[u8]) -> &[u8] {
    strip_prefix_ignore_case(name, b"session.")
        .or_else(|| strip_prefix_ignore_case(name, b"local."))
        .unwrap_or(name)
}

/// First words after SET that make it something other than session state.
static SET_WRITES: KeywordIndex<16> = KeywordIndex::new(&[
    "GLOBAL",
    "PERSIST",
    "PERSIST_ONLY",
    "PASSWORD",
    "DEFAULT",
    "TRANSACTION",
    "STATEMENT",
]);

/// Functions that may be written without parentheses and whose value
/// depends on when or where they run.
static NOW_WORDS: KeywordIndex<32> = KeywordIndex::new(&[
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
]);

/// The database named by `USE db` (unquoting a backtick identifier).
pub fn use_database(sql: &[u8]) -> Option<String> {
    let mut lx = Lexer::new(sql);
    if !is_word(lx.next_token(), kw!("USE")) {
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
    use super::super::corpus::{spellings, INLINE_VERBS};
    use super::*;

    #[test]
    fn every_read_word_is_found_in_any_case() {
        for &(text, what) in READ_WORDS {
            for spelling in spellings(text) {
                assert_eq!(
                    ReadWord::of(Word::new(spelling.as_bytes())),
                    what,
                    "{spelling}"
                );
            }
        }
        for verb in INLINE_VERBS {
            for spelling in spellings(verb) {
                assert!(
                    ReadWord::of(Word::new(spelling.as_bytes())).is_write_verb(),
                    "{spelling}"
                );
            }
        }
    }

    #[test]
    fn other_words_are_plain() {
        for word in [
            "",
            "id",
            "4242",
            "WHERE",
            "sbtest1",
            "_x",
            "é",
            "INSERTED",
            "FO",
            "FORM",
            "INTO_",
            "SQL_CALC_FOUND_ROW",
            "GET_LOCKS",
            "1NTO",
        ] {
            assert_eq!(
                ReadWord::of(Word::new(word.as_bytes())),
                ReadWord::Plain,
                "{word}"
            );
        }
    }
}
