//! What `bench pipeline` reports, and how it prints it as a table.
use super::direct::DirectResult;
use super::load::LoadResult;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) purchases: usize,
    pub(super) duration_secs: Option<u64>,
    pub(super) users: usize,
    pub(super) connections: usize,
    pub(super) nats_url: String,
    pub(super) raw_publish_per_sec: Option<f64>,
    pub(super) naive_per_sec: Option<f64>,
    pub(super) single: Option<LoadResult>,
    pub(super) batch: Option<LoadResult>,
    pub(super) direct: Option<DirectResult>,
    pub(super) verify_differences: usize,
}

pub(super) fn print_table(r: &Report) {
    println!(
        "referral bench pipeline: {} purchases{}, {} users, {} connections, NATS at {}",
        r.purchases,
        r.duration_secs
            .map(|s| format!(" or {s} s a load"))
            .unwrap_or_default(),
        r.users,
        r.connections,
        r.nats_url
    );
    println!(
        "  {:<44} {:>9}   {:>6}   {:>6}",
        "", "per sec", "vs raw", "vs naive"
    );
    let ratio =
        |v: f64, of: Option<f64>| of.map_or("-".to_owned(), |b| format!("{:.2}", v / b.max(1e-9)));
    let row = |name: &str, v: f64| {
        let (raw, naive) = (r.raw_publish_per_sec, r.naive_per_sec);
        println!(
            "  {name:<44} {v:>9.0}   {:>6}   {:>6}",
            ratio(v, raw),
            ratio(v, naive)
        )
    };
    if let Some(v) = r.raw_publish_per_sec {
        row("baseline: raw JetStream publish + PubAck", v);
    }
    if let Some(v) = r.naive_per_sec {
        row("baseline: naive, one Postgres tx a purchase", v);
    }
    for (name, l) in [("single", &r.single), ("batch", &r.batch)] {
        let Some(l) = l else { continue };
        row(&format!("{name}: accepted (202)"), l.accepted_per_sec);
        row(&format!("{name}: settled end to end"), l.settled_per_sec);
        println!(
            "  {name}: HTTP p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (of which reserve {:.1} ms, store {:.1} ms on average)",
            l.http_p50_ms, l.http_p99_ms, l.http_max_ms, l.reserve_mean_ms, l.store_mean_ms,
        );
        println!(
            "  {name}: backlog (s, accepted, settled): {}",
            backlog_line(&l.backlog)
        );
        println!(
            "  {name}: {} batches; ms per batch: {}",
            l.batches,
            steps_line(&l.batch_steps_ms)
        );
    }
    if let Some(d) = &r.direct {
        row("direct: published to the stream", d.published_per_sec);
        row("direct: settled end to end", d.settled_per_sec);
        println!(
            "  direct: {} batches; ms per batch: {}",
            d.batches,
            steps_line(&d.batch_steps_ms)
        );
    }
}

/// The steps of a batch, largest first.
fn steps_line(steps: &std::collections::BTreeMap<String, f64>) -> String {
    let mut steps: Vec<(&String, &f64)> = steps.iter().collect();
    steps.sort_by(|a, b| b.1.total_cmp(a.1));
    steps
        .iter()
        .map(|(name, ms)| format!("{name} {ms:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// About eight samples across the run, enough to see whether the backlog grows.
fn backlog_line(samples: &[(f64, usize, i64)]) -> String {
    let step = (samples.len() / 8).max(1);
    samples
        .iter()
        .step_by(step)
        .chain(samples.last())
        .map(|(t, a, s)| format!("({t:.1}, {a}, {s})"))
        .collect::<Vec<_>>()
        .join(" ")
}
