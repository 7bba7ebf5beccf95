//! Who a request is: the user the authenticator found ([`UserInfo`]) and
//! the well-known names of identities — the groups every user is sorted
//! into, the anonymous and insecure users, node users and the namespace
//! their Leases live in. A leaf: authentication produces these, and
//! authorization, admission, the registry and the audit log judge by them.

/// The group that may do everything.
pub const GROUP_MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// Anonymous requests are in this group.
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The user of requests in the insecure loopback mode.
pub const INSECURE_USER: &str = "system:unsecured";
/// The namespace of node heartbeats (Leases): a node user owns the Lease
/// named after its node there.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> UserInfo {
        UserInfo { name: name.into(), uid: String::new(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The user of anonymous requests.
    pub fn anonymous() -> UserInfo {
        UserInfo::new(ANONYMOUS, &[GROUP_UNAUTHENTICATED])
    }

    /// The server itself, for writes it makes on its own behalf.
    pub fn system() -> UserInfo {
        UserInfo::new("system:apiserver", &[GROUP_MASTERS, GROUP_AUTHENTICATED])
    }

    /// The node a kubelet user (`system:node:NAME` in `system:nodes`) runs, if it is one.
    pub fn node_name(&self) -> Option<&str> {
        if !self.in_group("system:nodes") {
            return None;
        }
        self.name.strip_prefix("system:node:").filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_name_a_node_only_for_node_users_in_the_nodes_group() {
        assert_eq!(UserInfo::new("system:node:n1", &["system:nodes"]).node_name(), Some("n1"));
        assert_eq!(UserInfo::new("system:node:n1", &[GROUP_AUTHENTICATED]).node_name(), None);
        assert_eq!(UserInfo::new("system:node:", &["system:nodes"]).node_name(), None);
        assert_eq!(UserInfo::new("alice", &["system:nodes"]).node_name(), None);
    }
}
