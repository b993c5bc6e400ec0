//! Server-side partition assignors of the consumer group protocol (KIP-848).
//!
//! An assignor maps every member to the partitions it should own (the
//! group's *target assignment*) from the members' subscriptions, their
//! current target and the partition counts of the subscribed topics. Two
//! are served, selected by name (`group.consumer.assignors`, a member's
//! `server_assignor`):
//!
//! - `uniform` (the default) balances the number of partitions per member
//!   and is sticky: it starts from the previous target, drops what a member
//!   may no longer have (unsubscribed topics, partitions that went away, a
//!   partition claimed twice), hands out unowned partitions to the least
//!   loaded eligible member, and then moves one partition at a time from the
//!   most to the least loaded eligible member until no move narrows the gap.
//!   A member joining a balanced group therefore takes only the partitions it
//!   needs, and each from the members that have the most.
//! - `range` gives each member, per topic, a contiguous range of the topic's
//!   partitions (members sorted by id; the first `n % m` get one extra), the
//!   layout co-partitioned topics rely on. It is not sticky.
//!
//! Both are pure functions over ordered maps, so the same input always gives
//! the same output.

use std::collections::{BTreeMap, BTreeSet};

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// The assignor names Runnel knows, default first.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// What an assignor knows of one member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSpec {
    pub subscribed: BTreeSet<String>,
    /// The member's previous target, the starting point of sticky assignors.
    pub current: Assignment,
}

/// Computes the target assignment with the assignor `name`; every member of
/// `members` has an entry in the result. `topics` maps each existing topic to
/// its partition count. Returns `None` for an unknown assignor.
pub fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<String, i32>,
) -> Option<BTreeMap<String, Assignment>> {
    match name {
        "uniform" => Some(uniform(members, topics)),
        "range" => Some(range(members, topics)),
        _ => None,
    }
}

/// Number of partitions in an assignment.
pub fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

fn empty_targets(members: &BTreeMap<String, MemberSpec>) -> BTreeMap<String, Assignment> {
    members.keys().map(|id| (id.clone(), Assignment::new())).collect()
}

/// The balanced, sticky assignor; see the module documentation.
pub fn uniform(members: &BTreeMap<String, MemberSpec>, topics: &BTreeMap<String, i32>) -> BTreeMap<String, Assignment> {
    let mut out = empty_targets(members);
    let mut loads: BTreeMap<&str, usize> = members.keys().map(|id| (id.as_str(), 0)).collect();
    let mut owner: BTreeMap<(&str, i32), &str> = BTreeMap::new();
    // Keep what each member still may own.
    for (id, spec) in members {
        for (topic, partitions) in &spec.current {
            let Some((name, &count)) = topics.get_key_value(topic.as_str()) else { continue };
            if !spec.subscribed.contains(topic) {
                continue;
            }
            for &p in partitions.iter().filter(|&&p| p >= 0 && p < count) {
                if owner.contains_key(&(name.as_str(), p)) {
                    continue;
                }
                owner.insert((name.as_str(), p), id.as_str());
                *loads.get_mut(id.as_str()).expect("member has a load") += 1;
            }
        }
    }
    // Each subscribed partition with the members that may own it.
    let mut eligible: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, spec) in members {
        for topic in &spec.subscribed {
            if topics.contains_key(topic.as_str()) {
                eligible.entry(topic.as_str()).or_default().push(id.as_str());
            }
        }
    }
    // Hand out unowned partitions, topics with the fewest candidates first.
    let mut order: Vec<(&str, &Vec<&str>)> = eligible.iter().map(|(t, m)| (*t, m)).collect();
    order.sort_by_key(|(t, m)| (m.len(), *t));
    for (topic, candidates) in &order {
        for p in 0..topics[*topic] {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            let best = least_loaded(candidates, &loads);
            owner.insert((*topic, p), best);
            *loads.get_mut(best).expect("member has a load") += 1;
        }
    }
    // Move single partitions from the most to the least loaded eligible
    // member while that narrows the gap. Each move lowers the sum of squared
    // loads, so the loop ends; the bound is a backstop.
    let bound = owner.len().saturating_mul(members.len()).saturating_add(1);
    for _ in 0..bound {
        let Some(((topic, p), to)) = best_move(&owner, &eligible, &loads) else { break };
        let from = owner.insert((topic, p), to).expect("moved partition has an owner");
        *loads.get_mut(from).expect("member has a load") -= 1;
        *loads.get_mut(to).expect("member has a load") += 1;
    }
    for ((topic, p), id) in owner {
        out.get_mut(id).expect("owner is a member").entry(topic.to_string()).or_default().insert(p);
    }
    out
}

