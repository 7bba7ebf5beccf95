//! The apiserver's own `kubernetes` Service in `default`: ClusterIP the first address of the service range, port 443 (`https`) onto the apiserver's port, and Endpoints naming the advertised address, created at startup and corrected when they point elsewhere (as kube-apiserver's endpoint reconciler does for a single apiserver).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use berth_api::pb::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort, ServiceSpec};
use berth_api::{Object, Resource};

use crate::error::Error;
use crate::registry::Registry;

/// The namespace and name of the Service.
pub const NAMESPACE: &str = "default";
pub const NAME: &str = "kubernetes";

fn meta() -> ObjectMeta {
    ObjectMeta {
        name: NAME.into(),
        namespace: NAMESPACE.into(),
        labels: BTreeMap::from([("component".to_string(), "apiserver".to_string()), ("provider".to_string(), "kubernetes".to_string())]),
        ..Default::default()
    }
}

/// The Service: `cluster_ip:443` (named `https`, TCP) onto `port`, with no selector (its Endpoints are kept here).
pub fn service(cluster_ip: Ipv4Addr, port: u16) -> Service {
    Service {
        metadata: Some(meta()),
        spec: Some(ServiceSpec {
            cluster_ip: cluster_ip.to_string(),
            r#type: "ClusterIP".into(),
            session_affinity: "None".into(),
            ports: vec![ServicePort {
                name: "https".into(),
                protocol: "TCP".into(),
                port: 443,
                target_port: port.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The subsets of its Endpoints: the advertised address on `port`.
pub fn subsets(advertise: IpAddr, port: u16) -> Vec<EndpointSubset> {
    vec![EndpointSubset {
        addresses: vec![EndpointAddress { ip: advertise.to_string(), ..Default::default() }],
        not_ready_addresses: Vec::new(),
        ports: vec![EndpointPort { name: "https".into(), port: i32::from(port), protocol: "TCP".into(), app_protocol: None }],
    }]
}

/// The address put in the Endpoints: `--advertise-address`, else the listen
/// address, else (listening on every address) 127.0.0.1.
pub fn advertise_address(configured: Option<IpAddr>, listen: IpAddr) -> IpAddr {
    configured.unwrap_or(if listen.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { listen })
}

/// Creates the Service and its Endpoints if missing, and points existing
/// Endpoints at `advertise:port` when they point elsewhere. An existing
/// Service is left as the operator has it.
pub async fn ensure(registry: &Registry, cluster_ip: Ipv4Addr, advertise: IpAddr, port: u16) -> Result<(), Error> {
    registry.create_missing(vec![service(cluster_ip, port).into_object()]).await?;
    let want = subsets(advertise, port);
    let endpoints = Endpoints { metadata: Some(meta()), subsets: want.clone(), ..Default::default() };
    if registry.create_missing(vec![endpoints.into_object()]).await? > 0 {
        return Ok(());
    }
    let current = registry.get("Endpoints", NAMESPACE, NAME)?;
    let Ok(mut current) = Endpoints::from_object(current) else { return Ok(()) };
    if current.subsets == want {
        return Ok(());
    }
    tracing::info!(address = %advertise, port, "pointing the kubernetes Service's Endpoints at this apiserver");
    current.subsets = want;
    let object: Object = current.into_object();
    registry.update(object, false, false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_advertise_the_listen_address_unless_it_is_every_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let node: IpAddr = "192.168.1.5".parse().unwrap();
        assert_eq!(advertise_address(None, node), node);
        assert_eq!(advertise_address(None, "0.0.0.0".parse().unwrap()), lo);
        assert_eq!(advertise_address(Some(node), "0.0.0.0".parse().unwrap()), node);
    }

    #[test]
    fn should_forward_443_named_https_to_the_apiserver_port() {
        let svc = service(Ipv4Addr::new(10, 96, 0, 1), 6443);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip, "10.96.0.1");
        assert!(spec.selector.is_empty(), "the Endpoints are the apiserver's, not the endpoints controller's");
        assert_eq!((spec.ports[0].name.as_str(), spec.ports[0].port, spec.ports[0].target_port.as_str()), ("https", 443, "6443"));
        let subsets = subsets("10.0.0.2".parse().unwrap(), 6443);
        assert_eq!((subsets[0].addresses[0].ip.as_str(), subsets[0].ports[0].port), ("10.0.0.2", 6443));
    }
}
