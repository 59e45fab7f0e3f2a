//! Which nodes exist, which are usable, and which master is the active
//! writer — published as an immutable [`Snapshot`] behind an `ArcSwap`.
//!
//! Readers (every statement's routing) call [`Topology::load`] once and
//! never lock. Writers are rare and go through `rcu`, which retries on a
//! concurrent update so no change is lost: today the failover path of
//! backend acquisition (a connect that fails marks the node down and
//! promotes the next master); the health monitor and the admin endpoint
//! will be the others. This module decides *what* the topology is; it never
//! opens a socket.

use crate::config::{Config, Role};
use arc_swap::{ArcSwap, Guard};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Index of a node in configuration order; stable for the process lifetime.
pub type NodeId = usize;

#[derive(Debug)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    pub role: Role,
    pub weight: u32,
}

/// One consistent view of the topology.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub nodes: Arc<[Node]>,
    /// When each node last failed a connect; `None` = believed healthy.
    down_since: Vec<Option<Instant>>,
    /// The active writer. `None` while no master is believed reachable.
    writer: Option<NodeId>,
}

impl Snapshot {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn writer(&self) -> Option<NodeId> {
        self.writer
    }

    pub fn is_down(&self, id: NodeId) -> bool {
        self.down_since[id].is_some()
    }

    /// A node is worth trying when it is not down, or was marked down long
    /// enough ago that it may have come back.
    fn worth_trying(&self, id: NodeId, now: Instant, retry_after: Duration) -> bool {
        self.down_since[id].is_none_or(|since| now.duration_since(since) >= retry_after)
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }
}

pub struct Topology {
    current: ArcSwap<Snapshot>,
    /// Round-robin cursor for replica choice; relaxed is enough, it only
    /// spreads load.
    next_read: AtomicUsize,
    retry_down_after: Duration,
}

