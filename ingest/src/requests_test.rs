use super::*;
use serde_json::{json, Value};

fn purchase(body: Value) -> Result<Purchase, IngestError> {
    serde_json::from_value::<PurchaseRequest>(body)
        .expect("parses")
        .judge()
}

fn code(r: Result<Purchase, IngestError>) -> String {
    r.expect_err("refused").problem().code
}

fn hash(body: Value) -> String {
    purchase(body).expect("judged").body_hash().expect("hashed")
}

const USER: &str = "0190a0e0-0000-7000-8000-000000000001";

#[test]
fn amounts_outside_the_wire_form_are_refused_with_their_fields_code() {
    for bad in [
        json!("1_000"),
        json!("+10.00"),
        json!(".5"),
        json!("10."),
        json!("00010.00"),
        json!(" 10.00"),
        json!("NaN"),
        json!("-5.00"),
        json!("1.001"),
        json!(2000.0),
        json!(null),
    ] {
        let body = json!({ "order_id": "o", "user_id": USER, "amount": bad, "profit": "1.00" });
        assert_eq!(code(purchase(body)), "invalid_amount", "amount {bad}");
        let body = json!({ "order_id": "o", "user_id": USER, "amount": "2000.00", "profit": bad });
        let want = if bad.is_null() {
            None
        } else {
            Some("invalid_profit")
        };
        assert_eq!(
            purchase(body).err().map(|e| e.problem().code).as_deref(),
            want,
            "profit {bad}"
        );
    }
    let zero = json!({ "order_id": "o", "user_id": USER, "amount": "0.00" });
    assert_eq!(code(purchase(zero)), "invalid_amount");
}

#[test]
fn the_hash_is_of_the_meaning_not_the_spelling() {
    let base = json!({ "order_id": "o", "user_id": USER, "amount": "10.00" });
    let same = [
        json!({ "order_id": "o", "user_id": USER, "amount": "10.0" }),
        json!({ "order_id": "o", "user_id": USER, "amount": "10" }),
        json!({ "order_id": "o", "user_id": USER, "amount": "10.00", "profit": "10.00" }),
        json!({ "order_id": "o", "user_id": USER, "amount": "10", "profit": "10.0", "currency": "INR" }),
        json!({ "user_id": USER, "profit": null, "amount": "10.00", "order_id": "o" }),
    ];
    for body in same {
        assert_eq!(hash(body.clone()), hash(base.clone()), "{body}");
    }
    let different = [
        json!({ "order_id": "o", "user_id": USER, "amount": "10.01" }),
        json!({ "order_id": "o", "user_id": USER, "amount": "10.00", "profit": "9.99" }),
        json!({ "order_id": "p", "user_id": USER, "amount": "10.00" }),
        json!({ "order_id": "o", "user_id": USER, "amount": "10.00", "occurred_at": "2026-01-01T00:00:00Z" }),
    ];
    for body in different {
        assert_ne!(hash(body.clone()), hash(base.clone()), "{body}");
    }
    let at =
        |t: &str| json!({ "order_id": "o", "user_id": USER, "amount": "10.00", "occurred_at": t });
    assert_eq!(
        hash(at("2026-01-01T00:00:00Z")),
        hash(at("2026-01-01T05:30:00+05:30"))
    );
}

#[test]
fn a_request_that_leaves_the_defaults_out_hashes_as_before() {
    // The JSON requests were hashed over before the canonical form (the request
    // re-serialized): reservations made then must still match their retries.
    let legacy = |profit: &str| {
        let json = format!(
            r#"{{"order_id":"o","user_id":"{USER}","amount":"2000.00","profit":{profit},"currency":null,"occurred_at":null}}"#
        );
        hex::encode(Sha256::digest(json))
    };
    let body = json!({ "order_id": "o", "user_id": USER, "amount": "2000" });
    assert_eq!(hash(body), legacy("null"));
    let body = json!({ "order_id": "o", "user_id": USER, "amount": "2000.00", "profit": "500" });
    assert_eq!(hash(body), legacy(r#""500.00""#));
}

#[test]
fn refund_amounts_are_judged_alike() {
    let refund = |amount: Value| {
        serde_json::from_value::<RefundRequest>(
            json!({ "refund_id": "r", "order_id": "o", "amount": amount }),
        )
        .unwrap()
        .judge()
    };
    for bad in [json!("1_0"), json!("0"), json!(5), json!("-1")] {
        let e = refund(bad.clone()).expect_err("refused");
        assert_eq!(e.problem().code, "invalid_amount", "{bad}");
    }
    let a = refund(json!("10.0")).unwrap().body_hash().unwrap();
    assert_eq!(a, refund(json!("10.00")).unwrap().body_hash().unwrap());
}

#[test]
fn a_refusal_says_why_in_words_beside_its_code() {
    let body = json!({ "order_id": "o-1", "user_id": USER, "amount": "0.00" });
    let problem = purchase(body).expect_err("refused").problem();
    assert_eq!(problem.code, "invalid_amount");
    assert_eq!(problem.detail, "amount must be greater than zero");
}
