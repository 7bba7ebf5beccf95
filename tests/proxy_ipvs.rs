//! berth-proxy in the ipvs mode. Where the kernel has no `ip_vs` (as on the
//! development machines) the proxy must refuse to start and name the
//! module, never falling back to another mode; where it has one, the ipvs
//! mode goes through the same scenario as the others.

mod proxy_support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn should_proxy_services_in_ipvs_mode_or_refuse_without_ip_vs() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        proxy_support::scenario("ipvs").await;
        return;
    }
    let lease = proxy_support::Lease::take();
    let out = Command::new(berth_e2e::bin("berth-proxy", "berth-proxy"))
        .args(["--mode", "ipvs", "--server", "http://127.0.0.1:1", "--interface", &lease.interface()])
        .args(["--health-listen", &format!("127.0.0.1:{}", berth_e2e::free_port())])
        .output()
        .expect("run berth-proxy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "berth-proxy must not start in ipvs mode without ip_vs:\n{stderr}");
    assert!(stderr.contains("ip_vs kernel module"), "the error names the missing module:\n{stderr}");
    assert!(!proxy_support::interface_exists(&lease.interface()), "nothing was installed before refusing");
}
