//! RBAC: a request is allowed when a binding that names the user (or one of
//! its groups, or its service account) grants a role with a matching rule.
//! Rules only add; there is no deny. Also the default roles and bindings
//! created at first start: cluster-admin, admin, edit, view, and one role
//! per component identity.

use berth_api::pb::api::object::Kind;
use berth_api::pb::rbac::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use berth_api::{Object, ObjectMeta, Resource};

use super::{Attributes, Decision};
use crate::lister::{self, Lister};
use crate::user::{GROUP_MASTERS, UserInfo};

/// The API group of the RBAC kinds.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Decides from the stored roles and bindings.
pub fn authorize(lister: &Lister, user: &UserInfo, a: &Attributes) -> Decision {
    for o in objects(lister, "ClusterRoleBinding", "") {
        let Some(Kind::ClusterRoleBinding(b)) = o.kind else { continue };
        if !b.subjects.iter().any(|s| names(s, user, "")) {
            continue;
        }
        let Some(rr) = &b.role_ref else { continue };
        if rr.kind == "ClusterRole"
            && let Some(rule) = rules(lister, rr, "").iter().find(|r| matches(r, a))
        {
            return Decision::Allow(format!(
                "allowed by ClusterRoleBinding {:?} of ClusterRole {:?} ({})",
                b.name(),
                rr.name,
                describe(rule)
            ));
        }
    }
    if !a.namespace.is_empty() {
        for o in objects(lister, "RoleBinding", &a.namespace) {
            let Some(Kind::RoleBinding(b)) = o.kind else { continue };
            if !b.subjects.iter().any(|s| names(s, user, &a.namespace)) {
                continue;
            }
            let Some(rr) = &b.role_ref else { continue };
            if let Some(rule) = rules(lister, rr, &a.namespace).iter().find(|r| matches(r, a)) {
                return Decision::Allow(format!(
                    "allowed by RoleBinding {:?} of {} {:?} in namespace {:?} ({})",
                    b.name(),
                    rr.kind,
                    rr.name,
                    a.namespace,
                    describe(rule)
                ));
            }
        }
    }
    Decision::NoOpinion
}

fn objects(lister: &Lister, kind: &str, namespace: &str) -> Vec<Object> {
    let Ok(info) = lister::kind(kind) else { return Vec::new() };
    lister.list_readable(info, namespace).unwrap_or_default()
}

/// The rules of the role a binding refers to (none if it does not exist).
fn rules(lister: &Lister, rr: &RoleRef, namespace: &str) -> Vec<PolicyRule> {
    match (rr.kind.as_str(), lister.get(&rr.kind, namespace, &rr.name)) {
        ("ClusterRole", Ok(Object { kind: Some(Kind::ClusterRole(r)) })) => r.rules,
        ("Role", Ok(Object { kind: Some(Kind::Role(r)) })) => r.rules,
        _ => Vec::new(),
    }
}

/// Whether a subject names the user. A ServiceAccount subject without a
/// namespace means the binding's own.
fn names(s: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() { binding_namespace } else { &s.namespace };
            user.name == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// Whether a rule grants the request.
pub fn matches(r: &PolicyRule, a: &Attributes) -> bool {
    if !has(&r.verbs, &a.verb) {
        return false;
    }
    if !a.path.is_empty() {
        return r.non_resource_urls.iter().any(|u| u == "*" || *u == a.path || (u.ends_with('*') && a.path.starts_with(&u[..u.len() - 1])));
    }
    if !has(&r.api_groups, &a.api_group) {
        return false;
    }
    let full = a.full_resource();
    let resource_ok = r.resources.iter().any(|res| {
        res == "*"
            || *res == full
            || (a.subresource.is_empty() && *res == a.resource)
            || (!a.subresource.is_empty() && (*res == format!("*/{}", a.subresource) || *res == format!("{}/*", a.resource)))
    });
    resource_ok && (r.resource_names.is_empty() || r.resource_names.iter().any(|n| *n == a.name && !a.name.is_empty()))
}

fn describe(r: &PolicyRule) -> String {
    format!("verbs {:?} on {:?}", r.verbs, r.resources)
}

// ------------------------------------------------------------ default policy

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    PolicyRule { verbs: v(verbs), api_groups: v(groups), resources: v(resources), ..Default::default() }
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    PolicyRule { verbs: v(verbs), non_resource_urls: v(urls), ..Default::default() }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const ALL: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
const COORD: &str = "coordination.k8s.io";

/// The namespaced kinds a namespace's users work with (not secrets: view
/// does not read them).
const WORKLOADS: &[&str] = &[
    "pods",
    "pods/log",
    "pods/metrics",
    "pods/status",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "replicationcontrollers/status",
    "services",
    "services/status",
    "endpoints",
    "configmaps",
    "events",
    "limitranges",
    "resourcequotas",
    "resourcequotas/status",
    "serviceaccounts",
    "namespaces",
    "namespaces/status",
];

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    let mut r = ClusterRole { rules, ..Default::default() };
    *r.metadata_mut() = ObjectMeta { name: name.into(), ..Default::default() };
    r.metadata_mut().labels.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    r
}

