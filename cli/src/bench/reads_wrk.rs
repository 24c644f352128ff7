//! Report reads from wrk (`--generator wrk`): the readers in a process of their own, written
//! in C, so the measurement is the server's and not also the bench's HTTP client sharing
//! the two cores, the runtime and the allocator with it (as `bench pipeline --generator
//! wrk` does for purchases). wrk runs for a time rather than a number of requests.
use super::pipeline::wrk::{parse, WrkSummary};
use super::reports::Latency;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// GETs with the admin's token from the environment (never on wrk's command line); `done`
/// prints the line `pipeline::wrk::parse` reads.
const SCRIPT: &str = r#"wrk.headers["Authorization"] = "Bearer " .. os.getenv("REFERRAL_BENCH_TOKEN")
done = function(summary, latency, requests)
  io.write(string.format("referral-wrk requests=%d not_2xx=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

/// The script's file: the system's temporary folder, one per bench process.
pub(super) fn script() -> anyhow::Result<PathBuf> {
    let path =
        std::env::temp_dir().join(format!("referral-bench-reads-{}.lua", std::process::id()));
    std::fs::write(&path, SCRIPT).context("writing wrk's script")?;
    Ok(path)
}

/// `readers` connections reading `url` for `seconds`; every answer must be a 2xx.
pub(super) async fn latency(
    script: &Path,
    token: &str,
    report: &'static str,
    url: &str,
    (readers, seconds): (usize, u64),
) -> anyhow::Result<Latency> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{readers}"),
            &format!("-d{}s", seconds.max(1)),
        ])
        .arg("-s")
        .arg(script)
        .arg(url)
        .env("REFERRAL_BENCH_TOKEN", token)
        .kill_on_drop(true)
        .output()
        .await
        .context("starting wrk (on Debian: apt-get install wrk)")?;
    anyhow::ensure!(out.status.success(), "wrk exited with {}", out.status);
    let WrkSummary {
        requests,
        not_2xx,
        p50_ms,
        p99_ms,
        max_ms,
    } = parse(&String::from_utf8_lossy(&out.stdout))?;
    anyhow::ensure!(not_2xx == 0, "{report}: {not_2xx} answers were not 2xx");
    Ok(Latency {
        report,
        requests: usize::try_from(requests)?,
        p50_ms,
        p99_ms,
        max_ms,
    })
}
