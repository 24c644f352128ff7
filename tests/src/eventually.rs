//! Waiting for a condition in a test, bounded: a poll, never a sleep standing in for one.
use std::future::Future;
use std::time::Duration;

/// How long `eventually` waits for a condition before failing the test.
pub const EVENTUALLY: Duration = Duration::from_secs(20);

/// Polls `probe` until `done` holds or `EVENTUALLY` passes; returns the last value.
pub async fn eventually<T, F, Fut>(mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
    T: std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let value = probe().await;
        if done(&value) {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition not met within {EVENTUALLY:?}; last value: {value:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
