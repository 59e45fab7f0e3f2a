//! Which nodes exist, how healthy they are, what operators marked them, and
//! which master is the active writer — published as an immutable
//! [`Snapshot`] behind an `ArcSwap`.
//!
//! Readers (every statement's routing) call [`Topology::load`] once and
//! never lock. Writers are rare and go through `rcu`, which retries on a
//! concurrent update so no change is lost. They are: the data path's
//! failover (a connect that fails marks the node failed and promotes the
//! next master), the health monitor (probe results), and the admin endpoint
//! (operator marks, promote, reload). This module decides *what* the
//! topology is; it never opens a socket.

use crate::config::{Config, Role};
use crate::gtid::{Errant, GtidSet, OwnPosition};
use arc_swap::{ArcSwap, Guard};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Index of a node in configuration order; stable for the process lifetime.
pub type NodeId = usize;

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    pub role: Role,
    pub weight: u32,
    /// Client connections start with a PROXY header (`nodes.proxy_protocol`).
    pub proxy_protocol: bool,
    /// Client connections use the compressed protocol (`nodes.compress`).
    pub compress: bool,
}

/// An operator's mark on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    #[default]
    None,
    /// No new statements; sessions move away at their next transaction
    /// boundary.
    Down,
    /// No new sessions; sessions already using the node finish.
    Drain,
}

/// What is known about one node's health.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    /// The data path failed to connect at this time; cleared by a successful
    /// connect or a healthy probe.
    pub failed_at: Option<Instant>,
    /// The monitor's verdict after its thresholds (`None` before the first
    /// verdict, or without a monitor).
    pub monitor_up: Option<bool>,
    pub read_only: Option<bool>,
    /// Replication lag in seconds (`None` = unknown, or replication stopped).
    pub lag_seconds: Option<u64>,
    /// Replication state (replicas only; `None` = unknown).
    pub replication: Option<Replication>,
    pub mark: Mark,
    pub last_error: Option<String>,
    /// A replica's source, when it is one of our nodes (from the monitor's
    /// `SHOW REPLICA STATUS`).
    pub source: Option<NodeId>,
    /// A master's position in its own GTID stream, and all its GTIDs.
    pub own_position: Option<OwnPosition>,
    pub gtids: Option<GtidSet>,
    /// Raised when this master's own stream advanced while it was not the
    /// writer: something else writes to it.
    pub second_writer: Option<SecondWriter>,
    /// The own-stream position of the last probe that saw this master as a
    /// standby (`None` while it is the writer): what "advanced" compares
    /// with.
    standby_baseline: Option<OwnPosition>,
}

/// A standby master took writes of its own: another proxy instance, an
/// application that bypasses splitrail, a cron job. splitrail never sends
/// it writes, so it raises the alarm and leaves the cure to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondWriter {
    /// First and last own GTID seen committed while it was a standby.
    pub first: String,
    pub last: String,
    pub count: u64,
    /// When the last of them was seen.
    pub seen_at: Instant,
}

impl SecondWriter {
    pub fn describe(&self, node: &str) -> String {
        if self.count == 1 {
            format!(
                "standby {node} committed a transaction of its own ({}) while it is not the writer",
                self.first
            )
        } else {
            format!(
                "standby {node} committed {} transactions of its own ({}..{}) while it is not the writer",
                self.count, self.first, self.last
            )
        }
    }
}

/// How long a second-writer alarm stays raised after the standby's own
/// stream last advanced.
pub const SECOND_WRITER_HOLD: Duration = Duration::from_secs(60);

/// A replica's replication threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replication {
    /// Both threads run.
    Running,
    /// The SQL thread runs but the IO thread is reconnecting to its master
    /// (typically: the master is down). Its data is as fresh as the master
    /// it lost; it serves reads only while no writer exists
    /// (reduced-functionality mode), when it is the best data there is.
    Reconnecting,
    /// A thread was stopped (by an operator or an error).
    Stopped,
}

/// One consistent view of the topology.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub nodes: Arc<[Node]>,
    pub status: Vec<NodeStatus>,
    /// The active writer. `None` while no master is usable.
    writer: Option<NodeId>,
    /// Replicas lagging more than this get no reads.
    pub max_replica_lag: u64,
    /// Bumped when a reload changes a weight: sessions then choose their
    /// replica again (see [`ReplicaChoice`]).
    pub weights_generation: u64,
    /// Who moves the writer role.
    pub authority: WriterAuthority,
    /// With coordination: the epoch of the writer record this instance
    /// follows (etcd's revision of the writer key; `None` until read).
    pub epoch: Option<i64>,
    /// The writer of a switchover in progress: it is read-only on purpose
    /// while the target catches up, which must not move the writer
    /// (single-instance mode would otherwise fail over to a target that
    /// has not caught up).
    switching_from: Option<NodeId>,
}

/// Who decides which master is the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterAuthority {
    /// This instance alone (no `[coordination]`): its own failures and
    /// probes move the writer.
    Local,
    /// The cluster's writer record in etcd: local failures and probes
    /// change health only; the writer changes when the record does
    /// (see `coordination`).
    Cluster,
}

