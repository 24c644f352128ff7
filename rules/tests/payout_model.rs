//! `payout::payouts` and `payout::reversal` (with the graph that feeds them) against the
//! reference model in `model/mod.rs` (shared with the fuzz target).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::sample::Index;
use rules::graph::{ReferralGraph, UserChange};
use rules::payout::{payouts, reversal};
use rust_decimal::Decimal;
use schemas::{InactivePolicy, Money, Plan, Rate, UserId};

mod model;
use model::{div_half_even, model, model_move, model_reversal, paise_of, ModelPlan};

// ---------------------------------------------------------------- generators

trait ToPlan {
    fn plan(&self) -> Plan;
}

impl ToPlan for ModelPlan {
    fn plan(&self) -> Plan {
        let rates = self
            .rates_ppm
            .iter()
            .map(|&r| Rate::new(Decimal::new(i64::from(r), 6)).unwrap());
        let policy = if self.compress {
            InactivePolicy::Compress
        } else {
            InactivePolicy::Skip
        };
        Plan::new(
            7,
            rates.collect(),
            Money::from_paise(self.threshold),
            8,
            policy,
        )
        .unwrap()
    }
}

fn plans() -> impl Strategy<Value = ModelPlan> {
    // A rate is whole percent, a "nice" fraction, or any six-place value; four levels of
    // at most 25% each keep the sum within 100%.
    let rate = prop_oneof![
        (0u32..=25).prop_map(|p| p * 10_000),
        Just(12_345),
        Just(5_000),
        0u32..=250_000,
    ];
    let threshold = prop_oneof![Just(100_000i64), Just(0), 0i64..=300_000];
    (prop::collection::vec(rate, 1..=4), threshold, any::<bool>()).prop_map(
        |(rates_ppm, threshold, compress)| ModelPlan {
            rates_ppm,
            threshold,
            compress,
        },
    )
}

/// Paise, mostly everyday amounts, sometimes near the largest the ledger accepts.
fn paise() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1i64..=1_000_000,
        3 => 1i64..=100_000_000,
        1 => 1i64..=100_000_000_000_000,
    ]
}

/// A forest of `n` users: each picks its referrer among earlier users (mostly the one
/// just before, so chains are deep) or none; then a status per user.
fn forests() -> impl Strategy<Value = (Vec<Option<usize>>, Vec<bool>)> {
    (1usize..40).prop_flat_map(|n| {
        let link = (0u8..10, any::<Index>());
        (
            prop::collection::vec(link, n),
            prop::collection::vec(prop::bool::weighted(0.7), n),
        )
            .prop_map(|(links, active)| {
                let parent = links
                    .iter()
                    .enumerate()
                    .map(|(i, (kind, idx))| match (i, kind) {
                        (0, _) | (_, 0) => None,
                        (_, 1..=6) => Some(i - 1),
                        _ => Some(idx.index(i)),
                    })
                    .collect();
                (parent, active)
            })
    })
}

