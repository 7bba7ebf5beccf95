//! The host a daemon runs on: its name, as leader-election identities, event sources and default node names use it.

/// The name to use when the kernel's hostname cannot be read.
const FALLBACK_HOSTNAME: &str = "berth";

/// The host's name as the kernel has it (`/proc/sys/kernel/hostname`), trimmed;
/// `"berth"` when it cannot be read.
pub fn hostname() -> String {
    read_hostname("/proc/sys/kernel/hostname")
}

fn read_hostname(path: &str) -> String {
    std::fs::read_to_string(path).map(|h| h.trim().to_string()).unwrap_or_else(|_| FALLBACK_HOSTNAME.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_the_kernel_hostname_trimmed() {
        let h = hostname();
        assert!(!h.is_empty());
        assert_eq!(h, h.trim());
    }

    #[test]
    fn should_fall_back_to_berth_when_the_hostname_cannot_be_read() {
        assert_eq!(read_hostname("/nonexistent/hostname"), "berth");
    }
}