/// The replica a session reads from. A session keeps reading from one
/// replica while that replica can read and the weights are those it was
/// chosen under: one replica connection per session instead of one per
/// replica, a statement prepared once, and the replica's caches warm for
/// that session (sysbench point selects, prepared: 0.84 × the bare relay's
/// qps before, 0.88–1.03 × after; docs/decisions.md). Sessions, not
/// statements, are spread by weight; a session chooses again when its
/// replica stops qualifying, when a reload changes the weights, and after
/// an idle session gave its connections back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaChoice {
    pub node: NodeId,
    weights_generation: u64,
}

/// Why an operator request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("no node named {0:?}")]
    UnknownNode(String),
    #[error("{0} is not a master")]
    NotAMaster(String),
    #[error("{0} is marked down; mark it up first")]
    MarkedDown(String),
    #[error("{0} cannot take writes now (down, or read_only=ON)")]
    NotWritable(String),
    #[error("{node} has transactions the writer lacks (errant: {errant}); reconcile them first (docs/operations.md, 'A site was offline for a day and comes back'), or promote with --force to make them the truth")]
    ErrantTransactions { node: String, errant: String },
    #[error("a switchover away from {0} is in progress; try again when it ends")]
    SwitchoverInProgress(String),
}

/// A switchover in progress; dropping it ends it (see
/// [`Topology::begin_switchover`]).
pub struct SwitchoverGuard<'a>(&'a Topology);

impl Drop for SwitchoverGuard<'_> {
    fn drop(&mut self) {
        self.0.update(|snap| snap.switching_from = None);
    }
}

/// What `node promote` does with a master that has errant transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrant {
    /// Refuse: its writes would become the truth, the writer's later ones
    /// conflicting with them.
    Refuse,
    /// The operator's `--force`.
    Promote,
}

impl Snapshot {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn writer(&self) -> Option<NodeId> {
        self.writer
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn recently_failed(&self, id: NodeId, now: Instant, retry_after: Duration) -> bool {
        self.status[id]
            .failed_at
            .is_some_and(|at| now.duration_since(at) < retry_after)
    }

    /// Another master whose own GTID stream is `own`'s (they can tell
    /// neither a second writer nor errant transactions apart).
    fn shares_stream(&self, id: NodeId, own: &OwnPosition) -> Option<NodeId> {
        self.status.iter().enumerate().find_map(|(other, s)| {
            let same = s
                .own_position
                .as_ref()
                .is_some_and(|p| p.stream == own.stream);
            (other != id && same).then_some(other)
        })
    }

    /// The transactions of master `id`'s own GTID stream that the writer
    /// lacks: writes it took while split off (or from a second writer).
    /// `None` when there are none, or when it cannot be told (no GTIDs seen
    /// yet, `id` is the writer, or the masters share a stream).
    pub fn errant(&self, id: NodeId) -> Option<Errant> {
        let writer = self.writer.filter(|&w| w != id)?;
        let s = &self.status[id];
        let own = s.own_position.as_ref()?;
        if self.shares_stream(id, own).is_some() {
            return None;
        }
        let writers = self.status[writer].gtids.as_ref()?;
        s.gtids.as_ref()?.missing_from(own, writers)
    }

    /// How many of the writer's transactions a standby master has not
    /// applied yet (as of the monitor's last reading of both).
    pub fn behind_writer(&self, id: NodeId) -> Option<u64> {
        let writer = self.writer.filter(|&w| w != id)?;
        if self.nodes[id].role != Role::Master {
            return None;
        }
        let writers = self.status[writer].gtids.as_ref()?;
        let mine = self.status[id].gtids.as_ref()?;
        Some(writers.lacking(mine).iter().map(|b| b.missing).sum())
    }

    /// A writer exists and this instance believes it reachable.
    fn has_usable_writer(&self) -> bool {
        self.writer.is_some_and(|w| self.is_healthy(w))
    }

    /// Whether the node is believed reachable at all.
    pub fn is_healthy(&self, id: NodeId) -> bool {
        self.status[id].monitor_up != Some(false) && self.status[id].failed_at.is_none()
    }

    /// A master that may become (or stay) the writer.
    fn can_write(&self, id: NodeId, now: Instant, retry_after: Duration) -> bool {
        let s = &self.status[id];
        self.nodes[id].role == Role::Master
            && s.mark == Mark::None
            && s.monitor_up != Some(false)
            && s.read_only != Some(true)
            && !self.recently_failed(id, now, retry_after)
    }

    /// A replica that may serve a read for a session that already holds
    /// connections to `held` (drained nodes keep serving those).
    /// `held` is asked only for a drained node (it looks through the
    /// session's connections, and this runs for every node on every read).
    fn can_read(
        &self,
        id: NodeId,
        held: impl FnOnce() -> bool,
        now: Instant,
        retry_after: Duration,
    ) -> bool {
        let (n, s) = (&self.nodes[id], &self.status[id]);
        if n.role != Role::Replica || n.weight == 0 || s.monitor_up == Some(false) {
            return false;
        }
        let mark_ok = match s.mark {
            Mark::None => true,
            Mark::Drain => held(),
            Mark::Down => false,
        };
        // A replica whose source is down is frozen in time, whatever
        // Seconds_Behind_Master says (it reports 0 until slave_net_timeout
        // when the source is blackholed): while a writer exists, it has
        // fresher data.
        let source_ok = match s.source {
            Some(src) if self.has_usable_writer() => self.is_healthy(src),
            _ => true,
        };
        let lag_ok = source_ok
            && match (s.replication, s.lag_seconds) {
                (Some(Replication::Stopped), _) => false,
                // Reduced-functionality mode: with no writer this instance
                // can reach (none at all, or, with coordination, one the
                // cluster has not moved away from yet), a replica that still
                // applies what it received is the freshest data there is.
                _ if !self.has_usable_writer() => true,
                (Some(Replication::Reconnecting), _) => false,
                (Some(Replication::Running), None) => false,
                (_, Some(lag)) => lag <= self.max_replica_lag,
                (None, None) => true,
            };
        mark_ok && lag_ok && !self.recently_failed(id, now, retry_after)
    }

