//! Tests of the linearizability checker (`keel_jepsen::checker`) through its public API:
//! hand-written histories with known answers, random linearizable histories (and the same with
//! one read corrupted), agreement with a brute-force checker on small random histories, and a
//! 2,000-operation history as a benchmark (it asserts only the verdict; the time it prints is
//! recorded in src/checker/README.md).

use std::time::{Duration, Instant};

use keel_jepsen::checker::{check, validate, Event, OkValue, Op, Outcome, Verdict};
use proptest::prelude::*;

const LIMIT: Duration = Duration::from_secs(30);

fn ok(client: u64, key: u64, op: Op, invoked: u64, returned: u64, value: OkValue) -> Event {
    Event {
        client,
        key,
        op,
        invoked,
        returned,
        outcome: Outcome::Ok(value),
    }
}

fn write(client: u64, key: u64, v: u64, invoked: u64, returned: u64) -> Event {
    ok(
        client,
        key,
        Op::Write(v),
        invoked,
        returned,
        OkValue::Written,
    )
}

fn read(client: u64, key: u64, seen: Option<u64>, invoked: u64, returned: u64) -> Event {
    ok(
        client,
        key,
        Op::Read,
        invoked,
        returned,
        OkValue::Read(seen),
    )
}

fn cas(client: u64, key: u64, expect: u64, new: u64, t: (u64, u64), swapped: bool) -> Event {
    ok(
        client,
        key,
        Op::Cas { expect, new },
        t.0,
        t.1,
        OkValue::Cas(swapped),
    )
}

fn delete(client: u64, key: u64, invoked: u64, returned: u64) -> Event {
    ok(client, key, Op::Delete, invoked, returned, OkValue::Deleted)
}

fn indeterminate(client: u64, key: u64, op: Op, invoked: u64) -> Event {
    Event {
        client,
        key,
        op,
        invoked,
        returned: 0,
        outcome: Outcome::Indeterminate,
    }
}

fn failed(client: u64, key: u64, op: Op, invoked: u64, returned: u64) -> Event {
    Event {
        client,
        key,
        op,
        invoked,
        returned,
        outcome: Outcome::Failed,
    }
}

#[track_caller]
fn assert_linearizable(history: &[Event]) {
    let verdict = check(history, LIMIT);
    assert_eq!(verdict, Verdict::Linearizable, "history: {history:#?}");
}

