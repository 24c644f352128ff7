//! A seeded simulation of the real processor under crashes, duplicates and reordering.
//!
//! Each seed builds a random referral forest, deactivates some users, then sends purchases
//! and partial refunds through ingest and straight to the stream, in a shuffled order:
//! refunds before their purchases, the same message again under a fresh msg-id, retried
//! requests, conflicting bodies, garbage. Meanwhile the processor crashes after every few
//! commits (the chaos knob `processor.crash_after_commit_every`: after the Postgres commit,
//! alternately before publishing and before acking) and is restarted; half the seeds run a
//! second processor on the same durable consumer, crashing and restarting too. Then it
//! checks what users would: every accepted purchase settled exactly once, every entry what
//! an independent model says, balances equal to their entries, every entry published
//! exactly once, the dead letters exactly the refused messages, verify clean.
//!
//! The workload is a pure function of the seed (crash points depend on timing). A failure
//! names its seed; rerun just that one with `SIM_SEED=<seed>`.
use e2e::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod model;
mod ops;
mod workload;
use workload::{Rng, World};

/// Seeds run on every test run (each in its own app, concurrently), plus one from the clock.
const FIXED_SEEDS: [u64; 2] = [1, 20_240_917];
/// How long one seed may take to settle after its traffic, crashes included.
const SETTLE: Duration = Duration::from_secs(45);
/// After this long settling, restarts come up without the chaos knob, so crashes that keep
/// landing on the same redelivered messages cannot stall the run.
const CALM_AFTER: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_survives_crashes_duplicates_and_reordering() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a u64")],
        Err(_) => {
            let clock = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(7) as u64;
            FIXED_SEEDS
                .into_iter()
                .chain([clock % 1_000_000_007])
                .collect()
        }
    };
    let runs: Vec<_> = seeds
        .iter()
        .map(|&seed| (seed, tokio::spawn(run_seed(seed))))
        .collect();
    for (seed, run) in runs {
        match run.await {
            Ok(crashes) => eprintln!("simulation seed {seed}: passed with {crashes} crashes"),
            Err(e) => {
                let why = e.try_into_panic().map_or_else(
                    |e| e.to_string(),
                    |p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    },
                );
                panic!("simulation seed {seed} failed (rerun with SIM_SEED={seed}): {why}");
            }
        }
    }
}

/// Drives one seed to the end and checks it; returns how many crashes it survived.
async fn run_seed(seed: u64) -> u32 {
    eprintln!("simulation seed {seed} (SIM_SEED={seed} reruns it)");
    let mut rng = Rng(seed);
    let crash_every = 2 + rng.below(2) as u32;
    let two_processors = rng.chance(50);
    let app = TestApp::spawn_with(|c| {
        c.processor.crash_after_commit_every = Some(crash_every);
        c.processor.ack_wait_secs = 1;
        c.processor.batch_max_messages = 4;
        c.processor.batch_max_wait_ms = 20;
    })
    .await;
    let client = async_nats::connect(&app.config.nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let second = two_processors.then(|| Second::spawn(&app.config));
    let mut sim = Sim {
        app,
        js,
        second,
        crashes: 0,
    };
    let mut world = World::generate(&mut rng, sim.app.shop_id);
    // The forest and statuses exist before any purchase, so the model's view is the
    // processor's at every batch.
    for i in 0..world.parent.len() {
        let referrer = world.parent[i].map(|p| world.users[p]);
        let user = sim.app.signup(referrer).await;
        world.users.push(user);
    }
    world.fill_messages(&mut rng);
    for (i, &active) in world.active.iter().enumerate() {
        if !active {
            let path = format!("/v1/admin/users/{}/deactivate", world.users[i]);
            let r = sim
                .app
                .post(&path, &sim.app.admin.clone(), &json!({}))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    let ops = world.shuffled_ops(&mut rng);
    for op in &ops {
        sim.perform(&mut world, op).await;
    }
    sim.settle(&world).await;
    if let Some(second) = sim.second.take() {
        second.stop.cancel();
        let _ = second.task.await.unwrap();
    }
    model::check(&sim.app, &sim.js, &mut world).await;
    assert!(sim.crashes > 0, "the chaos knob never fired");
    sim.crashes
}

/// A second processor instance on the same durable consumer (README "Scaling out").
struct Second {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Second {
    fn spawn(config: &platform::Config) -> Second {
        let stop = CancellationToken::new();
        let task = tokio::spawn(processor::run(config.clone(), stop.clone()));
        Second { stop, task }
    }
}

struct Sim {
    app: TestApp,
    second: Option<Second>,
    js: model::Js,
    crashes: u32,
}

impl Sim {
    /// Sends until the app answers; a crash meanwhile restarts it (ingest is idempotent, so
    /// a request whose answer was lost is simply sent again).
    async fn send(&mut self, path: &str, body: &Value) -> (StatusCode, Value) {
        loop {
            self.ensure_up().await;
            let url = format!("{}{path}", self.app.base);
            let sent = self
                .app
                .http
                .post(url)
                .bearer_auth(&self.app.shop_key)
                .json(body)
                .send()
                .await;
            if let Ok(r) = sent {
                let status = r.status();
                if let Ok(v) = r.json::<Value>().await {
                    if !status.is_server_error() || self.app.is_running() {
                        return (status, v);
                    }
                }
            }
            // The only way a local request fails is the app going down after a crash.
            e2e::eventually(|| async { self.app.is_running() }, |up| !up).await;
        }
    }

    /// Restarts the app (or the second processor) after a crash, checking it was the
    /// chaos knob and not a real failure.
    async fn ensure_up(&mut self) {
        if let Some(second) = self.second.take_if(|s| s.task.is_finished()) {
            chaos_only(second.task.await.unwrap());
            self.second = Some(Second::spawn(&self.app.config));
            self.crashes += 1;
        }
        if !self.app.is_running() {
            chaos_only(self.app.restart().await);
            self.crashes += 1;
        }
    }

    /// Waits, restarting after crashes, until every accepted purchase and refund is
    /// settled and the processor has acked everything (so everything was published).
    async fn settle(&mut self, world: &World) {
        let started = tokio::time::Instant::now();
        let deadline = started + SETTLE;
        loop {
            if started.elapsed() > CALM_AFTER {
                self.app.config.processor.crash_after_commit_every = None;
            }
            self.ensure_up().await;
            let (purchases, refunds, backlog) = model::progress(&self.app, &self.js).await;
            let want = (world.accepted_orders(), world.accepted_refunds(), 0);
            if (purchases, refunds, backlog) == want {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let letters: Vec<(String, String)> =
                    sqlx::query_as("SELECT reason, detail FROM dead_letters ORDER BY id")
                        .fetch_all(&self.app.pool)
                        .await
                        .unwrap();
                panic!(
                    "not settled within {SETTLE:?}: (purchases, refunds, backlog) = {:?}, \
                     want {want:?}; {} crashes; dead letters {letters:?}",
                    (purchases, refunds, backlog),
                    self.crashes
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn chaos_only(ended: anyhow::Result<()>) {
    let why = format!("{:#}", ended.expect_err("a role stopped without an error"));
    assert!(
        why.contains("chaos:"),
        "a processor stopped for a real reason: {why}"
    );
}
