//! PodSecurity admission: the namespace label
//! `pod-security.berth.io/enforce: privileged|baseline|restricted` sets the
//! level its pods must meet. Baseline refuses privileged containers, host
//! namespaces (network, PID, IPC), hostPath volumes, host ports and added
//! capabilities beyond Kubernetes' default set; restricted also requires
//! runAsNonRoot and dropping ALL capabilities (adding back at most
//! NET_BIND_SERVICE). A namespace without the label is privileged.

use berth_api::Object;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{Container, PodSpec};

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::Lister;

/// The namespace label that sets the level.
pub const ENFORCE_LABEL: &str = "pod-security.berth.io/enforce";

/// Capabilities a baseline pod may add (Kubernetes' container runtime defaults).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// The level a label value names; an unknown value is the strictest.
    pub fn parse(s: &str) -> Level {
        match s {
            "privileged" => Level::Privileged,
            "baseline" => Level::Baseline,
            _ => Level::Restricted,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The `PodSecurity` admission plugin.
#[derive(Debug, Default)]
pub struct PodSecurity;

#[async_trait::async_trait]
impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        if !matches!(attributes.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        let Some(Kind::Pod(pod)) = &attributes.object.kind else { return Ok(()) };
        let namespace = attributes.object.namespace();
        let level = match lister.get("Namespace", "", namespace) {
            Ok(Object { kind: Some(Kind::Namespace(ns)) }) => {
                ns.metadata.as_ref().and_then(|m| m.labels.get(ENFORCE_LABEL)).map(|l| Level::parse(l)).unwrap_or(Level::Privileged)
            }
            _ => Level::Privileged,
        };
        let violations = check(pod.spec.as_ref().unwrap_or(&PodSpec::default()), level);
        if violations.is_empty() {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "pods {:?} is forbidden: PodSecurity: violates {:?} level of namespace {namespace:?}: {}",
            attributes.object.name(),
            level.name(),
            violations.join("; ")
        )))
    }
}

/// What in a pod breaks `level`, one entry per rule.
pub fn check(spec: &PodSpec, level: Level) -> Vec<String> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let containers: Vec<&Container> = spec.init_containers.iter().chain(spec.containers.iter()).collect();
    let named = |pred: &dyn Fn(&Container) -> bool| -> Vec<String> {
        containers.iter().filter(|c| pred(c)).map(|c| format!("{:?}", c.name)).collect()
    };
    let privileged = named(&|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
    if !privileged.is_empty() {
        out.push(format!("privileged (containers {} must not set securityContext.privileged=true)", privileged.join(", ")));
    }
    for (set, field) in [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")] {
        if set == Some(true) {
            out.push(format!("host namespaces ({field}=true)"));
        }
    }
    let host_paths: Vec<String> = spec.volumes.iter().filter(|v| v.host_path.is_some()).map(|v| format!("{:?}", v.name)).collect();
    if !host_paths.is_empty() {
        out.push(format!("hostPath volumes ({})", host_paths.join(", ")));
    }
    let host_ports: Vec<String> = containers
        .iter()
        .flat_map(|c| c.ports.iter().filter(|p| p.host_port != 0).map(move |p| format!("{:?}:{}", c.name, p.host_port)))
        .collect();
    if !host_ports.is_empty() {
        out.push(format!("hostPort (containers use host ports {})", host_ports.join(", ")));
    }
    let allowed_adds: &[&str] = if level == Level::Restricted { &["NET_BIND_SERVICE"] } else { BASELINE_CAPABILITIES };
    let bad_caps = named(&|c| {
        c.security_context
            .as_ref()
            .and_then(|s| s.capabilities.as_ref())
            .is_some_and(|caps| caps.add.iter().any(|a| !allowed_adds.contains(&a.trim_start_matches("CAP_"))))
    });
    if !bad_caps.is_empty() {
        out.push(format!("capabilities (containers {} add capabilities beyond {} allows)", bad_caps.join(", "), level.name()));
    }
    if level == Level::Restricted {
        let pod_non_root = spec.security_context.as_ref().and_then(|s| s.run_as_non_root) == Some(true);
        let root = named(&|c| {
            let own = c.security_context.as_ref().and_then(|s| s.run_as_non_root);
            !(own == Some(true) || own.is_none() && pod_non_root)
        });
        if !root.is_empty() {
            out.push(format!("runAsNonRoot != true (pod or containers {} must set securityContext.runAsNonRoot=true)", root.join(", ")));
        }
        let uid0 = named(&|c| {
            c.security_context.as_ref().and_then(|s| s.run_as_user).or(spec.security_context.as_ref().and_then(|s| s.run_as_user))
                == Some(0)
        });
        if !uid0.is_empty() {
            out.push(format!("runAsUser=0 (containers {} must not run as root)", uid0.join(", ")));
        }
        let keep = named(&|c| {
            !c.security_context.as_ref().and_then(|s| s.capabilities.as_ref()).is_some_and(|caps| caps.drop.iter().any(|d| d == "ALL"))
        });
        if !keep.is_empty() {
            out.push(format!(
                "unrestricted capabilities (containers {} must set securityContext.capabilities.drop=[\"ALL\"])",
                keep.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{Capabilities, ContainerPort, HostPathVolumeSource, PodSecurityContext, SecurityContext, Volume};

    fn spec(c: Container) -> PodSpec {
        PodSpec { containers: vec![c], ..Default::default() }
    }

    fn container() -> Container {
        Container { name: "app".into(), image: "busybox".into(), ..Default::default() }
    }

    #[test]
    fn should_refuse_host_access_at_baseline_and_allow_it_when_privileged() {
        let mut c = container();
        c.security_context = Some(SecurityContext { privileged: Some(true), ..Default::default() });
        c.ports.push(ContainerPort { container_port: 80, host_port: 8080, ..Default::default() });
        let mut s = spec(c);
        s.host_network = Some(true);
        s.volumes.push(Volume {
            name: "root".into(),
            host_path: Some(HostPathVolumeSource { path: "/".into(), ..Default::default() }),
            ..Default::default()
        });
        let v = check(&s, Level::Baseline);
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(check(&s, Level::Privileged).is_empty());
        assert!(check(&spec(container()), Level::Baseline).is_empty());
    }

    #[test]
    fn should_require_non_root_and_dropped_capabilities_when_restricted() {
        assert_eq!(check(&spec(container()), Level::Restricted).len(), 2);
        let mut c = container();
        c.security_context = Some(SecurityContext {
            capabilities: Some(Capabilities { drop: vec!["ALL".into()], add: vec!["NET_BIND_SERVICE".into()] }),
            ..Default::default()
        });
        let mut s = spec(c);
        s.security_context = Some(PodSecurityContext { run_as_non_root: Some(true), ..Default::default() });
        assert!(check(&s, Level::Restricted).is_empty(), "{:?}", check(&s, Level::Restricted));
    }
}
