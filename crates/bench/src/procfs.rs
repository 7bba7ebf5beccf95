//! Reads a process's resident memory (VmRSS) from `/proc/PID/status`, its
//! CPU time from `/proc/PID/stat`, and the host's load average.

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

/// The CPU time (user and system, all threads) process `pid` has used, in
/// seconds. `/proc/PID/stat` counts in clock ticks, which Linux reports to
/// user space at 100 per second (USER_HZ) on every architecture it runs on.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path} (is process {pid} running?)"))?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / USER_HZ).with_context(|| format!("malformed {path}"))
}

const USER_HZ: f64 = 100.0;

/// utime + stime, the 14th and 15th fields; the 2nd (the command name, in
/// parentheses) may hold spaces, so count from the last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
    fn should_add_user_and_system_ticks_after_a_name_with_spaces() {
        let stat = "4242 (berth (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn should_read_our_own_rss() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
