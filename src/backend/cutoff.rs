//! Cutting off a node's open connections when the monitor finds it down.
//!
//! A statement running on a node that stops answering (frozen, or cut off
//! from the network without a reset) would otherwise wait forever. Instead
//! of a timer beside every statement (which every query paid for), the
//! pools keep a duplicate descriptor of each open backend socket, per node.
//! Every monitor check that finds the node down `shutdown()`s those
//! sockets: reads on them return at once, the relay reports the backend
//! lost, and the session's usual rules apply (a read is retried elsewhere,
//! a write whose outcome is unknown is reported to the client as an error,
//! never replayed).
//!
//! A duplicate (`dup(2)`) rather than the raw descriptor number: the
//! duplicate stays valid until we drop it, so a descriptor closed and reused
//! elsewhere in the meantime can never be shut down by mistake.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpStream;

/// The open backend sockets of one node.
#[derive(Default)]
pub struct NodeSockets {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, socket2::Socket>,
}

/// Keeps one socket in its node's registry until dropped (with the
/// connection that owns the socket).
pub struct Watched {
    sockets: Arc<NodeSockets>,
    id: u64,
}

impl NodeSockets {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `tcp` until the returned guard is dropped.
    pub fn watch(self: &Arc<Self>, tcp: &TcpStream) -> io::Result<Watched> {
        let dup = socket2::SockRef::from(tcp).try_clone()?;
        let mut registry = self.registry();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.open.insert(id, dup);
        Ok(Watched {
            sockets: Arc::clone(self),
            id,
        })
    }

    /// Shuts down every registered socket (both directions); returns how
    /// many there were. The connections stay registered until their owners
    /// drop them, which they do on the error this causes.
    pub fn cut_off(&self) -> usize {
        let registry = self.registry();
        for socket in registry.open.values() {
            // ENOTCONN when the peer already closed it: nothing to cut.
            let _ = socket.shutdown(Shutdown::Both);
        }
        registry.open.len()
    }

    /// How many sockets are registered.
    pub fn len(&self) -> usize {
        self.registry().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.sockets.registry().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn cut_off_wakes_a_read_waiting_on_a_silent_peer() {
        let sockets = Arc::new(NodeSockets::default());
        let (mut ours, _silent_peer) = pair().await;
        let _watched = sockets.watch(&ours).unwrap();
        let read = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            ours.read(&mut buf).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!read.is_finished(), "the peer said nothing yet");
        assert_eq!(sockets.cut_off(), 1);
        let result = tokio::time::timeout(std::time::Duration::from_secs(2), read)
            .await
            .expect("the read must end once the socket is cut off")
            .unwrap();
        assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");
    }

    #[tokio::test]
    async fn dropping_the_guard_unregisters_and_leaves_the_socket_alone() {
        let sockets = Arc::new(NodeSockets::default());
        let (mut ours, mut peer) = pair().await;
        let watched = sockets.watch(&ours).unwrap();
        assert_eq!(sockets.len(), 1);
        drop(watched);
        assert!(sockets.is_empty());
        assert_eq!(sockets.cut_off(), 0);
        // Still usable: the cut-off did not reach it.
        ours.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
}
