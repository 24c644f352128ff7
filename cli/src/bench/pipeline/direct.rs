//! Purchases published straight to the PURCHASES stream, as shops may: groups of
//! `per_message` purchases per stored message, PubAcks pipelined, then until the
//! processor settled all. This is the processor's own capacity, without HTTP.
use super::load::{rate, settled_count};
use futures::StreamExt;
use platform::Config;
use schemas::{ShopId, UserId};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct DirectResult {
    pub purchases: usize,
    pub published_per_sec: f64,
    pub settled_per_sec: f64,
}

pub struct Direct<'a> {
    pub config: &'a Config,
    pub shop: ShopId,
    pub users: &'a [UserId],
    pub purchases: usize,
    pub per_message: usize,
    pub in_flight: usize,
}

impl Direct<'_> {
    pub async fn run(&self, pool: &sqlx::PgPool) -> anyhow::Result<DirectResult> {
        let js = async_nats::jetstream::new(platform::nats::connect(&self.config.nats).await?);
        let subject = platform::nats::Subjects::new(&self.config.nats.prefix).purchase(&self.shop);
        let before = settled_count(pool).await?;
        let per = self.per_message.max(1);
        let started = Instant::now();
        let mut sends = futures::stream::iter((0..self.purchases.div_ceil(per)).map(|m| {
            let (js, subject) = (js.clone(), subject.clone());
            let group: Vec<serde_json::Value> = (m * per..((m + 1) * per).min(self.purchases))
                .map(|i| self.message(i))
                .collect();
            async move {
                let payload = serde_json::to_vec(&group)?;
                platform::nats::publish_stored(&js, subject, None, payload).await
            }
        }))
        .buffer_unordered(self.in_flight.max(1));
        while let Some(r) = sends.next().await {
            r?;
        }
        let published = started.elapsed();
        let target = before + i64::try_from(self.purchases)?;
        let deadline = started + Duration::from_secs(600);
        while settled_count(pool).await? < target {
            anyhow::ensure!(Instant::now() < deadline, "direct purchases did not settle");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(DirectResult {
            purchases: self.purchases,
            published_per_sec: rate(self.purchases, published),
            settled_per_sec: rate(self.purchases, started.elapsed()),
        })
    }

    fn message(&self, i: usize) -> serde_json::Value {
        serde_json::json!({
            "purchase_id": uuid::Uuid::now_v7(), "shop_id": self.shop,
            "order_id": format!("direct-{i}"), "user_id": self.users[1 + i % (self.users.len() - 1)],
            "amount": "1500.00", "profit": "300.00", "currency": schemas::CURRENCY,
            "occurred_at": chrono::Utc::now(), "body_hash": format!("direct-{i}"),
        })
    }
}
