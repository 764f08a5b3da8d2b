//! Fair shares of one request budget (a tracker's per-key window) between its owners
//! (the tenants whose requests spend it), wherever the owners' requests run.
//!
//! The split is max-min fair ("water-filling"): every owner that is waiting may reach the
//! same level of use in the window, an owner that wants less than that level leaves the
//! rest to the others, and nothing is held back while someone waits. A tenant with ten
//! thousand findings therefore takes at most an equal share while a tenant with ten
//! waits, and all of the budget when it is alone. The rule is pure: the stores call it
//! inside the transaction that grants slots, so every replica applies the same split.
//!
//! A slot counts from its grant until its request has ended and one more window (plus a
//! margin) has passed: the tracker counts a request when it receives it, some time between
//! the grant and the answer, so holding the slot until the answer + window keeps every
//! window the tracker sees within the limit however slow the way there is
//! ([`GrantRow::counts`]). A grant whose holder never says its requests ended (the
//! process died) stops counting after a cap longer than any request can take.

use chrono::{DateTime, Duration as Span, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// One owner of the budget as the store sees it in the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerUse {
    pub owner: String,
    /// Slots counted in the window (requests sent, in flight or recently answered).
    pub used: u32,
    /// Slots the owner is waiting for now (anywhere), capped by its own (token) budget.
    pub waiting: u32,
}

/// How many of the free slots each owner may take now, in the order of `owners`.
///
/// `free` is what the budget has left in the window. Each owner gets at most its
/// `waiting`; owners are levelled up from the least used: no owner is given a slot while
/// another waiting owner is below its level, and the slots that remain after the level
/// go to the least used owners first (then the earliest listed), one each.
#[must_use]
pub fn fair_split(free: u32, owners: &[OwnerUse]) -> Vec<u32> {
    let free = u64::from(free);
    let demand: u64 = owners.iter().map(|o| u64::from(o.waiting)).sum();
    if demand <= free {
        return owners.iter().map(|o| o.waiting).collect();
    }
    // Given a level L, owner o takes min(waiting, max(0, L - used)). Find the highest
    // level whose total fits in `free` (monotone in L: binary search).
    let take = |level: u64, o: &OwnerUse| -> u64 {
        level
            .saturating_sub(u64::from(o.used))
            .min(u64::from(o.waiting))
    };
    let total = |level: u64| -> u64 { owners.iter().map(|o| take(level, o)).sum() };
    let (mut lo, mut hi) = (
        0u64,
        owners
            .iter()
            .map(|o| u64::from(o.used) + u64::from(o.waiting))
            .max()
            .unwrap_or(0),
    );
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if total(mid) <= free {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut shares: Vec<u64> = owners.iter().map(|o| take(lo, o)).collect();
    let mut left = free - shares.iter().sum::<u64>();
    // The next level does not fit whole: one more slot each to those who would rise at
    // it, least used first.
    let mut next: Vec<usize> = (0..owners.len())
        .filter(|&i| take(lo + 1, &owners[i]) > shares[i])
        .collect();
    next.sort_by_key(|&i| (u64::from(owners[i].used) + shares[i], i));
    for i in next {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
        .into_iter()
        .map(|s| u32::try_from(s).unwrap_or(u32::MAX))
        .collect()
}

/// A grant of slots as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub owner: String,
    /// The owner's own budget the slots also spend (a Trello token).
    pub token: String,
    pub n: u32,
    pub granted_at: DateTime<Utc>,
    /// When the last of its requests ended; `None` while any is in flight.
    pub done_at: Option<DateTime<Utc>>,
}

/// How long slots count: one window and a margin after their requests ended, and at most
/// `in_flight_cap` while never released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRules {
    pub window: Duration,
    pub margin: Duration,
    pub in_flight_cap: Duration,
}

fn span_of(d: Duration) -> Span {
    Span::from_std(d).unwrap_or(Span::MAX)
}

