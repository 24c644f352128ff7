use super::*;
use rust_decimal::Decimal;

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn chain(n: usize) -> (UserId, Vec<Ancestor>) {
    let buyer = UserId::new();
    let anc = (0..n)
        .map(|_| Ancestor {
            user_id: UserId::new(),
            active: true,
        })
        .collect();
    (buyer, anc)
}

#[test]
fn parent_earns_five_percent_and_grandparent_one() {
    let (buyer, anc) = chain(3);
    let shares = payouts(&Plan::default(), buyer, m("2000.00"), m("500.00"), &anc);
    assert_eq!(shares.len(), 2);
    assert_eq!(
        (shares[0].beneficiary, shares[0].level, shares[0].amount),
        (anc[0].user_id, 1, m("25.00"))
    );
    assert_eq!(
        (shares[1].beneficiary, shares[1].level, shares[1].amount),
        (anc[1].user_id, 2, m("5.00"))
    );
    assert_eq!(shares[0].leg, buyer);
    assert_eq!(shares[1].leg, anc[0].user_id);
}

#[test]
fn threshold_is_inclusive() {
    let (buyer, anc) = chain(2);
    assert!(payouts(&Plan::default(), buyer, m("999.99"), m("999.99"), &anc).is_empty());
    assert_eq!(
        payouts(&Plan::default(), buyer, m("1000.00"), m("1000.00"), &anc).len(),
        2
    );
}

#[test]
fn inactive_share_is_skipped_or_compressed() {
    let (buyer, mut anc) = chain(3);
    anc[0].active = false;
    let skip = payouts(&Plan::default(), buyer, m("1000"), m("1000"), &anc);
    assert_eq!(skip.len(), 1);
    assert_eq!((skip[0].beneficiary, skip[0].level), (anc[1].user_id, 2));
    let plan = Plan::default().with_inactive_policy(InactivePolicy::Compress);
    let comp = payouts(&plan, buyer, m("1000"), m("1000"), &anc);
    assert_eq!(comp.len(), 2);
    assert_eq!(
        (comp[0].beneficiary, comp[0].level, comp[0].amount),
        (anc[1].user_id, 1, m("50.00"))
    );
    assert_eq!(comp[0].leg, anc[0].user_id);
    assert_eq!((comp[1].beneficiary, comp[1].level), (anc[2].user_id, 2));
}

#[test]
fn partial_refunds_add_up_to_the_whole() {
    let e = m("33.33");
    let a = m("1000.00");
    let parts = [m("333.33"), m("333.33"), m("333.34")];
    let mut before = Money::ZERO;
    let mut total = Money::ZERO;
    for p in parts {
        total = total + reversal(e, a, before, before + p);
        before = before + p;
    }
    assert_eq!(total, e.negated());
    let _ = Decimal::ONE;
}
