//! Several instances, one writer: the writer record and the operator marks
//! live in etcd v3, and every instance follows them.
//!
//! Keys, under `/splitrail/<cluster>/`:
//! - `writer`: the writer's node name. Its etcd revision is the **epoch**;
//!   it changes only by a transaction comparing that revision, so two
//!   instances can never both move it from the same epoch.
//! - `views/<instance>`: what this instance's monitor sees of each node,
//!   under a lease: an instance that stops renewing it is no longer live.
//! - `marks/<node>`: an operator mark (down, drain); absent = none.
//!
//! Every `interval_ms` (and at once when a watched key changes) each
//! instance publishes its view, reads the records, follows the writer and
//! marks, and runs [`decide::decide`]: the writer moves only when a
//! majority of live instances see it down (or an operator marked it). The
//! instance whose compare-and-swap wins fences: `read_only=ON` on the old
//! writer if it answers, `read_only=OFF` on the new one.
//!
//! etcd unreachable: the instance keeps the writer it last knew and serves,
//! and never moves the writer alone (docs/operations.md, the partition
//! table).

pub mod decide;

use crate::config::{CoordinationConfig, MonitorConfig, Role};
use crate::fence;
use crate::topology::{Mark, NodeId, Snapshot, Topology};
use crate::Context;
use decide::{ClusterState, Decision, InstanceView, Seen};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What `/health` and `splitrail nodes` say of coordination.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub instance: String,
    pub cluster: String,
    pub etcd: EtcdState,
    pub epoch: Option<i64>,
    pub live_instances: usize,
    /// Why etcd is unreachable, or why the writer cannot move.
    pub problem: Option<String>,
}

/// Whether this instance's last round reached etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcdState {
    Ok,
    Unreachable,
}

/// Why a coordination request failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("etcd is unreachable from this instance: {0}")]
    Unreachable(String),
    #[error("the writer record changed meanwhile (another instance moved it); try again")]
    Conflict,
    #[error("etcd TLS: {0}")]
    Tls(String),
}

pub struct Coordinator {
    cfg: CoordinationConfig,
    monitor: MonitorConfig,
    instance: String,
    prefix: String,
    /// A connected client; `None` until connected or after an error.
    client: tokio::sync::Mutex<Option<Client>>,
    status: Mutex<Status>,
    /// Wakes the loop at once (a watched key changed, an operator acted).
    wake: Notify,
}

/// The lease that keeps this instance's view alive.
struct Lease {
    id: i64,
    keeper: LeaseKeeper,
    answers: LeaseKeepAliveStream,
}

impl Coordinator {
    pub fn new(cfg: &CoordinationConfig, monitor: &MonitorConfig, listen: &str) -> Coordinator {
        let instance = if cfg.instance.is_empty() {
            format!("{}:{}", hostname(), listen.rsplit(':').next().unwrap_or(""))
        } else {
            cfg.instance.clone()
        };
        let prefix = format!("/splitrail/{}/", cfg.cluster);
        Coordinator {
            status: Mutex::new(Status {
                instance: instance.clone(),
                cluster: cfg.cluster.clone(),
                etcd: EtcdState::Unreachable,
                epoch: None,
                live_instances: 0,
                problem: Some("not connected yet".into()),
            }),
            cfg: cfg.clone(),
            monitor: monitor.clone(),
            instance,
            prefix,
            client: tokio::sync::Mutex::new(None),
            wake: Notify::new(),
        }
    }

