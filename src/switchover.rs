//! The operator's switchover (`splitrail node promote NAME`): the writer
//! role moves only once the target has every transaction the old writer
//! has, so no acknowledged write is missing on the new writer and none of
//! its first writes conflicts with one still in flight.
//!
//! 1. the old writer is set `read_only=ON` (fenced: `SET GLOBAL read_only`
//!    waits for commits in progress, so its GTID position is final);
//! 2. the target's applied position is polled until it holds the old
//!    writer's; after `failover.switchover_timeout_ms` the fence is undone
//!    and the switchover reported as failed, the writer unchanged;
//! 3. the writer moves: with coordination the cluster's record (epoch + 1,
//!    by compare-and-swap from the writer that was fenced), else this
//!    instance's topology; `read_only` is cleared on the target.
//!
//! The old writer stays fenced with coordination (an instance that has not
//! followed the record yet must not write to it). A single instance is the
//! only router, so it lifts the fence after a grace period, once no
//! session can still be routing to the old writer: single-instance
//! failover only moves to a writable master, and the old writer is the
//! standby now.
//!
//! Without a dead old writer to fence (down, or none), or without a
//! monitor login, the writer moves at once, as a failover would.

use crate::coordination::CoordinationError;
use crate::fence;
use crate::gtid::{Behind, GtidSet};
use crate::topology::{Node, NodeId, OnErrant, TopologyError};
use crate::Context;
use std::time::Duration;
use tokio::time::Instant;

/// Why a switchover did not happen (or how it ended in doubt).
#[derive(Debug, thiserror::Error)]
pub enum SwitchoverError {
    #[error(transparent)]
    Refused(#[from] TopologyError),
    #[error("could not make the writer {node} read-only ({error}); nothing changed")]
    CannotFence { node: String, error: String },
    #[error(
        "could not read the GTID position of {node} ({error}); the writer stays {writer}{undo}"
    )]
    CannotRead {
        node: String,
        writer: String,
        error: String,
        undo: Undo,
    },
    #[error("{target} did not catch up with {writer} within {waited:?} (still missing {behind}); the writer stays {writer}{undo}")]
    NotCaughtUp {
        target: String,
        writer: String,
        waited: Duration,
        behind: String,
        undo: Undo,
    },
    #[error("{target} can no longer become the writer ({error}); the writer stays {writer}{undo}")]
    TargetLost {
        target: String,
        writer: String,
        error: TopologyError,
        undo: Undo,
    },
    #[error("the cluster's writer record could not be moved ({error}){left}")]
    Record {
        error: CoordinationError,
        /// What was left fenced, if anything.
        left: String,
    },
}

/// Whether the fence on the old writer was taken back after a failed
/// switchover (shown at the end of the message).
#[derive(Debug)]
pub enum Undo {
    /// read_only is back to what it was.
    Restored,
    /// It could not be cleared: the old writer refuses writes until it is.
    Failed(String),
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undo::Restored => f.write_str(" and writable"),
            Undo::Failed(e) => write!(
                f,
                ", but read_only could not be cleared on it ({e}): clear it by hand"
            ),
        }
    }
}

/// How often the target's position is read while it catches up.
const POLL: Duration = Duration::from_millis(20);

/// Single instance: how long after the move the old writer stays fenced.
/// A session checks the writer right before each statement it sends to
/// it; this outlasts one that had just checked when the writer moved. Not
/// longer: until it is lifted, a failover cannot move back to the old
/// writer (a single instance moves only to a writable master).
const FENCE_LIFT_GRACE: Duration = Duration::from_millis(250);

