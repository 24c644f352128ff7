//! Purchases published straight to the PURCHASES stream, as shops may: groups of
//! `per_message` purchases per stored message, PubAcks pipelined, then until the
//! processor settled all. This is the processor's own capacity, without HTTP.
use super::load::{batch_steps, rate, settled_now, steps_since, within};
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
    pub batches: u64,
    pub batch_steps_ms: std::collections::BTreeMap<String, f64>,
}

pub struct Direct<'a> {
    pub config: &'a Config,
    pub shop: ShopId,
    pub users: &'a [UserId],
    /// Purchases to publish at most.
    pub purchases: usize,
    /// Stop publishing after this long, if set.
    pub duration: Option<Duration>,
    pub per_message: usize,
    pub in_flight: usize,
}

impl Direct<'_> {
    pub async fn run(&self) -> anyhow::Result<DirectResult> {
        let js = async_nats::jetstream::new(platform::nats::connect(&self.config.nats).await?);
        let subject = platform::nats::Subjects::new(&self.config.nats.prefix).purchase(&self.shop);
        let before = settled_now();
        let steps_before = batch_steps();
        let per = self.per_message.max(1);
        let started = Instant::now();
        let mut sends = futures::stream::iter(0..self.purchases.div_ceil(per))
            .take_while(within(started, self.duration))
            .map(|m| {
                let (js, subject) = (js.clone(), subject.clone());
                let group: Vec<serde_json::Value> = (m * per..((m + 1) * per).min(self.purchases))
                    .map(|i| self.message(i))
                    .collect();
                let n = group.len();
                async move {
                    let payload = serde_json::to_vec(&group)?;
                    platform::nats::publish_stored(&js, subject, None, payload).await?;
                    Ok::<_, anyhow::Error>(n)
                }
            })
            .buffer_unordered(self.in_flight.max(1));
        let mut purchases = 0;
        while let Some(r) = sends.next().await {
            purchases += r?;
        }
        let published = started.elapsed();
        let target = before + u64::try_from(purchases)?;
        let deadline = started + Duration::from_secs(600);
        while settled_now() < target {
            anyhow::ensure!(Instant::now() < deadline, "direct purchases did not settle");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (batches, batch_steps_ms) = steps_since(&steps_before);
        Ok(DirectResult {
            batches,
            batch_steps_ms,
            purchases,
            published_per_sec: rate(purchases, published),
            settled_per_sec: rate(purchases, started.elapsed()),
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
