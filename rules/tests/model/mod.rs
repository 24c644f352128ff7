//! The payout reference model, small enough to be obviously right: integers in paise, a
//! walk up a parent array, half-even rounding by hand. Nothing here calls `Money::share`
//! or `Money::pro_rata`, so a rounding or precision slip in them shows up as a difference.
//! Shared as source by `rules/tests/payout_model.rs` (proptest) and the fuzz target
//! `fuzz/fuzz_targets/payout_model.rs` (libFuzzer): one model, two drivers.
#![allow(dead_code)]

use rust_decimal::Decimal;
use schemas::Money;
use std::cmp::Ordering;

/// A plan as the model reads it: rates in millionths, the threshold in paise, the policy.
#[derive(Clone, Debug)]
pub struct ModelPlan {
    pub rates_ppm: Vec<u32>,
    pub threshold: i64,
    pub compress: bool,
}

/// `n / d` rounded half to even; `n ≥ 0`, `d > 0`.
pub fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        Ordering::Less => q,
        Ordering::Greater => q + 1,
        Ordering::Equal => q + q % 2,
    }
}

/// Who earns what, as (beneficiary, level, leg, paise): walk up from the buyer; each
/// ancestor takes the next level (an inactive one forfeits it under skip, and is passed
/// over under compress); share = profit × rate, rounded half-even to the paisa; no zeros.
pub fn model(
    m: &ModelPlan,
    parent: &[Option<usize>],
    active: &[bool],
    buyer: usize,
    amount: i64,
    profit: i64,
) -> Vec<(usize, u8, usize, i64)> {
    let mut out = Vec::new();
    if amount < m.threshold {
        return out;
    }
    let (mut level, mut child, mut at) = (0, buyer, parent[buyer]);
    while let (Some(p), true) = (at, level < m.rates_ppm.len()) {
        if active[p] {
            let share = div_half_even(
                i128::from(profit) * i128::from(m.rates_ppm[level]),
                1_000_000,
            );
            if share > 0 {
                out.push((p, level as u8 + 1, child, share as i64));
            }
        }
        if active[p] || !m.compress {
            level += 1;
        }
        (child, at) = (p, parent[p]);
    }
    out
}

/// What a refund taking the refunded part of `amount` from `before` to `after` reverses
/// of `earning`: the pro-rata share of the cumulative refund, minus what was reversed.
pub fn model_reversal(earning: i64, amount: i64, before: i64, after: i64) -> i64 {
    let reversed = |r: i64| div_half_even(i128::from(earning) * i128::from(r), i128::from(amount));
    -(reversed(after) - reversed(before)) as i64
}

/// A `Money` as whole paise; anything finer is a failure of the code under test.
pub fn paise_of(m: Money) -> i64 {
    let d = m.as_decimal() * Decimal::ONE_HUNDRED;
    assert!(d.fract().is_zero(), "{m} is not a whole number of paise");
    let paise = d.mantissa() / 10i128.pow(d.scale());
    i64::try_from(paise).expect("paise fit i64")
}

/// Moves `who` under `to` in the parent array unless that makes a cycle (`to` is `who` or
/// one of its descendants); true when it would, and then nothing changes. The graph must
/// refuse exactly these moves.
pub fn model_move(parent: &mut [Option<usize>], who: usize, to: Option<usize>) -> bool {
    let mut up = to;
    let cycle = loop {
        match up {
            Some(u) if u == who => break true,
            Some(u) => up = parent[u],
            None => break false,
        }
    };
    if !cycle {
        parent[who] = to;
    }
    cycle
}
