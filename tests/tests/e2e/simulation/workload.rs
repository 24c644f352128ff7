//! The simulation's workload: a pure function of the seed.
use super::ops::{message, Op};
use schemas::messages::PurchaseMessage;
use schemas::{Money, ShopId, UserId};
use serde_json::{json, Value};
use uuid::Uuid;

/// splitmix64: small, seedable, and all a workload generator needs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Http,
    Direct,
}

pub struct Order {
    pub id: String,
    pub buyer: usize,
    pub amount: i64,
    pub profit: i64,
    pub route: Route,
    /// (refund id, paise); they add up to at most the amount.
    pub refunds: Vec<(String, i64)>,
    pub conflict: bool,
    pub msg: Option<PurchaseMessage>,
    pub alt: Option<PurchaseMessage>,
    pub http_id: Option<Uuid>,
}

impl Order {
    pub fn request(&self, world: &World) -> Value {
        json!({ "order_id": self.id, "user_id": world.users[self.buyer],
                "amount": Money::from_paise(self.amount).to_string(),
                "profit": Money::from_paise(self.profit).to_string() })
    }
    pub fn message(&self) -> &PurchaseMessage {
        self.msg.as_ref().unwrap()
    }
    pub fn accepted(&self, active: &[bool]) -> bool {
        self.route == Route::Direct || active[self.buyer]
    }
}

pub struct World {
    pub shop: ShopId,
    pub parent: Vec<Option<usize>>,
    pub active: Vec<bool>,
    pub users: Vec<UserId>,
    pub orders: Vec<Order>,
    pub garbage: usize,
}

impl World {
    pub fn generate(rng: &mut Rng, shop: ShopId) -> World {
        let n = rng.range(10, 18) as usize;
        let mut parent: Vec<Option<usize>> = Vec::new();
        for i in 0..n {
            let open: Vec<usize> = (0..i)
                .filter(|&p| parent.iter().filter(|&&q| q == Some(p)).count() < 8)
                .collect();
            let p = (!open.is_empty() && !rng.chance(15))
                .then(|| open[rng.below(open.len() as u64) as usize]);
            parent.push(p);
        }
        let active: Vec<bool> = (0..n).map(|_| !rng.chance(20)).collect();
        let mut orders = Vec::new();
        for k in 0..rng.range(30, 40) {
            let amount = match rng.below(20) {
                0 => 100_000,
                1..=6 => rng.range(10_000, 99_999),
                _ => rng.range(100_001, 1_000_000),
            };
            let profit = if rng.chance(20) {
                amount
            } else {
                rng.range(0, amount)
            };
            let route = if rng.chance(50) {
                Route::Http
            } else {
                Route::Direct
            };
            let buyer = rng.below(n as u64) as usize;
            let mut refunds = Vec::new();
            if (route == Route::Direct || active[buyer]) && rng.chance(40) {
                let mut left = if rng.chance(40) {
                    amount
                } else {
                    rng.range(1, amount - 1)
                };
                for j in 0..rng.range(1, 3) {
                    let part = if left > 2 && rng.chance(60) {
                        rng.range(1, left / 2)
                    } else {
                        left
                    };
                    refunds.push((format!("o{k}-r{j}"), part));
                    left -= part;
                    if left == 0 {
                        break;
                    }
                }
            }
            let conflict = refunds.is_empty() && rng.chance(15);
            let id = format!("o{k}");
            orders.push(Order {
                id,
                buyer,
                amount,
                profit,
                route,
                refunds,
                conflict,
                msg: None,
                alt: None,
                http_id: None,
            });
        }
        World {
            shop,
            parent,
            active,
            users: Vec::new(),
            orders,
            garbage: rng.range(1, 3) as usize,
        }
    }

    /// Direct orders' messages, once the users exist.
    pub fn fill_messages(&mut self, rng: &mut Rng) {
        for o in self.orders.iter_mut().filter(|o| o.route == Route::Direct) {
            let mut hash = || {
                (0..4)
                    .map(|_| format!("{:016x}", rng.next()))
                    .collect::<String>()
            };
            o.msg = Some(message(o, self.shop, self.users[o.buyer], hash()));
            if o.conflict {
                let mut alt = message(o, self.shop, self.users[o.buyer], hash());
                alt.amount = Money::from_paise(o.amount + 1);
                o.alt = Some(alt);
            }
        }
    }

    /// Every step in natural order, then shuffled by random adjacent swaps; the steps of
    /// one HTTP order keep their order (a shop cannot refund an order it has not sent).
    pub fn shuffled_ops(&self, rng: &mut Rng) -> Vec<Op> {
        let mut ops = Vec::new();
        for (k, o) in self.orders.iter().enumerate() {
            ops.push(Op::Purchase(k));
            // (Not for conflicting orders: a copy of the losing body would be a second loser.)
            if !o.conflict && rng.chance(25) {
                ops.push(Op::PurchaseAgain(k));
            }
            if o.conflict {
                ops.push(Op::Conflict(k));
            }
            for j in 0..o.refunds.len() {
                ops.push(Op::Refund(k, j));
                if rng.chance(20) {
                    ops.push(Op::RefundAgain(k, j));
                }
            }
        }
        for n in 0..self.garbage {
            ops.insert(rng.below(ops.len() as u64) as usize, Op::Garbage(n));
        }
        let order_of = |op: &Op| match *op {
            Op::Purchase(k) | Op::PurchaseAgain(k) | Op::Conflict(k) => Some(k),
            Op::Refund(k, _) | Op::RefundAgain(k, _) => Some(k),
            Op::Garbage(_) => None,
        };
        for _ in 0..ops.len() * 4 {
            let i = rng.below(ops.len() as u64 - 1) as usize;
            let (a, b) = (order_of(&ops[i]), order_of(&ops[i + 1]));
            let same_http = a.is_some() && a == b && self.orders[a.unwrap()].route == Route::Http;
            if !same_http {
                ops.swap(i, i + 1);
            }
        }
        ops
    }

    pub fn accepted_orders(&self) -> i64 {
        self.orders
            .iter()
            .filter(|o| o.accepted(&self.active))
            .count() as i64
    }

    pub fn accepted_refunds(&self) -> i64 {
        let of = |o: &Order| {
            if o.accepted(&self.active) {
                o.refunds.len()
            } else {
                0
            }
        };
        self.orders.iter().map(of).sum::<usize>() as i64
    }
}
