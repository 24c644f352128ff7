//! Purchases, their orders' registry rows and their entries, generated in chunks and
//! copied in, with each beneficiary's running total and ledger position kept as the
//! processor keeps them.
use super::{copy, random_uuid, Tree, CHUNK_PURCHASES, SPAN_DAYS};
use chrono::{DateTime, Duration, Utc};
use processor::graph::Ancestor;
use processor::payout::decide;
use rand::{rngs::StdRng, Rng};
use rust_decimal::Decimal;
use schemas::{Money, Plan, UserId};
use sqlx::PgConnection;
use std::fmt::Write as _;
use uuid::Uuid;

/// One chunk's rows in COPY's text form.
#[derive(Default)]
struct Rows {
    purchases: String,
    registry: String,
    entries: String,
}

pub(super) struct Ledger<'a> {
    tree: &'a Tree,
    plan: &'a Plan,
    shop: Uuid,
    /// Per user: total after its newest entry, and how many entries it has.
    running: Vec<(Decimal, i64)>,
    target: usize,
    pub purchases: usize,
    pub entries: usize,
    start: DateTime<Utc>,
    step: Duration,
}

impl<'a> Ledger<'a> {
    pub fn new(tree: &'a Tree, plan: &'a Plan, target: usize) -> Self {
        // About `levels` entries a purchase: spread the expected purchases over the span.
        let expected = (target / plan.levels().max(1)).max(1) as i64;
        Ledger {
            tree,
            plan,
            shop: Uuid::now_v7(),
            running: vec![(Decimal::ZERO, 0); tree.ids.len()],
            target,
            purchases: 0,
            entries: 0,
            start: Utc::now() - Duration::days(SPAN_DAYS),
            step: Duration::microseconds(SPAN_DAYS * 86_400_000_000 / expected),
        }
    }

    pub async fn copy_chunk(
        &mut self,
        conn: &mut PgConnection,
        rng: &mut StdRng,
    ) -> anyhow::Result<()> {
        let mut rows = Rows::default();
        for _ in 0..CHUNK_PURCHASES {
            if self.entries >= self.target {
                break;
            }
            self.purchase(rng, &mut rows)?;
        }
        // Every settled order is registered, as the edge or the processor registers it.
        copy(
            conn,
            "COPY purchase_requests (purchase_id, shop_id, order_id, amount, occurred_at, body_hash) FROM STDIN",
            rows.registry,
        )
        .await?;
        let (purchases, entries) = (rows.purchases, rows.entries);
        copy(
            conn,
            "COPY purchases (id, shop_id, order_id, user_id, amount, profit, occurred_at, plan_version, status,
                             body_hash, ancestors, graph_seq, processed_at) FROM STDIN",
            purchases,
        )
        .await?;
        copy(
            conn,
            "COPY earnings (id, purchase_id, beneficiary_id, level, leg_user_id, source_user_id, base, rate, amount,
                            kind, refund_id, plan_version, balance_after, created_at, user_seq) FROM STDIN",
            entries,
        )
        .await
    }

    /// One purchase by a buyer drawn toward the top of the tree, its order's registry
    /// row, and its entries.
    fn purchase(&mut self, rng: &mut StdRng, rows: &mut Rows) -> anyhow::Result<()> {
        let Rows {
            purchases,
            registry,
            entries,
        } = rows;
        let n = self.tree.ids.len();
        let buyer = 1 + (((n - 1) as f64) * rng.gen::<f64>().powi(3)) as usize;
        let buyer = buyer.min(n - 1);
        let paise: i64 = rng.gen_range(100_000..500_000);
        let amount = Money::from_decimal(Decimal::new(paise, 2))?;
        let profit = Money::from_decimal(Decimal::new(paise / 4, 2))?;
        let found = self.tree.ancestors(buyer, self.plan.levels());
        let ancestors: Vec<Ancestor> = found.iter().map(|(_, a)| *a).collect();
        let buyer_id = UserId(self.tree.ids[buyer]);
        // Every seeded buyer is active.
        let decision = decide(self.plan, buyer_id, true, amount, profit, &ancestors);
        let (status, shares) = (decision.status, decision.shares);
        let (id, t) = (
            random_uuid(rng),
            super::at(self.start + self.step * self.purchases as i32),
        );
        self.purchases += 1;
        writeln!(
            purchases,
            "{id}\t{}\ts-{}\t{buyer_id}\t{amount}\t{profit}\t{t}\t{}\t{status}\tseed\t{}\t{n}\t{t}",
            self.shop,
            self.purchases,
            self.plan.version(),
            // COPY's text form of bytea: `\\x` and the hex.
            format_args!("\\\\x{}", hex::encode(Ancestor::encode_all(&ancestors)))
        )?;
        writeln!(
            registry,
            "{id}\t{}\ts-{}\t{amount}\t{t}\t\\\\x{}",
            self.shop,
            self.purchases,
            id.simple()
        )?;
        for s in shares {
            let Some((who, _)) = found.iter().find(|(_, a)| a.user_id == s.beneficiary) else {
                anyhow::bail!("a share for someone who is not an ancestor");
            };
            let slot = &mut self.running[*who];
            slot.0 += s.amount.as_decimal();
            slot.1 += 1;
            writeln!(
                entries,
                "{}\t{id}\t{}\t{}\t{}\t{buyer_id}\t{}\t{}\t{}\tearning\t\t{}\t{}\t{t}\t{}",
                random_uuid(rng),
                s.beneficiary,
                s.level,
                s.leg,
                s.base,
                s.rate.as_decimal(),
                s.amount,
                self.plan.version(),
                slot.0,
                slot.1
            )?;
            self.entries += 1;
        }
        Ok(())
    }
}
