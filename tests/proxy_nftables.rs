//! berth-proxy in the nftables mode, end to end: a real apiserver, the proxy as a
//! process, busybox httpd pods in containers on a Docker network of the
//! test; the scenario is in `proxy_support`.

mod proxy_support;

#[tokio::test(flavor = "multi_thread")]
async fn should_proxy_services_in_nftables_mode() {
    proxy_support::scenario("nftables").await;
}