/// Makes `to` the writer, safely; returns its id once this instance
/// routes writes to it.
pub async fn switchover(
    ctx: &Context,
    to: &str,
    on_errant: OnErrant,
) -> Result<NodeId, SwitchoverError> {
    let target = ctx.topology.promotable(to, on_errant)?;
    let snap = ctx.topology.load();
    let from = snap
        .writer()
        .filter(|&w| w != target && snap.status[w].monitor_up != Some(false));
    let Some(from) = from else {
        let already = snap.writer() == Some(target);
        drop(snap);
        if !already {
            move_writer(ctx, None, target).await?;
        }
        return Ok(target);
    };
    let (old, new) = (snap.node(from).clone(), snap.node(target).clone());
    drop(snap);
    if !ctx.config.monitor.enabled() || !ctx.config.failover.fence {
        tracing::warn!(from = %old.name, to = %new.name, "switchover without fencing or waiting for catch-up (no monitor login, or failover.fence = false)");
        move_writer(ctx, Some(&old), target).await?;
        return Ok(target);
    }

    let _in_progress = ctx.topology.begin_switchover(from)?;
    let (monitor, tls) = (&ctx.config.monitor, &ctx.config.backend_tls);
    let cannot_fence = |error| SwitchoverError::CannotFence {
        node: old.name.clone(),
        error,
    };
    let was_read_only = fence::is_read_only(&old, monitor, tls)
        .await
        .map_err(cannot_fence)?;
    fence::set_read_only(&old, monitor, tls, true)
        .await
        .map_err(cannot_fence)?;
    let started = Instant::now();
    let undo = || async {
        if was_read_only {
            return Undo::Restored;
        }
        match fence::set_read_only(&old, monitor, tls, false).await {
            Ok(()) => {
                ctx.topology.note_read_only(old.id, false);
                Undo::Restored
            }
            Err(e) => Undo::Failed(e),
        }
    };
    let wanted = match applied(ctx, &old).await {
        Ok(set) => set,
        Err(error) => {
            return Err(SwitchoverError::CannotRead {
                node: old.name.clone(),
                writer: old.name.clone(),
                error,
                undo: undo().await,
            })
        }
    };
    if let Err(e) = caught_up(ctx, &new, &wanted).await {
        let undo = undo().await;
        return Err(match e {
            Wait::Unreadable(error) => SwitchoverError::CannotRead {
                node: new.name.clone(),
                writer: old.name.clone(),
                error,
                undo,
            },
            Wait::Behind(behind) => SwitchoverError::NotCaughtUp {
                target: new.name.clone(),
                writer: old.name.clone(),
                waited: started.elapsed(),
                behind: list(&behind),
                undo,
            },
        });
    }
    let waited = started.elapsed();
    if let Err(e) = fence::set_read_only(&new, monitor, tls, false).await {
        tracing::error!(node = %new.name, error = %e, "switchover: could not clear read_only on the new writer: writes fail with 1290 until it is cleared");
    }
    if let Err(e) = move_writer(ctx, Some(&old), target).await {
        return Err(match e {
            SwitchoverError::Refused(error) => SwitchoverError::TargetLost {
                target: new.name.clone(),
                writer: old.name.clone(),
                error,
                undo: undo().await,
            },
            other => other,
        });
    }
    tracing::warn!(from = %old.name, to = %new.name, ?waited, "switchover: the writer moved once the target had caught up");
    if ctx.coordinator.is_none() && !was_read_only {
        lift_fence(ctx, &old).await;
    }
    Ok(target)
}

/// Moves the writer role to `target`: the cluster's record, or this
/// instance's topology.
async fn move_writer(
    ctx: &Context,
    from: Option<&Node>,
    target: NodeId,
) -> Result<(), SwitchoverError> {
    let Some(coordinator) = &ctx.coordinator else {
        // Errant transactions were checked at the start.
        let to = ctx.topology.load().node(target).name.clone();
        ctx.topology.promote(&to, OnErrant::Promote)?;
        return Ok(());
    };
    let to = ctx.topology.load().node(target).name.clone();
    let from_name = from.map(|n| n.name.as_str());
    if let Err(error) = coordinator.promote(ctx, from_name, &to).await {
        let left = from_name.map_or(String::new(), |f| {
            format!("; {f} is left read-only: check `splitrail nodes` and promote again")
        });
        return Err(SwitchoverError::Record { error, left });
    }
    // Applied here as soon as this instance reads the record back.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && ctx.topology.load().writer() != Some(target) {
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Single instance: clears the old writer's fence once no session can be
/// routing to it any more. Before the switchover answers: a process that
/// stopped in between would leave the standby read-only, and a single
/// instance fails over only to a writable master.
async fn lift_fence(ctx: &Context, old: &Node) {
    tokio::time::sleep(FENCE_LIFT_GRACE).await;
    match fence::set_read_only(old, &ctx.config.monitor, &ctx.config.backend_tls, false).await {
        Ok(()) => {
            ctx.topology.note_read_only(old.id, false);
            tracing::info!(node = %old.name, "switchover: the old writer is a writable standby again")
        }
        Err(e) => {
            tracing::error!(node = %old.name, error = %e, "switchover: could not clear read_only on the old writer; it cannot become the writer by failover until it is cleared")
        }
    }
}

enum Wait {
    Unreadable(String),
    Behind(Vec<Behind>),
}

/// Polls `target` until it has applied every transaction of `wanted`,
/// on one monitor connection for the whole wait.
async fn caught_up(ctx: &Context, target: &Node, wanted: &GtidSet) -> Result<(), Wait> {
    let deadline = Instant::now() + ctx.config.failover.switchover_timeout();
    let (monitor, tls) = (&ctx.config.monitor, &ctx.config.backend_tls);
    let mut conn = fence::bounded_by(
        fence::FENCE_TIMEOUT,
        crate::monitor::connect(target, monitor, tls),
    )
    .await
    .map_err(Wait::Unreadable)?;
    let result = loop {
        let have = fence::bounded_by(
            fence::FENCE_TIMEOUT,
            crate::monitor::applied_gtids(&mut conn),
        )
        .await
        .map_err(Wait::Unreadable)?;
        let behind = wanted.lacking(&have);
        if behind.is_empty() {
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(Wait::Behind(behind));
        }
        tokio::time::sleep(POLL).await;
    };
    let _ = conn.disconnect().await;
    result
}

/// A node's applied GTID set, through a monitor connection.
async fn applied(ctx: &Context, node: &Node) -> Result<GtidSet, String> {
    let work = async {
        let mut conn =
            crate::monitor::connect(node, &ctx.config.monitor, &ctx.config.backend_tls).await?;
        let set = crate::monitor::applied_gtids(&mut conn).await?;
        let _ = conn.disconnect().await;
        Ok::<_, mysql_async::Error>(set)
    };
    fence::bounded_by(fence::FENCE_TIMEOUT, work).await
}

fn list(behind: &[Behind]) -> String {
    behind
        .iter()
        .map(Behind::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
