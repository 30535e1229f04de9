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

/// An alarm that can make a member unhealthy (etcdserverpb.AlarmType).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
