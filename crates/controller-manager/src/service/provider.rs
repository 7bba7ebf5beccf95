//! The load balancer provider interface: where a LoadBalancer service's
//! external address comes from. The controller knows only this trait; the
//! built-in [`host`](super::host) provider is one implementation, a cloud's
//! would be another.

use std::net::IpAddr;

use berth_api::pb::core::{LoadBalancerIngress, Service};

use crate::error::Result;

/// A source of load balancers.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    /// A short name for logs and events.
    fn name(&self) -> &'static str;
    /// Makes the load balancer of the service `key` (`namespace/name`) match
    /// `svc`, forwarding to the NodePorts on `nodes`; returns its ingress
    /// points for `status.loadBalancer.ingress`.
    async fn ensure(&self, key: &str, svc: &Service, nodes: &[IpAddr]) -> Result<Vec<LoadBalancerIngress>>;
    /// Removes the service's load balancer, if it has one.
    async fn release(&self, key: &str) -> Result<()>;
    /// Whether the service has a load balancer.
    async fn has(&self, key: &str) -> bool;
    /// The services that have one.
    async fn keys(&self) -> Vec<String>;
}
