//! The pure part of coordination: given the cluster's records (the writer,
//! every live instance's view of the nodes, the operator marks), must the
//! writer move, and to which master? No I/O; every instance runs the same
//! function on the same records, and the compare-and-swap on the writer
//! key lets at most one of them act on it per epoch.

use crate::topology::Mark;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One instance's view of a node, from its own monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    Up,
    Down,
    /// No verdict yet.
    Unknown,
}

/// What one live instance publishes (under its lease).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Node name -> what this instance's monitor says of it.
    pub nodes: BTreeMap<String, Seen>,
}

/// The cluster's records, as one read returned them.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// The writer record: node name (absent before the first instance
    /// wrote it).
    pub writer: Option<String>,
    /// Views of the live instances (expired leases are gone).
    pub views: BTreeMap<String, InstanceView>,
    pub marks: BTreeMap<String, Mark>,
}

/// What the instances should do with the writer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// No record yet: create one naming `to`.
    Initialize {
        to: String,
    },
    /// Replace the record: `from` cannot stay the writer.
    Move {
        from: String,
        to: String,
        reason: String,
    },
    /// The writer must go but no master qualifies: keep the record (its
    /// writes fail) and say why.
    Stuck {
        reason: String,
    },
}

impl ClusterState {
    /// How many live instances see `node` as `seen`.
    fn count(&self, node: &str, seen: Seen) -> usize {
        self.views
            .values()
            .filter(|v| v.nodes.get(node) == Some(&seen))
            .count()
    }

    fn majority(&self, votes: usize) -> bool {
        votes * 2 > self.views.len()
    }

    fn marked(&self, node: &str) -> Mark {
        self.marks.get(node).copied().unwrap_or_default()
    }

    /// A master may take the writer role: no operator mark, and a majority
    /// of live instances see it up.
    fn qualifies(&self, node: &str) -> bool {
        self.marked(node) == Mark::None && self.majority(self.count(node, Seen::Up))
    }
}

/// `masters`: the masters' names in configuration order (the order in
/// which they take over).
pub fn decide(state: &ClusterState, masters: &[String]) -> Decision {
    if state.views.is_empty() {
        return Decision::Keep;
    }
    let Some(writer) = state.writer.as_deref() else {
        // The first master in file order that qualifies, but only once
        // the ones before it are known not to: a monitor that has not
        // answered yet must not hand the role to the second master.
        for m in masters {
            if state.qualifies(m) {
                return Decision::Initialize { to: m.clone() };
            }
            let undecided = state.count(m, Seen::Unknown) > 0;
            if state.marked(m) == Mark::None
                && undecided
                && !state.majority(state.count(m, Seen::Down))
            {
                return Decision::Keep;
            }
        }
        return Decision::Keep;
    };
    let live = state.views.len();
    let reason = match state.marked(writer) {
        Mark::Down => format!("operator marked {writer} down"),
        Mark::Drain => format!("operator is draining {writer}"),
        Mark::None => {
            let down = state.count(writer, Seen::Down);
            if !state.majority(down) {
                return Decision::Keep;
            }
            format!("{down} of {live} live instances see {writer} down")
        }
    };
    let start = masters.iter().position(|m| m == writer).unwrap_or(0);
    let next = (1..=masters.len())
        .map(|step| &masters[(start + step) % masters.len()])
        .find(|m| m.as_str() != writer && state.qualifies(m));
    match next {
        Some(to) => Decision::Move {
            from: writer.to_string(),
            to: to.clone(),
            reason,
        },
        None => Decision::Stuck {
            reason: format!("{reason}, and no other master is up for a majority and unmarked"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masters() -> Vec<String> {
        vec!["m1".into(), "m2".into()]
    }

    fn view(m1: Seen, m2: Seen) -> InstanceView {
        InstanceView {
            nodes: [("m1".to_string(), m1), ("m2".to_string(), m2)]
                .into_iter()
                .collect(),
        }
    }

    fn state(writer: Option<&str>, views: &[InstanceView]) -> ClusterState {
        ClusterState {
            writer: writer.map(String::from),
            views: views
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("i{i}"), v.clone()))
                .collect(),
            marks: BTreeMap::new(),
        }
    }

    use Seen::{Down, Unknown, Up};

    #[test]
    fn the_first_master_a_majority_sees_up_is_the_first_writer() {
        let s = state(None, &[view(Up, Up), view(Up, Up)]);
        assert_eq!(
            decide(&s, &masters()),
            Decision::Initialize { to: "m1".into() }
        );
        let s = state(None, &[view(Down, Up), view(Down, Up), view(Unknown, Up)]);
        assert_eq!(
            decide(&s, &masters()),
            Decision::Initialize { to: "m2".into() }
        );
        assert_eq!(decide(&state(None, &[]), &masters()), Decision::Keep);
        // m1 not checked yet by some: wait rather than pick m2.
        let s = state(None, &[view(Unknown, Up), view(Unknown, Up), view(Up, Up)]);
        assert_eq!(decide(&s, &masters()), Decision::Keep);
        let mut s = state(None, &[view(Unknown, Up), view(Unknown, Up)]);
        s.marks.insert("m1".into(), Mark::Down);
        assert_eq!(
            decide(&s, &masters()),
            Decision::Initialize { to: "m2".into() }
        );
    }

    #[test]
    fn one_instance_alone_in_its_view_moves_nobody() {
        let s = state(Some("m1"), &[view(Down, Up), view(Up, Up), view(Up, Up)]);
        assert_eq!(decide(&s, &masters()), Decision::Keep);
        // Two instances, split views: no majority either way.
        let s = state(Some("m1"), &[view(Down, Up), view(Up, Up)]);
        assert_eq!(decide(&s, &masters()), Decision::Keep);
    }

    #[test]
    fn a_majority_seeing_the_writer_down_moves_it() {
        let s = state(Some("m1"), &[view(Down, Up), view(Down, Up), view(Up, Up)]);
        assert!(matches!(
            decide(&s, &masters()),
            Decision::Move { ref to, ref reason, .. } if to == "m2" && reason.starts_with("2 of 3")
        ));
        // The only live instance is a majority of one.
        let s = state(Some("m1"), &[view(Down, Up)]);
        assert!(matches!(decide(&s, &masters()), Decision::Move { .. }));
        // Nowhere to go: stuck, the record stays.
        let s = state(
            Some("m1"),
            &[view(Down, Down), view(Down, Up), view(Down, Down)],
        );
        assert!(matches!(decide(&s, &masters()), Decision::Stuck { .. }));
    }

    #[test]
    fn marks_move_the_writer_and_keep_masters_out() {
        let mut s = state(Some("m1"), &[view(Up, Up), view(Up, Up)]);
        s.marks.insert("m1".into(), Mark::Drain);
        assert!(matches!(decide(&s, &masters()), Decision::Move { ref to, .. } if to == "m2"));
        s.marks.insert("m2".into(), Mark::Down);
        assert!(matches!(decide(&s, &masters()), Decision::Stuck { .. }));
        // A recovered m1 is not failed back to.
        let s = state(Some("m2"), &[view(Up, Up), view(Up, Up)]);
        assert_eq!(decide(&s, &masters()), Decision::Keep);
    }
}
