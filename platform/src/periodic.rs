//! Reading something again every so often for as long as its owner lives: the edge's view
//! of the purchase stream, a process's token revocations. A failed read changes nothing
//! (what was read last stays in force); it is said once when reads start failing and once
//! when they work again, not at every tick.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Calls `read` with the owner now and every `every`, on `runtime`, until the last `Arc`
/// of the owner is gone.
pub fn follow<T, F, Fut>(
    runtime: &tokio::runtime::Handle,
    owner: &Arc<T>,
    every: Duration,
    what: &'static str,
    read: F,
) where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let owner = Arc::downgrade(owner);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(owner) = owner.upgrade() else { return };
            match read(owner).await {
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, what, "cannot be read; what was read last stays in force until it can");
                }
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(what, "read again");
                }
                _ => {}
            }
        }
    });
}