/// The graph the processor would hold for this forest.
fn graph_of(ids: &[UserId], parent: &[Option<usize>], active: &[bool]) -> ReferralGraph {
    let mut g = ReferralGraph::default();
    for (i, p) in parent.iter().enumerate() {
        g.apply(&UserChange::Created {
            user: ids[i],
            referrer: p.map(|p| ids[p]),
        })
        .unwrap();
    }
    for (i, a) in active.iter().enumerate() {
        g.apply(&UserChange::Status {
            user: ids[i],
            active: *a,
        })
        .unwrap();
    }
    g
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// The graph's ancestors fed to `payouts` pay exactly whom the model pays, at the
    /// model's level, leg, base, rate and amount, after any sequence of moves.
    #[test]
    fn payouts_match_the_model(
        plan in plans(),
        (mut parent, active) in forests(),
        moves in prop::collection::vec((any::<Index>(), any::<Option<Index>>()), 0..6),
        buyer in any::<Index>(),
        amount in paise(),
        profit_share in 0u32..=1_000,
    ) {
        let n = parent.len();
        let ids: Vec<UserId> = (0..n).map(|_| UserId::new()).collect();
        let mut graph = graph_of(&ids, &parent, &active);
        for (who, to) in moves {
            let (who, to) = (who.index(n), to.map(|t| t.index(n)));
            let applied = graph.apply(&UserChange::Moved { user: ids[who], referrer: to.map(|t| ids[t]) });
            let cycle = model_move(&mut parent, who, to);
            prop_assert_eq!(applied.is_err(), cycle, "a move is refused exactly when it makes a cycle");
        }
        for u in 0..n {
            prop_assert_eq!(graph.referrer(ids[u]), parent[u].map(|p| ids[p]));
        }

        let buyer = buyer.index(n);
        let profit = (i128::from(amount) * i128::from(profit_share) / 1_000) as i64;
        let p = plan.plan();
        let ancestors = graph.payout_ancestors(ids[buyer], &p);
        let got = payouts(&p, ids[buyer], Money::from_paise(amount), Money::from_paise(profit), &ancestors);
        let want = model(&plan, &parent, &active, buyer, amount, profit);
        let index = |u: UserId| ids.iter().position(|&x| x == u).unwrap();
        let got_tuples: Vec<_> = got.iter().map(|s| (index(s.beneficiary), s.level, index(s.leg), paise_of(s.amount))).collect();
        prop_assert_eq!(got_tuples, want);
        for s in &got {
            prop_assert_eq!(s.base, Money::from_paise(profit));
            prop_assert_eq!(s.rate, p.level_rates()[usize::from(s.level) - 1]);
        }
    }

    /// Partial refunds in any number and order: each reversal is what the model says,
    /// never positive; together they never exceed the earning; a full refund in any
    /// parts reverses it exactly; and the final reversal does not depend on the order.
    #[test]
    fn reversals_match_the_model(
        amount in paise(),
        earning_share in 0u32..=1_000,
        cuts in prop::collection::vec(1u32..=1_000, 1..8),
        full in any::<bool>(),
        shuffle in any::<Index>(),
    ) {
        let earning = (i128::from(amount) * i128::from(earning_share) / 1_000) as i64;
        // Parts proportional to the cuts, summing to `amount` when `full`, else less.
        let weight: i64 = cuts.iter().map(|&c| i64::from(c)).sum::<i64>() + i64::from(!full) * 500;
        let mut parts: Vec<i64> = cuts.iter().map(|&c| (i128::from(amount) * i128::from(c) / i128::from(weight)) as i64).collect();
        if full {
            let rest = amount - parts.iter().sum::<i64>();
            *parts.last_mut().unwrap() += rest;
        }
        parts.retain(|&p| p > 0);
        let rotated = {
            let mut r = parts.clone();
            let by = shuffle.index(r.len().max(1));
            r.rotate_left(by);
            r
        };
        for order in [&parts, &rotated] {
            let (mut before, mut total) = (0i64, 0i64);
            for &part in order {
                let got = reversal(Money::from_paise(earning), Money::from_paise(amount), Money::from_paise(before), Money::from_paise(before + part));
                prop_assert_eq!(paise_of(got), model_reversal(earning, amount, before, before + part));
                prop_assert!(got <= Money::ZERO);
                total += paise_of(got);
                before += part;
                prop_assert!(-total <= earning, "reversed {} of an earning of {}", -total, earning);
            }
            let exact = div_half_even(i128::from(earning) * i128::from(before), i128::from(amount)) as i64;
            prop_assert_eq!(-total, exact, "reversed the pro-rata share of the cumulative refund");
            if before == amount {
                prop_assert_eq!(-total, earning, "a full refund reverses exactly");
            }
        }
    }

    /// Rounding is bounded: each share is within half a paisa of the exact product.
    #[test]
    fn each_share_is_within_half_a_paisa(profit in paise(), rate in 0u32..=1_000_000) {
        let got = Money::from_paise(profit).share(Rate::new(Decimal::new(i64::from(rate), 6)).unwrap());
        let exact_micro = i128::from(profit) * i128::from(rate); // paise × 10⁻⁶
        let err = (i128::from(paise_of(got)) * 1_000_000 - exact_micro).abs();
        prop_assert!(err <= 500_000);
    }
}

// ---------------------------------------------------------------- worked examples (docs)