impl Topology {
    pub fn new(config: &Config) -> Topology {
        let nodes: Arc<[Node]> = config
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| Node {
                id,
                name: n.name.clone(),
                addr: n.addr.clone(),
                role: n.role,
                weight: n.weight,
            })
            .collect();
        // Masters are tried in file order: the first one is the writer until
        // it fails to connect.
        let writer = nodes.iter().position(|n| n.role == Role::Master);
        let snapshot = Snapshot {
            down_since: vec![None; nodes.len()],
            nodes,
            writer,
        };
        Topology {
            current: ArcSwap::from_pointee(snapshot),
            next_read: AtomicUsize::new(0),
            retry_down_after: config.proxy.retry_down_after(),
        }
    }

    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The active writer; when there is none, promotes the first master
    /// worth trying (masters that recovered come back this way only when no
    /// writer is left: there is no automatic failback).
    pub fn writer(&self) -> Option<NodeId> {
        if let Some(w) = self.current.load().writer {
            return Some(w);
        }
        let now = Instant::now();
        let retry = self.retry_down_after;
        let after = self.current.rcu(|snap| {
            let mut next = Snapshot::clone(snap);
            if next.writer.is_none() {
                next.writer = next
                    .nodes
                    .iter()
                    .find(|n| n.role == Role::Master && snap.worth_trying(n.id, now, retry))
                    .map(|n| n.id);
            }
            next
        });
        // `rcu` returns the previous value; read what we stored.
        drop(after);
        self.current.load().writer
    }

    /// Records that `failed` could not be reached. When it was the active
    /// writer, the next master (in file order, after it) that is worth
    /// trying becomes the writer; `None` if there is no such master.
    pub fn fail_over(&self, failed: NodeId) -> Option<NodeId> {
        let now = Instant::now();
        let retry = self.retry_down_after;
        self.current.rcu(|snap| {
            let mut next = Snapshot::clone(snap);
            next.down_since[failed].get_or_insert(now);
            if next.writer == Some(failed) {
                let n = next.nodes.len();
                next.writer = (1..n).map(|step| (failed + step) % n).find(|&id| {
                    next.nodes[id].role == Role::Master && snap.worth_trying(id, now, retry)
                });
            }
            next
        });
        let snap = self.current.load();
        if snap.writer != Some(failed) {
            match snap.writer {
                Some(w) => tracing::warn!(
                    failed = %snap.node(failed).name,
                    writer = %snap.node(w).name,
                    "master unreachable: failed over to the next master"
                ),
                None => tracing::error!(
                    failed = %snap.node(failed).name,
                    "master unreachable and no other master left: writes are refused"
                ),
            }
        }
        snap.writer
    }

    /// Marks a node down after a failed connect (replicas; masters go
    /// through [`Topology::fail_over`]).
    pub fn mark_down(&self, id: NodeId) {
        let now = Instant::now();
        self.current.rcu(|snap| {
            let mut next = Snapshot::clone(snap);
            next.down_since[id].get_or_insert(now);
            next
        });
    }

    /// Clears a node's down mark after a successful connect.
    pub fn mark_up(&self, id: NodeId) {
        if !self.current.load().is_down(id) {
            return;
        }
        self.current.rcu(|snap| {
            let mut next = Snapshot::clone(snap);
            next.down_since[id] = None;
            next
        });
    }

    /// Picks a replica by weighted round robin among those worth trying,
    /// skipping `exclude` (replicas that already failed this statement).
    pub fn pick_replica(&self, snap: &Snapshot, exclude: &[NodeId]) -> Option<NodeId> {
        let now = Instant::now();
        let eligible = |n: &&Node| {
            n.role == Role::Replica
                && n.weight > 0
                && !exclude.contains(&n.id)
                && snap.worth_trying(n.id, now, self.retry_down_after)
        };
        let total: u64 = snap
            .nodes
            .iter()
            .filter(eligible)
            .map(|n| n.weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        let mut slot = self.next_read.fetch_add(1, Ordering::Relaxed) as u64 % total;
        for node in snap.nodes.iter().filter(eligible) {
            if slot < node.weight as u64 {
                return Some(node.id);
            }
            slot -= node.weight as u64;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(retry_ms: u64) -> Topology {
        let mut cfg = Config::embedded_default();
        cfg.proxy.retry_down_after_ms = retry_ms;
        cfg.nodes[2].weight = 3; // r1
        Topology::new(&cfg)
    }

    #[test]
    fn first_master_is_the_initial_writer() {
        let t = topology(60_000);
        assert_eq!(t.writer(), Some(0));
    }

    #[test]
    fn failover_promotes_the_next_master_and_does_not_fail_back() {
        let t = topology(60_000);
        assert_eq!(t.fail_over(0), Some(1));
        assert_eq!(t.writer(), Some(1));
        // m1 recovering does not make it the writer again.
        t.mark_up(0);
        assert_eq!(t.writer(), Some(1));
    }

    #[test]
    fn both_masters_down_means_no_writer() {
        let t = topology(60_000);
        t.fail_over(0);
        assert_eq!(t.fail_over(1), None);
        assert_eq!(t.writer(), None);
    }

    #[test]
    fn a_master_is_retried_once_its_down_mark_ages() {
        let t = topology(0);
        t.fail_over(0);
        t.fail_over(1);
        // retry_down_after = 0: both are worth trying again immediately.
        assert_eq!(t.writer(), Some(0));
    }

    #[test]
    fn failing_a_standby_keeps_the_writer() {
        let t = topology(60_000);
        assert_eq!(t.fail_over(1), Some(0));
    }

    #[test]
    fn replicas_are_weighted_and_down_ones_skipped() {
        let t = topology(60_000);
        let snap = t.load();
        let picks: Vec<_> = (0..8)
            .map(|_| t.pick_replica(&snap, &[]).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&id| id == 2).count(), 6);
        assert_eq!(picks.iter().filter(|&&id| id == 3).count(), 2);
        t.mark_down(2);
        let snap = t.load();
        assert!((0..5).all(|_| t.pick_replica(&snap, &[]) == Some(3)));
        assert_eq!(t.pick_replica(&snap, &[3]), None);
    }
}
