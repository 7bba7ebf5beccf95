//! LimitRanger admission: gives a new pod's containers the default requests
//! and limits of their namespace's LimitRanges where they set none, then
//! refuses a pod outside a range's min, max or maxLimitRequestRatio at the
//! Container or Pod level, with Kubernetes' messages.

use std::collections::BTreeMap;

use berth_api::Resource;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{Container, LimitRange, LimitRangeItem, Pod};
use berth_api::quantity::Quantity;

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::{Filter, Lister};

/// The annotation saying which defaults were applied, as Kubernetes writes it.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The `LimitRanger` admission plugin.
#[derive(Debug, Default)]
pub struct LimitRanger;

impl LimitRanger {
    pub fn new() -> LimitRanger {
        LimitRanger
    }
}

#[async_trait::async_trait]
impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        if attributes.operation != Operation::Create {
            return Ok(());
        }
        let Some(Kind::Pod(pod)) = &mut attributes.object.kind else { return Ok(()) };
        let namespace = pod.namespace().to_string();
        let info = &LimitRange::INFO;
        let objects = lister.list(info, &namespace, &Filter::parse(info, "", "")?)?;
        let ranges: Vec<LimitRange> = objects.into_iter().filter_map(|o| o.into_resource::<LimitRange>().ok()).collect();
        if ranges.is_empty() {
            return Ok(());
        }
        let items: Vec<&LimitRangeItem> = ranges.iter().filter_map(|r| r.spec.as_ref()).flat_map(|s| &s.limits).collect();
        let defaulted = apply_defaults(pod, &items);
        let errors = check(pod, &items);
        if !errors.is_empty() {
            let reason = if errors.len() == 1 { errors[0].clone() } else { format!("[{}]", errors.join(", ")) };
            return Err(Error::Forbidden(format!("pods {:?} is forbidden: {reason}", pod.name())));
        }
        if !defaulted.is_empty() {
            pod.metadata_mut().annotations.insert(ANNOTATION.into(), format!("LimitRanger plugin set: {}", defaulted.join("; ")));
            // The QoS class depends on the resources just set: let defaulting recompute it.
            if let Some(status) = pod.status.as_mut() {
                status.qos_class.clear();
            }
            crate::defaults::apply(attributes.object);
        }
        Ok(())
    }
}

/// Sets default limits and requests on containers that lack them; returns
/// what was set, as `cpu, memory request for container app`.
fn apply_defaults(pod: &mut Pod, items: &[&LimitRangeItem]) -> Vec<String> {
    let mut said = Vec::new();
    let Some(spec) = pod.spec.as_mut() else { return said };
    for c in spec.init_containers.iter_mut().chain(spec.containers.iter_mut()) {
        let (mut requests, mut limits) = (Vec::new(), Vec::new());
        for item in items.iter().filter(|i| i.r#type == "Container") {
            let r = c.resources.get_or_insert_with(Default::default);
            for (res, v) in &item.default {
                if !r.limits.contains_key(res) {
                    r.limits.insert(res.clone(), v.clone());
                    limits.push(res.clone());
                }
            }
            for (res, v) in &item.default_request {
                if !r.requests.contains_key(res) {
                    r.requests.insert(res.clone(), v.clone());
                    requests.push(res.clone());
                }
            }
        }
        if !requests.is_empty() {
            said.push(format!("{} request for container {}", requests.join(", "), c.name));
        }
        if !limits.is_empty() {
            said.push(format!("{} limit for container {}", limits.join(", "), c.name));
        }
    }
    said
}

/// Every rule the pod breaks, in Kubernetes' words.
fn check(pod: &Pod, items: &[&LimitRangeItem]) -> Vec<String> {
    let mut errors = Vec::new();
    let spec = pod.spec.clone().unwrap_or_default();
    for item in items {
        match item.r#type.as_str() {
            "Container" => {
                for c in spec.init_containers.iter().chain(&spec.containers) {
                    let (req, lim) = container_values(c);
                    errors.extend(check_values("Container", item, &req, &lim));
                }
            }
            "Pod" => {
                let (req, lim) = pod_values(&spec.containers);
                errors.extend(check_values("Pod", item, &req, &lim));
            }
            _ => {}
        }
    }
    errors
}

type Values = BTreeMap<String, Quantity>;

fn parse_map(m: &BTreeMap<String, String>) -> Values {
    m.iter().filter_map(|(k, v)| Quantity::parse(v).ok().map(|q| (k.clone(), q))).collect()
}

fn container_values(c: &Container) -> (Values, Values) {
    let r = c.resources.clone().unwrap_or_default();
    (parse_map(&r.requests), parse_map(&r.limits))
}

