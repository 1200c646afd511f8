//! Graceful shutdown. A [`Shutdown`] is a cloneable token: servers stop accepting when it
//! fires and drain in-flight calls; long-lived streams (status watches, progress) end on
//! it so that draining never waits on a watcher that would stay forever.

use std::future::Future;

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.0.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes when the shutdown starts.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.clone().cancelled_owned()
    }

    /// A token that fires with this one, and can also be fired alone.
    pub fn child(&self) -> Shutdown {
        Shutdown(self.0.child_token())
    }

    /// Fires this token on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are in
    /// place when this returns.
    pub fn trigger_on_signal(&self) {
        let this = self.clone();
        let signal = signal();
        tokio::spawn(async move {
            signal.await;
            tracing::info!("shutdown signal received");
            this.trigger();
        });
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this function is
/// called, not when the future is first polled: a signal that arrives in between is not
/// lost (nor does it kill the process). Call it inside a tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal as unix_signal};
        let int = unix_signal(SignalKind::interrupt());
        let term = unix_signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
    }
}
