//! `rules::payout::{decide, payouts, reversal}` (fed by `ReferralGraph`, as the ledger
//! does) against the integer reference model of rules/tests/model/mod.rs, the one the
//! proptest rules/tests/payout_model.rs uses (paise as integers, a walk up a parent array,
//! half-even rounding by hand; it never calls `Money::share` or `Money::pro_rata`). Inputs: a forest of up to 40 users with
//! referrers, active flags and up to 6 moves; a plan of 1 to 4 level rates (six places,
//! summing to at most 100%), a threshold and skip or compress; a buyer, an amount and a
//! profit in paise (up to the largest amount accepted); a full refund cut into up to 8 parts.
//! Checked: status and shares equal the model's; no zero share; levels increase within
//! 1..=levels; the total is within levels/2 paise of profit × Σ rates (docs/payout-logic.md);
//! each reversal is the model's and ≤ 0, never more than the earning in total, and a full
//! refund in any parts reverses each earning exactly.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rules::graph::{ReferralGraph, UserChange};
use rules::payout::{decide, payouts, reversal};
use rust_decimal::Decimal;
use schemas::{InactivePolicy, Money, Plan, PlanError, PurchaseStatus, Rate, UserId};

const MAX_PAISE: u64 = 100_000_000_000_000;

#[derive(Arbitrary, Debug)]
struct User {
    /// 0: no referrer; 1..=170: the user just before (deep chains); else `pick`.
    link: u8,
    pick: u8,
    active: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    users: Vec<User>,
    moves: Vec<(u8, Option<u8>)>,
    rates_ppm: Vec<u32>,
    threshold: (u8, u64),
    compress: bool,
    buyer: u8,
    buyer_active: bool,
    amount: (u8, u64),
    profit: u64,
    refund_cuts: Vec<u16>,
}

// The reference model, shared as source with rules/tests/payout_model.rs.
#[path = "../../rules/tests/model/mod.rs"]
mod model;
use model::{model, model_move, model_reversal, paise_of, ModelPlan};