    pub fn status(&self) -> Status {
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.etcd_timeout_ms)
    }

    /// Runs one etcd request with the request timeout.
    async fn bounded<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, CoordinationError> {
        match tokio::time::timeout(self.timeout(), request).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(CoordinationError::Timeout(self.timeout())),
        }
    }

    /// The connected client (connecting if needed).
    async fn client(&self) -> Result<Client, CoordinationError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.timeout())
            .with_timeout(self.timeout());
        if !self.cfg.etcd_user.is_empty() {
            options = options.with_user(&self.cfg.etcd_user, &self.cfg.etcd_password);
        }
        if let Some(tls) = self.tls()? {
            options = options.with_tls(tls);
        }
        let client = self
            .bounded(Client::connect(&self.cfg.etcd_endpoints, Some(options)))
            .await?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// TLS options from `etcd_ca_file` (and the client certificate), read
    /// at each connect so that renewed files are picked up.
    fn tls(&self) -> Result<Option<TlsOptions>, CoordinationError> {
        let cfg = &self.cfg;
        if cfg.etcd_ca_file.is_empty() {
            return Ok(None);
        }
        let read = |path: &str| {
            std::fs::read(path).map_err(|e| CoordinationError::Tls(format!("{path}: {e}")))
        };
        let mut tls =
            TlsOptions::new().ca_certificate(Certificate::from_pem(read(&cfg.etcd_ca_file)?));
        if !cfg.etcd_cert_file.is_empty() {
            tls = tls.identity(Identity::from_pem(
                read(&cfg.etcd_cert_file)?,
                read(&cfg.etcd_key_file)?,
            ));
        }
        Ok(Some(tls))
    }

    async fn forget_client(&self) {
        *self.client.lock().await = None;
    }

    /// The coordination loop; never returns. Dropping (aborting) it stops
    /// the watch too.
    pub async fn run(self: Arc<Self>, ctx: Arc<Context>) {
        let _watch = AbortOnDrop(tokio::spawn(Arc::clone(&self).watch()));
        let interval = Duration::from_millis(self.cfg.interval_ms);
        let mut lease: Option<Lease> = None;
        let mut last_logged: Option<Instant> = None;
        loop {
            match self.round(&ctx, &mut lease).await {
                Ok(()) => {
                    let mut st = self.lock_status();
                    if st.etcd != EtcdState::Ok {
                        tracing::info!(instance = %self.instance, "coordination: etcd reachable");
                    }
                    st.etcd = EtcdState::Ok;
                    last_logged = None;
                }
                Err(e) => {
                    lease = None;
                    self.forget_client().await;
                    let mut st = self.lock_status();
                    // One line when it starts, then one every 10 s.
                    if st.etcd == EtcdState::Ok
                        || last_logged.is_none_or(|t| t.elapsed() > LOG_EVERY)
                    {
                        tracing::error!(instance = %self.instance, error = %e, "coordination: etcd unreachable; keeping writer {} and never failing over alone", writer_name(&ctx.topology.load()));
                        last_logged = Some(Instant::now());
                    }
                    st.etcd = EtcdState::Unreachable;
                    st.problem = Some(e.to_string());
                }
            }
            let _ = tokio::time::timeout(interval, self.wake.notified()).await;
        }
    }

    /// Wakes the loop whenever a key of the cluster changes, so instances
    /// follow a new writer within milliseconds, not an interval.
    async fn watch(self: Arc<Self>) {
        loop {
            let watched = async {
                let mut client = self.client().await?;
                let mut stream = client
                    .watch(self.prefix.clone(), Some(WatchOptions::new().with_prefix()))
                    .await?;
                while let Some(_events) = stream.message().await? {
                    self.wake.notify_one();
                }
                Ok::<(), CoordinationError>(())
            };
            let _ = watched.await;
            tokio::time::sleep(Duration::from_millis(self.cfg.interval_ms)).await;
        }
    }

    /// One round: publish the view, read the records, follow them, act.
    async fn round(
        &self,
        ctx: &Context,
        lease: &mut Option<Lease>,
    ) -> Result<(), CoordinationError> {
        let mut client = self.client().await?;
        let lease_id = self.renew(&mut client, lease).await?;
        let view = view_of(&ctx.topology.load());
        let body = serde_json::to_string(&view).unwrap_or_default();
        self.bounded(client.put(
            self.key(&format!("views/{}", self.instance)),
            body,
            Some(PutOptions::new().with_lease(lease_id)),
        ))
        .await?;
        let (state, epoch) = self.read(&mut client).await?;
        let snap = ctx.topology.load();
        let masters: Vec<String> = snap
            .nodes
            .iter()
            .filter(|n| n.role == Role::Master)
            .map(|n| n.name.clone())
            .collect();
        drop(snap);
        follow(&ctx.topology, &state, epoch);
        {
            let mut st = self.lock_status();
            st.epoch = epoch;
            st.live_instances = state.views.len();
            st.problem = None;
        }
        match decide::decide(&state, &masters) {
            Decision::Keep => {}
            Decision::Stuck { reason } => {
                self.lock_status().problem = Some(reason);
            }
            Decision::Initialize { to } => {
                if self.swap_writer(ctx, &mut client, None, &to).await? {
                    tracing::warn!(instance = %self.instance, writer = %to, "coordination: first writer record written");
                    self.wake.notify_one();
                }
            }
            Decision::Move { from, to, reason } => {
                let Some(epoch) = epoch else { return Ok(()) };
                if self.swap_writer(ctx, &mut client, Some(epoch), &to).await? {
                    tracing::warn!(instance = %self.instance, %from, %to, %reason, "coordination: this instance moved the writer");
                    self.after_move(ctx, &from, &to).await;
                    self.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Grants the lease if there is none, else renews it.
    async fn renew(
        &self,
        client: &mut Client,
        lease: &mut Option<Lease>,
    ) -> Result<i64, CoordinationError> {
        if let Some(l) = lease.as_mut() {
            let renewed = async {
                l.keeper.keep_alive().await?;
                l.answers.message().await
            };
            match self.bounded(renewed).await? {
                Some(answer) if answer.ttl() > 0 => return Ok(l.id),
                // Expired while we were away: a new lease below.
                _ => *lease = None,
            }
        }
        let ttl = self.cfg.lease_ttl_s.max(1) as i64;
        let granted = self.bounded(client.lease_grant(ttl, None)).await?;
        let (keeper, answers) = self.bounded(client.lease_keep_alive(granted.id())).await?;
        *lease = Some(Lease {
            id: granted.id(),
            keeper,
            answers,
        });
        Ok(granted.id())
    }

    /// The cluster's records and the writer key's revision (the epoch).
    async fn read(
        &self,
        client: &mut Client,
    ) -> Result<(ClusterState, Option<i64>), CoordinationError> {
        let resp = self
            .bounded(client.get(self.prefix.clone(), Some(GetOptions::new().with_prefix())))
            .await?;
        let mut state = ClusterState::default();
        let mut epoch = None;
        for kv in resp.kvs() {
            let (Ok(key), Ok(value)) = (kv.key_str(), kv.value_str()) else {
                continue;
            };
            let Some(rest) = key.strip_prefix(&self.prefix) else {
                continue;
            };
            if rest == "writer" {
                state.writer = Some(value.to_string());
                epoch = Some(kv.mod_revision());
            } else if let Some(instance) = rest.strip_prefix("views/") {
                if let Ok(view) = serde_json::from_str::<InstanceView>(value) {
                    state.views.insert(instance.to_string(), view);
                }
            } else if let Some(node) = rest.strip_prefix("marks/") {
                let mark = match value {
                    "down" => Mark::Down,
                    "drain" => Mark::Drain,
                    _ => Mark::None,
                };
                state.marks.insert(node.to_string(), mark);
            }
        }
        Ok((state, epoch))
    }

    /// Moves the writer record from `epoch` to `to` (`None`: creates the
    /// first record, if there is none); false when another instance changed
    /// it first.
    async fn swap_writer(
        &self,
        ctx: &Context,
        client: &mut Client,
        epoch: Option<i64>,
        to: &str,
    ) -> Result<bool, CoordinationError> {
        let key = self.key("writer");
        let unchanged = match epoch {
            Some(epoch) => Compare::mod_revision(key.clone(), CompareOp::Equal, epoch),
            None => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
        };
        let swap = Txn::new()
            .when([unchanged])
            .and_then([TxnOp::put(key, to, None)]);
        let won = self.bounded(client.txn(swap)).await?.succeeded();
        let outcome = if won { "won" } else { "lost" };
        ctx.metrics.writer_swaps.with_label_values(&[outcome]).inc();
        Ok(won)
    }

    /// What the instance that moved the writer does next: fences (with
    /// `failover.fence`: `read_only=ON` on the old writer if it answers,
    /// a dead one cannot take writes anyway; `read_only=OFF` on the new
    /// one), then re-points the old writer's replicas (with
    /// `failover.repoint_replicas`).
    async fn after_move(&self, ctx: &Context, from: &str, to: &str) {
        let snap = ctx.topology.load();
        let node = |name: &str| snap.nodes.iter().find(|n| n.name == name).cloned();
        let (Some(old), Some(new)) = (node(from), node(to)) else {
            return;
        };
        drop(snap);
        if ctx.config.failover.fence {
            let tls = &ctx.config.backend_tls;
            match fence::set_read_only(&old, &self.monitor, tls, true).await {
                Ok(()) => {
                    tracing::warn!(node = %old.name, "fenced: read_only=ON on the old writer")
                }
                Err(e) => {
                    tracing::warn!(node = %old.name, error = %e, "could not fence the old writer (unreachable or not allowed); if it comes back it is read-write until fenced")
                }
            }
            if let Err(e) = fence::set_read_only(&new, &self.monitor, tls, false).await {
                tracing::error!(node = %new.name, error = %e, "could not clear read_only on the new writer: writes fail with 1290 until it is cleared (the monitor login needs READ_ONLY ADMIN or SUPER)");
            }
        }
        crate::repoint::repoint_replicas(ctx, old.id, new.id).await;
    }

    /// Sets or clears an operator mark for every instance.
    pub async fn set_mark(&self, node: &str, mark: Mark) -> Result<(), CoordinationError> {
        let mut client = self.client().await?;
        let key = self.key(&format!("marks/{node}"));
        match mark {
            Mark::None => {
                self.bounded(client.delete(key, None)).await?;
            }
            Mark::Down => {
                self.bounded(client.put(key, "down", None)).await?;
            }
            Mark::Drain => {
                self.bounded(client.put(key, "drain", None)).await?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Moves the writer record from `from` (the writer this instance
    /// follows; the switchover has fenced it and waited for `to`) to `to`,
    /// then fences. `Conflict` when the record no longer names `from`.
    pub async fn promote(
        &self,
        ctx: &Context,
        from: Option<&str>,
        to: &str,
    ) -> Result<(), CoordinationError> {
        let mut client = self.client().await?;
        let (state, epoch) = self.read(&mut client).await?;
        if state.writer.as_deref() == Some(to) {
            return Ok(());
        }
        if state.writer.as_deref() != from {
            return Err(CoordinationError::Conflict);
        }
        if !self.swap_writer(ctx, &mut client, epoch, to).await? {
            return Err(CoordinationError::Conflict);
        }
        if let Some(from) = state.writer {
            self.after_move(ctx, &from, to).await;
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Between two "etcd unreachable" log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Applies the records: the writer at its epoch, and the marks.
fn follow(topology: &Topology, state: &ClusterState, epoch: Option<i64>) {
    let snap = topology.load();
    let marks: Vec<(NodeId, Mark)> = snap
        .nodes
        .iter()
        .map(|n| (n.id, state.marks.get(&n.name).copied().unwrap_or_default()))
        .collect();
    let writer = state.writer.as_deref().and_then(|w| snap.find(w));
    if state.writer.is_some() && writer.is_none() {
        tracing::error!(writer = ?state.writer, "the cluster's writer record names a node this instance does not know: writes refused");
    }
    drop(snap);
    for (id, mark) in marks {
        topology.follow_cluster_mark(id, mark);
    }
    if let Some(epoch) = epoch {
        topology.follow_cluster_writer(writer, epoch);
    }
}

fn writer_name(snap: &Snapshot) -> String {
    snap.writer()
        .map_or("none".into(), |w| snap.node(w).name.clone())
}

/// This instance's view: its monitor's verdict per node.
fn view_of(snap: &Snapshot) -> InstanceView {
    InstanceView {
        nodes: snap
            .nodes
            .iter()
            .map(|n| {
                let s = &snap.status[n.id];
                let seen = match s.monitor_up {
                    Some(true) => Seen::Up,
                    Some(false) => Seen::Down,
                    None => Seen::Unknown,
                };
                (n.name.clone(), seen)
            })
            .collect(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "splitrail".into())
}
