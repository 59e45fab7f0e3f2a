//! The monitor login's privileges, checked once per node when the monitor
//! first reaches it: fencing, re-pointing replicas and the heartbeat fail
//! at the worst moment (a failover) if the login lacks the right to do
//! them, so say so at start-up. Read from `SHOW GRANTS`; privileges that
//! come through a role are not seen, so this warns, it never refuses.

use crate::config::{Config, Role};

/// One thing splitrail may do with the monitor login, and the privileges
/// (any one of them, on `*.*` or on one of `also_on`) that let it.
struct Need {
    what: &'static str,
    any_of: &'static [&'static str],
    /// Narrower scopes, as `SHOW GRANTS` writes them, that are enough too.
    also_on: &'static [&'static str],
}

const FENCE: Need = Need {
    what: "SET GLOBAL read_only (failover.fence; node promote)",
    any_of: &["SUPER", "READ_ONLY ADMIN", "SYSTEM_VARIABLES_ADMIN"],
    also_on: &[],
};
const REPOINT: Need = Need {
    what: "CHANGE MASTER (failover.repoint_replicas)",
    any_of: &[
        "SUPER",
        "REPLICATION SLAVE ADMIN",
        "REPLICATION_SLAVE_ADMIN",
    ],
    also_on: &[],
};
const HEARTBEAT_WRITE: Need = Need {
    what: "INSERT and UPDATE on splitrail.heartbeat (monitor.heartbeat)",
    any_of: &["INSERT"],
    also_on: &["`splitrail`.*"],
};
const READ_ACCOUNTS: Need = Need {
    what: "SELECT on mysql.global_priv (accounts.from_backend)",
    any_of: &["SELECT"],
    also_on: &["`mysql`.*", "`mysql`.`global_priv`", "`mysql`.`user`"],
};

/// What the login may lack on a node of `role`, given what `config`
/// turns on; `grants` are the lines of `SHOW GRANTS`.
pub fn missing(config: &Config, role: Role, grants: &[String]) -> Vec<&'static str> {
    let mut needs = Vec::new();
    match role {
        Role::Master => {
            if config.failover.fence {
                needs.push(&FENCE);
            }
            if config.monitor.heartbeat {
                needs.push(&HEARTBEAT_WRITE);
            }
            // Checked only when the loader uses the monitor's login.
            if config.accounts.from_backend && config.accounts.user.is_empty() {
                needs.push(&READ_ACCOUNTS);
            }
        }
        Role::Replica => {
            if config.failover.repoint_replicas {
                needs.push(&REPOINT);
            }
        }
    }
    needs
        .into_iter()
        .filter(|need| !held(need, grants))
        .map(|need| need.what)
        .collect()
}

fn held(need: &Need, grants: &[String]) -> bool {
    grants.iter().any(|line| {
        let Some((privileges, on)) = parse(line) else {
            return false;
        };
        let scope_ok = on == "*.*" || need.also_on.contains(&on);
        scope_ok
            && privileges
                .iter()
                .any(|p| p == "ALL PRIVILEGES" || p == "ALL" || need.any_of.iter().any(|n| p == n))
    })
}

/// `GRANT A, B ON x.y TO …` → (["A", "B"], "x.y").
fn parse(line: &str) -> Option<(Vec<String>, &str)> {
    let rest = line.strip_prefix("GRANT ")?;
    let (privileges, after) = rest.split_once(" ON ")?;
    let on = after.split_whitespace().next()?;
    let privileges = privileges
        .split(',')
        .map(|p| p.trim().to_ascii_uppercase())
        .collect();
    Some((privileges, on))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_the_lab_monitor_holds_is_enough() {
        let mut config = Config::embedded_default();
        config.monitor.heartbeat = true;
        config.failover.repoint_replicas = true;
        config.accounts.from_backend = true;
        let mut lab = lines(&[
            "GRANT PROCESS, REPLICATION CLIENT, READ_ONLY ADMIN, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO `monitor`@`%` IDENTIFIED BY PASSWORD '*XYZ'",
            "GRANT SELECT, INSERT, UPDATE, CREATE ON `splitrail`.* TO `monitor`@`%`",
        ]);
        assert_eq!(
            missing(&config, Role::Master, &lab),
            vec![READ_ACCOUNTS.what]
        );
        lab.push("GRANT SELECT ON `mysql`.`global_priv` TO `monitor`@`%`".into());
        assert!(missing(&config, Role::Master, &lab).is_empty());
        assert!(missing(&config, Role::Replica, &lab).is_empty());
    }

    #[test]
    fn a_monitor_with_only_replication_client_cannot_fence() {
        let mut config = Config::embedded_default();
        config.failover.repoint_replicas = true;
        let bare = lines(&["GRANT PROCESS, REPLICATION CLIENT ON *.* TO `monitor`@`%`"]);
        assert_eq!(missing(&config, Role::Master, &bare), vec![FENCE.what]);
        assert_eq!(missing(&config, Role::Replica, &bare), vec![REPOINT.what]);
        // Granted on another database: not enough.
        let elsewhere = lines(&["GRANT SUPER ON `shop`.* TO `monitor`@`%`"]);
        assert_eq!(missing(&config, Role::Master, &elsewhere), vec![FENCE.what]);
        let all = lines(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(missing(&config, Role::Master, &all).is_empty());
        config.failover.fence = false;
        assert!(missing(&config, Role::Master, &bare).is_empty());
    }
}
