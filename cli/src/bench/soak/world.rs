//! The soak's model of what it has done: users, accepted orders with what remains
//! refundable, and how each kind of request was answered. Operations are drawn from a
//! seeded generator under the lock, then sent without it.
use rand::rngs::StdRng;
use rand::Rng;
use schemas::UserId;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

/// One request to send: its kind (for the counts), method, path and body.
pub struct Op {
    pub kind: &'static str,
    pub method: reqwest::Method,
    pub path: String,
    pub admin: bool,
    pub body: Option<Value>,
    /// Orders this request may store, with their amount in paise.
    pub orders: Vec<(String, i64)>,
}

/// How one kind of request was answered.
#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct Answers {
    pub ok: u64,
    /// 404, 409, 413, 422: refused as the rules say (a full referrer, a cycle, …).
    pub refused: u64,
    /// 503: nothing stored, retry later (expected while the database is cut off).
    pub unavailable: u64,
    /// Anything else (a 500, a 400 to a well-formed request): a bug.
    pub unexpected: u64,
}

/// Orders refunds are drawn from: the most recent accepted ones, so the model's memory
/// stays flat however long the soak runs (the soak measures the server's memory).
const REFUNDABLE: usize = 20_000;

pub struct World {
    rng: StdRng,
    pub users: Vec<UserId>,
    /// Every accepted order, by its number (`soak-<n>`): one bit each.
    accepted: Vec<u64>,
    accepted_count: usize,
    /// Recent accepted orders: number, amount and what was asked back so far, in paise.
    refundable: VecDeque<(u64, i64, i64)>,
    /// Bodies of recent accepted single purchases, to send again as a shop's retry.
    recent: Vec<Value>,
    next_order: u64,
    next_refund: u64,
    pub answers: BTreeMap<&'static str, Answers>,
}

impl World {
    pub fn new(rng: StdRng, users: Vec<UserId>) -> World {
        World {
            rng,
            users,
            accepted: Vec::new(),
            accepted_count: 0,
            refundable: VecDeque::new(),
            recent: Vec::new(),
            next_order: 0,
            next_refund: 0,
            answers: BTreeMap::new(),
        }
    }

    fn user(&mut self) -> UserId {
        self.users[self.rng.gen_range(0..self.users.len())]
    }

    fn purchase(&mut self) -> (Value, (String, i64)) {
        self.next_order += 1;
        let order = order_id(self.next_order);
        // ₹500 to ₹5,000: some under the ₹1,000 threshold; profit 10–30 %.
        let paise: i64 = self.rng.gen_range(50_000..500_000);
        let profit = paise * self.rng.gen_range(10..=30) / 100;
        let body = json!({ "order_id": order, "user_id": self.user(),
                           "amount": rupees(paise), "profit": rupees(profit) });
        (body, (order, paise))
    }

    /// The next request, by weight: mostly purchases, then refunds, signups and admin changes.
    pub fn next_op(&mut self) -> Op {
        let post = reqwest::Method::POST;
        match self.rng.gen_range(0..100) {
            0..=44 => {
                let (items, orders): (Vec<_>, Vec<_>) = (0..20).map(|_| self.purchase()).unzip();
                let body = json!({ "purchases": items });
                Op {
                    orders,
                    ..op("batch", post, "/v1/purchases/batch", Some(body))
                }
            }
            45..=59 => {
                let (body, order) = self.purchase();
                Op {
                    orders: vec![order],
                    ..op("purchase", post, "/v1/purchases", Some(body))
                }
            }
            60..=64 if !self.recent.is_empty() => {
                let body = self.recent[self.rng.gen_range(0..self.recent.len())].clone();
                op("retry", post, "/v1/purchases", Some(body))
            }
            65..=74 if !self.refundable.is_empty() => self.refund(),
            75..=84 => {
                let body = json!({ "referrer_id": self.user() });
                op("signup", post, "/v1/users", Some(body))
            }
            85..=94 => {
                let verb = if self.rng.gen_bool(0.5) {
                    "deactivate"
                } else {
                    "reactivate"
                };
                let path = format!("/v1/admin/users/{}/{verb}", self.user());
                Op {
                    admin: true,
                    ..op("status", post, &path, None)
                }
            }
            _ => {
                let referrer = self.rng.gen_bool(0.9).then(|| self.user());
                let path = format!("/v1/admin/users/{}/referrer", self.user());
                let body = Some(json!({ "referrer_id": referrer }));
                Op {
                    admin: true,
                    ..op("move", reqwest::Method::PUT, &path, body)
                }
            }
        }
    }

