//! Reads a process's resident memory (VmRSS) from `/proc/PID/status`, and
//! the host's load average.

use anyhow::Context as _;

/// The resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path} (is --pid {pid} running?)"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS line in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The host's one-minute load average, if /proc/loadavg is readable.
pub fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_vm_rss_in_kib() {
        let status = "Name:\tberth-apiserver\nVmPeak:\t  900000 kB\nVmRSS:\t   52340 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(52340));
    }

    #[test]
    fn should_read_our_own_rss() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
