//! GTID positions as the monitor reads them, in both dialects: MariaDB's
//! `domain-server-seq` lists (`@@gtid_binlog_state`) and MySQL's
//! `uuid:1-10:12` sets (`@@gtid_executed`).
//!
//! splitrail needs two answers from them, both about a master's *own*
//! stream (a MariaDB `gtid_domain_id`, a MySQL `server_uuid`; the lab and
//! docs/operations.md give each master its own): has a standby's own
//! stream advanced (someone writes to it: a second writer), and which of
//! a master's own transactions does the writer lack (errant transactions,
//! taken while it was split off). A master's own stream only grows by
//! writes made on it; its peer's events arrive under the peer's stream.

use std::collections::BTreeMap;
use std::fmt;

/// Which stream a position belongs to: a MariaDB domain id or a MySQL
/// server UUID (lower case).
pub type StreamId = String;

/// Every GTID a server has, per stream, as ranges of sequence numbers.
/// MariaDB streams are one range `1..=last` (a domain's sequence numbers
/// are applied in order); MySQL streams may have gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    streams: BTreeMap<StreamId, Vec<(u64, u64)>>,
    /// The MariaDB server id that wrote each domain's last transaction,
    /// only to print GTIDs the way the server does.
    last_server: BTreeMap<StreamId, u32>,
}

/// A master's position in its own stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnPosition {
    pub stream: StreamId,
    /// Highest sequence number of the stream (0: nothing written yet).
    pub seq: u64,
    /// MariaDB: the server id in the last GTID (for display).
    server: Option<u32>,
}

impl OwnPosition {
    /// The GTID of sequence number `seq` in this stream, as the server
    /// prints it.
    pub fn gtid(&self, seq: u64) -> String {
        match self.server {
            Some(server) => format!("{}-{server}-{seq}", self.stream),
            None => format!("{}:{seq}", self.stream),
        }
    }
}

impl fmt::Display for OwnPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.gtid(self.seq))
    }
}

/// Transactions of one stream that a server has and another lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errant {
    /// First and last missing GTID, as the server prints them.
    pub first: String,
    pub last: String,
    pub count: u64,
}

impl fmt::Display for Errant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            write!(f, "{}", self.first)
        } else {
            write!(
                f,
                "{}..{} ({} transactions)",
                self.first, self.last, self.count
            )
        }
    }
}

impl GtidSet {
    /// `@@gtid_binlog_state` (or `gtid_binlog_pos`, `gtid_slave_pos`):
    /// comma-separated `domain-server-seq`. Entries that do not parse are
    /// skipped.
    pub fn parse_mariadb(text: &str) -> GtidSet {
        let mut set = GtidSet::default();
        for gtid in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut parts = gtid.splitn(3, '-');
            let (Some(domain), Some(server), Some(seq)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(domain), Ok(server), Ok(seq)) = (
                domain.parse::<u32>(),
                server.parse::<u32>(),
                seq.parse::<u64>(),
            ) else {
                continue;
            };
            let stream = domain.to_string();
            let last = set.seq(&stream);
            if seq > last {
                set.streams.insert(stream.clone(), vec![(1, seq)]);
                set.last_server.insert(stream, server);
            }
        }
        set
    }

    /// `@@gtid_executed`: comma-separated `uuid:range[:range...]`, ranges
    /// `a-b` or `a`; newlines allowed.
    pub fn parse_mysql(text: &str) -> GtidSet {
        let mut set = GtidSet::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let Some(uuid) = parts.next() else { continue };
            let ranges: Vec<(u64, u64)> = parts
                .filter_map(|r| match r.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => r.parse().ok().map(|n| (n, n)),
                })
                .collect();
            set.streams
                .entry(uuid.to_ascii_lowercase())
                .or_default()
                .extend(ranges);
        }
        for ranges in set.streams.values_mut() {
            ranges.sort_unstable();
        }
        set
    }

    /// Highest sequence number of `stream` (0 when absent).
    pub fn seq(&self, stream: &str) -> u64 {
        self.streams
            .get(stream)
            .and_then(|r| r.iter().map(|&(_, b)| b).max())
            .unwrap_or(0)
    }

    pub fn own_position_mariadb(&self, domain: u32) -> OwnPosition {
        let stream = domain.to_string();
        OwnPosition {
            seq: self.seq(&stream),
            server: Some(self.last_server.get(&stream).copied().unwrap_or(0)),
            stream,
        }
    }

    pub fn own_position_mysql(&self, server_uuid: &str) -> OwnPosition {
        let stream = server_uuid.to_ascii_lowercase();
        OwnPosition {
            seq: self.seq(&stream),
            server: None,
            stream,
        }
    }

    /// The transactions of `own`'s stream that this server has beyond the
    /// highest one `other` has; `None` when `other` is not behind. (A MySQL
    /// gap below `other`'s highest is not reported: errant transactions
    /// are the newest ones of a stream.)
    pub fn missing_from(&self, own: &OwnPosition, other: &GtidSet) -> Option<Errant> {
        let (mine, theirs) = (self.seq(&own.stream), other.seq(&own.stream));
        (mine > theirs).then(|| Errant {
            first: own.gtid(theirs + 1),
            last: own.gtid(mine),
            count: mine - theirs,
        })
    }
}