    /// The role shown to operators.
    pub fn role_name(&self, id: NodeId) -> &'static str {
        match self.nodes[id].role {
            Role::Replica => "replica",
            Role::Master if self.writer == Some(id) => "writer",
            Role::Master => "standby",
        }
    }
}

/// A monitor probe's findings for one node, after its thresholds.
#[derive(Debug, Clone, Default)]
pub struct ProbeVerdict {
    pub up: bool,
    pub read_only: Option<bool>,
    pub lag_seconds: Option<u64>,
    pub replication: Option<Replication>,
    /// A replica's source as `host:port`.
    pub source: Option<String>,
    pub own_position: Option<OwnPosition>,
    pub gtids: Option<GtidSet>,
    pub error: Option<String>,
}

/// Whether two `host:port` addresses name the same server: equal, or the
/// same port on two loopback spellings.
fn same_address(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let split = |x: &str| {
        x.rsplit_once(':').map(|(h, p)| {
            (
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
                p.to_string(),
            )
        })
    };
    let loopback = |h: &str| h == "localhost" || h == "::1" || h.starts_with("127.");
    match (split(a), split(b)) {
        (Some((ha, pa)), Some((hb, pb))) => pa == pb && loopback(&ha) && loopback(&hb),
        _ => false,
    }
}