impl SlotRules {
    /// Window and margin together.
    #[must_use]
    pub fn span(&self) -> Span {
        span_of(self.window.saturating_add(self.margin))
    }
}

impl GrantRow {
    /// Whether the grant's slots still count at `now`.
    #[must_use]
    pub fn counts(&self, now: DateTime<Utc>, rules: &SlotRules) -> bool {
        match self.done_at {
            Some(done) => now < done + rules.span(),
            None => now < self.granted_at + span_of(rules.in_flight_cap),
        }
    }

    /// Whether a store may forget the grant at `now` (it no longer counts, and no late
    /// answer can still be compared with it).
    #[must_use]
    pub fn forgettable(&self, now: DateTime<Utc>, rules: &SlotRules) -> bool {
        !self.counts(now, rules)
    }
}

/// What an owner waits for on one holder (a process) besides this exchange's asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub owner: String,
    pub waiting: u32,
}

/// One owner's ask in an exchange: `want` slots of the key that also spend `token`, whose
/// own limit per window is `token_limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerAsk {
    pub owner: String,
    pub token: String,
    pub token_limit: u32,
    pub want: u32,
}

/// What [`allot`] decided for an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allotment {
    /// Slots granted to each ask, in the order of the asks.
    pub granted: Vec<u32>,
    /// What each ask is still waiting for (capped by its token's room): the demand the
    /// store records for the other holders' next exchanges.
    pub still_waiting: Vec<u32>,
    /// When asking again can give more, if some ask is left short: when the next counted
    /// slot expires (at most one span).
    pub retry_in: Option<Duration>,
    /// Slots of the key counted now (before this allotment).
    pub used: u32,
}

/// Slots counted at `now` per owner and in all.
#[must_use]
pub fn usage_by_owner(
    rows: &[GrantRow],
    now: DateTime<Utc>,
    rules: &SlotRules,
) -> (u32, BTreeMap<String, u32>) {
    let mut total = 0u32;
    let mut by_owner = BTreeMap::new();
    for r in rows.iter().filter(|r| r.counts(now, rules)) {
        total = total.saturating_add(r.n);
        let e = by_owner.entry(r.owner.clone()).or_insert(0u32);
        *e = e.saturating_add(r.n);
    }
    (total, by_owner)
}