fn binding(name: &str, role: &str, subject_kind: &str, subject: &str) -> ClusterRoleBinding {
    let mut b = ClusterRoleBinding {
        subjects: vec![Subject { kind: subject_kind.into(), api_group: GROUP.into(), name: subject.into(), namespace: String::new() }],
        role_ref: Some(RoleRef { api_group: GROUP.into(), kind: "ClusterRole".into(), name: role.into() }),
        ..Default::default()
    };
    *b.metadata_mut() = ObjectMeta { name: name.into(), ..Default::default() };
    b.metadata_mut().labels.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    b
}

/// The default ClusterRoles: Kubernetes' user-facing roles and one per component.
pub fn default_cluster_roles() -> Vec<ClusterRole> {
    // nodes/stats is cluster-scoped: it counts only where view is bound
    // cluster-wide (as metrics.k8s.io's nodes are in Kubernetes).
    let mut view_rules = vec![rule(READ, &[""], WORKLOADS), rule(READ, &[""], &["nodes/stats"]), rule(READ, &[COORD], &["leases"])];
    view_rules.retain(|r| !r.resources.is_empty());
    let mut edit_rules = view_rules.clone();
    edit_rules.push(rule(
        WRITE,
        &[""],
        &[
            "pods",
            "pods/exec",
            "pods/attach",
            "pods/portforward",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "events",
            "serviceaccounts",
        ],
    ));
    edit_rules.push(rule(&["create"], &[""], &["pods/exec", "pods/attach", "pods/eviction"]));
    edit_rules.push(rule(READ, &[""], &["secrets"]));
    edit_rules.push(rule(WRITE, &[COORD], &["leases"]));
    let mut admin_rules = edit_rules.clone();
    admin_rules.push(rule(ALL, &[GROUP], &["roles", "rolebindings"]));
    admin_rules.push(rule(WRITE, &[""], &["limitranges", "resourcequotas"]));
    vec![
        cluster_role("cluster-admin", vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])]),
        cluster_role("admin", admin_rules),
        cluster_role("edit", edit_rules),
        cluster_role("view", view_rules),
        cluster_role("system:monitoring", vec![url_rule(&["get"], &["/metrics", "/livez", "/readyz", "/healthz"])]),
        // What lets any user run kubectl at all: discovery, OpenAPI, and asking what they may do.
        cluster_role(
            "system:discovery",
            vec![url_rule(
                &["get"],
                &["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/", "/healthz", "/livez", "/readyz"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"]),
            ],
        ),
        cluster_role("system:public-info-viewer", vec![url_rule(&["get"], &["/version", "/version/", "/healthz", "/livez", "/readyz"])]),
        // Reads a kubelet needs; its writes (own Node, own Lease, own pods'
        // status) and its secret and configMap reads are the Node authorizer's.
        cluster_role(
            "system:node",
            vec![
                rule(READ, &[""], &["nodes", "pods", "services", "endpoints", "namespaces"]),
                rule(&["create", "update", "patch"], &[""], &["events"]),
            ],
        ),
        cluster_role(
            "system:kube-scheduler",
            vec![
                rule(READ, &[""], &["pods", "nodes", "namespaces", "services", "replicationcontrollers", "persistentvolumeclaims"]),
                rule(&["create"], &[""], &["pods/binding"]),
                rule(&["update", "patch"], &[""], &["pods/status"]),
                rule(&["create", "update", "patch"], &[""], &["events"]),
                rule(&["get", "list", "watch", "create", "update"], &[COORD], &["leases"]),
            ],
        ),
        cluster_role("system:kube-controller-manager", vec![rule(&["*"], &["", COORD], &["*"]), rule(READ, &[GROUP], &["*"])]),
        cluster_role(
            "system:node-proxier",
            vec![rule(READ, &[""], &["services", "endpoints", "nodes"]), rule(&["create", "update", "patch"], &[""], &["events"])],
        ),
        // The cluster DNS reads what it answers (Kubernetes' system:coredns role, without pods and slices).
        cluster_role("system:berth-dns", vec![rule(READ, &[""], &["services", "endpoints", "namespaces"])]),
    ]
}

