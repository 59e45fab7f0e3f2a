//! Decides where one statement runs: the writer, a replica, or the backend
//! that ran the previous statement. Pure: bytes and session flags in, a
//! [`Route`] out. It never touches sockets, the topology or a clock.
//!
//! The rule (DESIGN §3): the default is the writer. A statement goes to a
//! replica only when it is a plain read, nothing in it can write or depends
//! on connection state, and the session is outside any transaction and not
//! pinned to the writer. When the pre-lexer is unsure, the answer is the
//! writer.

mod classify;
pub mod connection_id;
mod fallback;
mod functions;
pub mod lexer;
pub mod session_vars;

pub use classify::{classify, use_database, Classification, Hint, Pin, StatementKind};
pub use fallback::Classifier;

/// The facts about a session that routing depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFlags {
    /// The backend's SERVER_STATUS_IN_TRANS flag after the last statement.
    pub in_transaction: bool,
    /// SERVER_STATUS_AUTOCOMMIT after the last statement.
    pub autocommit: bool,
    /// Something in the session only exists on the writer connection
    /// (temporary tables, locks, user variables set from the writer's data,
    /// SQL-level prepared statements, …).
    pub pinned: bool,
}

impl Default for SessionFlags {
    fn default() -> Self {
        SessionFlags {
            in_transaction: false,
            autocommit: true,
            pinned: false,
        }
    }
}

/// Where a statement goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Writer,
    Replica,
    /// The backend that ran the previous statement (SHOW WARNINGS, …).
    Previous,
    /// A node named by a `/* splitrail:node=NAME */` hint.
    Node(Box<str>),
}

/// Routes a classified statement for a session in the state `flags`.
pub fn route(c: &Classification, flags: SessionFlags) -> Route {
    if c.kind == StatementKind::PreviousBackend {
        return Route::Previous;
    }
    // Inside a transaction (explicit, or implicit with autocommit off) and
    // while pinned, everything stays on the writer, hints included.
    if flags.in_transaction || !flags.autocommit || flags.pinned {
        return Route::Writer;
    }
    let hintable = matches!(c.kind, StatementKind::Read | StatementKind::Write);
    match (&c.hint, hintable) {
        (Some(Hint::Writer), true) => Route::Writer,
        (Some(Hint::Replica), true) => Route::Replica,
        (Some(Hint::Node(name)), true) => Route::Node(name.clone()),
        _ if matches!(c.kind, StatementKind::Read | StatementKind::BeginReadOnly) => Route::Replica,
        _ => Route::Writer,
    }
}

#[cfg(test)]
mod corpus;

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(sql: &str, flags: SessionFlags) -> Route {
        route(&classify(sql.as_bytes()), flags)
    }

    #[test]
    fn transactions_keep_reads_on_the_writer() {
        let in_tx = SessionFlags {
            in_transaction: true,
            ..Default::default()
        };
        assert_eq!(routed("SELECT 1", in_tx), Route::Writer);
        let no_autocommit = SessionFlags {
            autocommit: false,
            ..Default::default()
        };
        assert_eq!(routed("SELECT 1", no_autocommit), Route::Writer);
        let pinned = SessionFlags {
            pinned: true,
            ..Default::default()
        };
        assert_eq!(routed("SELECT 1", pinned), Route::Writer);
        assert_eq!(routed("SELECT 1", SessionFlags::default()), Route::Replica);
    }

    #[test]
    fn hints_override_outside_transactions_only() {
        let free = SessionFlags::default();
        assert_eq!(
            routed("/* splitrail:master */ SELECT 1", free),
            Route::Writer
        );
        assert_eq!(
            routed("/* splitrail:replica */ SELECT LAST_INSERT_ID()", free),
            Route::Replica
        );
        assert_eq!(
            routed("/* splitrail:node=r2 */ SELECT 1", free),
            Route::Node("r2".into())
        );
        let in_tx = SessionFlags {
            in_transaction: true,
            ..Default::default()
        };
        assert_eq!(
            routed("/* splitrail:replica */ SELECT 1", in_tx),
            Route::Writer
        );
        // A hint never turns session state into a per-node statement.
        assert_eq!(
            routed("/* splitrail:replica */ SET @a = 1", free),
            Route::Writer
        );
    }

    #[test]
    fn read_only_transactions_may_start_on_a_replica() {
        let free = SessionFlags::default();
        assert_eq!(routed("START TRANSACTION READ ONLY", free), Route::Replica);
        assert_eq!(
            routed(
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
                free
            ),
            Route::Replica
        );
        assert_eq!(routed("START TRANSACTION READ WRITE", free), Route::Writer);
        assert_eq!(routed("START TRANSACTION", free), Route::Writer);
        let in_tx = SessionFlags {
            in_transaction: true,
            ..Default::default()
        };
        assert_eq!(routed("START TRANSACTION READ ONLY", in_tx), Route::Writer);
    }

    #[test]
    fn unlock_and_release_all_locks_release_their_pins() {
        assert_eq!(classify(b"LOCK TABLES t READ").pin, Pin::TableLocks);
        for next_only in [
            &b"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"[..],
            b"SET TRANSACTION READ ONLY",
            b"SET insert_id = 100",
            b"SET @@session.rand_seed1 = 1, @@rand_seed2 = 2",
            b"set LAST_INSERT_ID=7",
        ] {
            let c = classify(next_only);
            assert!(
                c.pins_writer && c.pin == Pin::NextStatement && c.kind == StatementKind::Write,
                "{}: {c:?}",
                String::from_utf8_lossy(next_only)
            );
        }
        // The session-wide form is ordinary replayable session state.
        assert_eq!(
            classify(b"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").kind,
            StatementKind::SessionSet { replayable: true }
        );
        assert!(classify(b"HANDLER t OPEN").pins_writer);
        assert_eq!(classify(b"UNLOCK TABLES").releases, Some(Pin::TableLocks));
        assert_eq!(classify(b"SELECT GET_LOCK('a', 1)").pin, Pin::NamedLocks);
        assert_eq!(
            classify(b"SELECT RELEASE_ALL_LOCKS()").releases,
            Some(Pin::NamedLocks)
        );
        assert_eq!(
            classify(b"CREATE TEMPORARY TABLE t (a INT)").pin,
            Pin::Sticky
        );
    }

    #[test]
    fn warnings_follow_the_previous_statement_even_in_transactions() {
        let in_tx = SessionFlags {
            in_transaction: true,
            ..Default::default()
        };
        assert_eq!(routed("SHOW WARNINGS", in_tx), Route::Previous);
        assert_eq!(
            routed("SELECT @@warning_count", SessionFlags::default()),
            Route::Previous
        );
    }
}
