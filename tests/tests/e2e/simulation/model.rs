//! The simulation's independent model of what the ledger must hold afterwards (default
//! plan: 5% and 1%, ₹1000.00 inclusive, inactive shares skipped, refunds pro rata on the
//! cumulative refunded amount), and the checks against it.
use super::workload::{Order, Route, World};
use e2e::TestApp;
use schemas::UserId;
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub type Js = async_nats::jetstream::Context;

impl World {
    /// (beneficiary, level, paise) for one purchase: walk two levels up, 5% then 1% of the
    /// profit, half-even to the paisa; an inactive ancestor's share is paid to nobody.
    fn shares(&self, o: &Order) -> Vec<(UserId, i16, i64)> {
        let mut out = Vec::new();
        if o.amount < 100_000 || !self.active[o.buyer] {
            return out;
        }
        let mut at = self.parent[o.buyer];
        for (level, percent) in [(1, 5), (2, 1)] {
            let Some(p) = at else { break };
            let share = half_even(o.profit * percent, 100);
            if self.active[p] && share > 0 {
                out.push((self.users[p], level, share));
            }
            at = self.parent[p];
        }
        out
    }
}

fn half_even(n: i64, d: i64) -> i64 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + q % 2,
    }
}

fn paise(d: rust_decimal::Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    let p = d * rust_decimal::Decimal::ONE_HUNDRED;
    assert!(p.fract().is_zero(), "{d} is not whole paise");
    p.to_i64().unwrap()
}

/// (purchases settled, refunds applied, messages not yet acked by the processor).
pub async fn progress(app: &TestApp, js: &Js) -> (i64, i64, i64) {
    let purchases = app.settled().await;
    let refunds: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status = 'applied'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let subjects = platform::nats::Subjects::new(&app.config.nats.prefix);
    let stream = js.get_stream(subjects.purchases_stream()).await.unwrap();
    let backlog = match stream
        .consumer_info(processor::consumer::DURABLE_NAME)
        .await
    {
        Ok(i) => i.num_pending as i64 + i.num_ack_pending as i64,
        Err(_) => i64::MAX,
    };
    (purchases, refunds, backlog)
}

