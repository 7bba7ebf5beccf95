//! Sockets inside another process's network namespace (a pod's, through its
//! pause container's process): traffic that must come from a pod, as its
//! applications' would, sent by this program. A socket keeps the namespace
//! it was made in, so only the short-lived thread that makes it enters the
//! namespace; the rest of the program stays on the host's network.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;

/// Why a socket could not be made in the namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source} (is the process alive, and are we root?)")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("setns into {path}: {source} (entering a network namespace needs CAP_SYS_ADMIN)")]
    Enter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind a UDP socket to {addr} in the namespace: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("docker: {0}")]
    Docker(String),
    #[error("the thread that entered the namespace panicked")]
    Panicked,
}

/// A UDP socket bound to `bind` in the network namespace of process `pid`
/// (non-blocking, ready for `tokio::net::UdpSocket::from_std`).
pub fn udp_socket(pid: u32, bind: SocketAddr) -> Result<UdpSocket, Error> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let ns = File::open(&path).map_err(|source| Error::Open { path: path.clone(), source })?;
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(std::os::fd::AsFd::as_fd(&ns), Some(rustix::thread::LinkNameSpaceType::Network))
                .map_err(|e| Error::Enter { path: path.clone(), source: e.into() })?;
            let socket = UdpSocket::bind(bind).map_err(|source| Error::Bind { addr: bind, source })?;
            socket.set_nonblocking(true).map_err(|source| Error::Bind { addr: bind, source })?;
            Ok(socket)
        })
        .join()
    });
    made.unwrap_or(Err(Error::Panicked))
}

/// The host process id of the pause container of pod `namespace/name` on
/// `node` (the kubelet names it `berth_NODE_NS_POD_POD_…`), which owns the
/// pod's network namespace.
pub fn pod_sandbox_pid(node: &str, namespace: &str, name: &str) -> Result<u32, Error> {
    let prefix = format!("berth_{node}_{namespace}_{name}_POD_");
    let out = Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("name=^{prefix}"), "--filter", &format!("label=berth.io/node={node}")])
        .output()
        .map_err(|e| Error::Docker(format!("cannot run docker: {e}")))?;
    let ids = String::from_utf8_lossy(&out.stdout);
    let id = ids.lines().next().ok_or_else(|| Error::Docker(format!("no running pause container named {prefix}*")))?;
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", id])
        .output()
        .map_err(|e| Error::Docker(format!("cannot run docker: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(Error::Docker(format!("container {id} has no process ({})", String::from_utf8_lossy(&out.stderr).trim()))),
    }
}