pub struct Topology {
    current: ArcSwap<Snapshot>,
    /// Round-robin cursor for replica choice; relaxed is enough, it only
    /// spreads load.
    next_read: AtomicUsize,
    retry_down_after: Duration,
    /// Two masters reported the same own GTID stream (logged once).
    stream_clash_warned: AtomicBool,
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
                proxy_protocol: n.proxy_protocol,
                compress: n.compress,
            })
            .collect();
        let authority = if config.coordination.enabled() {
            WriterAuthority::Cluster
        } else {
            WriterAuthority::Local
        };
        // Masters are tried in file order: the first one is the writer until
        // it fails. With coordination the writer is unknown (writes are
        // refused) until the cluster's record is read.
        let writer = match authority {
            WriterAuthority::Local => nodes.iter().position(|n| n.role == Role::Master),
            WriterAuthority::Cluster => None,
        };
        let snapshot = Snapshot {
            status: vec![NodeStatus::default(); nodes.len()],
            nodes,
            writer,
            max_replica_lag: config.monitor.max_replica_lag_s,
            weights_generation: 0,
            authority,
            epoch: None,
            switching_from: None,
        };
        Topology {
            current: ArcSwap::from_pointee(snapshot),
            next_read: AtomicUsize::new(0),
            retry_down_after: config.proxy.retry_down_after(),
            stream_clash_warned: AtomicBool::new(false),
        }
    }

    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Applies `change` to a copy of the snapshot and publishes it.
    fn update(&self, change: impl Fn(&mut Snapshot)) {
        self.current.rcu(|snap| {
            let mut next = Snapshot::clone(snap);
            change(&mut next);
            next
        });
    }

    /// The active writer; when there is none, promotes the first master
    /// (file order) that can write. A recovered master comes back this way
    /// only when no writer is left: there is no automatic failback.
    pub fn writer(&self) -> Option<NodeId> {
        let snap = self.current.load();
        if snap.writer.is_some() || snap.authority == WriterAuthority::Cluster {
            return snap.writer;
        }
        drop(snap);
        let now = Instant::now();
        let retry = self.retry_down_after;
        self.update(|snap| {
            if snap.writer.is_none() {
                snap.writer = (0..snap.nodes.len()).find(|&id| snap.can_write(id, now, retry));
            }
        });
        let snap = self.current.load();
        if let Some(w) = snap.writer {
            tracing::warn!(writer = %snap.node(w).name, "a master is usable again: it is the writer");
        }
        snap.writer
    }

    /// Moves the writer role away from `from` to the next master (in file
    /// order, after it) that can write; `None` if there is none.
    /// With coordination only the cluster's record moves it.
    fn replace_writer(snap: &mut Snapshot, from: NodeId, now: Instant, retry: Duration) {
        if snap.writer != Some(from) || snap.authority == WriterAuthority::Cluster {
            return;
        }
        let n = snap.nodes.len();
        snap.writer = (1..n)
            .map(|step| (from + step) % n)
            .find(|&id| snap.can_write(id, now, retry));
    }

    fn log_writer_change(&self, from: NodeId, why: &str) {
        let snap = self.current.load();
        if snap.writer == Some(from) {
            return;
        }
        match snap.writer {
            Some(w) => {
                tracing::warn!(from = %snap.node(from).name, to = %snap.node(w).name, why, "writer moved")
            }
            None => {
                tracing::error!(from = %snap.node(from).name, why, "no writable master left: writes are refused")
            }
        }
    }

    /// Records that the data path could not reach `failed`. When it was the
    /// active writer, the next master that can write takes over.
    pub fn fail_over(&self, failed: NodeId) -> Option<NodeId> {
        let now = Instant::now();
        let retry = self.retry_down_after;
        let was_writer = self.current.load().writer == Some(failed);
        self.update(|snap| {
            snap.status[failed].failed_at.get_or_insert(now);
            Self::replace_writer(snap, failed, now, retry);
        });
        if was_writer {
            self.log_writer_change(failed, "connect failed");
        }
        self.current.load().writer
    }

    /// Marks a node failed after a data-path connect error (replicas; masters
    /// go through [`Topology::fail_over`]).
    pub fn mark_down(&self, id: NodeId) {
        let now = Instant::now();
        self.update(|snap| {
            snap.status[id].failed_at.get_or_insert(now);
        });
    }

    /// Clears a node's failure after a successful connect.
    pub fn mark_up(&self, id: NodeId) {
        if self.current.load().status[id].failed_at.is_none() {
            return;
        }
        self.update(|snap| snap.status[id].failed_at = None);
    }

    /// Publishes a monitor verdict. A writer found down or read-only hands
    /// the role to the next master that can write.
    pub fn apply_probe(&self, id: NodeId, verdict: &ProbeVerdict) {
        let now = Instant::now();
        let retry = self.retry_down_after;
        let before = self.current.load();
        let was_writer = before.writer == Some(id);
        let alarm_before = before.status[id].second_writer.clone();
        drop(before);
        self.update(|snap| {
            let source = verdict
                .source
                .as_deref()
                .and_then(|src| snap.nodes.iter().position(|n| same_address(&n.addr, src)));
            let standby = snap.writer != Some(id);
            let shared_stream = verdict
                .own_position
                .as_ref()
                .is_some_and(|own| snap.shares_stream(id, own).is_some());
            let s = &mut snap.status[id];
            s.monitor_up = Some(verdict.up);
            if verdict.up {
                s.failed_at = None;
                s.read_only = verdict.read_only;
                s.lag_seconds = verdict.lag_seconds;
                s.replication = verdict.replication;
                s.source = source;
                s.last_error = None;
                if let Some(own) = &verdict.own_position {
                    // Masters sharing a stream see each other's writes as
                    // their own: nothing can be told (warned about below).
                    let baseline = s
                        .standby_baseline
                        .take()
                        .filter(|_| standby && !shared_stream);
                    if let Some(base) =
                        baseline.filter(|b| b.stream == own.stream && own.seq > b.seq)
                    {
                        let alarm = s.second_writer.get_or_insert(SecondWriter {
                            first: own.gtid(base.seq + 1),
                            last: String::new(),
                            count: 0,
                            seen_at: now,
                        });
                        alarm.last = own.to_string();
                        alarm.count += own.seq - base.seq;
                        alarm.seen_at = now;
                    }
                    s.standby_baseline = (standby && !shared_stream).then(|| own.clone());
                    s.own_position = Some(own.clone());
                }
                s.gtids = verdict.gtids.clone().or(s.gtids.take());
            } else {
                s.last_error = verdict.error.clone();
            }
            if !standby
                || s.second_writer
                    .as_ref()
                    .is_some_and(|a| now.duration_since(a.seen_at) > SECOND_WRITER_HOLD)
            {
                s.second_writer = None;
            }
            if !snap.can_write(id, now, retry) && snap.switching_from != Some(id) {
                Self::replace_writer(snap, id, now, retry);
            }
        });
        let snap = self.current.load();
        let name = &snap.node(id).name;
        match (&alarm_before, &snap.status[id].second_writer) {
            (None, Some(alarm)) => {
                tracing::error!(node = %name, first = %alarm.first, last = %alarm.last, "second writer: {}", alarm.describe(name))
            }
            (Some(_), None) => tracing::info!(node = %name, "second writer alarm cleared"),
            _ => {}
        }
        if let Some(own) = &verdict.own_position {
            if let Some(other) = snap.shares_stream(id, own) {
                if !self.stream_clash_warned.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        stream = %own.stream,
                        "masters {name} and {} share one GTID stream: second-writer detection and errant-transaction checks need one per master (MariaDB: gtid_domain_id; see docs/operations.md)",
                        snap.node(other).name
                    );
                }
            }
        }
        drop(snap);
        if was_writer {
            self.log_writer_change(
                id,
                if verdict.up {
                    "read_only is ON"
                } else {
                    "monitor: down"
                },
            );
        }
    }

    /// Notes `read_only` as splitrail itself just set it (fencing), so
    /// the topology need not wait for the monitor's next check.
    pub fn note_read_only(&self, id: NodeId, on: bool) {
        self.update(|snap| snap.status[id].read_only = Some(on));
    }

    /// Notes the error a live node answered the monitor with (busy, at its
    /// connection limit): shown to operators, changes nothing else.
    pub fn note_probe_error(&self, id: NodeId, error: &str) {
        if self.current.load().status[id].last_error.as_deref() == Some(error) {
            return;
        }
        self.update(|snap| snap.status[id].last_error = Some(error.to_string()));
    }

    /// Sets an operator mark. Marking the writer down or draining it moves
    /// the writer role to the next master that can write (a switchover).
    pub fn set_mark(&self, name: &str, mark: Mark) -> Result<NodeId, TopologyError> {
        let id = self
            .current
            .load()
            .find(name)
            .ok_or_else(|| TopologyError::UnknownNode(name.into()))?;
        let now = Instant::now();
        let retry = self.retry_down_after;
        let was_writer = self.current.load().writer == Some(id);
        self.update(|snap| {
            snap.status[id].mark = mark;
            if mark != Mark::None {
                Self::replace_writer(snap, id, now, retry);
            }
        });
        if was_writer {
            self.log_writer_change(id, "operator mark");
        }
        Ok(id)
    }

    /// Makes `name` the writer (operator's `node promote`).
    pub fn promote(&self, name: &str, on_errant: OnErrant) -> Result<NodeId, TopologyError> {
        let id = self.promotable(name, on_errant)?;
        self.update(|snap| snap.writer = Some(id));
        tracing::warn!(writer = name, "operator promoted a new writer");
        Ok(id)
    }

    /// Marks a switchover away from the writer as in progress until the
    /// guard is dropped: its read-only state does not move the writer
    /// meanwhile. One at a time.
    pub fn begin_switchover(&self, from: NodeId) -> Result<SwitchoverGuard<'_>, TopologyError> {
        // A compare-and-swap on the snapshot itself: `switching_from` is
        // both what the monitor reads and what makes a second switchover
        // wait.
        loop {
            let current = self.current.load_full();
            if let Some(busy) = current.switching_from {
                return Err(TopologyError::SwitchoverInProgress(
                    current.node(busy).name.clone(),
                ));
            }
            let mut next = Snapshot::clone(&current);
            next.switching_from = Some(from);
            let before = self.current.compare_and_swap(&current, Arc::new(next));
            if Arc::ptr_eq(&before, &current) {
                return Ok(SwitchoverGuard(self));
            }
        }
    }

    /// Why `name` cannot become the writer, if it cannot.
    pub fn promotable(&self, name: &str, on_errant: OnErrant) -> Result<NodeId, TopologyError> {
        let snap = self.current.load();
        let id = snap
            .find(name)
            .ok_or_else(|| TopologyError::UnknownNode(name.into()))?;
        if snap.node(id).role != Role::Master {
            return Err(TopologyError::NotAMaster(name.into()));
        }
        if snap.status[id].mark == Mark::Down {
            return Err(TopologyError::MarkedDown(name.into()));
        }
        let s = &snap.status[id];
        let fenced_by_us = snap.authority == WriterAuthority::Cluster;
        if s.monitor_up == Some(false) || (s.read_only == Some(true) && !fenced_by_us) {
            return Err(TopologyError::NotWritable(name.into()));
        }
        if let Some(errant) = snap.errant(id).filter(|_| on_errant == OnErrant::Refuse) {
            return Err(TopologyError::ErrantTransactions {
                node: name.into(),
                errant: errant.to_string(),
            });
        }
        Ok(id)
    }

    /// Follows the cluster's writer record (coordination): `writer` at
    /// `epoch`. Logs a change.
    pub fn follow_cluster_writer(&self, writer: Option<NodeId>, epoch: i64) {
        let before = self.current.load();
        if before.writer == writer && before.epoch == Some(epoch) {
            return;
        }
        let old = before.writer;
        drop(before);
        self.update(|snap| {
            snap.writer = writer;
            snap.epoch = Some(epoch);
        });
        if old != writer {
            let snap = self.current.load();
            let name =
                |w: Option<NodeId>| w.map_or("none".to_string(), |w| snap.node(w).name.clone());
            tracing::warn!(from = %name(old), to = %name(writer), epoch, "writer moved (cluster record)");
        }
    }

    /// Applies an operator mark read from the cluster (coordination): the
    /// writer does not move here; the cluster's record does.
    pub fn follow_cluster_mark(&self, id: NodeId, mark: Mark) {
        if self.current.load().status[id].mark == mark {
            return;
        }
        self.update(|snap| snap.status[id].mark = mark);
        tracing::warn!(node = %self.current.load().node(id).name, ?mark, "operator mark (cluster record)");
    }

    /// Applies reloadable settings: replica weights and the lag limit.
    pub fn reload(&self, config: &Config) {
        self.update(|snap| {
            let nodes: Vec<Node> = snap
                .nodes
                .iter()
                .map(|n| Node {
                    weight: config.nodes.get(n.id).map_or(n.weight, |c| c.weight),
                    ..n.clone()
                })
                .collect();
            if nodes
                .iter()
                .zip(snap.nodes.iter())
                .any(|(a, b)| a.weight != b.weight)
            {
                snap.weights_generation += 1;
            }
            snap.nodes = nodes.into();
            snap.max_replica_lag = config.monitor.max_replica_lag_s;
        });
    }

    /// The session's `current` replica while it can still read (and the
    /// weights have not changed since it was chosen); otherwise a new one
    /// by weighted round robin among those that can read. Skips `exclude`
    /// (replicas that already failed this statement). `held` tells whether
    /// the session already holds a connection to a node (drained replicas
    /// keep serving such sessions).
    pub fn pick_replica(
        &self,
        snap: &Snapshot,
        exclude: &[NodeId],
        current: Option<ReplicaChoice>,
        held: impl Fn(NodeId) -> bool,
    ) -> Option<ReplicaChoice> {
        let now = Instant::now();
        let eligible = |n: &&Node| {
            !exclude.contains(&n.id)
                && snap.can_read(n.id, || held(n.id), now, self.retry_down_after)
        };
        let choice = |node: &Node| ReplicaChoice {
            node: node.id,
            weights_generation: snap.weights_generation,
        };
        let kept = current
            .filter(|c| c.weights_generation == snap.weights_generation)
            .and_then(|c| snap.nodes.get(c.node))
            .filter(eligible);
        if let Some(node) = kept {
            return Some(choice(node));
        }
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
                return Some(choice(node));
            }
            slot -= node.weight as u64;
        }
        None
    }

    /// Restores marks and the writer saved by an earlier run.
    pub fn restore(&self, marks: &[(String, Mark)], writer: Option<&str>) {
        for (name, mark) in marks {
            if self.set_mark(name, *mark).is_err() {
                tracing::warn!(node = %name, "state file names an unknown node; mark ignored");
            }
        }
        if let Some(w) = writer {
            // Saved by this process's operator: already decided on.
            if let Err(e) = self.promote(w, OnErrant::Promote) {
                tracing::warn!(error = %e, "state file's writer not restored");
            }
        }
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

    /// A fresh session's choice.
    fn pick(
        t: &Topology,
        snap: &Snapshot,
        exclude: &[NodeId],
        held: impl Fn(NodeId) -> bool,
    ) -> Option<NodeId> {
        t.pick_replica(snap, exclude, None, held).map(|c| c.node)
    }

    fn up() -> ProbeVerdict {
        ProbeVerdict {
            up: true,
            read_only: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn first_master_is_the_initial_writer() {
        assert_eq!(topology(60_000).writer(), Some(0));
    }

    #[test]
    fn failover_promotes_the_next_master_and_does_not_fail_back() {
        let t = topology(60_000);
        assert_eq!(t.fail_over(0), Some(1));
        assert_eq!(t.writer(), Some(1));
        t.mark_up(0);
        t.apply_probe(0, &up());
        assert_eq!(t.writer(), Some(1), "a recovered m1 stays standby");
        assert_eq!(t.load().role_name(0), "standby");
    }

    #[test]
    fn both_masters_down_means_no_writer_until_one_is_back() {
        let t = topology(60_000);
        t.apply_probe(0, &ProbeVerdict::default());
        t.apply_probe(1, &ProbeVerdict::default());
        assert_eq!(t.writer(), None);
        t.apply_probe(1, &up());
        assert_eq!(t.writer(), Some(1));
    }

    #[test]
    fn a_read_only_master_is_never_the_writer() {
        let t = topology(60_000);
        t.apply_probe(
            0,
            &ProbeVerdict {
                up: true,
                read_only: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(t.writer(), Some(1));
    }

    #[test]
    fn data_path_failures_are_retried_after_a_while() {
        let t = topology(0);
        t.fail_over(0);
        t.fail_over(1);
        assert_eq!(
            t.writer(),
            Some(0),
            "retry_down_after = 0: tried again at once"
        );
    }

    #[test]
    fn marks_and_promote() {
        let t = topology(60_000);
        t.set_mark("m1", Mark::Down).unwrap();
        assert_eq!(
            t.writer(),
            Some(1),
            "marking the writer down is a switchover"
        );
        assert_eq!(
            t.promote("m1", OnErrant::Refuse),
            Err(TopologyError::MarkedDown("m1".into()))
        );
        t.set_mark("m1", Mark::None).unwrap();
        assert_eq!(t.writer(), Some(1));
        t.promote("m1", OnErrant::Refuse).unwrap();
        assert_eq!(t.writer(), Some(0));
        assert_eq!(
            t.promote("r1", OnErrant::Refuse),
            Err(TopologyError::NotAMaster("r1".into()))
        );
        assert!(matches!(
            t.set_mark("nope", Mark::Down),
            Err(TopologyError::UnknownNode(_))
        ));
    }

    #[test]
    fn replicas_are_weighted_and_unusable_ones_skipped() {
        let t = topology(60_000);
        let snap = t.load();
        let picks: Vec<_> = (0..8)
            .map(|_| pick(&t, &snap, &[], |_| false).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&id| id == 2).count(), 6);
        assert_eq!(picks.iter().filter(|&&id| id == 3).count(), 2);
        t.mark_down(2);
        let snap = t.load();
        assert!((0..5).all(|_| pick(&t, &snap, &[], |_| false) == Some(3)));
        assert_eq!(pick(&t, &snap, &[3], |_| false), None);
    }

    #[test]
    fn a_session_keeps_its_replica_while_it_qualifies() {
        let t = topology(60_000);
        let first = t.pick_replica(&t.load(), &[], None, |_| false).unwrap();
        // r1 has weight 3 and r2 1: a fresh pick would mostly be r1, but
        // the session stays where it is, whichever it was.
        assert!(
            (0..8).all(|_| t.pick_replica(&t.load(), &[], Some(first), |_| false) == Some(first))
        );
        // A replica that fails this statement is left for another one.
        let other = t
            .pick_replica(&t.load(), &[first.node], Some(first), |_| false)
            .unwrap();
        assert_ne!(other.node, first.node);
        // Marked down: the session moves, and then stays on the new one.
        let name = t.load().node(first.node).name.clone();
        t.set_mark(&name, Mark::Down).unwrap();
        let moved = t
            .pick_replica(&t.load(), &[], Some(first), |_| false)
            .unwrap();
        assert_ne!(moved.node, first.node);
        t.set_mark(&name, Mark::None).unwrap();
        assert!(
            (0..8).all(|_| t.pick_replica(&t.load(), &[], Some(moved), |_| false) == Some(moved))
        );
        // Drained while the session holds it: it stays.
        t.set_mark(&t.load().node(moved.node).name.clone(), Mark::Drain)
            .unwrap();
        let held = |id| id == moved.node;
        assert_eq!(
            t.pick_replica(&t.load(), &[], Some(moved), held),
            Some(moved)
        );
    }

    #[test]
    fn a_weight_change_makes_sessions_choose_again() {
        let t = topology(60_000);
        let mut cfg = Config::embedded_default();
        cfg.nodes[2].weight = 1;
        cfg.nodes[3].weight = 1;
        t.reload(&cfg); // r1 3 -> 1
        let on_r1 = t.pick_replica(&t.load(), &[], None, |_| false).unwrap();
        let on_r1 = if on_r1.node == 2 {
            on_r1
        } else {
            t.pick_replica(&t.load(), &[], None, |_| false).unwrap()
        };
        assert_eq!(on_r1.node, 2);
        t.reload(&cfg); // same weights: nobody moves
        assert_eq!(
            t.pick_replica(&t.load(), &[], Some(on_r1), |_| false),
            Some(on_r1)
        );
        cfg.nodes[2].weight = 0;
        t.reload(&cfg);
        assert_eq!(
            t.pick_replica(&t.load(), &[], Some(on_r1), |_| false)
                .map(|c| c.node),
            Some(3)
        );
        cfg.nodes[2].weight = 1;
        cfg.nodes[3].weight = 5;
        t.reload(&cfg);
        let picks: Vec<_> = (0..6)
            .map(|_| {
                t.pick_replica(&t.load(), &[], Some(on_r1), |_| false)
                    .unwrap()
                    .node
            })
            .collect();
        assert_eq!(picks.iter().filter(|&&id| id == 3).count(), 5, "{picks:?}");
    }

    #[test]
    fn lagging_or_stopped_replicas_get_no_reads() {
        let t = topology(60_000);
        let lagging = ProbeVerdict {
            up: true,
            read_only: Some(true),
            lag_seconds: Some(60),
            replication: Some(Replication::Running),
            ..Default::default()
        };
        t.apply_probe(2, &lagging);
        let stopped = ProbeVerdict {
            replication: Some(Replication::Stopped),
            lag_seconds: None,
            ..lagging.clone()
        };
        t.apply_probe(3, &stopped);
        let snap = t.load();
        assert_eq!(pick(&t, &snap, &[], |_| false), None);
        t.apply_probe(
            2,
            &ProbeVerdict {
                lag_seconds: Some(0),
                ..lagging
            },
        );
        let snap = t.load();
        assert_eq!(pick(&t, &snap, &[], |_| false), Some(2));
    }

    #[test]
    fn reconnecting_replicas_serve_reads_only_without_a_writer() {
        let t = topology(60_000);
        let reconnecting = ProbeVerdict {
            up: true,
            read_only: Some(true),
            lag_seconds: None,
            replication: Some(Replication::Reconnecting),
            ..Default::default()
        };
        t.apply_probe(2, &reconnecting);
        t.apply_probe(3, &reconnecting);
        assert_eq!(
            pick(&t, &t.load(), &[], |_| false),
            None,
            "a writer exists: fresher data there"
        );
        t.apply_probe(0, &ProbeVerdict::default());
        t.apply_probe(1, &ProbeVerdict::default());
        assert_eq!(t.writer(), None);
        assert!(
            pick(&t, &t.load(), &[], |_| false).is_some(),
            "reduced-functionality mode reads"
        );
    }

    fn master_at(domain: u32, seq: u64) -> ProbeVerdict {
        let set = GtidSet::parse_mariadb(&format!("{domain}-{domain}-{seq}"));
        ProbeVerdict {
            own_position: Some(set.own_position_mariadb(domain)),
            gtids: Some(set),
            ..up()
        }
    }

    #[test]
    fn a_standby_whose_own_stream_advances_raises_the_second_writer_alarm() {
        let t = topology(60_000);
        t.apply_probe(0, &master_at(1, 10));
        t.apply_probe(1, &master_at(2, 5));
        // The writer's own stream advancing is ordinary.
        t.apply_probe(0, &master_at(1, 50));
        assert_eq!(t.load().status[0].second_writer, None);
        t.apply_probe(1, &master_at(2, 5));
        assert_eq!(t.load().status[1].second_writer, None);
        t.apply_probe(1, &master_at(2, 7));
        let alarm = t.load().status[1].second_writer.clone().expect("raised");
        assert_eq!(
            (alarm.first.as_str(), alarm.last.as_str(), alarm.count),
            ("2-2-6", "2-2-7", 2)
        );
        t.apply_probe(1, &master_at(2, 8));
        assert_eq!(
            t.load().status[1].second_writer.as_ref().map(|a| a.count),
            Some(3)
        );
        // Once it is the writer, its own writes are expected. (They are
        // errant to m1: the operator forces it.)
        t.promote("m2", OnErrant::Promote).unwrap();
        t.apply_probe(1, &master_at(2, 9));
        assert_eq!(t.load().status[1].second_writer, None);
        // The old writer's first probe as a standby sets the baseline: the
        // writes it took as the writer are not an alarm.
        t.apply_probe(0, &master_at(1, 60));
        t.apply_probe(0, &master_at(1, 60));
        assert_eq!(t.load().status[0].second_writer, None);
    }

    fn master_with(domain: u32, state: &str) -> ProbeVerdict {
        let set = GtidSet::parse_mariadb(state);
        ProbeVerdict {
            own_position: Some(set.own_position_mariadb(domain)),
            gtids: Some(set),
            ..up()
        }
    }

    #[test]
    fn one_switchover_at_a_time() {
        let t = topology(60_000);
        let first = t.begin_switchover(0).unwrap();
        assert_eq!(
            t.begin_switchover(0).err(),
            Some(TopologyError::SwitchoverInProgress("m1".into()))
        );
        drop(first);
        assert!(t.begin_switchover(0).is_ok());
    }

    #[test]
    fn promote_refuses_a_master_with_errant_transactions_unless_forced() {
        let t = topology(60_000);
        // m2 took 2-2-6..2-2-8 while split off: m1 has m2's stream up to 5.
        t.apply_probe(0, &master_with(1, "1-1-100,2-2-5"));
        t.apply_probe(1, &master_with(2, "1-1-100,2-2-8"));
        let errant = t.load().errant(1).expect("errant").to_string();
        assert_eq!(errant, "2-2-6..2-2-8 (3 transactions)");
        assert_eq!(
            t.load().errant(0),
            None,
            "the writer has none by definition"
        );
        assert_eq!(
            t.promote("m2", OnErrant::Refuse),
            Err(TopologyError::ErrantTransactions {
                node: "m2".into(),
                errant
            })
        );
        assert_eq!(t.writer(), Some(0));
        // Once m1 has applied them, m2 is promotable.
        t.apply_probe(0, &master_with(1, "1-1-100,2-2-8"));
        assert_eq!(t.load().errant(1), None);
        t.apply_probe(0, &master_with(1, "1-1-100,2-2-5"));
        assert_eq!(t.promote("m2", OnErrant::Promote), Ok(1));
    }

    #[test]
    fn masters_sharing_a_stream_raise_no_alarm() {
        let t = topology(60_000);
        t.apply_probe(0, &master_at(0, 10));
        t.apply_probe(1, &master_at(0, 10));
        t.apply_probe(1, &master_at(0, 20)); // the writer's events, replicated
        assert_eq!(t.load().status[1].second_writer, None);
    }

    #[test]
    fn replicas_of_a_down_source_get_no_reads_while_a_writer_exists() {
        let t = topology(60_000);
        let of_m1 = ProbeVerdict {
            read_only: Some(true),
            lag_seconds: Some(0),
            replication: Some(Replication::Running),
            source: Some("localhost:13301".into()),
            ..up()
        };
        t.apply_probe(2, &of_m1);
        t.apply_probe(3, &of_m1);
        assert_eq!(t.load().status[2].source, Some(0));
        assert!(pick(&t, &t.load(), &[], |_| false).is_some());
        // m1 blackholed: its replicas still say Running, lag 0.
        t.apply_probe(0, &ProbeVerdict::default());
        assert_eq!(t.writer(), Some(1));
        assert_eq!(
            pick(&t, &t.load(), &[], |_| false),
            None,
            "reads go to the writer"
        );
        // No writer at all: they are the best data there is.
        t.apply_probe(1, &ProbeVerdict::default());
        assert_eq!(t.writer(), None);
        assert!(pick(&t, &t.load(), &[], |_| false).is_some());
    }

    #[test]
    fn addresses_match_across_loopback_spellings() {
        assert!(same_address("127.0.0.1:13301", "localhost:13301"));
        assert!(same_address("DB1:3306", "db1:3306"));
        assert!(!same_address("127.0.0.1:13301", "127.0.0.1:13302"));
        assert!(!same_address("db1:3306", "db2:3306"));
    }

    #[test]
    fn drained_replicas_serve_only_sessions_already_on_them() {
        let t = topology(60_000);
        t.set_mark("r2", Mark::Drain).unwrap();
        let snap = t.load();
        assert!((0..6).all(|_| pick(&t, &snap, &[], |_| false) == Some(2)));
        assert!((0..6).any(|_| pick(&t, &snap, &[], |id| id == 3) == Some(3)));
    }
}
