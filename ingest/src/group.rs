//! The one mechanism behind the edge's group commits (order reservations, stream
//! stores): requests queue up; a task takes whatever is already waiting, up to a weight
//! bound, hands the group to `work` and answers each request with its own result. At
//! most `in_flight` groups are worked on at once, so under load a group grows to what
//! arrived meanwhile, and an idle request is a group of one.
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Each at least 1: built from the config, which `Config::validate` checked at load and
/// every role checks again at its start.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests waiting to join a group (beyond it, callers wait to enqueue).
    pub queue: usize,
    /// Weight of one group (what `weight` adds up: rows, purchases).
    pub max_group: usize,
    /// Groups being worked on at once.
    pub in_flight: usize,
}

type Pending<T, R> = (T, oneshot::Sender<R>);

pub struct Grouper<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
}

impl<T, R> Clone for Grouper<T, R> {
    fn clone(&self) -> Self {
        Grouper {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Grouper<T, R> {
    /// Starts the grouping task; it ends when every clone is dropped. `work` answers a
    /// group with one result per request, in order.
    pub fn start<W, Fut>(limits: Limits, weight: fn(&T) -> usize, work: W) -> Self
    where
        W: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(limits.queue);
        tokio::spawn(run(rx, limits, weight, work));
        Grouper { queue }
    }

    /// Joins the next group; `None` when the grouping task has stopped.
    pub async fn submit(&self, request: T) -> Option<R> {
        let (done, answer) = oneshot::channel();
        self.queue.send((request, done)).await.ok()?;
        answer.await.ok()
    }
}

async fn run<T, R, W, Fut>(
    mut rx: mpsc::Receiver<Pending<T, R>>,
    limits: Limits,
    weight: fn(&T) -> usize,
    work: W,
) where
    T: Send + 'static,
    R: Send + 'static,
    W: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<R>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.in_flight));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut size = weight(&first.0);
        let mut group = vec![first];
        // Everything already waiting joins this group, up to the bound.
        while size < limits.max_group {
            let Ok(next) = rx.try_recv() else { break };
            size += weight(&next.0);
            group.push(next);
        }
        let (requests, answers): (Vec<T>, Vec<oneshot::Sender<R>>) = group.into_iter().unzip();
        let worked = work(requests);
        tokio::spawn(async move {
            for (answer, result) in answers.into_iter().zip(worked.await) {
                let _ = answer.send(result);
            }
            drop(permit);
        });
    }
}
