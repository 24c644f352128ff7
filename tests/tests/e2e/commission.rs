//! The commission engine's rules, one scenario each, end to end: refunds, idempotency,
//! inactive users, invalid hierarchies, dead letters, plan versions, edge validation, and
//! `referral verify` catching tampering. Every scenario ends verified.
use e2e::{eventually, TestApp};
use reqwest::{Response, StatusCode};
use schemas::messages::{PurchaseMessage, RefundMessage};
use schemas::{Money, OrderId, RefundId, UserId};
use serde_json::Value;
use sqlx::Row;

mod hierarchy;
mod large_sums;
mod plans;
mod refunds;
mod registry;
mod stream;
mod tenancy;
mod validation;

/// A problem response's status and stable code (and that it is problem+json).
async fn problem(r: Response) -> (StatusCode, String) {
    let status = r.status();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], status.as_u16());
    (status, p["code"].as_str().unwrap().to_owned())
}

/// Waits until the processor has settled `n` purchases.
async fn settled(app: &TestApp, n: i64) {
    eventually(|| app.settled(), |s| *s == n).await;
}

/// A user's entries, oldest first: (kind, level, amount).
async fn entries(app: &TestApp, user: UserId) -> Vec<(String, i16, String)> {
    sqlx::query("SELECT kind, level, amount::text AS amount FROM earnings WHERE beneficiary_id = $1 ORDER BY user_seq")
        .bind(user.as_uuid())
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("kind"), r.get("level"), r.get("amount")))
        .collect()
}

fn e(kind: &str, level: i16, amount: &str) -> (String, i16, String) {
    (kind.to_owned(), level, amount.to_owned())
}

/// A purchase as a shop publishing straight to the stream would send it.
fn purchase_message(
    app: &TestApp,
    order: &str,
    user: UserId,
    amount: &str,
    profit: &str,
) -> PurchaseMessage {
    e2e::messages::purchase(app.shop_id, order, user, amount, profit)
}

fn refund_message(app: &TestApp, refund: &str, order: &str, amount: &str) -> RefundMessage {
    RefundMessage {
        shop_id: app.shop_id,
        refund_id: RefundId::parse(refund).unwrap(),
        order_id: OrderId::parse(order).unwrap(),
        amount: Money::parse(amount).unwrap(),
        received_at: chrono::Utc::now(),
    }
}

async fn publish_purchase(app: &TestApp, m: &PurchaseMessage) {
    let id = format!("{}:{}", m.shop_id, m.order_id);
    app.publish_raw("purchases", &id, serde_json::to_vec(m).unwrap())
        .await;
}

async fn publish_refund(app: &TestApp, m: &RefundMessage) {
    let id = format!("{}:refund:{}", m.shop_id, m.refund_id);
    app.publish_raw("refunds", &id, serde_json::to_vec(m).unwrap())
        .await;
}

/// The dead letters' reasons as the admin API lists them, oldest first.
async fn dead_letter_reasons(app: &TestApp) -> Vec<String> {
    let page = app
        .get_json("/v1/admin/dead-letters?limit=100", &app.admin)
        .await;
    let mut reasons: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.reverse();
    reasons
}

/// Subjects of the messages on this app's DEADLETTER stream, without the prefix.
async fn dead_letter_subjects(app: &TestApp) -> Vec<String> {
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let name = platform::nats::Subjects::new(&app.config.nats.prefix).deadletter_stream();
    let mut stream = js.get_stream(name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = stream.get_raw_message(seq).await.unwrap();
        let prefix = format!("{}.", app.config.nats.prefix);
        out.push(m.subject.trim_start_matches(&prefix).to_owned());
    }
    out
}
