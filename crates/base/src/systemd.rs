//! systemd integration for `Type=notify` units: tell the service manager
//! when a daemon is ready or stopping, and answer its watchdog. Without
//! `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::time::Duration;

/// Sends one notification (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, ...).
/// Returns whether a service manager was there to receive it.
pub fn notify(state: &str) -> bool {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else { return false };
    send(&path, state).is_ok()
}

#[cfg(target_os = "linux")]
fn send(path: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    let addr = match path.strip_prefix('@') {
        // An abstract socket: its name starts with a NUL byte instead of '@'.
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send(_path: &str, _state: &str) -> std::io::Result<()> {
    Err(std::io::Error::other("sd_notify is only supported on Linux"))
}

/// Signals readiness and, when the unit sets `WatchdogSec=`, pings the
/// watchdog at half its interval for as long as the returned task runs.
pub fn ready() -> Option<tokio::task::JoinHandle<()>> {
    if !notify("READY=1") {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let every = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            notify("WATCHDOG=1");
        }
    }))
}

/// Tells the service manager that shutdown has begun.
pub fn stopping() {
    notify("STOPPING=1");
}

/// How every daemon's `main` starts serving: READY=1 now (and watchdog
/// pings while the returned task runs), and the daemon's shutdown future:
/// it resolves on SIGINT or SIGTERM, after telling the service manager
/// STOPPING=1. Call it from within the tokio runtime, once the daemon's
/// sockets are bound.
pub fn serving() -> (Option<tokio::task::JoinHandle<()>>, impl std::future::Future<Output = ()> + Send + 'static) {
    let signal = crate::signal::shutdown();
    let watchdog = ready();
    let shutdown = async move {
        signal.await;
        stopping();
    };
    (watchdog, shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_deliver_ready_to_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("berth-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        send(path.to_str().expect("utf-8 path"), "READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