fn least_loaded<'a>(candidates: &[&'a str], loads: &BTreeMap<&str, usize>) -> &'a str {
    candidates.iter().copied().min_by_key(|id| (loads[id], *id)).expect("a subscribed topic has a candidate")
}

/// The partition whose move from its owner to the least loaded eligible
/// member narrows the gap the most (at least by two), if any. The owner
/// gives up its highest-numbered partition first, so lower partitions stay.
fn best_move<'a>(
    owner: &BTreeMap<(&'a str, i32), &'a str>,
    eligible: &BTreeMap<&'a str, Vec<&'a str>>,
    loads: &BTreeMap<&str, usize>,
) -> Option<((&'a str, i32), &'a str)> {
    let mut best: Option<(usize, (&'a str, i32), &'a str)> = None;
    for (&(topic, p), &from) in owner.iter().rev() {
        let to = least_loaded(&eligible[topic], loads);
        let gap = loads[from].saturating_sub(loads[to]);
        if gap >= 2 && best.is_none_or(|(g, _, _)| gap > g) {
            best = Some((gap, (topic, p), to));
        }
    }
    best.map(|(_, tp, to)| (tp, to))
}

/// The range assignor; see the module documentation.
pub fn range(members: &BTreeMap<String, MemberSpec>, topics: &BTreeMap<String, i32>) -> BTreeMap<String, Assignment> {
    let mut out = empty_targets(members);
    for (topic, &count) in topics {
        let subscribers: Vec<&String> =
            members.iter().filter(|(_, s)| s.subscribed.contains(topic)).map(|(id, _)| id).collect();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribers.into_iter().enumerate() {
            let size = per + i32::from((i as i32) < extra);
            if size > 0 {
                out.get_mut(id).expect("member").insert(topic.clone(), (next..next + size).collect());
            }
            next += size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn spec(topics: &[&str]) -> MemberSpec {
        MemberSpec { subscribed: topics.iter().map(|t| t.to_string()).collect(), current: Assignment::new() }
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn with_current(members: &mut BTreeMap<String, MemberSpec>, targets: &BTreeMap<String, Assignment>) {
        for (id, spec) in members.iter_mut() {
            spec.current = targets.get(id).cloned().unwrap_or_default();
        }
    }

    /// Every partition of a subscribed topic is assigned exactly once, to a
    /// member that subscribes to its topic.
    fn check_complete(
        members: &BTreeMap<String, MemberSpec>,
        ts: &BTreeMap<String, i32>,
        out: &BTreeMap<String, Assignment>,
    ) {
        let mut seen = BTreeSet::new();
        for (id, assignment) in out {
            for (topic, ps) in assignment {
                assert!(members[id].subscribed.contains(topic), "{id} got unsubscribed {topic}");
                for &p in ps {
                    assert!(p >= 0 && p < ts[topic], "{topic}-{p} does not exist");
                    assert!(seen.insert((topic.clone(), p)), "{topic}-{p} assigned twice");
                }
            }
        }
        for (topic, &n) in ts {
            if members.values().any(|s| s.subscribed.contains(topic)) {
                for p in 0..n {
                    assert!(seen.contains(&(topic.clone(), p)), "{topic}-{p} unassigned");
                }
            }
        }
    }

    /// Goal: uniform splits six partitions 3/3 then 2/2/2, and the joining
    /// member takes exactly two partitions, one from each old member.
    #[test]
    fn uniform_is_balanced_and_a_joining_member_moves_only_what_it_needs() {
        let ts = topics(&[("t", 6)]);
        let mut members: BTreeMap<String, MemberSpec> =
            [("a", spec(&["t"])), ("b", spec(&["t"]))].into_iter().map(|(id, s)| (id.to_string(), s)).collect();
        let first = uniform(&members, &ts);
        check_complete(&members, &ts, &first);
        assert_eq!(first.values().map(count).collect::<Vec<_>>(), vec![3, 3]);

        with_current(&mut members, &first);
        members.insert("c".into(), spec(&["t"]));
        let second = uniform(&members, &ts);
        check_complete(&members, &ts, &second);
        assert_eq!(second.values().map(count).collect::<Vec<_>>(), vec![2, 2, 2]);
        for id in ["a", "b"] {
            let kept: BTreeSet<i32> = second[id]["t"].intersection(&first[id]["t"]).copied().collect();
            assert_eq!(kept.len(), 2, "{id} keeps two of its three partitions");
        }

        // c leaves again: its two partitions go one to each, nothing else moves.
        with_current(&mut members, &second);
        members.remove("c");
        let third = uniform(&members, &ts);
        check_complete(&members, &ts, &third);
        for id in ["a", "b"] {
            assert!(second[id]["t"].is_subset(&third[id]["t"]), "{id} keeps its partitions");
            assert_eq!(count(&third[id]), 3);
        }
    }

    /// Goal: range gives contiguous ranges per topic, extras to the first
    /// members, and ignores topics nobody subscribes to.
    #[test]
    fn range_gives_contiguous_ranges() {
        let ts = topics(&[("t", 7), ("u", 2), ("x", 3)]);
        let members: BTreeMap<String, MemberSpec> =
            [("a", spec(&["t", "u"])), ("b", spec(&["t", "u"])), ("c", spec(&["t"]))]
                .into_iter()
                .map(|(id, s)| (id.to_string(), s))
                .collect();
        let out = range(&members, &ts);
        check_complete(&members, &ts, &out);
        assert_eq!(out["a"]["t"], (0..3).collect());
        assert_eq!(out["b"]["t"], (3..5).collect());
        assert_eq!(out["c"]["t"], (5..7).collect());
        assert_eq!(out["a"]["u"], [0].into());
        assert_eq!(out["b"]["u"], [1].into());
        assert!(assign("sticky", &members, &ts).is_none());
    }

    fn memberships() -> impl Strategy<Value = (BTreeMap<String, MemberSpec>, BTreeMap<String, i32>)> {
        let ts = prop::collection::btree_map("[a-d]", 1..12i32, 1..4);
        ts.prop_flat_map(|ts| {
            let names: Vec<String> = ts.keys().cloned().collect();
            let member = prop::sample::subsequence(names.clone(), 1..=names.len())
                .prop_map(|subs| MemberSpec { subscribed: subs.into_iter().collect(), current: Assignment::new() });
            (prop::collection::btree_map("m[0-9]{1,2}", member, 1..8), Just(ts))
        })
    }

    proptest! {
        /// Goal: for random memberships and topics, both assignors assign
        /// every subscribed partition exactly once; uniform with equal
        /// subscriptions is balanced within one; and recomputing uniform from
        /// its own result (nothing changed) moves nothing.
        #[test]
        fn assignors_are_complete_balanced_and_stable((mut members, ts) in memberships()) {
            let out = uniform(&members, &ts);
            check_complete(&members, &ts, &out);
            let same_subscriptions = members.values().all(|s| s.subscribed == members.values().next().unwrap().subscribed);
            if same_subscriptions {
                let counts: Vec<usize> = out.values().map(count).collect();
                let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                prop_assert!(max - min <= 1, "unbalanced {counts:?}");
            }
            with_current(&mut members, &out);
            prop_assert_eq!(&uniform(&members, &ts), &out);
            check_complete(&members, &ts, &range(&members, &ts));
        }

        /// Goal: when one member joins a group with equal subscriptions,
        /// uniform moves only partitions to the new member: every old member
        /// keeps a subset of what it had.
        #[test]
        fn a_joining_member_only_takes_partitions((mut members, ts) in memberships()) {
            let all: BTreeSet<String> = ts.keys().cloned().collect();
            for s in members.values_mut() {
                s.subscribed = all.clone();
            }
            let before = uniform(&members, &ts);
            with_current(&mut members, &before);
            members.insert("new".into(), MemberSpec { subscribed: all, current: Assignment::new() });
            let after = uniform(&members, &ts);
            check_complete(&members, &ts, &after);
            for (id, old) in &before {
                for (topic, ps) in &after[id] {
                    prop_assert!(ps.is_subset(&old[topic]), "{} gained {}", id, topic);
                }
            }
        }
    }
}
