//! The workload's steps and how the simulation performs each: through ingest (retried
//! across crashes) or straight onto the stream.
use super::workload::{Order, Route, World};
use super::Sim;
use reqwest::StatusCode;
use schemas::messages::{PurchaseMessage, RefundMessage};
use schemas::{Money, OrderId, RefundId, UserId};
use serde_json::json;

/// One step of the workload.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Purchase(usize),
    /// An HTTP retry, or the same bytes on the stream under a fresh msg-id.
    PurchaseAgain(usize),
    /// The same order id with another body.
    Conflict(usize),
    Refund(usize, usize),
    RefundAgain(usize, usize),
    Garbage(usize),
}

impl Sim {
    pub(super) async fn perform(&mut self, world: &mut World, op: &Op) {
        let shop = self.app.shop_id;
        match *op {
            Op::Purchase(k) | Op::PurchaseAgain(k) => {
                let o = &world.orders[k];
                match o.route {
                    Route::Http => {
                        let (status, body) = self.send("/v1/purchases", &o.request(world)).await;
                        let o = &mut world.orders[k];
                        if world.active[o.buyer] {
                            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
                            let id = body["purchase_id"].as_str().unwrap().parse().unwrap();
                            assert!(o.http_id.is_none_or(|first| first == id));
                            o.http_id = Some(id);
                        } else {
                            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                            assert_eq!(body["code"], "user_inactive");
                        }
                    }
                    Route::Direct => {
                        let bytes = serde_json::to_vec(o.message()).unwrap();
                        let id = match op {
                            Op::Purchase(_) => format!("{shop}:{}", o.id),
                            _ => format!("again:{}:{}", o.id, uuid::Uuid::new_v4()),
                        };
                        self.app.publish_raw("purchases", &id, bytes).await;
                    }
                }
            }
            Op::Conflict(k) => {
                let o = &world.orders[k];
                match o.route {
                    Route::Http => {
                        let mut body = o.request(world);
                        body["amount"] = json!(Money::from_paise(o.amount + 1).to_string());
                        let (status, problem) = self.send("/v1/purchases", &body).await;
                        if world.active[o.buyer] {
                            assert_eq!(status, StatusCode::CONFLICT, "{problem}");
                            assert_eq!(problem["code"], "order_conflict");
                        }
                    }
                    Route::Direct => {
                        let alt = o.alt.as_ref().unwrap();
                        let id = format!("conflict:{}", o.id);
                        self.app
                            .publish_raw("purchases", &id, serde_json::to_vec(alt).unwrap())
                            .await;
                    }
                }
            }
            Op::Refund(k, j) | Op::RefundAgain(k, j) => {
                let o = &world.orders[k];
                let (refund_id, paise) = o.refunds[j].clone();
                match o.route {
                    Route::Http => {
                        let body = json!({ "refund_id": refund_id, "order_id": o.id,
                                           "amount": Money::from_paise(paise).to_string() });
                        let (status, problem) = self.send("/v1/refunds", &body).await;
                        assert_eq!(status, StatusCode::ACCEPTED, "{problem}");
                    }
                    Route::Direct => {
                        let message = RefundMessage {
                            shop_id: shop,
                            refund_id: RefundId::parse(&refund_id).unwrap(),
                            order_id: OrderId::parse(&o.id).unwrap(),
                            amount: Money::from_paise(paise),
                            received_at: o.message().occurred_at,
                        };
                        let id = match op {
                            Op::Refund(..) => format!("{shop}:refund:{refund_id}"),
                            _ => format!("again:{refund_id}:{}", uuid::Uuid::new_v4()),
                        };
                        let bytes = serde_json::to_vec(&message).unwrap();
                        self.app.publish_raw("refunds", &id, bytes).await;
                    }
                }
            }
            Op::Garbage(n) => {
                let junk = [
                    &b"{\"order_id\": "[..],
                    b"not json",
                    b"{\"purchase_id\": 7}",
                ];
                let bytes = junk[n % junk.len()].to_vec();
                self.app
                    .publish_raw("purchases", &format!("garbage:{n}"), bytes)
                    .await;
            }
        }
    }
}

/// What a direct purchase message looks like (ingest's shape, a made-up body hash).
pub fn message(o: &Order, shop: schemas::ShopId, user: UserId, hash: String) -> PurchaseMessage {
    PurchaseMessage {
        purchase_id: uuid::Uuid::now_v7(),
        shop_id: shop,
        order_id: OrderId::parse(&o.id).unwrap(),
        user_id: user,
        amount: Money::from_paise(o.amount),
        profit: Money::from_paise(o.profit),
        currency: "INR".into(),
        occurred_at: chrono::Utc::now(),
        body_hash: hash,
    }
}
