//! The shutdown signal of every daemon: resolves on SIGINT or SIGTERM.

use std::future::Future;

/// Resolves when the process is asked to stop (SIGINT or SIGTERM). The
/// handlers are installed when this is called, not when the future is first
/// polled, so a SIGTERM that arrives right after a daemon reports READY=1
/// still means a clean shutdown rather than the default of dying at once.
/// Call it from within the tokio runtime.
pub fn shutdown() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Some((term, int)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT; only Ctrl-C stops this process");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        match handlers {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}
