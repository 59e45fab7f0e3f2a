//! The state file: operator marks and the active writer, kept across
//! restarts so that a restart neither forgets `node down` nor hands writes
//! back to a master that was failed away from (no failback by restart).

use crate::topology::{Mark, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    #[serde(default)]
    pub marks: BTreeMap<String, Mark>,
    #[serde(default)]
    pub writer: Option<String>,
}

impl SavedState {
    pub fn of(snap: &Snapshot) -> SavedState {
        SavedState {
            marks: snap
                .nodes
                .iter()
                .zip(&snap.status)
                .filter(|(_, s)| s.mark != Mark::None)
                .map(|(n, s)| (n.name.clone(), s.mark))
                .collect(),
            writer: snap.writer().map(|w| snap.node(w).name.clone()),
        }
    }
}

pub struct StateFile {
    path: Option<PathBuf>,
}

impl StateFile {
    pub fn new(path: &str) -> StateFile {
        StateFile {
            path: (!path.is_empty()).then(|| PathBuf::from(path)),
        }
    }

    pub fn load(&self) -> Option<SavedState> {
        let path = self.path.as_deref()?;
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(state) => Some(state),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable state file");
                None
            }
        }
    }

    /// Writes atomically (temporary file + rename) so a crash never leaves
    /// a half-written file.
    pub fn save(&self, state: &SavedState) {
        let Some(path) = self.path.as_deref() else {
            return;
        };
        if let Err(e) = write_atomically(path, state) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the state file");
        }
    }
}

fn write_atomically(path: &Path, state: &SavedState) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
