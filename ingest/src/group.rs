//! The one mechanism behind the edge's group commits (order reservations, stream
//! stores): requests queue up; a task takes whatever is already waiting, up to a weight
//! bound, hands the group to `work` and answers each request with its own result. At
//! most `in_flight` groups are worked on at once, so under load a group grows to what
//! arrived meanwhile, and an idle request is a group of one.
use prometheus::IntGauge;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

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

/// A group's place among the `in_flight` ones. The group holds it until its work ends,
/// unless the work gives it up sooner (`release`): once the part that must not overlap
/// with the next group is done, the next group may start while this one finishes.
pub struct Place(Option<OwnedSemaphorePermit>);

impl Place {
    pub fn release(&mut self) {
        self.0 = None;
    }
}

pub struct Grouper<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
    /// Requests submitted and not yet taken into a group.
    waiting: IntGauge,
}

impl<T, R> Clone for Grouper<T, R> {
    fn clone(&self) -> Self {
        Grouper {
            queue: self.queue.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Grouper<T, R> {
    /// Starts the grouping task; it ends when every clone is dropped. `work` answers a
    /// group with one result per request, in order. `waiting` counts the requests not yet
    /// in a group.
    pub fn start<W, Fut>(
        limits: Limits,
        weight: fn(&T) -> usize,
        waiting: IntGauge,
        work: W,
    ) -> Self
    where
        W: Fn(Vec<T>, Place) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(limits.queue);
        tokio::spawn(run(rx, limits, weight, waiting.clone(), work));
        Grouper { queue, waiting }
    }

    /// Joins the next group; `None` when the grouping task has stopped.
    pub async fn submit(&self, request: T) -> Option<R> {
        let (done, answer) = oneshot::channel();
        let counted = Counted::new(&self.waiting);
        self.queue.send((request, done)).await.ok()?;
        // In the queue: the grouping task takes it off the count with its group.
        counted.handed_over();
        answer.await.ok()
    }
}

/// One request on the `waiting` gauge until it is in the queue: a request dropped while it
/// waits to enqueue (its deadline passed) or refused (the task stopped) counts off again.
struct Counted<'a>(Option<&'a IntGauge>);

impl<'a> Counted<'a> {
    fn new(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Counted(Some(gauge))
    }

    fn handed_over(mut self) {
        self.0 = None;
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if let Some(gauge) = self.0 {
            gauge.dec();
        }
    }
}

async fn run<T, R, W, Fut>(
    mut rx: mpsc::Receiver<Pending<T, R>>,
    limits: Limits,
    weight: fn(&T) -> usize,
    waiting: IntGauge,
    work: W,
) where
    T: Send + 'static,
    R: Send + 'static,
    W: Fn(Vec<T>, Place) -> Fut,
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
        waiting.sub(i64::try_from(group.len()).unwrap_or(i64::MAX));
        let (requests, answers): (Vec<T>, Vec<oneshot::Sender<R>>) = group.into_iter().unzip();
        let worked = work(requests, Place(Some(permit)));
        tokio::spawn(async move {
            for (answer, result) in answers.into_iter().zip(worked.await) {
                let _ = answer.send(result);
            }
        });
    }
}
