//! Real faults for the tests: iptables rules that drop a node's traffic
//! (a blackhole: packets vanish, nothing is refused), removed on drop
//! even when the test fails. Needs root (CI runs as root) and touches
//! loopback traffic only.

use std::process::Command;
use std::time::{Duration, Instant};

/// iptables rules added by a test; deleted again on drop.
pub struct Rules(Vec<Vec<String>>);

fn iptables(op: &str, rule: &[String]) -> bool {
    Command::new("iptables")
        .arg("-w")
        .arg(op)
        .args(rule)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Rules {
    pub fn new() -> Rules {
        Rules(Vec::new())
    }

    /// Drops `rule` (iptables arguments after the chain) in OUTPUT.
    pub fn drop_output(&mut self, rule: &str) -> &mut Self {
        let mut args: Vec<String> = vec!["OUTPUT".into()];
        args.extend(rule.split_whitespace().map(String::from));
        args.extend(
            ["-m", "comment", "--comment", "splitrail-test", "-j", "DROP"]
                .iter()
                .map(|s| s.to_string()),
        );
        assert!(iptables("-I", &args), "iptables -I {}", args.join(" "));
        self.0.push(args);
        self
    }

    /// Every packet to or from `port` on loopback vanishes.
    pub fn blackhole_port(&mut self, port: u16) -> &mut Self {
        self.drop_output(&format!("-o lo -p tcp --dport {port}"))
            .drop_output(&format!("-o lo -p tcp --sport {port}"))
    }

    /// Packets from processes of `uid` to `port` vanish (one instance's
    /// path to one node).
    pub fn cut_uid_from_port(&mut self, uid: u32, port: u16) -> &mut Self {
        self.drop_output(&format!(
            "-o lo -p tcp --dport {port} -m owner --uid-owner {uid}"
        ))
    }

    /// Removes the rules now.
    pub fn heal(&mut self) {
        for rule in self.0.drain(..) {
            iptables("-D", &rule);
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules::new()
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        self.heal();
    }
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("host:port")
}

/// Waits (bounded) until every lab node runs and replicates again.
pub fn wait_replication_healthy(within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let healthy = match Command::new(super::lab_script()).arg("status").output() {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                !text.contains("Connecting") && !text.contains(" No ")
            }
            _ => false,
        };
        if healthy {
            return;
        }
        assert!(Instant::now() < deadline, "lab did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One value from `proto-tests/lab sql` (its last output line).
pub fn lab_value(node: &str, sql: &str) -> String {
    Command::new(super::lab_script())
        .args(["sql", node, sql])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Puts r1 and r2 back on m1 (as the lab made them) after a test
/// re-pointed them: m1 runs and has applied all of m2's own stream first,
/// so the replicas' GTID positions exist in its binlog.
pub fn replicas_back_on_m1(m1_port: u16) {
    super::lab_cmd(&["start", "m1"]);
    wait_replication_healthy(Duration::from_secs(90));
    let m2_pos = lab_value("m2", "SELECT @@gtid_binlog_pos");
    if let Some(own) = m2_pos.split(',').find(|g| g.starts_with("2-")) {
        lab_value("m1", &format!("SELECT MASTER_GTID_WAIT('{own}', 30)"));
    }
    for replica in ["r1", "r2"] {
        super::lab_cmd(&[
            "sql",
            replica,
            &format!("STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={m1_port}, MASTER_USE_GTID=slave_pos; START SLAVE"),
        ]);
    }
    wait_replication_healthy(Duration::from_secs(60));
}

/// The pid of a lab node's mariadbd.
pub fn lab_pid(node: &str) -> u32 {
    let dir = std::env::var("LAB_DIR").unwrap_or_else(|_| {
        format!(
            "{}/splitrail-lab",
            std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into())
        )
    });
    std::fs::read_to_string(format!("{dir}/{node}/mariadbd.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid file for lab node {node}"))
}

impl Rules {
    /// Black-holes `node`'s replication connection to the server on
    /// `source_port` (its IO thread's TCP connection, found with `ss`),
    /// and nothing else: the IO thread stays `Yes` and
    /// Seconds_Behind_Master 0, while no event arrives.
    pub fn blackhole_replication(&mut self, node: &str, source_port: u16) -> &mut Self {
        let pid = format!("pid={},", lab_pid(node));
        let out = Command::new("ss")
            .args(["-tnpH", "state", "established"])
            .arg(format!("( dport = :{source_port} )"))
            .output()
            .expect("ss");
        let text = String::from_utf8_lossy(&out.stdout);
        let local: Vec<u16> = text
            .lines()
            .filter(|l| l.contains(&pid))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(2)?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        assert!(
            !local.is_empty(),
            "{node} has no connection to port {source_port}:\n{text}"
        );
        for port in local {
            self.drop_output(&format!(
                "-o lo -p tcp --sport {port} --dport {source_port}"
            ))
            .drop_output(&format!(
                "-o lo -p tcp --sport {source_port} --dport {port}"
            ));
        }
        self
    }
}

/// Restarts m1 and puts the replicas back on it whatever happens (after a
/// test that re-pointed them).
pub struct ReplicasBackOnM1;

impl Drop for ReplicasBackOnM1 {
    fn drop(&mut self) {
        replicas_back_on_m1(port_of(&super::lab().m1));
    }
}
