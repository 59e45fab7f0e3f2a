//! The backend side: splitrail acting as a client of MySQL/MariaDB servers.
//!
//! - [`conn`]: one authenticated backend connection (connect, handshake, auth)
//!   and the simple commands splitrail sends on its own behalf;
//! - [`credential`]: what splitrail logs in to backends with for a user;
//! - [`relay`]: copies one response from a backend to the client verbatim,
//!   reading only packet kinds and status flags;
//! - [`pool`]: idle connections per node, reset before reuse;
//! - [`cutoff`]: every open socket per node, shut down when the node is
//!   found down so no statement waits on it forever.
//!
//! Nothing here decides *where* a statement goes; that is `router` and
//! `session`.

pub mod conn;
pub mod credential;
pub mod cutoff;
pub mod pool;
pub mod relay;

pub use conn::{BackendConn, BackendError, PoolKey};
pub use credential::Credential;
pub use pool::Pools;
