//! `GET /health`: the body and status code etcd 3.5 returns.
//!
//! etcd 3.5 (`etcdhttp/metrics.go`) answers `{"health":"true","reason":""}` with 200 when the
//! member is healthy, and `{"health":"false","reason":"..."}` with 503 otherwise. It checks, in
//! order:
//! 1. raised alarms (unless excluded with `?exclude=NOSPACE`): reason `ALARM NOSPACE`,
//!    `ALARM CORRUPT`;
//! 2. a known leader (skipped with `?serializable=true`): reason `RAFT NO LEADER`;
//! 3. a Range through the normal read path: reason `RANGE ERROR:<error>`.
//!
//! (etcd 3.4 writes only `{"health":"true"}`; keel claims 3.5, see `version.rs`.)
//!
//! The alarms come from the cluster's replicated [`AlarmSet`]: like etcd's `AlarmStore`, every
//! member knows every member's alarms (they travel through Raft and are stored in the backend).

use std::collections::BTreeSet;
use std::fmt;

/// An alarm that can make a member unhealthy (etcdserverpb.AlarmType).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alarm {
    /// The backend exceeded its space quota.
    NoSpace,
    /// The corruption check found diverging members.
    Corrupt,
}

impl Alarm {
    /// The name used in `?exclude=` and in reasons.
    pub fn name(self) -> &'static str {
        match self {
            Alarm::NoSpace => "NOSPACE",
            Alarm::Corrupt => "CORRUPT",
        }
    }

    /// etcd's `AlarmType` number (NONE = 0 is no alarm).
    pub fn to_pb(self) -> i32 {
        match self {
            Alarm::NoSpace => 1,
            Alarm::Corrupt => 2,
        }
    }

    /// The alarm of etcd's `AlarmType` number (None for NONE and unknown numbers).
    pub fn from_pb(n: i32) -> Option<Alarm> {
        match n {
            1 => Some(Alarm::NoSpace),
            2 => Some(Alarm::Corrupt),
            _ => None,
        }
    }
}

/// The raised alarms of the whole cluster: a set of (member id, alarm), as etcd's
/// `AlarmStore`. The apply thread changes it in apply order (so every member holds the same
/// set) and stores [`AlarmSet::encode`] in mvcc's meta bucket with the entry's index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmSet {
    raised: BTreeSet<(u64, Alarm)>,
}

/// Bytes per alarm in [`AlarmSet::encode`]: member id (8, little endian) + etcd's alarm number (1).
const ALARM_RECORD: usize = 9;

/// Why bytes are not an encoded [`AlarmSet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmSetError {
    /// The length is not a multiple of the 9-byte record.
    BadLength(usize),
    /// A record names an alarm number keel does not know.
    UnknownAlarm(u8),
}

impl fmt::Display for AlarmSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmSetError::BadLength(n) => write!(
                f,
                "stored alarms are {n} bytes, not a multiple of {ALARM_RECORD}"
            ),
            AlarmSetError::UnknownAlarm(a) => write!(f, "stored alarms name unknown alarm {a}"),
        }
    }
}

impl std::error::Error for AlarmSetError {}

impl AlarmSet {
    /// Raise `alarm` for `member`. Returns false if it was already raised.
    pub fn activate(&mut self, member: u64, alarm: Alarm) -> bool {
        self.raised.insert((member, alarm))
    }

    /// Clear `alarm` of `member`. Returns false if it was not raised.
    pub fn deactivate(&mut self, member: u64, alarm: Alarm) -> bool {
        self.raised.remove(&(member, alarm))
    }

    /// The raised alarms of type `only` (all types if None), ordered by member id.
    pub fn list(&self, only: Option<Alarm>) -> Vec<(u64, Alarm)> {
        self.raised
            .iter()
            .filter(|(_, a)| only.is_none_or(|o| o == *a))
            .copied()
            .collect()
    }

    /// Whether any member raised `alarm`.
    pub fn has(&self, alarm: Alarm) -> bool {
        self.raised.iter().any(|(_, a)| *a == alarm)
    }

    /// The alarm types raised by any member (for `/health`).
    pub fn kinds(&self) -> Vec<Alarm> {
        let kinds: BTreeSet<Alarm> = self.raised.iter().map(|(_, a)| *a).collect();
        kinds.into_iter().collect()
    }

    /// Apply one replicated alarm request as etcd's applier does (`applierV3backend.Alarm`),
    /// with etcd's action numbers (GET 0, ACTIVATE 1, DEACTIVATE 2) and alarm numbers.
    /// Returns the alarms to answer with, and whether the set changed:
    /// * ACTIVATE answers the (member, alarm) pair whether or not it was already raised;
    /// * DEACTIVATE answers it only if it was raised (member 0 is not a wildcard: etcdctl's
    ///   `alarm disarm` lists the alarms and deactivates each pair);
    /// * alarm NONE (or a number keel does not know) changes nothing and answers nothing;
    /// * GET answers the raised alarms of that type (all types for NONE).
    pub fn apply(&mut self, action: i32, member: u64, alarm: i32) -> (Vec<(u64, Alarm)>, bool) {
        let kind = Alarm::from_pb(alarm);
        match (action, kind) {
            (0, _) if alarm == 0 => (self.list(None), false),
            (0, Some(a)) => (self.list(Some(a)), false),
            (1, Some(a)) => {
                let changed = self.activate(member, a);
                (vec![(member, a)], changed)
            }
            (2, Some(a)) if self.deactivate(member, a) => (vec![(member, a)], true),
            _ => (Vec::new(), false),
        }
    }