/// A pod's totals; a resource some container leaves unset is unset for the pod.
fn pod_values(containers: &[Container]) -> (Values, Values) {
    let mut totals = (Values::new(), Values::new());
    let mut unset = (Vec::new(), Vec::new());
    for c in containers {
        let (req, lim) = container_values(c);
        for res in ["cpu", "memory"] {
            for (values, total, missing) in [(&req, &mut totals.0, &mut unset.0), (&lim, &mut totals.1, &mut unset.1)] {
                match values.get(res) {
                    Some(q) => *total.entry(res.to_string()).or_default() += *q,
                    None => missing.push(res),
                }
            }
        }
    }
    for res in unset.0 {
        totals.0.remove(res);
    }
    for res in unset.1 {
        totals.1.remove(res);
    }
    totals
}

fn check_values(level: &str, item: &LimitRangeItem, req: &Values, lim: &Values) -> Vec<String> {
    let mut errors = Vec::new();
    for (res, min) in parse_map(&item.min) {
        match req.get(&res) {
            None => errors.push(format!("minimum {res} usage per {level} is {min}.  No request is specified")),
            Some(r) if *r < min => errors.push(format!("minimum {res} usage per {level} is {min}, but request is {r}")),
            _ => {}
        }
        if let Some(l) = lim.get(&res)
            && *l < min
        {
            errors.push(format!("minimum {res} usage per {level} is {min}, but limit is {l}"));
        }
    }
    for (res, max) in parse_map(&item.max) {
        match lim.get(&res) {
            None => errors.push(format!("maximum {res} usage per {level} is {max}.  No limit is specified")),
            Some(l) if *l > max => errors.push(format!("maximum {res} usage per {level} is {max}, but limit is {l}")),
            _ => {}
        }
        if let Some(r) = req.get(&res)
            && *r > max
        {
            errors.push(format!("maximum {res} usage per {level} is {max}, but request is {r}"));
        }
    }
    for (res, ratio) in parse_map(&item.max_limit_request_ratio) {
        let (Some(l), Some(r)) = (lim.get(&res), req.get(&res)) else {
            errors.push(format!("{res} max limit to request ratio per {level} is {ratio}, but no request or limit is specified"));
            continue;
        };
        if r.is_zero() {
            errors.push(format!("{res} max limit to request ratio per {level} is {ratio}, but no request is specified or request is 0"));
            continue;
        }
        let observed = l.nano_value() as f64 / r.nano_value() as f64;
        if observed > ratio.nano_value() as f64 / 1e9 {
            errors.push(format!("{res} max limit to request ratio per {level} is {ratio}, but provided ratio is {observed:.6}"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{PodSpec, ResourceRequirements};

    fn item(kind: &str, f: impl FnOnce(&mut LimitRangeItem)) -> LimitRangeItem {
        let mut i = LimitRangeItem { r#type: kind.into(), ..Default::default() };
        f(&mut i);
        i
    }

    fn pod(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Pod {
        let r = ResourceRequirements {
            requests: requests.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            limits: limits.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container { name: "app".into(), resources: Some(r), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_default_only_what_a_container_leaves_unset() {
        let i = item("Container", |i| {
            i.default.insert("cpu".into(), "500m".into());
            i.default.insert("memory".into(), "128Mi".into());
            i.default_request.insert("cpu".into(), "100m".into());
        });
        let mut p = pod(&[], &[("memory", "64Mi")]);
        let said = apply_defaults(&mut p, &[&i]);
        let r = p.spec.unwrap().containers[0].resources.clone().unwrap();
        assert_eq!(r.limits["cpu"], "500m");
        assert_eq!(r.limits["memory"], "64Mi");
        assert_eq!(r.requests["cpu"], "100m");
        assert_eq!(said, vec!["cpu request for container app", "cpu limit for container app"]);
    }

    #[test]
    fn should_refuse_containers_outside_the_range() {
        let i = item("Container", |i| {
            i.max.insert("cpu".into(), "1".into());
            i.min.insert("memory".into(), "32Mi".into());
            i.max_limit_request_ratio.insert("cpu".into(), "2".into());
        });
        let p = pod(&[("cpu", "500m"), ("memory", "16Mi")], &[("cpu", "2")]);
        let errors = check(&p, &[&i]);
        assert_eq!(
            errors,
            vec![
                "minimum memory usage per Container is 32Mi, but request is 16Mi",
                "maximum cpu usage per Container is 1, but limit is 2",
                "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
            ]
        );
    }

    #[test]
    fn should_check_pod_totals_at_pod_level() {
        let i = item("Pod", |i| {
            i.max.insert("memory".into(), "100Mi".into());
        });
        let mut p = pod(&[("memory", "40Mi")], &[("memory", "60Mi")]);
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        p.spec.as_mut().unwrap().containers.push(Container { name: "side".into(), ..c });
        assert_eq!(check(&p, &[&i]), vec!["maximum memory usage per Pod is 100Mi, but limit is 120Mi"]);
    }
}