fuzz_target!(|input: Input| {
    // ---- the forest
    let n = input.users.len().min(40);
    if n == 0 {
        return;
    }
    let users = &input.users[..n];
    let mut parent: Vec<Option<usize>> = users
        .iter()
        .enumerate()
        .map(|(i, u)| match (i, u.link) {
            (0, _) | (_, 0) => None,
            (_, 1..=170) => Some(i - 1),
            _ => Some(usize::from(u.pick) % i),
        })
        .collect();
    let active: Vec<bool> = users.iter().map(|u| u.active).collect();
    let ids: Vec<UserId> = (0..n).map(|i| UserId::from(uuid::Uuid::from_u128(i as u128 + 1))).collect();
    let index = |u: UserId| ids.iter().position(|&x| x == u).expect("a known user");

    let mut graph = ReferralGraph::default();
    for (i, p) in parent.iter().enumerate() {
        graph
            .apply(&UserChange::Created { user: ids[i], referrer: p.map(|p| ids[p]) })
            .expect("created in order");
    }
    for (i, a) in active.iter().enumerate() {
        graph.apply(&UserChange::Status { user: ids[i], active: *a }).expect("known user");
    }
    for &(who, to) in input.moves.iter().take(6) {
        let (who, to) = (usize::from(who) % n, to.map(|t| usize::from(t) % n));
        let applied = graph.apply(&UserChange::Moved { user: ids[who], referrer: to.map(|t| ids[t]) });
        let cycle = model_move(&mut parent, who, to);
        assert_eq!(applied.is_err(), cycle, "a move is refused exactly when it makes a cycle");
    }
    for u in 0..n {
        assert_eq!(graph.referrer(ids[u]), parent[u].map(|p| ids[p]), "user {u}'s referrer");
    }

    // ---- the plan: 1 to 4 rates, scaled down to sum to at most 100% when they exceed it
    let levels = input.rates_ppm.len().min(4);
    if levels == 0 {
        return;
    }
    let mut rates_ppm: Vec<u32> = input.rates_ppm[..levels].iter().map(|r| r % 1_000_001).collect();
    let sum: u64 = rates_ppm.iter().map(|&r| u64::from(r)).sum();
    let policy = if input.compress { InactivePolicy::Compress } else { InactivePolicy::Skip };
    let rates_of = |ppm: &[u32]| -> Vec<Rate> {
        ppm.iter()
            .map(|&r| Rate::new(Decimal::new(i64::from(r), 6)).expect("a rate in 0..=1"))
            .collect()
    };
    let threshold = match input.threshold.0 % 4 {
        0 => 0,
        1 => 100_000,
        2 => input.threshold.1 % 300_001,
        _ => input.threshold.1 % (MAX_PAISE + 1),
    } as i64;
    if sum > 1_000_000 {
        let refused = Plan::new(7, rates_of(&rates_ppm), Money::from_paise(threshold), 8, policy);
        assert_eq!(refused, Err(PlanError::RatesOverOne), "rates {rates_ppm:?}");
        for r in &mut rates_ppm {
            *r = (u64::from(*r) * 1_000_000 / sum) as u32;
        }
    }
    let plan = Plan::new(7, rates_of(&rates_ppm), Money::from_paise(threshold), 8, policy)
        .expect("a valid plan");

    // ---- the purchase
    let amount = 1 + match input.amount.0 % 3 {
        0 => input.amount.1 % 1_000_000,
        1 => input.amount.1 % 100_000_000,
        _ => input.amount.1 % MAX_PAISE,
    } as i64;
    let profit = (input.profit % (amount as u64 + 1)) as i64;
    let buyer = usize::from(input.buyer) % n;
    let (amount_m, profit_m) = (Money::from_paise(amount), Money::from_paise(profit));

    let ancestors = graph.payout_ancestors(ids[buyer], &plan);
    let decision = decide(&plan, ids[buyer], input.buyer_active, amount_m, profit_m, &ancestors);
    let paid = payouts(&plan, ids[buyer], amount_m, profit_m, &ancestors);
    let want_status = if !input.buyer_active {
        PurchaseStatus::RejectedInactiveBuyer
    } else if amount < threshold {
        PurchaseStatus::BelowThreshold
    } else {
        PurchaseStatus::Paid
    };
    assert_eq!(decision.status, want_status);
    if want_status == PurchaseStatus::Paid {
        assert_eq!(decision.shares, paid, "decide and payouts differ");
    } else {
        assert!(decision.shares.is_empty(), "{:?} pays {:?}", decision.status, decision.shares);
    }

    // ---- the shares against the model
    let rules = ModelPlan { rates_ppm: rates_ppm.clone(), threshold, compress: input.compress };
    let want = model(&rules, &parent, &active, buyer, amount, profit);
    let got: Vec<_> = paid
        .iter()
        .map(|s| (index(s.beneficiary), s.level, index(s.leg), paise_of(s.amount)))
        .collect();
    assert_eq!(got, want, "plan {rates_ppm:?} {policy:?}, parent {parent:?}, active {active:?}, buyer {buyer}");

    let mut last_level = 0u8;
    let mut exact_micro: i128 = 0; // profit × Σ paid rates, in paise × 10⁻⁶
    let mut total: i64 = 0;
    for s in &paid {
        assert!(s.amount > Money::ZERO, "a zero or negative share {s:?}");
        assert!(s.level > last_level && usize::from(s.level) <= levels, "levels out of order: {paid:?}");
        last_level = s.level;
        assert_eq!(s.base, profit_m);
        assert_eq!(s.rate, plan.level_rates()[usize::from(s.level) - 1]);
        assert_ne!(s.beneficiary, ids[buyer], "the buyer earns from their own purchase");
        exact_micro += i128::from(profit) * i128::from(rates_ppm[usize::from(s.level) - 1]);
        total += paise_of(s.amount);
    }
    let all_rates: i128 = rates_ppm.iter().map(|&r| i128::from(r)).sum();
    let half_paise = paid.len() as i128 * 500_000;
    assert!((i128::from(total) * 1_000_000 - exact_micro).abs() <= half_paise, "total {total} vs {exact_micro}e-6");
    assert!(
        i128::from(total) * 1_000_000 <= i128::from(profit) * all_rates + levels as i128 * 500_000,
        "paid {total} paise of a profit of {profit} at rates {rates_ppm:?}"
    );

    // ---- a full refund in parts reverses every earning exactly
    let cuts: Vec<i64> = input.refund_cuts.iter().take(8).map(|&c| i64::from(c) + 1).collect();
    let weight: i64 = cuts.iter().sum::<i64>().max(1);
    let mut parts: Vec<i64> = cuts
        .iter()
        .map(|&c| (i128::from(amount) * i128::from(c) / i128::from(weight)) as i64)
        .collect();
    let rest = amount - parts.iter().sum::<i64>();
    match parts.last_mut() {
        Some(last) => *last += rest,
        None => parts.push(amount),
    }
    parts.retain(|&p| p > 0);
    let mut reversed_total = 0i64;
    for s in &paid {
        let earning = paise_of(s.amount);
        let (mut before, mut reversed) = (0i64, 0i64);
        for &part in &parts {
            let after = before + part;
            let got = reversal(s.amount, amount_m, Money::from_paise(before), Money::from_paise(after));
            let got = paise_of(got);
            assert_eq!(got, model_reversal(earning, amount, before, after), "{earning} × {before}..{after} / {amount}");
            assert!(got <= 0, "a positive reversal {got}");
            reversed -= got;
            assert!(reversed <= earning, "reversed {reversed} of an earning of {earning}");
            before = after;
        }
        assert_eq!(before, amount);
        assert_eq!(reversed, earning, "a full refund in {} parts reverses exactly", parts.len());
        reversed_total += reversed;
    }
    assert_eq!(reversed_total, total);
});
