//! Messages as a shop publishing straight to the stream sends them.
use schemas::messages::PurchaseMessage;
use schemas::{Money, OrderId, ShopId, UserId};

/// A purchase of `shop`'s, with a fresh purchase id and a body hash of its own.
pub fn purchase(
    shop: ShopId,
    order: &str,
    user: UserId,
    amount: &str,
    profit: &str,
) -> PurchaseMessage {
    PurchaseMessage {
        purchase_id: uuid::Uuid::now_v7(),
        shop_id: shop,
        order_id: OrderId::parse(order).unwrap(),
        user_id: user,
        amount: Money::parse(amount).unwrap(),
        profit: Money::parse(profit).unwrap(),
        currency: "INR".into(),
        occurred_at: chrono::Utc::now(),
        body_hash: format!("{:064x}", uuid::Uuid::new_v4().as_u128()),
    }
}