    /// Whether no alarm is raised.
    pub fn is_empty(&self) -> bool {
        self.raised.is_empty()
    }

    /// The stored form: one 9-byte record per alarm, in set order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raised.len() * ALARM_RECORD);
        for (member, alarm) in &self.raised {
            out.extend_from_slice(&member.to_le_bytes());
            out.push(alarm.to_pb() as u8);
        }
        out
    }

    /// Decode [`AlarmSet::encode`]'s output (total: never panics).
    pub fn decode(bytes: &[u8]) -> Result<AlarmSet, AlarmSetError> {
        if bytes.len() % ALARM_RECORD != 0 {
            return Err(AlarmSetError::BadLength(bytes.len()));
        }
        let mut set = AlarmSet::default();
        for rec in bytes.chunks_exact(ALARM_RECORD) {
            let member = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
            let alarm = Alarm::from_pb(rec[8] as i32).ok_or(AlarmSetError::UnknownAlarm(rec[8]))?;
            set.activate(member, alarm);
        }
        Ok(set)
    }
}

/// What `/health` needs to know about the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthInput {
    /// Alarms currently raised.
    pub alarms: Vec<Alarm>,
    /// Whether a leader is known.
    pub has_leader: bool,
    /// The outcome of a test Range (`Err(message)` on failure), if the caller ran one.
    pub range: Result<(), String>,
}

/// The `/health` query options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthQuery {
    /// `serializable=true`: do not require a leader.
    pub serializable: bool,
    /// `exclude=NOSPACE` (repeatable): ignore these alarms.
    pub exclude: Vec<String>,
}

impl HealthQuery {
    /// Parse the query string of `/health?serializable=true&exclude=NOSPACE`.
    pub fn parse(query: &str) -> HealthQuery {
        let mut q = HealthQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "serializable" => q.serializable = v == "true",
                "exclude" => q.exclude.push(v.to_string()),
                _ => {}
            }
        }
        q
    }
}

