//! The stop signal a daemon fans out to every task: cheap to clone,
//! resolves once, and can be asked without waiting. The daemon's `main`
//! fires the [`Trigger`] when [`crate::signal::shutdown`] resolves.

use tokio::sync::watch;

/// Fires the [`Stop`] signal.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// A clone per task; [`Stop::wait`] resolves when the daemon stops.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// A new signal, not fired.
pub fn channel() -> (Trigger, Stop) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Stop(rx))
}

impl Trigger {
    /// Fires the signal; every waiter wakes.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    /// Another receiver of this signal.
    pub fn subscribe(&self) -> Stop {
        Stop(self.0.subscribe())
    }
}

impl Stop {
    /// Resolves when the signal fires (at once if it has; also if the
    /// trigger was dropped, which means the same).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Resolves when the signal fires, keeping this receiver (for `select!`
    /// loops that wait on it again and again).
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Whether the signal has fired.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}
