//! ResourceQuota admission: refuses a create or update that would take a
//! namespace past one of its quotas (naming the quota, the resource, what is
//! requested, used and allowed) and writes nothing then.
//!
//! Usage is counted from what is stored (with [`berth_api::quota`], exactly
//! as the quota controller counts it), not from the quotas' `status.used`,
//! which the controller recomputes from caches that may lag behind. Writes
//! to one namespace are admitted one at a time, and each admitted creation
//! holds a reservation until its object is visible in the store (or a few
//! seconds have passed, when its write failed after admission), so that
//! concurrent creations cannot overshoot a quota together. This is exact
//! for one apiserver; several apiservers on one store would need the
//! reservations shared.

use berth_base::sync::MutexExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_api::Resource;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::ResourceQuota as Quota;
use berth_api::quantity::Quantity;
use berth_api::quota::{self, Usage};

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::{Filter, Lister};

/// How long an admitted creation is counted while its object is not yet
/// visible; past that its write has failed.
const RESERVATION_TTL: Duration = Duration::from_secs(10);

/// Usage admitted but not yet visible in the store.
struct Reservation {
    uid: String,
    usage: Usage,
    at: Instant,
}

/// The `ResourceQuota` admission plugin.
#[derive(Default)]
pub struct ResourceQuota {
    /// One lock per namespace: admissions in a namespace take turns.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Vec<Reservation>>>>>,
}

impl ResourceQuota {
    pub fn new() -> ResourceQuota {
        ResourceQuota::default()
    }

    fn namespace_lock(&self, namespace: &str) -> Arc<tokio::sync::Mutex<Vec<Reservation>>> {
        let mut locks = self.locks.lock_or_recover();
        locks.entry(namespace.to_string()).or_default().clone()
    }
}

#[async_trait::async_trait]
impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        if !matches!(attributes.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        let Some(info) = attributes.object.info() else { return Ok(()) };
        if !info.namespaced {
            return Ok(());
        }
        let delta = increase(&quota::usage(attributes.object), &attributes.old.map(quota::usage).unwrap_or_default());
        if delta.is_empty() {
            return Ok(());
        }
        let namespace = attributes.object.namespace().to_string();
        let name = attributes.object.name().to_string();
        let quota_info = &Quota::INFO;
        let objects = lister.list(quota_info, &namespace, &Filter::parse(quota_info, "", "")?)?;
        let quotas: Vec<Quota> = objects.into_iter().filter_map(|o| o.into_resource::<Quota>().ok()).collect();
        if let Some(Kind::Pod(p)) = &attributes.object.kind {
            for q in &quotas {
                check_specified(q, p.spec.as_ref().cloned().unwrap_or_default(), info.plural, &name)?;
            }
        }
        // Only quotas that limit something this write grows matter.
        let relevant: Vec<&Quota> = quotas.iter().filter(|q| hard_of(q).keys().any(|k| delta.contains_key(quota::canonical(k)))).collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let lock = self.namespace_lock(&namespace);
        let mut reservations = lock.lock().await;
        let mut hard_union = BTreeMap::new();
        for q in &relevant {
            hard_union.extend(hard_of(q));
        }
        let (live, uids) = live_usage(lister, &namespace, &hard_union)?;
        reservations.retain(|r| !uids.contains(&r.uid) && r.at.elapsed() < RESERVATION_TTL);
        let mut used = live;
        for r in reservations.iter() {
            for (k, q) in &r.usage {
                *used.entry(k.clone()).or_default() += *q;
            }
        }
        for q in &relevant {
            let mut exceeded = Vec::new();
            for (resource, limit) in hard_of(q) {
                let Some(requested) = delta.get(quota::canonical(&resource)) else { continue };
                let Ok(limit) = Quantity::parse(&limit) else { continue };
                let current = used.get(quota::canonical(&resource)).copied().unwrap_or_default();
                if current + *requested > limit {
                    exceeded.push((resource.clone(), *requested, current, limit));
                }
            }
            if !exceeded.is_empty() {
                return Err(Error::Forbidden(exceeded_message(info.plural, &name, q.name(), &exceeded)));
            }
        }
        if attributes.operation == Operation::Create && !attributes.dry_run {
            let uid = attributes.object.metadata().map(|m| m.uid.clone()).unwrap_or_default();
            reservations.push(Reservation { uid, usage: delta, at: Instant::now() });
        }
        Ok(())
    }
}