/// Asserts a violation on `key` whose reported events include every event in `must_include`,
/// and that the reported events are themselves a violation.
#[track_caller]
fn assert_violation(history: &[Event], key: u64, must_include: &[Event]) -> String {
    match check(history, LIMIT) {
        Verdict::NotLinearizable(anomaly) => {
            assert_eq!(anomaly.key, key, "{}", anomaly.explanation);
            assert!(
                anomaly.explanation.contains(&format!("key {key}")),
                "{}",
                anomaly.explanation
            );
            for event in must_include {
                assert!(
                    anomaly.ops.contains(event),
                    "{event:?} missing from {}",
                    anomaly.explanation
                );
            }
            assert!(
                anomaly.ops.iter().all(|e| history.contains(e)),
                "anomaly ops must come from the history"
            );
            assert!(
                matches!(check(&anomaly.ops, LIMIT), Verdict::NotLinearizable(_)),
                "the reported ops alone must not be linearizable: {}",
                anomaly.explanation
            );
            anomaly.explanation
        }
        other => panic!("expected a violation on key {key}, got {other:?} for {history:#?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written histories
// ---------------------------------------------------------------------------------------------

#[test]
fn an_empty_history_is_linearizable() {
    assert_linearizable(&[]);
}

#[test]
fn a_sequential_history_is_linearizable() {
    assert_linearizable(&[
        read(1, 0, None, 0, 1),
        write(1, 0, 5, 2, 3),
        read(2, 0, Some(5), 4, 5),
        cas(1, 0, 5, 6, (6, 7), true),
        cas(2, 0, 5, 7, (8, 9), false),
        read(3, 0, Some(6), 10, 11),
        delete(1, 0, 12, 13),
        read(2, 0, None, 14, 15),
    ]);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    let before = write(1, 0, 1, 0, 1);
    let overlapping = write(1, 0, 2, 10, 20);
    assert_linearizable(&[before, overlapping, read(2, 0, Some(1), 12, 18)]);
    assert_linearizable(&[before, overlapping, read(2, 0, Some(2), 12, 18)]);
    // Invoked before the write and returning after it: still either.
    assert_linearizable(&[before, overlapping, read(2, 0, Some(2), 5, 25)]);
    assert_linearizable(&[before, overlapping, read(2, 0, Some(1), 5, 25)]);
    // But not a value nobody wrote.
    let bogus = read(2, 0, Some(3), 12, 18);
    assert_violation(&[before, overlapping, bogus], 0, &[bogus]);
}

#[test]
fn a_stale_read_after_a_completed_write_is_caught_and_names_the_key() {
    let first = write(1, 42, 1, 0, 10);
    let second = write(1, 42, 2, 20, 30);
    let stale = read(2, 42, Some(1), 40, 50);
    let explanation = assert_violation(&[first, second, stale], 42, &[first, second, stale]);
    assert!(explanation.contains("Read"), "{explanation}");
    // The same on another key is fine as long as key 42 stays consistent.
    assert_linearizable(&[
        first,
        second,
        read(2, 42, Some(2), 40, 50),
        read(2, 7, None, 40, 50),
    ]);
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    let bogus = read(2, 3, Some(99), 5, 6);
    assert_violation(&[write(1, 3, 1, 0, 1), bogus], 3, &[bogus]);
    // A read of an absent key before anything is written is fine; after a write it is not.
    assert_linearizable(&[read(1, 3, None, 0, 1), write(1, 3, 1, 2, 3)]);
    let absent = read(1, 3, None, 4, 5);
    assert_violation(&[write(1, 3, 1, 2, 3), absent], 3, &[absent]);
}

#[test]
fn a_lost_update_with_cas_is_caught() {
    // Both clients swap 0 -> their value; only one of them can have seen 0.
    let init = write(1, 5, 0, 0, 1);
    let a = cas(2, 5, 0, 10, (2, 6), true);
    let b = cas(3, 5, 0, 20, (3, 7), true);
    assert_violation(&[init, a, b], 5, &[a, b]);
    // If one of them failed, fine.
    assert_linearizable(&[
        init,
        a,
        cas(3, 5, 0, 20, (3, 7), false),
        read(1, 5, Some(10), 8, 9),
    ]);
    // A failed Cas is an observation: the value was not `expect`.
    let wrongly_failed = cas(2, 5, 0, 10, (2, 3), false);
    assert_violation(&[init, wrongly_failed], 5, &[wrongly_failed]);
}

#[test]
fn an_indeterminate_write_that_is_later_observed_is_linearizable() {
    assert_linearizable(&[
        write(1, 0, 1, 0, 1),
        indeterminate(2, 0, Op::Write(2), 2),
        read(3, 0, Some(1), 10, 11),
        // Observed long after its invocation: it took effect late.
        read(3, 0, Some(2), 100, 101),
        read(1, 0, Some(2), 200, 201),
    ]);
}

#[test]
fn an_indeterminate_write_that_is_never_observed_is_linearizable() {
    assert_linearizable(&[
        write(1, 0, 1, 0, 1),
        indeterminate(2, 0, Op::Write(2), 2),
        read(3, 0, Some(1), 10, 11),
        read(3, 0, Some(1), 100, 101),
    ]);
    assert_linearizable(&[
        indeterminate(2, 0, Op::Delete, 0),
        indeterminate(2, 0, Op::Cas { expect: 1, new: 2 }, 0),
    ]);
}

#[test]
fn an_indeterminate_write_observed_then_unobserved_is_caught() {
    let old = write(1, 0, 1, 0, 1);
    let unknown = indeterminate(2, 0, Op::Write(2), 2);
    let new_seen = read(3, 0, Some(2), 10, 11);
    let old_again = read(3, 0, Some(1), 20, 21);
    assert_violation(
        &[old, unknown, new_seen, old_again],
        0,
        &[old, unknown, new_seen, old_again],
    );
    // An indeterminate Cas observed twice cannot have swapped twice either.
    let swap = indeterminate(2, 0, Op::Cas { expect: 1, new: 3 }, 2);
    let write_1_again = write(1, 0, 1, 12, 13);
    let seen_twice = read(3, 0, Some(3), 20, 21);
    assert_violation(
        &[
            old,
            swap,
            read(3, 0, Some(3), 10, 11),
            write_1_again,
            seen_twice,
        ],
        0,
        &[seen_twice],
    );
}

#[test]
fn failed_calls_and_indeterminate_reads_are_dropped() {
    // A failed write did not happen: nobody may see it.
    assert_linearizable(&[failed(1, 0, Op::Write(5), 0, 1), read(2, 0, None, 2, 3)]);
    let sees_failed = read(2, 0, Some(5), 2, 3);
    assert_violation(
        &[failed(1, 0, Op::Write(5), 0, 1), sees_failed],
        0,
        &[sees_failed],
    );
    // An indeterminate read constrains nothing, whatever its recorded value.
    let unknown_read = Event {
        outcome: Outcome::Indeterminate,
        ..read(2, 0, Some(77), 0, 1)
    };
    assert_linearizable(&[unknown_read, read(1, 0, None, 2, 3)]);
}

#[test]
fn keys_are_independent_registers() {
    let other_key = read(2, 2, Some(1), 2, 3);
    assert_violation(&[write(1, 1, 1, 0, 1), other_key], 2, &[other_key]);
    // With several broken keys the smallest is reported.
    let bad_9 = read(1, 9, Some(4), 0, 1);
    let bad_4 = read(1, 4, Some(4), 0, 1);
    assert_violation(&[bad_9, bad_4, write(1, 1, 1, 0, 1)], 4, &[bad_4]);
}

#[test]
fn deletes_make_the_key_absent() {
    let history = [
        write(1, 0, 1, 0, 1),
        delete(2, 0, 2, 3),
        read(3, 0, None, 4, 5),
    ];
    assert_linearizable(&history);
    let resurrected = read(3, 0, Some(1), 4, 5);
    assert_violation(&[history[0], history[1], resurrected], 0, &[resurrected]);
    // A Cas on an absent key cannot swap.
    let cas_absent = cas(1, 0, 1, 2, (6, 7), true);
    assert_violation(&[history[0], history[1], cas_absent], 0, &[cas_absent]);
}

#[test]
fn a_long_history_is_reduced_to_the_few_calls_that_conflict() {
    // 200 sequential writes, then a read of the value written by the 100th.
    let mut history: Vec<Event> = (0..200)
        .map(|i| write(i % 4, 0, i, i * 10, i * 10 + 5))
        .collect();
    let stale = read(9, 0, Some(100), 2_000, 2_005);
    history.push(stale);
    let explanation = assert_violation(&history, 0, &[stale, history[100]]);
    match check(&history, LIMIT) {
        Verdict::NotLinearizable(anomaly) => {
            // Write(100), the write that overwrote it (Write(101) is the nearest witness, but any
            // later completed write will do), and the read.
            assert_eq!(anomaly.ops.len(), 3, "{explanation}");
            assert!(
                explanation.contains("Reduced from 201 operations"),
                "{explanation}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_histories_are_reported_not_panicked_on() {
    let backwards = read(1, 3, None, 10, 5);
    assert!(validate(&[backwards]).is_err());
    let error = validate(&[backwards]).unwrap_err().to_string();
    assert!(error.contains("before it was invoked"), "{error}");
    match check(&[backwards], LIMIT) {
        Verdict::NotLinearizable(anomaly) => {
            assert_eq!(anomaly.ops, vec![backwards]);
            assert!(
                anomaly.explanation.starts_with("malformed history"),
                "{}",
                anomaly.explanation
            );
        }
        other => panic!("{other:?}"),
    }
    let mismatched = ok(1, 3, Op::Read, 0, 1, OkValue::Written);
    assert!(validate(&[mismatched]).is_err());
    assert!(matches!(
        check(&[mismatched], LIMIT),
        Verdict::NotLinearizable(_)
    ));
    // Indeterminate events may carry any return time.
    assert!(validate(&[indeterminate(1, 0, Op::Write(1), 10)]).is_ok());
}

#[test]
fn the_time_limit_turns_a_hard_search_into_unknown() {
    // 40 mutually concurrent writes and a read of a value none wrote: proving it impossible
    // means trying every subset of the writes.
    let mut history: Vec<Event> = (0..40).map(|v| write(v, 0, v, 0, 100)).collect();
    history.push(read(99, 0, Some(1_000), 200, 201));
    assert_eq!(check(&history, Duration::ZERO), Verdict::Unknown);
    // Without the read the same writes are decided at once.
    history.pop();
    assert_eq!(check(&history, Duration::ZERO), Verdict::Linearizable);
}

// ---------------------------------------------------------------------------------------------
// Random histories
// ---------------------------------------------------------------------------------------------

/// A small deterministic PRNG (splitmix64) so a history is a pure function of its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// The shape of a generated history.
#[derive(Debug, Clone, Copy)]
struct Shape {
    clients: u64,
    ops_per_client: u64,
    keys: u64,
    /// Percent of calls that end indeterminate (half of those took effect).
    indeterminate: u64,
    /// Percent of calls that fail (and did not take effect).
    failed: u64,
    /// Values from 0..4 (many repeats) instead of unique values.
    small_values: bool,
    /// Call durations are 1..=max_duration ns, gaps between a client's calls 0..=max_gap ns.
    max_duration: u64,
    max_gap: u64,
}

/// A call being generated: its window, its linearization point and whether it takes effect.
struct Planned {
    event: Event,
    point: u64,
    applied: bool,
}

/// Generates a linearizable history: every call gets a random linearization point inside its
/// random [invoked, returned] window, and results are computed by running a sequential register
/// per key in the order of those points. Indeterminate calls either took effect at their point
/// or not at all; failed calls never did.
fn generate(seed: u64, shape: Shape) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut planned: Vec<Planned> = Vec::new();
    let mut next_value = 0u64;
    let mut recent: Vec<Vec<u64>> = vec![Vec::new(); shape.keys as usize];
    for client in 0..shape.clients {
        let mut now = rng.below(shape.max_gap + 1);
        for _ in 0..shape.ops_per_client {
            let key = rng.below(shape.keys);
            let mut value = || {
                next_value += 1;
                if shape.small_values {
                    rng.below(4)
                } else {
                    next_value
                }
            };
            let new_value = value();
            let kind = rng.below(100);
            let op = if kind < 40 {
                Op::Read
            } else if kind < 70 {
                Op::Write(new_value)
            } else if kind < 90 {
                let candidates = &recent[key as usize];
                let expect = if !candidates.is_empty() && rng.percent(80) {
                    candidates[rng.below(candidates.len() as u64) as usize]
                } else {
                    rng.below(4)
                };
                Op::Cas {
                    expect,
                    new: new_value,
                }
            } else {
                Op::Delete
            };
            if let Op::Write(v) | Op::Cas { new: v, .. } = op {
                let list = &mut recent[key as usize];
                list.push(v);
                if list.len() > 4 {
                    list.remove(0);
                }
            }
            let invoked = now + rng.below(shape.max_gap + 1);
            let returned = invoked + 1 + rng.below(shape.max_duration);
            let point = invoked + rng.below(returned - invoked + 1);
            let fate = rng.below(100);
            let (outcome, applied) = if fate < shape.indeterminate {
                (Outcome::Indeterminate, rng.percent(50))
            } else if fate < shape.indeterminate + shape.failed {
                (Outcome::Failed, false)
            } else {
                (Outcome::Ok(OkValue::Written), true) // the result is filled in below
            };
            planned.push(Planned {
                event: Event {
                    client,
                    key,
                    op,
                    invoked,
                    returned,
                    outcome,
                },
                point,
                applied,
            });
            now = returned;
        }
    }
    // Run the register in linearization order (ties: any order is valid, both points lie in
    // both windows).
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].point, i));
    let mut state: Vec<Option<u64>> = vec![None; shape.keys as usize];
    for i in order {
        let p = &mut planned[i];
        if !p.applied {
            continue;
        }
        let register = &mut state[p.event.key as usize];
        let result = match p.event.op {
            Op::Read => OkValue::Read(*register),
            Op::Write(v) => {
                *register = Some(v);
                OkValue::Written
            }
            Op::Delete => {
                *register = None;
                OkValue::Deleted
            }
            Op::Cas { expect, new } => {
                let swapped = *register == Some(expect);
                if swapped {
                    *register = Some(new);
                }
                OkValue::Cas(swapped)
            }
        };
        if let Outcome::Ok(_) = p.event.outcome {
            p.event.outcome = Outcome::Ok(result);
        }
    }
    planned.into_iter().map(|p| p.event).collect()
}

/// Makes one ok read of `history` impossible and returns its index, or `None` if there is no
/// ok read. With unique values it prefers a value overwritten before the read began (a write
/// W, then a completed mutation M invoked after W returned, then the read invoked after M
/// returned); otherwise a value nobody wrote.
fn corrupt_one_read(history: &mut [Event], rng: &mut Rng, unique_values: bool) -> Option<usize> {
    let reads: Vec<usize> = (0..history.len())
        .filter(|&i| matches!(history[i].outcome, Outcome::Ok(OkValue::Read(_))))
        .collect();
    if reads.is_empty() {
        return None;
    }
    let r = reads[rng.below(reads.len() as u64) as usize];
    let target = history[r];
    let completed_mutation = |e: &Event| {
        e.key == target.key
            && matches!(
                e.outcome,
                Outcome::Ok(OkValue::Written | OkValue::Deleted | OkValue::Cas(true))
            )
    };
    let mut stale_values = Vec::new();
    if unique_values {
        for w in history.iter().filter(|e| completed_mutation(e)) {
            let v = match (w.op, w.outcome) {
                (Op::Write(v), _) | (Op::Cas { new: v, .. }, Outcome::Ok(OkValue::Cas(true))) => v,
                _ => continue,
            };
            let overwritten = history.iter().any(|m| {
                completed_mutation(m) && w.returned < m.invoked && m.returned < target.invoked
            });
            if overwritten {
                stale_values.push(v);
            }
        }
    }
    let value = if stale_values.is_empty() {
        u64::MAX // never generated
    } else {
        stale_values[rng.below(stale_values.len() as u64) as usize]
    };
    history[r].outcome = Outcome::Ok(OkValue::Read(Some(value)));
    Some(r)
}

fn shape_strategy() -> impl Strategy<Value = Shape> {
    (
        3u64..=6,
        1u64..=12,
        1u64..=2,
        // Up to 10% timeouts: dense small-value histories with ~20% timeouts on one key can
        // take seconds (see src/checker/README.md, "not done yet").
        0u64..=10,
        0u64..=10,
        any::<bool>(),
        1u64..=30,
        0u64..=10,
    )
        .prop_map(
            |(
                clients,
                ops_per_client,
                keys,
                indeterminate,
                failed,
                small_values,
                max_duration,
                max_gap,
            )| Shape {
                clients,
                ops_per_client,
                keys,
                indeterminate,
                failed,
                small_values,
                max_duration,
                max_gap,
            },
        )
}

proptest! {
    /// Histories produced by a sequential register (with random overlap, timeouts and
    /// failures) are linearizable.
    #[test]
    fn generated_histories_are_linearizable(seed in any::<u64>(), shape in shape_strategy()) {
        let history = generate(seed, shape);
        prop_assert_eq!(check(&history, LIMIT), Verdict::Linearizable);
    }

    /// The same histories with one read made impossible are caught, on that read's key, and
    /// the read is part of the evidence.
    #[test]
    fn a_corrupted_read_is_caught(seed in any::<u64>(), shape in shape_strategy()) {
        let mut history = generate(seed, shape);
        let mut rng = Rng(seed ^ 0xdead_beef);
        let Some(r) = corrupt_one_read(&mut history, &mut rng, !shape.small_values) else {
            return Ok(());
        };
        match check(&history, LIMIT) {
            Verdict::NotLinearizable(anomaly) => {
                prop_assert_eq!(anomaly.key, history[r].key);
                prop_assert!(anomaly.ops.contains(&history[r]), "{}", anomaly.explanation);
                prop_assert!(matches!(check(&anomaly.ops, LIMIT), Verdict::NotLinearizable(_)));
            }
            other => prop_assert!(false, "expected a violation, got {:?}", other),
        }
    }

    /// On small arbitrary histories (often impossible ones) the checker agrees with trying
    /// every order, and whatever it reports as evidence is impossible by brute force too.
    #[test]
    fn agrees_with_brute_force(events in prop::collection::vec(arbitrary_event(), 0..=7)) {
        let expected = brute_force_linearizable(&events);
        match check(&events, LIMIT) {
            Verdict::Linearizable => prop_assert!(expected, "checker says linearizable: {:#?}", events),
            Verdict::NotLinearizable(anomaly) => {
                prop_assert!(!expected, "checker says not linearizable: {}", anomaly.explanation);
                prop_assert!(!brute_force_linearizable(&anomaly.ops), "{}", anomaly.explanation);
                prop_assert!(anomaly.ops.iter().all(|e| events.contains(e)));
            }
            Verdict::Unknown => prop_assert!(false, "timed out on {} events", events.len()),
        }
    }
}

/// Any event on key 0 with values 0..3, short random windows and any outcome (including
/// results a register could never give).
fn arbitrary_event() -> impl Strategy<Value = Event> {
    let op = prop_oneof![
        Just(Op::Read),
        (0u64..3).prop_map(Op::Write),
        (0u64..3, 0u64..3).prop_map(|(expect, new)| Op::Cas { expect, new }),
        Just(Op::Delete),
    ];
    (
        0u64..3,
        op,
        0u64..10,
        0u64..6,
        0u8..10,
        proptest::option::of(0u64..3),
        any::<bool>(),
    )
        .prop_map(|(client, op, invoked, duration, fate, seen, swapped)| {
            let outcome = match fate {
                0 => Outcome::Failed,
                1 | 2 => Outcome::Indeterminate,
                _ => Outcome::Ok(match op {
                    Op::Read => OkValue::Read(seen),
                    Op::Write(_) => OkValue::Written,
                    Op::Cas { .. } => OkValue::Cas(swapped),
                    Op::Delete => OkValue::Deleted,
                }),
            };
            Event {
                client,
                key: 0,
                op,
                invoked,
                returned: invoked + duration,
                outcome,
            }
        })
}

/// Tries every order of every subset of the single-key `events` that contains all calls that
/// returned: a linearization must put A before B whenever A returned before B was invoked, and
/// every result must match a register starting absent. Failed calls and indeterminate reads
/// are ignored; indeterminate writes may be placed anywhere after nothing that follows them,
/// or left out.
fn brute_force_linearizable(events: &[Event]) -> bool {
    let calls: Vec<&Event> = events
        .iter()
        .filter(|e| match e.outcome {
            Outcome::Failed => false,
            Outcome::Indeterminate => e.op != Op::Read,
            Outcome::Ok(_) => true,
        })
        .collect();
    let returned = |e: &Event| !matches!(e.outcome, Outcome::Indeterminate);
    fn apply(state: Option<u64>, e: &Event) -> Option<Option<u64>> {
        match (e.op, e.outcome) {
            (Op::Read, Outcome::Ok(OkValue::Read(seen))) => (seen == state).then_some(state),
            (Op::Write(v), Outcome::Ok(OkValue::Written) | Outcome::Indeterminate) => Some(Some(v)),
            (Op::Delete, Outcome::Ok(OkValue::Deleted) | Outcome::Indeterminate) => Some(None),
            (Op::Cas { expect, new }, Outcome::Ok(OkValue::Cas(true))) => {
                (state == Some(expect)).then_some(Some(new))
            }
            (Op::Cas { expect, .. }, Outcome::Ok(OkValue::Cas(false))) => {
                (state != Some(expect)).then_some(state)
            }
            (Op::Cas { expect, new }, Outcome::Indeterminate) => Some(if state == Some(expect) {
                Some(new)
            } else {
                state
            }),
            _ => None,
        }
    }
    fn search(
        calls: &[&Event],
        placed: &mut Vec<bool>,
        state: Option<u64>,
        returned: &dyn Fn(&Event) -> bool,
    ) -> bool {
        if (0..calls.len()).all(|i| placed[i] || !returned(calls[i])) {
            return true;
        }
        for i in 0..calls.len() {
            if placed[i] {
                continue;
            }
            let must_come_first = (0..calls.len()).any(|j| {
                j != i && !placed[j] && returned(calls[j]) && calls[j].returned < calls[i].invoked
            });
            if must_come_first {
                continue;
            }
            if let Some(next) = apply(state, calls[i]) {
                placed[i] = true;
                let found = search(calls, placed, next, returned);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    let mut placed = vec![false; calls.len()];
    search(&calls, &mut placed, None, &returned)
}

// ---------------------------------------------------------------------------------------------
// Benchmark-style: a realistic 2,000-operation history
// ---------------------------------------------------------------------------------------------

/// 5 keys, 10 clients x 200 calls, calls lasting 1 µs..1 ms with gaps up to 200 µs (each call
/// overlaps several others, most of them on other keys), 3% indeterminate, 1% failed, unique
/// values. Asserts only the verdicts; prints how long each check took (figures in
/// src/checker/README.md).
#[test]
fn benchmark_two_thousand_operations_on_five_keys() {
    let shape = Shape {
        clients: 10,
        ops_per_client: 200,
        keys: 5,
        indeterminate: 3,
        failed: 1,
        small_values: false,
        max_duration: 1_000_000,
        max_gap: 200_000,
    };
    for seed in 0..3 {
        let mut history = generate(seed, shape);
        assert_eq!(history.len(), 2_000);
        let start = Instant::now();
        let verdict = check(&history, Duration::from_secs(60));
        let linearizable_time = start.elapsed();
        assert_eq!(verdict, Verdict::Linearizable);

        let mut rng = Rng(seed);
        let r = corrupt_one_read(&mut history, &mut rng, true).expect("there are reads");
        let start = Instant::now();
        let verdict = check(&history, Duration::from_secs(60));
        let violation_time = start.elapsed();
        match verdict {
            Verdict::NotLinearizable(anomaly) => {
                assert_eq!(anomaly.key, history[r].key);
                assert!(anomaly.ops.contains(&history[r]));
                eprintln!(
                    "seed {seed}: linearizable history checked in {linearizable_time:?}; corrupted one \
                     checked and explained in {violation_time:?} ({} ops in the anomaly)",
                    anomaly.ops.len()
                );
                if seed == 0 {
                    eprintln!("{}", anomaly.explanation);
                }
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }
}