/// How far a server is behind a position it must reach, in one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    pub stream: StreamId,
    /// Transactions of the stream the server lacks.
    pub missing: u64,
}

impl fmt::Display for Behind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} transaction(s) of {}", self.missing, self.stream)
    }
}

impl GtidSet {
    /// What `have` lacks of this set, per stream; empty when it has every
    /// transaction of it (a switchover target that caught up).
    pub fn lacking(&self, have: &GtidSet) -> Vec<Behind> {
        self.streams
            .iter()
            .filter_map(|(stream, wanted)| {
                let held = have.streams.get(stream).map_or(&[][..], Vec::as_slice);
                let missing: u64 = wanted.iter().map(|&r| uncovered(r, held)).sum();
                (missing > 0).then(|| Behind {
                    stream: stream.clone(),
                    missing,
                })
            })
            .collect()
    }
}

/// How many numbers of `a..=b` no range of `held` (sorted) contains.
fn uncovered((a, b): (u64, u64), held: &[(u64, u64)]) -> u64 {
    let mut next = a; // the lowest number not yet accounted for
    let mut missing = 0;
    for &(lo, hi) in held {
        if next > b {
            break;
        }
        if hi < next {
            continue;
        }
        if lo > next {
            missing += lo.min(b + 1) - next;
        }
        next = next.max(hi.saturating_add(1));
    }
    if next <= b {
        missing += b - next + 1;
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_positions_per_domain() {
        let set = GtidSet::parse_mariadb("1-1-100,2-2-7,1-3-40");
        let own = set.own_position_mariadb(2);
        assert_eq!(own.seq, 7);
        assert_eq!(own.to_string(), "2-2-7");
        assert_eq!(set.own_position_mariadb(1).to_string(), "1-1-100");
        assert_eq!(set.own_position_mariadb(9).seq, 0);
        assert_eq!(GtidSet::parse_mariadb("").seq("1"), 0);
        assert_eq!(GtidSet::parse_mariadb("garbage, 1-x-3").seq("1"), 0);
    }

    #[test]
    fn mariadb_errant_transactions() {
        // m2 (domain 2) took writes 2-2-8..2-2-10 while split off; the
        // writer m1 has m2's stream up to 7.
        let m2 = GtidSet::parse_mariadb("1-1-100,2-2-10");
        let m1 = GtidSet::parse_mariadb("1-1-120,2-2-7");
        let own = m2.own_position_mariadb(2);
        let errant = m2.missing_from(&own, &m1).unwrap();
        assert_eq!(errant.to_string(), "2-2-8..2-2-10 (3 transactions)");
        let caught_up = GtidSet::parse_mariadb("1-1-120,2-2-10");
        assert_eq!(m2.missing_from(&own, &caught_up), None);
        // Never written to: nothing errant, even if the writer lacks the
        // domain.
        let fresh = GtidSet::parse_mariadb("1-1-100");
        assert_eq!(
            fresh.missing_from(&fresh.own_position_mariadb(2), &m1),
            None
        );
    }

    #[test]
    fn what_a_switchover_target_still_lacks() {
        let old_writer = GtidSet::parse_mariadb("1-1-130,2-2-7");
        let behind = GtidSet::parse_mariadb("1-1-120,2-2-7");
        assert_eq!(
            old_writer.lacking(&behind),
            vec![Behind {
                stream: "1".into(),
                missing: 10
            }]
        );
        let ahead = GtidSet::parse_mariadb("1-1-130,2-2-9");
        assert!(old_writer.lacking(&ahead).is_empty());
        assert_eq!(old_writer.lacking(&GtidSet::default()).len(), 2);
        // MySQL: a gap in the target counts, one beyond the wanted set not.
        let wanted = GtidSet::parse_mysql("aaaa:1-10");
        let gap = GtidSet::parse_mysql("aaaa:1-3:6-12");
        assert_eq!(wanted.lacking(&gap)[0].missing, 2);
        assert!(wanted
            .lacking(&GtidSet::parse_mysql("aaaa:1-4:5-10"))
            .is_empty());
        assert_eq!(uncovered((1, 10), &[(2, 3), (5, 20)]), 2);
        assert_eq!(uncovered((5, 6), &[(1, 2)]), 2);
    }

    #[test]
    fn mysql_sets_with_gaps() {
        let uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let a = GtidSet::parse_mysql(&format!("{uuid}:1-5:7-9,\naaaa:1-3"));
        let own = a.own_position_mysql(uuid);
        assert_eq!(own.seq, 9);
        let b = GtidSet::parse_mysql(&format!("{}:1-7", uuid.to_lowercase()));
        let errant = a.missing_from(&own, &b).unwrap();
        assert_eq!(errant.count, 2);
        assert!(errant.first.ends_with(":8"), "{errant}");
        assert!(errant.last.ends_with(":9"), "{errant}");
    }
}
