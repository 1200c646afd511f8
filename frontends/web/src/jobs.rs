//! Long operations that outlive the request that started them: applying an update and
//! verifying every account's identity. The request starts the orchestrator's stream and
//! hands it to a task; the task publishes each step into a watch channel; pages read the
//! latest state and browsers follow it as server-sent events until the job ends.
//!
//! A board holds one job per key (the installation for updates, the account for « tout
//! vérifier »), keeps the last one after it ends so that a page loaded later shows its
//! outcome, and refuses a second start while one runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::response::sse::Event;
use futures::Stream;
use iea_runtime::shutdown::Shutdown;
use serde::Serialize;
use tokio::sync::watch;

/// A job's state as it is published.
pub trait JobState: Clone + Serialize + Send + Sync + 'static {
    /// Nothing started yet under this key.
    fn idle() -> Self;
    /// No further change will come.
    fn finished(&self) -> bool;
}

/// One job per key.
pub struct JobBoard<T> {
    jobs: Mutex<HashMap<String, watch::Sender<Arc<T>>>>,
}

impl<T: JobState> Default for JobBoard<T> {
    fn default() -> Self {
        Self {
            jobs: Mutex::new(HashMap::new()),
        }
    }
}

/// A second start while a job runs.
#[derive(Debug)]
pub struct AlreadyRunning;

impl<T: JobState> JobBoard<T> {
    /// The job's state now (`idle` when none ever started).
    pub fn current(&self, key: &str) -> Arc<T> {
        self.jobs
            .lock()
            .expect("job board")
            .get(key)
            .map(|s| s.borrow().clone())
            .unwrap_or_else(|| Arc::new(T::idle()))
    }

    /// Follows the job under `key` (`None` when none ever started).
    pub fn subscribe(&self, key: &str) -> Option<watch::Receiver<Arc<T>>> {
        self.jobs
            .lock()
            .expect("job board")
            .get(key)
            .map(|s| s.subscribe())
    }

    /// Starts a job with `initial` unless one runs under `key`; the sender to publish its
    /// steps.
    pub fn start(&self, key: &str, initial: T) -> Result<watch::Sender<Arc<T>>, AlreadyRunning> {
        let mut jobs = self.jobs.lock().expect("job board");
        if let Some(s) = jobs.get(key)
            && !s.borrow().finished()
        {
            return Err(AlreadyRunning);
        }
        let (tx, _) = watch::channel(Arc::new(initial));
        jobs.insert(key.to_owned(), tx.clone());
        Ok(tx)
    }
}

/// Server-sent events named `event`: the state now, then each change, until the job
/// finishes (its last state is sent) or the console stops. With no job, the idle state
/// alone.
pub fn events<T: JobState>(
    rx: Option<watch::Receiver<Arc<T>>>,
    event: &'static str,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    enum Step<T> {
        First(Option<watch::Receiver<Arc<T>>>),
        Next(watch::Receiver<Arc<T>>),
        End,
    }
    let to_event = move |s: &T| {
        Ok(Event::default()
            .event(event)
            .data(serde_json::to_string(s).unwrap_or_default()))
    };
    let stream = futures::stream::unfold(Step::First(rx), move |step| async move {
        match step {
            Step::First(None) => Some((to_event(&T::idle()), Step::End)),
            Step::First(Some(mut rx)) => {
                let s = rx.borrow_and_update().clone();
                let next = if s.finished() {
                    Step::End
                } else {
                    Step::Next(rx)
                };
                Some((to_event(&s), next))
            }
            Step::Next(mut rx) => {
                rx.changed().await.ok()?;
                let s = rx.borrow_and_update().clone();
                let next = if s.finished() {
                    Step::End
                } else {
                    Step::Next(rx)
                };
                Some((to_event(&s), next))
            }
            Step::End => None,
        }
    });
    let stop = async move { shutdown.wait().await };
    futures::StreamExt::take_until(stream, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[derive(Clone, Serialize, Debug, PartialEq)]
    struct Counter {
        n: u32,
        done: bool,
    }

    impl JobState for Counter {
        fn idle() -> Self {
            Counter { n: 0, done: true }
        }
        fn finished(&self) -> bool {
            self.done
        }
    }

    #[test]
    fn one_job_runs_at_a_time_per_key_and_its_end_is_kept() {
        let board = JobBoard::<Counter>::default();
        assert_eq!(*board.current("a"), Counter::idle());
        let tx = board.start("a", Counter { n: 1, done: false }).unwrap();
        assert!(board.start("a", Counter { n: 9, done: false }).is_err());
        assert!(board.start("b", Counter { n: 1, done: false }).is_ok());
        tx.send_replace(Arc::new(Counter { n: 2, done: true }));
        assert_eq!(*board.current("a"), Counter { n: 2, done: true });
        assert!(board.start("a", Counter { n: 3, done: false }).is_ok());
    }

    #[tokio::test]
    async fn events_follow_the_job_and_end_with_it() {
        let board = JobBoard::<Counter>::default();
        let idle: Vec<_> = events(board.subscribe("a"), "p", Shutdown::new())
            .collect()
            .await;
        assert_eq!(idle.len(), 1, "no job: the idle state alone");

        let tx = board.start("a", Counter { n: 1, done: false }).unwrap();
        let mut stream = Box::pin(events(board.subscribe("a"), "p", Shutdown::new()));
        assert!(stream.next().await.is_some(), "the state now");
        tx.send_replace(Arc::new(Counter { n: 2, done: true }));
        assert!(stream.next().await.is_some(), "the last state");
        assert!(stream.next().await.is_none(), "then the end");
    }
}