/// The default ClusterRoleBindings: the groups and component users to their roles.
pub fn default_cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    vec![
        binding("cluster-admin", "cluster-admin", "Group", GROUP_MASTERS),
        binding("system:monitoring", "system:monitoring", "Group", "system:monitoring"),
        binding("system:discovery", "system:discovery", "Group", crate::user::GROUP_AUTHENTICATED),
        binding("system:basic-user", "system:basic-user", "Group", crate::user::GROUP_AUTHENTICATED),
        {
            let mut b = binding("system:public-info-viewer", "system:public-info-viewer", "Group", crate::user::GROUP_AUTHENTICATED);
            let mut anonymous = b.subjects[0].clone();
            anonymous.name = crate::user::GROUP_UNAUTHENTICATED.into();
            b.subjects.push(anonymous);
            b
        },
        binding("system:node", "system:node", "Group", "system:nodes"),
        binding("system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler"),
        binding("system:kube-controller-manager", "system:kube-controller-manager", "User", "system:kube-controller-manager"),
        binding("system:node-proxier", "system:node-proxier", "User", "system:kube-proxy"),
        binding("system:berth-dns", "system:berth-dns", "User", "system:berth-dns"),
    ]
}

/// The default roles and bindings, as objects to create at first start
/// (the registry creates those that do not exist yet).
pub fn default_policy() -> Vec<Object> {
    default_cluster_roles()
        .into_iter()
        .map(Resource::into_object)
        .chain(default_cluster_role_bindings().into_iter().map(Resource::into_object))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "a".into(),
            ..Default::default()
        }
    }

    #[test]
    fn should_match_rules_by_verb_group_resource_subresource_and_name() {
        let r = rule(&["get", "list"], &[""], &["pods", "pods/log"]);
        assert!(matches(&r, &attrs("get", "pods", "", "web")));
        assert!(matches(&r, &attrs("get", "pods", "log", "web")));
        assert!(!matches(&r, &attrs("create", "pods", "exec", "web")));
        assert!(!matches(&r, &attrs("delete", "pods", "", "web")));
        assert!(!matches(&r, &attrs("get", "secrets", "", "s")));
        let mut named = rule(&["get"], &[""], &["secrets"]);
        named.resource_names = vec!["one".into()];
        assert!(matches(&named, &attrs("get", "secrets", "", "one")));
        assert!(!matches(&named, &attrs("get", "secrets", "", "two")));
        let star = rule(&["*"], &["*"], &["*"]);
        assert!(matches(&star, &attrs("create", "pods", "exec", "web")));
        let urls = url_rule(&["get"], &["/metrics"]);
        assert!(matches(&urls, &Attributes::non_resource("get", "/metrics")));
        assert!(!matches(&urls, &Attributes::non_resource("get", "/other")));
    }

    #[test]
    fn should_not_give_view_secrets_or_exec() {
        let view = default_cluster_roles().into_iter().find(|r| r.name() == "view").expect("view");
        assert!(!view.rules.iter().any(|r| matches(r, &attrs("get", "secrets", "", "s"))));
        assert!(!view.rules.iter().any(|r| matches(r, &attrs("create", "pods", "exec", "p"))));
        assert!(view.rules.iter().any(|r| matches(r, &attrs("list", "pods", "", ""))));
    }

    #[test]
    fn should_let_view_read_logs_and_usage_and_edit_exec() {
        let roles = default_cluster_roles();
        let role = |name: &str| roles.iter().find(|r| r.name() == name).expect("role").rules.clone();
        let cluster = |mut a: Attributes| {
            a.namespace.clear();
            a
        };
        for name in ["view", "edit", "admin"] {
            let rules = role(name);
            let allows = |a: &Attributes| rules.iter().any(|r| matches(r, a));
            assert!(allows(&attrs("get", "pods", "log", "web")), "{name} reads logs");
            assert!(allows(&attrs("list", "pods", "metrics", "")), "{name} reads pod usage");
            assert!(allows(&cluster(attrs("list", "nodes", "stats", ""))), "{name} reads node usage");
            assert_eq!(allows(&attrs("create", "pods", "exec", "web")), name != "view", "{name} and exec");
        }
    }
}
