//! This instance's client sessions by id: the id in splitrail's handshake
//! is what `CONNECTION_ID()` returns through it and what `KILL` takes, so
//! the registry is how one session finds another to end it, or to
//! interrupt the statement it runs on a backend.
//!
//! Ids start at [`FIRST_ID`], far above the thread ids a server hands out
//! in years of uptime, so a number meant for a server thread is never
//! mistaken for a session, and the other way round; they are unique for
//! the process's lifetime (2^30 of them) and stay below 2^31 for drivers
//! that keep thread ids in a signed 32-bit int.

use crate::topology::NodeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The first session id.
pub const FIRST_ID: u32 = 1 << 30;

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<u32, Arc<SessionHandle>>>,
    issued: AtomicU32,
}

/// What other sessions may see of, and do to, one session.
pub struct SessionHandle {
    pub id: u32,
    /// The logged-in user (COM_CHANGE_USER changes it).
    user: Mutex<String>,
    /// Cancelled by `KILL [CONNECTION]`: the session ends.
    killed: CancellationToken,
    /// The backend statement running now: node id + 1 in the high half
    /// (0: none), backend thread id in the low half.
    running: AtomicU64,
}

/// A statement of a session, running on a backend thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub node: NodeId,
    pub thread_id: u32,
}

impl SessionHandle {
    pub fn user(&self) -> String {
        self.user.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_user(&self, user: &str) {
        *self.user.lock().unwrap_or_else(|p| p.into_inner()) = user.to_string();
    }

    pub fn killed(&self) -> &CancellationToken {
        &self.killed
    }

    pub fn kill(&self) {
        self.killed.cancel();
    }

    /// Notes the backend statement this session is waiting for (`None`
    /// once it answered).
    pub fn set_running(&self, running: Option<Running>) {
        let packed = running.map_or(0, |r| ((r.node as u64 + 1) << 32) | u64::from(r.thread_id));
        self.running.store(packed, Ordering::Relaxed);
    }

    pub fn running(&self) -> Option<Running> {
        let packed = self.running.load(Ordering::Relaxed);
        let node = (packed >> 32) as usize;
        (node > 0).then(|| Running {
            node: node - 1,
            thread_id: packed as u32,
        })
    }
}

/// A session's place in the registry; leaving it (drop) frees the id's
/// entry.
pub struct Registration {
    sessions: Arc<Sessions>,
    pub handle: Arc<SessionHandle>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.handle.id);
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<SessionHandle>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session id, registered (the user is set once logged in).
    pub fn register(self: &Arc<Self>) -> Registration {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) % FIRST_ID;
        let handle = Arc::new(SessionHandle {
            id: FIRST_ID + n,
            user: Mutex::new(String::new()),
            killed: CancellationToken::new(),
            running: AtomicU64::new(0),
        });
        self.lock().insert(handle.id, Arc::clone(&handle));
        Registration {
            sessions: Arc::clone(self),
            handle,
        }
    }

    pub fn find(&self, id: u64) -> Option<Arc<SessionHandle>> {
        let id = u32::try_from(id).ok()?;
        self.lock().get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_high_unique_and_freed() {
        let sessions = Arc::new(Sessions::default());
        let a = sessions.register();
        let b = sessions.register();
        assert_eq!(a.handle.id, FIRST_ID);
        assert_eq!(b.handle.id, FIRST_ID + 1);
        assert!(sessions.find(u64::from(FIRST_ID)).is_some());
        assert!(sessions.find(8).is_none());
        assert!(sessions.find(u64::MAX).is_none());
        drop(a);
        assert!(sessions.find(u64::from(FIRST_ID)).is_none());
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn the_running_statement_round_trips() {
        let sessions = Arc::new(Sessions::default());
        let s = sessions.register();
        assert_eq!(s.handle.running(), None);
        let r = Running {
            node: 0,
            thread_id: u32::MAX,
        };
        s.handle.set_running(Some(r));
        assert_eq!(s.handle.running(), Some(r));
        s.handle.set_running(None);
        assert_eq!(s.handle.running(), None);
    }
}