fn hard_of(q: &Quota) -> BTreeMap<String, String> {
    q.spec.as_ref().map(|s| s.hard.clone()).unwrap_or_default()
}

/// What `new` uses beyond `old`, only where it grows.
fn increase(new: &Usage, old: &Usage) -> Usage {
    new.iter()
        .filter_map(|(k, q)| {
            let before = old.get(k).copied().unwrap_or_default();
            (*q > before).then(|| (k.clone(), *q - before))
        })
        .collect()
}

/// Pods must state the compute resources a quota limits.
fn check_specified(q: &Quota, spec: berth_api::pb::core::PodSpec, plural: &str, name: &str) -> Result<(), Error> {
    let hard = hard_of(q);
    let constrained: Vec<&str> = hard
        .keys()
        .map(|k| quota::canonical(k))
        .filter(|k| matches!(*k, quota::REQUESTS_CPU | quota::REQUESTS_MEMORY | quota::LIMITS_CPU | quota::LIMITS_MEMORY))
        .collect();
    let missing = quota::unspecified_compute(&spec, &constrained);
    if missing.is_empty() {
        return Ok(());
    }
    let mut by_resource: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (resource, container) in missing {
        by_resource.entry(resource).or_default().push(container);
    }
    let parts: Vec<String> = by_resource.into_iter().map(|(r, cs)| format!("{r} for: {}", cs.join(","))).collect();
    Err(Error::Forbidden(format!("{plural} {name:?} is forbidden: failed quota: {}: must specify {}", q.name(), parts.join("; "))))
}

/// `pods "web" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`
fn exceeded_message(plural: &str, name: &str, quota: &str, exceeded: &[(String, Quantity, Quantity, Quantity)]) -> String {
    let list = |f: fn(&(String, Quantity, Quantity, Quantity)) -> Quantity| {
        exceeded.iter().map(|e| format!("{}={}", e.0, f(e))).collect::<Vec<_>>().join(",")
    };
    format!(
        "{plural} {name:?} is forbidden: exceeded quota: {quota}, requested: {}, used: {}, limited: {}",
        list(|e| e.1),
        list(|e| e.2),
        list(|e| e.3)
    )
}

/// The namespace's usage of `hard`'s resources (by canonical name),
/// counted from what is stored, and the uids of the objects counted.
fn live_usage(lister: &Lister, namespace: &str, hard: &BTreeMap<String, String>) -> Result<(Usage, HashSet<String>), Error> {
    let mut usages = Vec::new();
    let mut uids = HashSet::new();
    for kind in quota::kinds_counted(hard) {
        let info = crate::lister::kind(kind)?;
        let objects = lister.list(info, namespace, &Filter::parse(info, "", "")?)?;
        for o in &objects {
            if let Some(m) = o.metadata() {
                uids.insert(m.uid.clone());
            }
            usages.push(quota::usage(o));
        }
    }
    let summed = quota::sum_for(hard, usages.iter());
    Ok((summed.into_iter().map(|(k, v)| (quota::canonical(&k).to_string(), v)).collect(), uids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{ConfigMap, ObjectMeta};

    #[test]
    fn should_charge_only_what_grows() {
        let new: Usage = [("pods".to_string(), Quantity::from_value(1)), ("requests.cpu".into(), Quantity::parse("1").unwrap())].into();
        let old: Usage = [("pods".to_string(), Quantity::from_value(1)), ("requests.cpu".into(), Quantity::parse("500m").unwrap())].into();
        let d = increase(&new, &old);
        assert_eq!(d.len(), 1);
        assert_eq!(d["requests.cpu"], Quantity::parse("500m").unwrap());
    }

    #[test]
    fn should_name_quota_resource_requested_used_and_limited() {
        let m = exceeded_message(
            "pods",
            "web",
            "compute",
            &[("pods".into(), Quantity::from_value(1), Quantity::from_value(2), Quantity::from_value(2))],
        );
        assert_eq!(m, "pods \"web\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2");
    }

    #[test]
    fn should_count_a_configmap_once() {
        let cm = ConfigMap { metadata: Some(ObjectMeta { name: "c".into(), ..Default::default() }), ..Default::default() };
        assert_eq!(quota::usage(&cm.into_object())["configmaps"], Quantity::from_value(1));
    }
}