#[test]
fn the_documented_examples_hold() {
    let five = ModelPlan {
        rates_ppm: vec![50_000, 10_000],
        threshold: 100_000,
        compress: false,
    };
    // A ← B ← C; C buys 2000.00 with profit 500.00: B 25.00 (L1), A 5.00 (L2).
    let parent = [None, Some(0), Some(1)];
    assert_eq!(
        model(&five, &parent, &[true; 3], 2, 200_000, 50_000),
        vec![(1, 1, 2, 2_500), (0, 2, 1, 500)]
    );
    // 999.99 does not qualify, 1000.00 does.
    assert!(model(&five, &parent, &[true; 3], 2, 99_999, 99_999).is_empty());
    assert_eq!(
        model(&five, &parent, &[true; 3], 2, 100_000, 100_000).len(),
        2
    );
    // Half-even: 0.50 × 5% = 0.025 → 0.02; 0.70 × 5% = 0.035 → 0.04; 0.90 × 5% = 0.045 → 0.04.
    assert_eq!(div_half_even(50 * 50_000, 1_000_000), 2);
    assert_eq!(div_half_even(70 * 50_000, 1_000_000), 4);
    assert_eq!(div_half_even(90 * 50_000, 1_000_000), 4);
    // The rounding table of docs/payout-logic.md, through `Money::share` itself.
    let pct = |p: i64, places: u32| Rate::new(Decimal::new(p, places)).unwrap();
    for (base, rate, want) in [
        (50, pct(5, 2), 2),
        (70, pct(5, 2), 4),
        (90, pct(5, 2), 4),
        (150, pct(1, 2), 2),
        (33_333, pct(5, 2), 1_667),
        (49, pct(1, 2), 0),
    ] {
        assert_eq!(
            paise_of(Money::from_paise(base).share(rate)),
            want,
            "{base} × {rate}"
        );
    }
    // B inactive: skip pays only A (L2, 5.00); compress pays A as L1 (25.00).
    let b_off = [true, false, true];
    assert_eq!(
        model(&five, &parent, &b_off, 2, 200_000, 50_000),
        vec![(0, 2, 1, 500)]
    );
    let squeeze = ModelPlan {
        compress: true,
        ..five.clone()
    };
    assert_eq!(
        model(&squeeze, &parent, &b_off, 2, 200_000, 50_000),
        vec![(0, 1, 1, 2_500)]
    );
    // 16.67 refunded in thirds of 1000.00: 5.56, 5.55, 5.56, exactly 16.67 in all.
    let thirds = [(0, 33_333), (33_333, 66_666), (66_666, 100_000)];
    let parts: Vec<i64> = thirds
        .iter()
        .map(|&(b, a)| model_reversal(1_667, 100_000, b, a))
        .collect();
    assert_eq!(parts, vec![-556, -555, -556]);
    for ((b, a), want) in thirds.iter().zip(&parts) {
        let got = reversal(
            Money::from_paise(1_667),
            Money::from_paise(100_000),
            Money::from_paise(*b),
            Money::from_paise(*a),
        );
        assert_eq!(paise_of(got), *want);
    }
}

/// At the largest amounts the exact pro-rata value sits 10⁻¹⁶ rupees from a half paisa,
/// beyond what a 28-digit decimal holds after the point; the result must still be the
/// exactly rounded one (the cases solve earning × refunded ≡ (amount ± 1) / 2 mod amount).
#[test]
fn pro_rata_near_a_half_paisa_at_the_largest_amounts_is_exact() {
    let a = 99_999_999_999_997i64;
    for (e, r) in [
        (99_999_999_999_987i64, 34_999_999_999_999i64),
        (99_999_999_999_987, 64_999_999_999_998),
        (50_000_000_000_005, 84_615_384_615_382),
        (25_000_000_000_000, 33_333_333_333_333),
        (90_000_000_000_001, 91_891_891_891_889),
        (5_000_000_000_001, 82_608_695_652_171),
    ] {
        let got = reversal(
            Money::from_paise(e),
            Money::from_paise(a),
            Money::ZERO,
            Money::from_paise(r),
        );
        assert_eq!(paise_of(got), model_reversal(e, a, 0, r), "{e} × {r} / {a}");
    }
}
