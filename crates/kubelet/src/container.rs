//! From a pod's container spec to what the engine creates: the
//! container's name and labels (with the spec hash that tells a changed
//! spec), its environment (downward API, secrets and configMaps, `$(VAR)`
//! expansion), mounts, resource limits and security settings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use berth_api::Resource;
use berth_api::pb::core::{Container, Pod};
use berth_api::quantity::{Quantity, parse_bytes, parse_cpu_millis};

use crate::runtime::{ContainerConfig, Network, labels};

/// The data of the secrets and configMaps a pod refers to, by name; None:
/// the object does not exist.
#[derive(Debug, Default, Clone)]
pub struct Refs {
    pub secrets: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    pub config_maps: HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

/// What a container's environment or mounts need and cannot get.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher,
/// so a kubelet upgrade does not replace every container.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash of a container's spec, stored in its label: a container whose
/// spec changed no longer matches and is replaced.
pub fn spec_hash(c: &Container) -> String {
    format!("{:016x}", fnv1a(&prost::Message::encode_to_vec(c)))
}

/// The engine's name of a pod's container: unique per node, pod and attempt.
pub fn container_name(node: &str, pod: &Pod, container: &str, attempt: i32) -> String {
    let uid = &pod.meta().uid;
    let short = &uid[..uid.len().min(8)];
    format!("berth_{node}_{}_{}_{container}_{attempt}_{short}", pod.namespace(), pod.name())
}

/// The labels of a container of `pod` on `node`.
pub fn pod_labels(node: &str, pod: &Pod, name: &str, kind: &str, hash: &str, restarts: i32) -> BTreeMap<String, String> {
    let m = pod.meta();
    let grace = m.deletion_grace_period_seconds.or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds)).unwrap_or(30);
    [
        (labels::NODE, node.to_string()),
        (labels::POD_UID, m.uid.clone()),
        (labels::POD_NAMESPACE, m.namespace.clone()),
        (labels::POD_NAME, m.name.clone()),
        (labels::CONTAINER_NAME, name.to_string()),
        (labels::CONTAINER_TYPE, kind.to_string()),
        (labels::CONTAINER_HASH, hash.to_string()),
        (labels::RESTART_COUNT, restarts.to_string()),
        (labels::GRACE_PERIOD, grace.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The secrets and configMaps a container's environment refers to.
pub fn env_refs(c: &Container) -> (Vec<String>, Vec<String>) {
    let (mut secrets, mut config_maps) = (Vec::new(), Vec::new());
    for from in &c.env_from {
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
        if let Some(r) = &from.config_map_ref {
            config_maps.push(r.name.clone());
        }
    }
    for e in &c.env {
        if let Some(v) = &e.value_from {
            if let Some(r) = &v.secret_key_ref {
                secrets.push(r.name.clone());
            }
            if let Some(r) = &v.config_map_key_ref {
                config_maps.push(r.name.clone());
            }
        }
    }
    (secrets, config_maps)
}

/// Where the pod runs, for the downward API.
#[derive(Debug, Clone, Default)]
pub struct PodPlace {
    pub node_name: String,
    pub host_ip: String,
    pub pod_ip: String,
}

/// Expands `$(VAR)` with the variables defined so far; `$$(VAR)` is a
/// literal `$(VAR)`; unknown references stay as written (Kubernetes' rules).
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
            {
                let name = &s[i + 2..i + 2 + end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&s[i..i + 3 + end]),
                }
                i += 3 + end;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn field_value(pod: &Pod, place: &PodPlace, path: &str) -> Result<String, ConfigError> {
    let m = pod.meta();
    let spec = pod.spec.clone().unwrap_or_default();
    let value = match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => place.node_name.clone(),
        "spec.serviceAccountName" => spec.service_account_name.clone(),
        "status.podIP" | "status.podIPs" => place.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => place.host_ip.clone(),
        p => {
            let key = |prefix: &str| {
                p.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'))
                    .map(|k| k.trim_matches(|c| c == '\'' || c == '"').to_string())
            };
            if let Some(k) = key("metadata.labels") {
                m.labels.get(&k).cloned().unwrap_or_default()
            } else if let Some(k) = key("metadata.annotations") {
                m.annotations.get(&k).cloned().unwrap_or_default()
            } else {
                return Err(ConfigError(format!("unsupported fieldRef fieldPath {p:?}")));
            }
        }
    };
    Ok(value)
}

fn resource_value(c: &Container, resource: &str, divisor: &str) -> Result<String, ConfigError> {
    let r = c.resources.clone().unwrap_or_default();
    let (map, name) = match resource.split_once('.') {
        Some(("limits", n)) => (&r.limits, n),
        Some(("requests", n)) => (&r.requests, n),
        _ => return Err(ConfigError(format!("unsupported resourceFieldRef resource {resource:?}"))),
    };
    let bad = |e: String| ConfigError(format!("resourceFieldRef {resource}: {e}"));
    if name == "cpu" {
        let millis = match map.get("cpu") {
            Some(v) => parse_cpu_millis(v).map_err(|e| bad(e.to_string()))?,
            // No limit: the node's CPUs.
            None => std::thread::available_parallelism().map(|n| n.get() as i64 * 1000).unwrap_or(1000),
        };
        let div = if divisor.is_empty() { 1000 } else { parse_cpu_millis(divisor).map_err(|e| bad(e.to_string()))?.max(1) };
        Ok(((millis + div - 1) / div).to_string())
    } else {
        let bytes = match map.get(name) {
            Some(v) => parse_bytes(v).map_err(|e| bad(e.to_string()))?,
            None => 0,
        };
        let div = if divisor.is_empty() { 1 } else { Quantity::parse(divisor).map_err(|e| bad(e.to_string()))?.value().max(1) };
        Ok(((bytes + div - 1) / div).to_string())
    }
}

/// Key and value pairs of a secret or configMap.
type Pairs = Vec<(String, Vec<u8>)>;

fn lookup(
    objects: &HashMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    kind: &str,
    name: &str,
    key: Option<&str>,
    optional: bool,
) -> Result<Option<Pairs>, ConfigError> {
    match objects.get(name).cloned().flatten() {
        None if optional => Ok(None),
        None => Err(ConfigError(format!("{kind} \"{name}\" not found"))),
        Some(data) => match key {
            None => Ok(Some(data.into_iter().collect())),
            Some(k) => match data.get(k) {
                Some(v) => Ok(Some(vec![(k.to_string(), v.clone())])),
                None if optional => Ok(None),
                None => Err(ConfigError(format!("couldn't find key {k} in {kind} {name}"))),
            },
        },
    }
}

/// The container's environment as `NAME=value` lines, in order, with
/// envFrom first, `env` (expanded) after, then the Service variables
/// (`services`) that neither defines, as Kubernetes builds it: `$(VAR)` in
/// `env` may name a Service variable, and the pod's own variables win.
pub fn environment(
    pod: &Pod,
    c: &Container,
    place: &PodPlace,
    refs: &Refs,
    services: &BTreeMap<String, String>,
) -> Result<Vec<String>, ConfigError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    // What `$(VAR)` may name: the Service variables, then those defined so far.
    let mut map: HashMap<String, String> = services.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut defined: HashSet<String> = HashSet::new();
    let mut set = |vars: &mut Vec<(String, String)>, map: &mut HashMap<String, String>, k: String, v: String| {
        map.insert(k.clone(), v.clone());
        if !defined.insert(k.clone()) {
            vars.retain(|(n, _)| n != &k);
        }
        vars.push((k, v));
    };
    for from in &c.env_from {
        let (kind, objects, name, optional) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), _) => ("configmap", &refs.config_maps, &r.name, r.optional.unwrap_or(false)),
            (None, Some(r)) => ("secret", &refs.secrets, &r.name, r.optional.unwrap_or(false)),
            (None, None) => continue,
        };
        for (k, v) in lookup(objects, kind, name, None, optional)?.unwrap_or_default() {
            let key = format!("{}{k}", from.prefix);
            // Kubernetes skips keys that are not valid variable names.
            if berth_api::names::env_var_name(&key).is_empty() {
                set(&mut vars, &mut map, key, String::from_utf8_lossy(&v).into_owned());
            }
        }
    }
    for e in &c.env {
        let value = match &e.value_from {
            None => expand(&e.value, &map),
            Some(src) => {
                if let Some(f) = &src.field_ref {
                    field_value(pod, place, &f.field_path)?
                } else if let Some(r) = &src.resource_field_ref {
                    let target = if r.container_name.is_empty() || r.container_name == c.name {
                        c.clone()
                    } else {
                        pod.spec.iter().flat_map(|s| s.containers.iter()).find(|x| x.name == r.container_name).cloned().unwrap_or_default()
                    };
                    resource_value(&target, &r.resource, &r.divisor)?
                } else if let Some(r) = &src.config_map_key_ref {
                    match lookup(&refs.config_maps, "configmap", &r.name, Some(&r.key), r.optional.unwrap_or(false))? {
                        Some(kv) => String::from_utf8_lossy(&kv[0].1).into_owned(),
                        None => continue,
                    }
                } else if let Some(r) = &src.secret_key_ref {
                    match lookup(&refs.secrets, "secret", &r.name, Some(&r.key), r.optional.unwrap_or(false))? {
                        Some(kv) => String::from_utf8_lossy(&kv[0].1).into_owned(),
                        None => continue,
                    }
                } else {
                    String::new()
                }
            }
        };
        set(&mut vars, &mut map, e.name.clone(), value);
    }
    let own: HashSet<String> = vars.iter().map(|(k, _)| k.clone()).collect();
    vars.extend(services.iter().filter(|(k, _)| !own.contains(*k)).map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// A volume ready on the host: where it is and whether containers may write it.
#[derive(Debug, Clone)]
pub struct HostVolume {
    pub path: PathBuf,
    pub read_only: bool,
}

/// The container's bind mounts (`host:container[:ro]`).
pub fn binds(c: &Container, volumes: &HashMap<String, HostVolume>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for m in &c.volume_mounts {
        let v = volumes
            .get(&m.name)
            .ok_or_else(|| ConfigError(format!("volume {:?} of mount {:?} is not defined in the pod", m.name, m.mount_path)))?;
        let mut host = v.path.clone();
        if !m.sub_path.is_empty() {
            if m.sub_path.split('/').any(|p| p == "..") || m.sub_path.starts_with('/') {
                return Err(ConfigError(format!("subPath {:?} must be a relative path without ..", m.sub_path)));
            }
            host = host.join(&m.sub_path);
            if !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| ConfigError(format!("cannot create subPath {}: {e}", host.display())))?;
            }
        }
        let ro = m.read_only.unwrap_or(false) || v.read_only;
        out.push(format!("{}:{}{}", host.display(), m.mount_path, if ro { ":ro" } else { "" }));
    }
    Ok(out)
}

