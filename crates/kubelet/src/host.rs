//! What the kubelet learns about its host from `/proc`, `/sys` and `/etc`:
//! CPUs, memory, disk, processes, kernel and OS, for the node's capacity,
//! conditions and nodeInfo.

use std::path::Path;

/// Facts that do not change while the kubelet runs.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub hostname: String,
    pub architecture: String,
}

/// Facts that change: how close the host is to running out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pressure {
    pub memory_available_bytes: u64,
    pub memory_total_bytes: u64,
    pub disk_available_bytes: u64,
    pub disk_capacity_bytes: u64,
    pub threads: u64,
    pub pid_max: u64,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// A `/proc/meminfo` field in bytes.
fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// The OS's pretty name from an os-release file.
fn os_pretty_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| Some(l.strip_prefix("PRETTY_NAME=")?.trim_matches('"').to_string()))
}

/// Go's (and Kubernetes') name of an architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

impl HostInfo {
    pub fn read() -> HostInfo {
        let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let memory_bytes = meminfo(&read("/proc/meminfo"), "MemTotal").unwrap_or(0);
        let machine_id = read("/etc/machine-id");
        let system_uuid = Some(read("/sys/class/dmi/id/product_uuid")).filter(|s| !s.is_empty()).unwrap_or_else(|| machine_id.clone());
        HostInfo {
            cpus,
            memory_bytes,
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image: os_pretty_name(&read("/etc/os-release")).unwrap_or_else(|| "Linux".into()),
            machine_id,
            system_uuid,
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            hostname: read("/proc/sys/kernel/hostname"),
            architecture: go_arch().into(),
        }
    }
}

/// The host's hostname, lowercased as node names are: the default node name.
pub fn hostname() -> String {
    berth_base::host::hostname().to_ascii_lowercase()
}

impl Pressure {
    /// Reads the current figures; `dir` is where pod data lives (its filesystem is the one measured).
    pub fn read(dir: &Path) -> Pressure {
        let mem = read("/proc/meminfo");
        let (disk_available_bytes, disk_capacity_bytes) = match rustix::fs::statvfs(dir) {
            Ok(s) => (s.f_bavail.saturating_mul(s.f_frsize), s.f_blocks.saturating_mul(s.f_frsize)),
            Err(_) => (0, 0),
        };
        // /proc/loadavg: "0.00 0.01 0.05 1/123 4567": running/total threads.
        let threads =
            read("/proc/loadavg").split_whitespace().nth(3).and_then(|f| f.split_once('/')).and_then(|(_, t)| t.parse().ok()).unwrap_or(0);
        Pressure {
            memory_available_bytes: meminfo(&mem, "MemAvailable").unwrap_or(u64::MAX),
            memory_total_bytes: meminfo(&mem, "MemTotal").unwrap_or(u64::MAX),
            disk_available_bytes,
            disk_capacity_bytes,
            threads,
            pid_max: read("/proc/sys/kernel/pid_max").parse().unwrap_or(32768),
        }
    }

    /// Memory below the threshold.
    pub fn memory(&self, t: &Thresholds) -> bool {
        below(self.memory_available_bytes, self.memory_total_bytes, t.memory_available)
    }

    /// The pods' filesystem below the threshold.
    pub fn disk(&self, t: &Thresholds) -> bool {
        self.disk_capacity_bytes > 0 && below(self.disk_available_bytes, self.disk_capacity_bytes, t.nodefs_available)
    }

    /// Free process ids below the threshold.
    pub fn pids(&self, t: &Thresholds) -> bool {
        self.pid_max > 0 && below(self.pid_max.saturating_sub(self.threads), self.pid_max, t.pid_available)
    }
}

/// A hard eviction threshold: an amount, or a share of the total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

fn below(available: u64, total: u64, t: Threshold) -> bool {
    match t {
        Threshold::Bytes(b) => available < b,
        Threshold::Percent(p) => (available as f64) < total as f64 * p / 100.0,
    }
}

/// When the node reports pressure (`--eviction-hard`, Kubernetes' signals).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub memory_available: Threshold,
    pub nodefs_available: Threshold,
    pub pid_available: Threshold,
}

impl Default for Thresholds {
    /// Kubernetes' defaults: `memory.available<100Mi,nodefs.available<10%,pid.available<10%`.
    fn default() -> Self {
        Thresholds {
            memory_available: Threshold::Bytes(100 << 20),
            nodefs_available: Threshold::Percent(10.0),
            pid_available: Threshold::Percent(10.0),
        }
    }
}

impl Thresholds {
    /// Parses `memory.available<100Mi,nodefs.available<10%`; signals not
    /// named keep their defaults.
    pub fn parse(s: &str) -> Result<Thresholds, String> {
        let mut t = Thresholds::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (signal, value) = part.split_once('<').ok_or_else(|| format!("{part:?} is not signal<value"))?;
            let value = value.trim();
            let threshold = match value.strip_suffix('%') {
                Some(p) => {
                    let p: f64 = p.parse().map_err(|_| format!("{part:?}: bad percentage"))?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(format!("{part:?}: a percentage is between 0 and 100"));
                    }
                    Threshold::Percent(p)
                }
                None => Threshold::Bytes(berth_api::quantity::parse_bytes(value).map_err(|e| format!("{part:?}: {e}"))?.max(0) as u64),
            };
            match signal.trim() {
                "memory.available" => t.memory_available = threshold,
                "nodefs.available" => t.nodefs_available = threshold,
                "pid.available" => t.pid_available = threshold,
                other => return Err(format!("unknown eviction signal {other:?}: use memory.available, nodefs.available or pid.available")),
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_meminfo_fields_in_bytes() {
        let text = "MemTotal:       16318412 kB\nMemFree:  100 kB\nMemAvailable:   8000000 kB\n";
        assert_eq!(meminfo(text, "MemTotal"), Some(16318412 * 1024));
        assert_eq!(meminfo(text, "MemAvailable"), Some(8000000 * 1024));
        assert_eq!(meminfo(text, "Mem"), None);
    }

    #[test]
    fn should_read_the_os_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_pretty_name(text).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    #[test]
    fn should_parse_eviction_thresholds() {
        let t = Thresholds::parse("nodefs.available<5%, memory.available<1Gi").unwrap();
        assert_eq!(t.nodefs_available, Threshold::Percent(5.0));
        assert_eq!(t.memory_available, Threshold::Bytes(1 << 30));
        assert_eq!(t.pid_available, Threshold::Percent(10.0));
        assert!(Thresholds::parse("imagefs.available<5%").is_err());
        assert!(Thresholds::parse("nodefs.available<500%").is_err());
    }

    #[test]
    fn should_report_the_real_host() {
        let h = HostInfo::read();
        assert!(h.cpus >= 1);
        assert!(h.memory_bytes > 0);
        let p = Pressure::read(Path::new("/"));
        assert!(p.disk_capacity_bytes > 0);
    }
}