/// Every invariant, against the model; fails with what differs.
pub async fn check(app: &TestApp, js: &Js, world: &mut World) {
    let subjects = platform::nats::Subjects::new(&app.config.nats.prefix);
    // Every accepted purchase settled exactly once, under the id it was accepted with.
    let rows = sqlx::query("SELECT id, order_id, status FROM purchases")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        rows.len() as i64,
        world.accepted_orders(),
        "settled purchases"
    );
    let settled: HashMap<String, (Uuid, String)> = rows
        .iter()
        .map(|r| (r.get("order_id"), (r.get("id"), r.get("status"))))
        .collect();
    let mut expected_entries: BTreeMap<(Uuid, Uuid, i16), (i64, i64)> = BTreeMap::new();
    let mut expected_totals: HashMap<Uuid, i64> = HashMap::new();
    let active = world.active.clone();
    for o in world.orders.iter_mut().filter(|o| o.accepted(&active)) {
        let (id, status) = settled
            .get(&o.id)
            .unwrap_or_else(|| panic!("order {} was lost", o.id));
        match (o.route, &o.alt) {
            (Route::Http, _) => assert_eq!(Some(*id), o.http_id, "order {}", o.id),
            (Route::Direct, Some(alt)) if alt.purchase_id == *id => o.amount += 1,
            (Route::Direct, _) => assert_eq!(*id, o.message().purchase_id, "order {}", o.id),
        }
        let want = match (active[o.buyer], o.amount >= 100_000) {
            (false, _) => "rejected_inactive_buyer",
            (true, true) => "paid",
            (true, false) => "below_threshold",
        };
        assert_eq!(status, want, "order {}", o.id);
    }
    for o in world.orders.iter().filter(|o| o.accepted(&active)) {
        let refunded: i64 = o.refunds.iter().map(|r| r.1).sum();
        for (user, level, e) in world.shares(o) {
            let back = -half_even(e * refunded, o.amount);
            expected_entries.insert((settled[&o.id].0, user.as_uuid(), level), (e, back));
            *expected_totals.entry(user.as_uuid()).or_default() += e + back;
        }
    }

    // No double pay and nothing missing: each share once, its reversals summing exactly.
    let entries =
        sqlx::query("SELECT id, purchase_id, beneficiary_id, level, kind, amount FROM earnings")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut actual: BTreeMap<(Uuid, Uuid, i16), (i64, i64)> = BTreeMap::new();
    for r in &entries {
        let slot = actual
            .entry((
                r.get("purchase_id"),
                r.get("beneficiary_id"),
                r.get("level"),
            ))
            .or_default();
        match r.get::<String, _>("kind").as_str() {
            "earning" => {
                assert_eq!(slot.0, 0, "paid twice: {:?}", r.get::<Uuid, _>("id"));
                slot.0 = paise(r.get("amount"));
            }
            _ => slot.1 += paise(r.get("amount")),
        }
    }
    assert_eq!(
        actual, expected_entries,
        "entries (earning, reversed) per purchase, beneficiary, level"
    );

    // Balances and totals equal the sum of their entries, and the model's totals.
    let totals = sqlx::query("SELECT user_id, total FROM account_totals")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let totals: HashMap<Uuid, i64> = totals
        .iter()
        .map(|r| (r.get("user_id"), paise(r.get("total"))))
        .collect();
    for (user, want) in &expected_totals {
        assert_eq!(
            totals.get(user).copied().unwrap_or(0),
            *want,
            "total of {user}"
        );
    }
    assert!(totals
        .iter()
        .all(|(u, t)| *t == 0 || expected_totals.contains_key(u)));

    // Every entry was announced on `ledger.entries`, and every copy of it (a replayed
    // batch announces its entries again; consumers dedup by id) says the same.
    let published = stream_payloads(js, &subjects.earnings_stream()).await;
    let mut copies: std::collections::HashMap<Uuid, Value> = std::collections::HashMap::new();
    for (_, p) in published
        .iter()
        .filter(|(s, _)| s.ends_with(".ledger.entries"))
    {
        for e in serde_json::from_slice::<Vec<Value>>(p).unwrap() {
            let id: Uuid = e["earning_id"].as_str().unwrap().parse().unwrap();
            let first = copies.entry(id).or_insert_with(|| e.clone());
            assert_eq!(*first, e, "every announcement of entry {id} is the same");
        }
    }
    let mut ids: Vec<Uuid> = copies.keys().copied().collect();
    ids.sort();
    let missing: Vec<String> = entries
        .iter()
        .filter(|r| ids.binary_search(&r.get("id")).is_err())
        .map(|r| {
            format!(
                "{} {} of purchase {}",
                r.get::<String, _>("kind"),
                r.get::<Uuid, _>("id"),
                r.get::<Uuid, _>("purchase_id")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "entries never published on EARNINGS: {missing:#?}"
    );
    assert_eq!(
        ids.len(),
        entries.len(),
        "the EARNINGS stream announces only entries the ledger holds"
    );

    // Dead letters: the garbage and the losing side of each conflict on the stream, once each.
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM dead_letters ORDER BY reason")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let conflicts = world.orders.iter().filter(|o| o.alt.is_some()).count();
    let mut want = vec!["malformed".to_owned(); world.garbage];
    want.extend(vec!["order_conflict".to_owned(); conflicts]);
    want.sort();
    assert_eq!(reasons, want, "dead letters");
    let letters = stream_payloads(js, &subjects.deadletter_stream()).await;
    assert_eq!(
        letters.len(),
        want.len(),
        "the DEADLETTER stream holds each dead letter once"
    );
    app.assert_verified().await;
}

/// (subject, payload) of every message in a stream.
async fn stream_payloads(js: &Js, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut stream = js.get_stream(name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        out.push((m.subject.to_string(), m.payload.to_vec()));
    }
    out
}