/// The HTTP status and JSON body for `/health`.
pub fn health_response(input: &HealthInput, query: &HealthQuery) -> (u16, String) {
    for alarm in &input.alarms {
        if query.exclude.iter().any(|e| e == alarm.name()) {
            continue;
        }
        return unhealthy(&format!("ALARM {}", alarm.name()));
    }
    if !query.serializable && !input.has_leader {
        return unhealthy("RAFT NO LEADER");
    }
    if let Err(e) = &input.range {
        return unhealthy(&format!("RANGE ERROR:{e}"));
    }
    (200, r#"{"health":"true","reason":""}"#.to_string())
}

fn unhealthy(reason: &str) -> (u16, String) {
    (
        503,
        format!(r#"{{"health":"false","reason":"{}"}}"#, json_escape(reason)),
    )
}

/// Escape a string for a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alarm_set_activates_once_and_deactivates_exactly() {
        let mut s = AlarmSet::default();
        assert!(s.activate(7, Alarm::NoSpace));
        assert!(!s.activate(7, Alarm::NoSpace), "already raised");
        assert!(s.activate(3, Alarm::NoSpace));
        assert!(s.activate(3, Alarm::Corrupt));
        assert_eq!(
            s.list(None),
            [
                (3, Alarm::NoSpace),
                (3, Alarm::Corrupt),
                (7, Alarm::NoSpace)
            ]
        );
        assert_eq!(s.list(Some(Alarm::Corrupt)), [(3, Alarm::Corrupt)]);
        assert_eq!(s.kinds(), [Alarm::NoSpace, Alarm::Corrupt]);
        assert!(!s.deactivate(7, Alarm::Corrupt), "not raised by 7");
        assert!(
            !s.deactivate(0, Alarm::NoSpace),
            "member 0 is not a wildcard"
        );
        assert!(s.deactivate(7, Alarm::NoSpace));
        assert!(s.has(Alarm::NoSpace), "member 3 still has it");
        assert!(s.deactivate(3, Alarm::NoSpace));
        assert!(!s.has(Alarm::NoSpace));
        assert!(s.deactivate(3, Alarm::Corrupt));
        assert!(s.is_empty());
    }

    #[test]
    fn alarm_requests_apply_as_in_etcd() {
        let (get, activate, deactivate) = (0, 1, 2);
        let mut s = AlarmSet::default();
        assert_eq!(s.apply(activate, 5, 1), (vec![(5, Alarm::NoSpace)], true));
        // Raising it again answers the same pair but changes nothing.
        assert_eq!(s.apply(activate, 5, 1), (vec![(5, Alarm::NoSpace)], false));
        assert_eq!(s.apply(activate, 5, 0), (vec![], false), "NONE");
        assert_eq!(s.apply(activate, 5, 9), (vec![], false), "unknown");
        s.apply(activate, 6, 2);
        assert_eq!(
            s.apply(get, 0, 0).0,
            [(5, Alarm::NoSpace), (6, Alarm::Corrupt)]
        );
        assert_eq!(s.apply(get, 0, 2).0, [(6, Alarm::Corrupt)]);
        assert_eq!(s.apply(get, 0, 7).0, []);
        assert_eq!(s.apply(deactivate, 0, 1), (vec![], false));
        assert_eq!(s.apply(deactivate, 5, 0), (vec![], false));
        assert_eq!(s.apply(deactivate, 5, 1), (vec![(5, Alarm::NoSpace)], true));
        assert_eq!(s.apply(deactivate, 5, 1), (vec![], false));
        assert_eq!(s.list(None), [(6, Alarm::Corrupt)]);
        assert_eq!(s.apply(42, 6, 2), (vec![], false), "unknown action");
    }

    #[test]
    fn alarm_set_round_trips_and_bad_bytes_are_typed() {
        let mut s = AlarmSet::default();
        assert_eq!(AlarmSet::decode(&s.encode()), Ok(s.clone()));
        s.activate(u64::MAX, Alarm::Corrupt);
        s.activate(0x8e9e05c52164694d, Alarm::NoSpace);
        let bytes = s.encode();
        assert_eq!(bytes.len(), 18);
        assert_eq!(AlarmSet::decode(&bytes), Ok(s));
        assert_eq!(
            AlarmSet::decode(&bytes[..17]),
            Err(AlarmSetError::BadLength(17))
        );
        let mut bad = bytes.clone();
        bad[8] = 0;
        assert_eq!(AlarmSet::decode(&bad), Err(AlarmSetError::UnknownAlarm(0)));
        assert!(AlarmSetError::UnknownAlarm(9)
            .to_string()
            .contains("unknown alarm 9"));
    }

    #[test]
    fn alarm_numbers_are_etcds() {
        assert_eq!(Alarm::from_pb(0), None);
        assert_eq!(Alarm::from_pb(1), Some(Alarm::NoSpace));
        assert_eq!(Alarm::from_pb(2), Some(Alarm::Corrupt));
        assert_eq!(Alarm::from_pb(3), None);
        assert_eq!(Alarm::NoSpace.to_pb(), 1);
        assert_eq!(Alarm::Corrupt.to_pb(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_alarm_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(s) = AlarmSet::decode(&bytes) {
                // Duplicated records collapse; the encoding is canonical.
                prop_assert_eq!(AlarmSet::decode(&s.encode()), Ok(s.clone()));
            }
        }
    }

    fn healthy() -> HealthInput {
        HealthInput {
            alarms: vec![],
            has_leader: true,
            range: Ok(()),
        }
    }

    #[test]
    fn healthy_member() {
        assert_eq!(
            health_response(&healthy(), &HealthQuery::default()),
            (200, r#"{"health":"true","reason":""}"#.into())
        );
    }

    #[test]
    fn no_leader_unless_serializable() {
        let input = HealthInput {
            has_leader: false,
            ..healthy()
        };
        assert_eq!(
            health_response(&input, &HealthQuery::default()),
            (
                503,
                r#"{"health":"false","reason":"RAFT NO LEADER"}"#.into()
            )
        );
        assert_eq!(
            health_response(&input, &HealthQuery::parse("serializable=true")).0,
            200
        );
    }

    #[test]
    fn alarms_come_first_and_can_be_excluded() {
        let input = HealthInput {
            alarms: vec![Alarm::NoSpace],
            has_leader: false,
            ..healthy()
        };
        assert_eq!(
            health_response(&input, &HealthQuery::default()),
            (503, r#"{"health":"false","reason":"ALARM NOSPACE"}"#.into())
        );
        let q = HealthQuery::parse("exclude=NOSPACE&serializable=true");
        assert_eq!(health_response(&input, &q).0, 200);
        let input = HealthInput {
            alarms: vec![Alarm::Corrupt],
            ..healthy()
        };
        assert!(health_response(&input, &HealthQuery::default())
            .1
            .contains("ALARM CORRUPT"));
    }

    #[test]
    fn range_errors_are_reported_and_escaped() {
        let input = HealthInput {
            range: Err("etcdserver: \"timeout\"".into()),
            ..healthy()
        };
        let (code, body) = health_response(&input, &HealthQuery::default());
        assert_eq!(code, 503);
        assert_eq!(
            body,
            r#"{"health":"false","reason":"RANGE ERROR:etcdserver: \"timeout\""}"#
        );
    }
}