    /// Part of what remains of an accepted order (sometimes all of it).
    fn refund(&mut self) -> Op {
        let at = self.rng.gen_range(0..self.refundable.len());
        let (number, amount, asked) = self.refundable[at];
        let order = order_id(number);
        let left = amount - asked;
        let part = if left <= 100 {
            left.max(1)
        } else {
            self.rng.gen_range(1..=left)
        };
        self.next_refund += 1;
        let body = json!({ "refund_id": format!("soak-r{}", self.next_refund),
                           "order_id": order, "amount": rupees(part) });
        Op {
            kind: "refund",
            method: reqwest::Method::POST,
            path: "/v1/refunds".into(),
            admin: false,
            body: Some(body),
            orders: vec![(order, part)],
        }
    }

    /// Records an answer; `stored` are the orders (or the refund) it stored.
    pub fn record(&mut self, op: &Op, status: u16, stored: &[String]) {
        let a = self.answers.entry(op.kind).or_default();
        match status {
            200..=299 => a.ok += 1,
            404 | 409 | 413 | 422 => a.refused += 1,
            503 => a.unavailable += 1,
            _ => a.unexpected += 1,
        }
        match op.kind {
            "refund" if (200..300).contains(&status) => {
                if let Some((order, part)) = op.orders.first() {
                    let number = order_number(order);
                    if let Some(entry) = self.refundable.iter_mut().find(|e| Some(e.0) == number) {
                        entry.2 += part;
                    }
                }
            }
            "signup" => {
                if let Some(user) = stored.first().and_then(|u| u.parse().ok()) {
                    self.users.push(user);
                }
            }
            "batch" | "purchase" => {
                for (order, amount) in op.orders.iter().filter(|(o, _)| stored.contains(o)) {
                    if let Some(number) = order_number(order) {
                        self.accept(number, *amount);
                    }
                }
                if op.kind == "purchase" && stored.len() == 1 && self.recent.len() < 1_000 {
                    self.recent.extend(op.body.clone());
                }
            }
            _ => {}
        }
    }
}

impl World {
    fn accept(&mut self, number: u64, amount: i64) {
        let (word, bit) = ((number / 64) as usize, number % 64);
        if self.accepted.len() <= word {
            self.accepted.resize(word + 1, 0);
        }
        if self.accepted[word] & (1 << bit) == 0 {
            self.accepted[word] |= 1 << bit;
            self.accepted_count += 1;
            if self.refundable.len() == REFUNDABLE {
                self.refundable.pop_front();
            }
            self.refundable.push_back((number, amount, 0));
        }
    }

    /// How many orders were accepted.
    pub fn accepted_count(&self) -> usize {
        self.accepted_count
    }

    /// Whether order `soak-<number>` was accepted.
    pub fn was_accepted(&self, number: u64) -> bool {
        let (word, bit) = ((number / 64) as usize, number % 64);
        self.accepted.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

fn order_id(number: u64) -> String {
    format!("soak-{number}")
}

/// The number of an order id this soak made (`soak-<n>`).
pub fn order_number(order: &str) -> Option<u64> {
    order.strip_prefix("soak-")?.parse().ok()
}

/// A shop's request storing no order.
fn op(kind: &'static str, method: reqwest::Method, path: &str, body: Option<Value>) -> Op {
    Op {
        kind,
        method,
        path: path.to_owned(),
        admin: false,
        body,
        orders: Vec::new(),
    }
}

fn rupees(paise: i64) -> String {
    format!("{}.{:02}", paise / 100, paise % 100)
}