/// Decides an exchange: which of the `asks` get how many slots of a key whose limit per
/// window is `key_limit`, given the grants the store holds (`rows`) and what owners wait
/// for on other holders (`others`). Each ask is first capped by its token's room, then the
/// key's free slots are split fairly ([`fair_split`]) between every waiting owner, those
/// of other holders included: their part stays free for them.
#[must_use]
pub fn allot(
    rows: &[GrantRow],
    others: &[Waiting],
    asks: &[OwnerAsk],
    key_limit: u32,
    rules: &SlotRules,
    now: DateTime<Utc>,
) -> Allotment {
    let counted: Vec<&GrantRow> = rows.iter().filter(|r| r.counts(now, rules)).collect();
    let used: u32 = counted.iter().fold(0u32, |a, r| a.saturating_add(r.n));
    let used_of = |pick: &dyn Fn(&GrantRow) -> bool| -> u32 {
        counted
            .iter()
            .filter(|r| pick(r))
            .fold(0u32, |a, r| a.saturating_add(r.n))
    };
    let capped: Vec<u32> = asks
        .iter()
        .map(|a| {
            let token_used = used_of(&|r| r.token == a.token);
            a.want.min(a.token_limit.saturating_sub(token_used))
        })
        .collect();
    // Every waiting owner once: this exchange's asks and the other holders' demand.
    let mut owners: Vec<OwnerUse> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut add = |owner: &str, waiting: u32, owners: &mut Vec<OwnerUse>| {
        let i = *index.entry(owner.to_owned()).or_insert_with(|| {
            owners.push(OwnerUse {
                owner: owner.to_owned(),
                used: 0,
                waiting: 0,
            });
            owners.len() - 1
        });
        owners[i].waiting = owners[i].waiting.saturating_add(waiting);
        i
    };
    let ask_at: Vec<usize> = asks
        .iter()
        .zip(&capped)
        .map(|(a, c)| add(&a.owner, *c, &mut owners))
        .collect();
    for w in others.iter().filter(|w| w.waiting > 0) {
        add(&w.owner, w.waiting, &mut owners);
    }
    for o in &mut owners {
        o.used = used_of(&|r| r.owner == o.owner);
    }
    let shares = fair_split(key_limit.saturating_sub(used), &owners);
    // An owner asked here and elsewhere: this exchange takes its share up to its asks,
    // in the order of the asks.
    let mut left = shares;
    let granted: Vec<u32> = ask_at
        .iter()
        .zip(&capped)
        .map(|(&i, &c)| {
            let g = c.min(left[i]);
            left[i] -= g;
            g
        })
        .collect();
    let still_waiting: Vec<u32> = capped.iter().zip(&granted).map(|(c, g)| c - g).collect();
    let short = asks.iter().zip(&granted).any(|(a, g)| *g < a.want);
    let retry_in = short.then(|| {
        counted
            .iter()
            .filter_map(|r| r.done_at.map(|d| d + rules.span()))
            .chain(
                counted
                    .iter()
                    .filter(|r| r.done_at.is_none())
                    .map(|_| now + rules.span()),
            )
            .min()
            .map_or(Duration::ZERO, |t| {
                (t - now).to_std().unwrap_or(Duration::ZERO)
            })
    });
    Allotment {
        granted,
        still_waiting,
        retry_in,
        used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    const RULES: SlotRules = SlotRules {
        window: Duration::from_millis(1_000),
        margin: Duration::from_millis(10),
        in_flight_cap: Duration::from_millis(5_000),
    };

    fn row(owner: &str, n: u32, granted: i64, done: Option<i64>) -> GrantRow {
        GrantRow {
            owner: owner.into(),
            token: format!("token-{owner}"),
            n,
            granted_at: t(granted),
            done_at: done.map(t),
        }
    }

    fn ask(owner: &str, want: u32) -> OwnerAsk {
        ask_within(owner, want, 100)
    }

    fn ask_within(owner: &str, want: u32, token_limit: u32) -> OwnerAsk {
        OwnerAsk {
            owner: owner.into(),
            token: format!("token-{owner}"),
            token_limit,
            want,
        }
    }

    #[test]
    fn a_slot_counts_until_its_answer_and_one_span_more() {
        // Granted at 0, answered at 2 500 (slower than the window): it counts until
        // 2 500 + 1 010, however late the tracker received the request.
        let r = row("a", 1, 0, Some(2_500));
        assert!(r.counts(t(3_509), &RULES));
        assert!(!r.counts(t(3_510), &RULES));
        // Still in flight: it counts, up to the cap (its holder died).
        let r = row("a", 1, 0, None);
        assert!(r.counts(t(4_999), &RULES));
        assert!(!r.counts(t(5_000), &RULES));
    }

    #[test]
    fn allot_never_exceeds_the_key_or_a_token() {
        let rows = vec![row("a", 95, 0, Some(100)), row("b", 200, 0, None)];
        let asks = [ask("a", 50), ask_within("b", 50, 300)];
        let a = allot(&rows, &[], &asks, 300, &RULES, t(500));
        assert_eq!(a.used, 295);
        // a's token has 5 left and the key 5: a, the least used, gets them; b waits.
        assert_eq!(a.granted, vec![5, 0]);
        assert_eq!(a.still_waiting, vec![0, 50]);
        // The next slot to expire is a's (done at 100 → free at 1 110).
        assert_eq!(a.retry_in, Some(Duration::from_millis(610)));
        // A token at its limit waits for nothing the key could give.
        let a = allot(
            &rows,
            &[],
            &[ask("a", 50), ask("b", 50)],
            300,
            &RULES,
            t(500),
        );
        assert_eq!(
            a.still_waiting,
            vec![0, 0],
            "b's token (limit 100) is past its limit"
        );
    }

    #[test]
    fn other_holders_waiting_owners_keep_their_share() {
        // The large tenant asks on this replica; a small one waits on another. Of 30
        // free slots the large one gets 15: the rest stays for the small one.
        let rows = vec![row("large", 270, 0, Some(10))];
        let others = [Waiting {
            owner: "small".into(),
            waiting: 40,
        }];
        let a = allot(&rows, &others, &[ask("large", 100)], 300, &RULES, t(20));
        assert_eq!(a.granted, vec![0], "large is far above the level");
        let a = allot(&[], &others, &[ask("large", 100)], 30, &RULES, t(20));
        assert_eq!(a.granted, vec![15]);
        // Alone, the large one takes everything free.
        let a = allot(&[], &[], &[ask("large", 100)], 30, &RULES, t(20));
        assert_eq!(a.granted, vec![30]);
        assert_eq!(
            a.retry_in,
            Some(Duration::ZERO),
            "nothing counted: ask again now"
        );
    }

    fn owner(name: &str, used: u32, waiting: u32) -> OwnerUse {
        OwnerUse {
            owner: name.into(),
            used,
            waiting,
        }
    }

    #[test]
    fn everyone_gets_what_they_wait_for_when_it_fits() {
        let owners = [owner("a", 10, 5), owner("b", 0, 3)];
        assert_eq!(fair_split(20, &owners), vec![5, 3]);
    }

    #[test]
    fn a_large_owner_alone_takes_the_whole_budget() {
        assert_eq!(fair_split(300, &[owner("large", 0, 2_000)]), vec![300]);
    }

    #[test]
    fn a_small_owner_is_levelled_up_before_the_large_one_gets_more() {
        // The large tenant has spent 280 of 300; 20 slots come free. The small tenant,
        // which used nothing, gets them all: the large one is far above its level.
        let owners = [owner("large", 280, 1_000), owner("small", 0, 50)];
        assert_eq!(fair_split(20, &owners), vec![0, 20]);
    }

    #[test]
    fn equal_owners_split_equally_and_the_remainder_goes_one_each() {
        let owners = [owner("a", 0, 100), owner("b", 0, 100), owner("c", 0, 100)];
        assert_eq!(fair_split(10, &owners), vec![4, 3, 3]);
        let owners = [owner("a", 5, 100), owner("b", 0, 100), owner("c", 0, 100)];
        // Level 5: b and c get 5 each and a nothing; the 2 left go one each to the
        // owners that would rise at level 6, all at 5 now, the earliest listed first.
        assert_eq!(fair_split(12, &owners), vec![1, 6, 5]);
    }

    #[test]
    fn an_owner_wanting_less_than_its_share_leaves_the_rest_to_others() {
        let owners = [owner("a", 0, 2), owner("b", 0, 100), owner("c", 0, 100)];
        assert_eq!(fair_split(30, &owners), vec![2, 14, 14]);
    }

    #[test]
    fn never_more_than_free_nor_than_wanted() {
        for free in 0..40 {
            for a_used in [0u32, 3, 17, 40] {
                let owners = [
                    owner("a", a_used, 9),
                    owner("b", 2, 25),
                    owner("c", 30, 1),
                    owner("d", 0, 0),
                ];
                let split = fair_split(free, &owners);
                assert_eq!(
                    split.iter().sum::<u32>(),
                    free.min(35),
                    "free {free}, a used {a_used}: {split:?}"
                );
                for (s, o) in split.iter().zip(&owners) {
                    assert!(*s <= o.waiting);
                }
                // Max-min: an owner given a slot ends no higher than one more than any
                // owner left waiting.
                for (i, o) in owners.iter().enumerate() {
                    if split[i] == 0 {
                        continue;
                    }
                    for (j, p) in owners.iter().enumerate() {
                        if split[j] < p.waiting {
                            assert!(
                                o.used + split[i] <= p.used + split[j] + 1,
                                "free {free}: {split:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