/// Resource limits for the engine: memory limit, CPU quota from the CPU
/// limit and CPU shares from the CPU request (Kubernetes' mapping).
pub fn resources(c: &Container, config: &mut ContainerConfig) -> Result<(), ConfigError> {
    let r = c.resources.clone().unwrap_or_default();
    if let Some(m) = r.limits.get("memory") {
        config.memory_limit_bytes = Some(parse_bytes(m).map_err(|e| ConfigError(format!("limits.memory: {e}")))?);
    }
    if let Some(cpu) = r.limits.get("cpu") {
        let millis = parse_cpu_millis(cpu).map_err(|e| ConfigError(format!("limits.cpu: {e}")))?;
        const PERIOD: i64 = 100_000;
        config.cpu_period = Some(PERIOD);
        // The kernel refuses quotas below 1 ms.
        config.cpu_quota = Some((millis * PERIOD / 1000).max(1000));
    }
    let request = r.requests.get("cpu").or(r.limits.get("cpu"));
    let shares = match request {
        Some(cpu) => (parse_cpu_millis(cpu).map_err(|e| ConfigError(format!("requests.cpu: {e}")))? * 1024 / 1000).max(2),
        None => 2,
    };
    config.cpu_shares = Some(shares);
    Ok(())
}

/// The app or init container's full configuration.
#[allow(clippy::too_many_arguments)]
pub fn app_config(
    node: &str,
    pod: &Pod,
    c: &Container,
    kind: &str,
    restarts: i32,
    sandbox_id: &str,
    env: Vec<String>,
    binds: Vec<String>,
) -> Result<ContainerConfig, ConfigError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("0:{g}")),
        (None, None) => None,
    };
    let caps = sc.capabilities.clone().unwrap_or_default();
    let vars: HashMap<String, String> = env.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut config = ContainerConfig {
        name: container_name(node, pod, &c.name, restarts),
        image: c.image.clone(),
        labels: pod_labels(node, pod, &c.name, kind, &spec_hash(c), restarts),
        // Kubernetes: command replaces the entrypoint, args the image's cmd;
        // command alone drops the image's cmd.
        entrypoint: (!c.command.is_empty()).then(|| c.command.iter().map(|s| expand(s, &vars)).collect()),
        cmd: if !c.args.is_empty() {
            Some(c.args.iter().map(|s| expand(s, &vars)).collect())
        } else if !c.command.is_empty() {
            Some(Vec::new())
        } else {
            None
        },
        env,
        working_dir: c.working_dir.clone(),
        network: Network::Container(sandbox_id.to_string()),
        binds,
        memory_limit_bytes: None,
        cpu_quota: None,
        cpu_period: None,
        cpu_shares: None,
        privileged: sc.privileged.unwrap_or(false),
        cap_add: caps.add.iter().map(|c| c.trim_start_matches("CAP_").to_string()).collect(),
        cap_drop: caps.drop.iter().map(|c| c.trim_start_matches("CAP_").to_string()).collect(),
        user,
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
    };
    resources(c, &mut config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::*;

    use super::*;

    fn pod() -> Pod {
        Pod {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                namespace: "prod".into(),
                uid: "0123456789abcdef".into(),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(PodSpec { service_account_name: "sa".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar { name: name.into(), value: value.into(), value_from: None }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: String::new(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn should_give_the_downward_api_and_expand_references() {
        let c = Container {
            env: vec![
                field("POD", "metadata.name"),
                field("NS", "metadata.namespace"),
                field("IP", "status.podIP"),
                field("NODE", "spec.nodeName"),
                field("APP", "metadata.labels['app']"),
                env("URL", "http://$(IP):80/$(MISSING)/$$(IP)"),
            ],
            ..Default::default()
        };
        let place = PodPlace { node_name: "n1".into(), host_ip: "127.0.0.1".into(), pod_ip: "172.30.1.2".into() };
        let got = environment(&pod(), &c, &place, &Refs::default(), &BTreeMap::new()).unwrap();
        assert_eq!(got, ["POD=web", "NS=prod", "IP=172.30.1.2", "NODE=n1", "APP=web", "URL=http://172.30.1.2:80/$(MISSING)/$(IP)"]);
    }

    #[test]
    fn should_take_values_from_secrets_and_config_maps() {
        let mut refs = Refs::default();
        refs.secrets.insert("s".into(), Some([("password".to_string(), b"hunter2".to_vec())].into()));
        refs.config_maps.insert("cm".into(), Some([("mode".to_string(), b"fast".to_vec()), ("bad-key".to_string(), b"x".to_vec())].into()));
        refs.config_maps.insert("gone".into(), None);
        let c = Container {
            env_from: vec![EnvFromSource {
                prefix: "CFG_".into(),
                config_map_ref: Some(ConfigMapEnvSource { name: "cm".into(), optional: None }),
                secret_ref: None,
            }],
            env: vec![EnvVar {
                name: "PASSWORD".into(),
                value: String::new(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector { name: "s".into(), key: "password".into(), optional: None }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let got = environment(&pod(), &c, &PodPlace::default(), &refs, &BTreeMap::new()).unwrap();
        assert_eq!(got, ["CFG_bad-key=x", "CFG_mode=fast", "PASSWORD=hunter2"]);

        let missing = Container {
            env_from: vec![EnvFromSource {
                prefix: String::new(),
                config_map_ref: Some(ConfigMapEnvSource { name: "gone".into(), optional: None }),
                secret_ref: None,
            }],
            ..Default::default()
        };
        let err = environment(&pod(), &missing, &PodPlace::default(), &refs, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.0, "configmap \"gone\" not found");
    }

    #[test]
    fn should_add_service_variables_that_the_pod_does_not_set_and_expand_them() {
        let services: BTreeMap<String, String> = [("WEB_SERVICE_HOST", "10.96.0.30"), ("WEB_SERVICE_PORT", "80")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = Container {
            env: vec![env("WEB_SERVICE_PORT", "8080"), env("URL", "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/")],
            ..Default::default()
        };
        let got = environment(&pod(), &c, &PodPlace::default(), &Refs::default(), &services).unwrap();
        assert_eq!(got, ["WEB_SERVICE_PORT=8080", "URL=http://10.96.0.30:8080/", "WEB_SERVICE_HOST=10.96.0.30"]);
    }

    #[test]
    fn should_map_requests_and_limits_to_the_engine() {
        let mut r = ResourceRequirements::default();
        r.limits.insert("memory".into(), "64Mi".into());
        r.limits.insert("cpu".into(), "500m".into());
        r.requests.insert("cpu".into(), "250m".into());
        let c = Container { name: "c".into(), image: "i".into(), resources: Some(r), ..Default::default() };
        let cfg = app_config("n1", &pod(), &c, labels::TYPE_APP, 0, "sandbox", vec![], vec![]).unwrap();
        assert_eq!(cfg.memory_limit_bytes, Some(64 * 1024 * 1024));
        assert_eq!(cfg.cpu_quota, Some(50_000));
        assert_eq!(cfg.cpu_period, Some(100_000));
        assert_eq!(cfg.cpu_shares, Some(256));
        assert_eq!(cfg.name, "berth_n1_prod_web_c_0_01234567");
        assert_eq!(cfg.labels.get(labels::POD_UID).map(String::as_str), Some("0123456789abcdef"));
    }

    #[test]
    fn should_change_the_hash_with_the_spec_only() {
        let a = Container { name: "c".into(), image: "busybox:1".into(), ..Default::default() };
        let mut b = a.clone();
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.image = "busybox:2".into();
        assert_ne!(spec_hash(&a), spec_hash(&b));
    }

    #[test]
    fn should_replace_the_entrypoint_with_command() {
        let c = Container { name: "c".into(), command: vec!["sh".into(), "-c".into()], ..Default::default() };
        let cfg = app_config("n", &pod(), &c, labels::TYPE_APP, 1, "s", vec![], vec![]).unwrap();
        assert_eq!(cfg.entrypoint, Some(vec!["sh".to_string(), "-c".to_string()]));
        assert_eq!(cfg.cmd, Some(vec![]));
        assert!(matches!(&cfg.network, Network::Container(id) if id == "s"));
        assert!(!cfg.privileged);
        let mut p = c.clone();
        p.security_context = Some(SecurityContext {
            privileged: Some(true),
            capabilities: Some(Capabilities { add: vec!["CAP_NET_ADMIN".into()], drop: vec!["ALL".into()] }),
            run_as_user: Some(1000),
            ..Default::default()
        });
        let cfg = app_config("n", &pod(), &p, labels::TYPE_APP, 1, "s", vec![], vec![]).unwrap();
        assert!(cfg.privileged);
        assert_eq!(
            (cfg.cap_add, cfg.cap_drop, cfg.user),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()], Some("1000".to_string()))
        );
    }
}
