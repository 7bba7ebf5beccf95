//! Tables as `kubectl get` prints them: the columns and cells of each kind
//! come from [`berth_api::printers`] (shared with the apiserver's Tables);
//! this module picks the columns shown (`-o wide`), adds NAMESPACE and
//! LABELS, upper-cases the headers and aligns the rows like Go's tabwriter
//! (padding 3, no trailing blanks).

use berth_api::printers::{self, labels_column};
use berth_api::{KindInfo, Object};
use chrono::{DateTime, Utc};

/// Columns of the shared tables that berthctl's `-o wide` has not printed so
/// far (kubectl prints them): left out so that berthctl's output stays as it
/// was. Removing an entry makes berthctl print that column like kubectl.
const NOT_PRINTED: &[(&str, &str)] = &[("Pod", "Nominated Node"), ("Pod", "Readiness Gates")];

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-o wide`: the kind's extra columns.
    pub wide: bool,
    /// `-A`: a leading NAMESPACE column (namespaced kinds only).
    pub namespace_column: bool,
    /// `--show-labels`: a trailing LABELS column.
    pub show_labels: bool,
}

/// Rows of one kind under their headers.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    options: Options,
    /// Which of the kind's columns ([`printers::columns`]) the table shows, in order.
    shown: Vec<usize>,
}

impl Table {
    /// An empty table with the columns of `info`'s kind.
    pub fn new(info: &KindInfo, options: Options) -> Table {
        let options = Options { namespace_column: options.namespace_column && info.namespaced, ..options };
        let mut headers: Vec<String> = Vec::new();
        if options.namespace_column {
            headers.push("NAMESPACE".into());
        }
        let columns = printers::columns(info);
        let shown: Vec<usize> = (0..columns.len())
            .filter(|&i| {
                let c = &columns[i];
                c.priority == 0 || (options.wide && !NOT_PRINTED.contains(&(info.kind, c.name)))
            })
            .collect();
        headers.extend(shown.iter().map(|&i| columns[i].name.to_uppercase()));
        if options.show_labels {
            headers.push("LABELS".into());
        }
        Table { headers, rows: Vec::new(), options, shown }
    }

    /// The row of one object (with the namespace and labels columns the
    /// options ask for), without adding it.
    pub fn row(&self, object: &Object, now: DateTime<Utc>) -> Vec<String> {
        let mut row = Vec::new();
        if self.options.namespace_column {
            row.push(object.namespace().to_string());
        }
        let cells = printers::row(object, now);
        row.extend(self.shown.iter().map(|&i| cells.get(i).map(ToString::to_string).unwrap_or_default()));
        if self.options.show_labels {
            row.push(labels_column(object.metadata().map(|m| &m.labels)));
        }
        row
    }

    pub fn push(&mut self, object: &Object, now: DateTime<Utc>) {
        let row = self.row(object, now);
        self.rows.push(row);
    }

    /// The width of each column: its widest cell plus padding (at least
    /// kubectl's minimum), the headers counted unless hidden.
    pub fn widths(&self, no_headers: bool) -> Vec<usize> {
        widths(&self.headers, &self.rows, no_headers)
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self, no_headers: bool) -> String {
        render_table(&self.headers, &self.rows, no_headers)
    }
}

/// The width of each column: its widest cell plus padding (at least
/// kubectl's minimum), the headers counted unless hidden.
pub fn widths(headers: &[String], rows: &[Vec<String>], no_headers: bool) -> Vec<usize> {
    let mut widths = vec![0; headers.len()];
    let header = (!no_headers).then_some(headers);
    for row in header.into_iter().chain(rows.iter().map(Vec::as_slice)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths.iter().map(|w| (w + PADDING).max(MIN_WIDTH)).collect()
}

/// Any table as text (headers unless hidden, then the rows), aligned like
/// kubectl's: one line per row, each ending in a newline.
pub fn render_table(headers: &[String], rows: &[Vec<String>], no_headers: bool) -> String {
    let widths = widths(headers, rows, no_headers);
    let mut out = String::new();
    if !no_headers {
        out.push_str(&render_row(headers, &widths));
    }
    for row in rows {
        out.push_str(&render_row(row, &widths));
    }
    out
}

/// Spaces between columns, and the narrowest a column gets (kubectl's
/// tabwriter settings).
const PADDING: usize = 3;
const MIN_WIDTH: usize = 6;

/// One line of a table: every cell but the last padded to its column's width.
pub fn render_row(row: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        line.push_str(cell);
        if i + 1 < row.len() {
            let width = widths.get(i).copied().unwrap_or(0).max(cell.chars().count() + PADDING);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
    }
    let trimmed = line.trim_end().len();
    line.truncate(trimmed);
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::Resource;
    use berth_api::manifest::parse;
    use berth_api::pb::core::{
        ConfigMap, Endpoints, Event, Lease, LimitRange, Namespace, Node, Pod, ReplicationController, ResourceQuota, Secret, Service,
    };
    use berth_api::printers::format_endpoints;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("valid").with_timezone(&Utc)
    }

    fn objects(yaml: &str) -> Vec<Object> {
        parse(yaml).expect("test manifest parses")
    }

    fn render(info: &KindInfo, objs: &[Object], options: Options) -> String {
        let mut t = Table::new(info, options);
        for o in objs {
            t.push(o, now());
        }
        t.render(false)
    }

    #[test]
    fn should_print_pods_with_ready_status_and_restarts() {
        let objs = objects(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, creationTimestamp: "2024-05-01T11:59:55Z"}
spec:
  nodeName: n1
  containers: [{name: a, image: busybox}, {name: b, image: busybox}]
status:
  phase: Running
  podIP: 172.30.0.5
  containerStatuses:
  - {name: a, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T11:59:58Z"}}}
  - name: b
    ready: false
    restartCount: 3
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {exitCode: 1, finishedAt: "2024-05-01T11:58:00Z"}}
---
apiVersion: v1
kind: Pod
metadata: {name: pending-one, namespace: default, creationTimestamp: "2024-05-01T09:00:00Z"}
spec:
  containers: [{name: a, image: busybox}]
"#,
        );
        let out = render(Pod::INFO_REF, &objs, Options::default());
        assert_eq!(
            out,
            "NAME          READY   STATUS             RESTARTS     AGE\n\
             web           1/2     CrashLoopBackOff   3 (2m ago)   5s\n\
             pending-one   0/1     Pending            0            3h\n"
        );
        let wide = render(Pod::INFO_REF, &objs, Options { wide: true, ..Default::default() });
        let lines: Vec<&str> = wide.lines().collect();
        assert!(lines[0].ends_with("AGE   IP           NODE"), "{wide}");
        assert!(lines[1].ends_with("5s    172.30.0.5   n1"), "{wide}");
        assert!(lines[2].ends_with("3h    <none>       <none>"), "{wide}");
    }

    #[test]
    fn should_print_services_with_ports_and_external_ips() {
        let objs = objects(
            r#"
apiVersion: v1
kind: Service
metadata: {name: web, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}, {port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {clusterIP: None}
---
apiVersion: v1
kind: Service
metadata: {name: lb, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {type: LoadBalancer, clusterIP: 10.96.0.11, ports: [{port: 443}]}
"#,
        );
        let out = render(Service::INFO_REF, &objs, Options { wide: true, ..Default::default() });
        assert_eq!(
            out,
            "NAME       TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)               AGE   SELECTOR\n\
             web        NodePort       10.96.0.10   <none>        80:30080/TCP,53/UDP   60m   app=web\n\
             headless   ClusterIP      None         <none>        <none>                60m   <none>\n\
             lb         LoadBalancer   10.96.0.11   <pending>     443/TCP               60m   <none>\n"
        );
    }

    #[test]
    fn should_print_namespace_and_labels_columns() {
        let objs = objects(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system, labels: {a: b, c: d}, creationTimestamp: \"2024-05-01T11:59:00Z\"}\ndata: {x: y, z: w}\n",
        );
        let out = render(ConfigMap::INFO_REF, &objs, Options { namespace_column: true, show_labels: true, wide: false });
        assert_eq!(out, "NAMESPACE     NAME   DATA   AGE   LABELS\nkube-system   c      2      60s   a=b,c=d\n");
        // cluster-scoped kinds have no NAMESPACE column even with -A
        let ns = objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, creationTimestamp: \"2024-04-29T12:00:00Z\"}\n");
        let out = render(Namespace::INFO_REF, &ns, Options { namespace_column: true, ..Default::default() });
        assert_eq!(out, "NAME   STATUS   AGE\nprod   Active   2d\n");
    }

    #[test]
    fn should_print_nodes_rcs_endpoints_and_secrets() {
        let node = objects(
            r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ""}, creationTimestamp: "2024-05-01T07:00:00Z"}
spec: {unschedulable: true}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v0.1.0}
  addresses: [{type: InternalIP, address: 10.0.0.1}]
"#,
        );
        assert_eq!(
            render(Node::INFO_REF, &node, Options::default()),
            "NAME   STATUS                     ROLES           AGE   VERSION\n\
             n1     Ready,SchedulingDisabled   control-plane   5h    v0.1.0\n"
        );
        let rc = objects(
            "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r, creationTimestamp: \"2024-05-01T11:00:00Z\"}\nspec: {replicas: 3, selector: {app: r}}\nstatus: {replicas: 2, readyReplicas: 1}\n",
        );
        assert_eq!(
            render(ReplicationController::INFO_REF, &rc, Options::default()),
            "NAME   DESIRED   CURRENT   READY   AGE\nr      3         2         1       60m\n"
        );
        let ep = objects(
            "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- addresses: [{ip: 1.1.1.1}, {ip: 1.1.1.2}, {ip: 1.1.1.3}, {ip: 1.1.1.4}]\n  ports: [{port: 80}]\n",
        );
        let ep: Endpoints = ep[0].clone().into_resource().expect("endpoints");
        assert_eq!(format_endpoints(&ep), "1.1.1.1:80,1.1.1.2:80,1.1.1.3:80 + 1 more...");
        assert_eq!(format_endpoints(&Endpoints::default()), "<none>");
        let secret = objects(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, creationTimestamp: \"2024-05-01T11:59:30Z\"}\ndata: {k: aGVsbG8=}\n",
        );
        assert_eq!(render(Secret::INFO_REF, &secret, Options::default()), "NAME   TYPE     DATA   AGE\ns      Opaque   1      30s\n");
    }

    #[test]
    fn should_print_quotas_limits_events_and_leases() {
        let q = objects(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, creationTimestamp: \"2024-05-01T11:59:00Z\"}\nspec: {hard: {pods: \"10\", limits.cpu: \"2\"}}\nstatus: {hard: {pods: \"10\", limits.cpu: \"2\"}, used: {pods: \"3\"}}\n",
        );
        assert_eq!(
            render(ResourceQuota::INFO_REF, &q, Options::default()),
            "NAME   AGE   REQUEST      LIMIT\nq      60s   pods: 3/10   limits.cpu: 0/2\n"
        );
        let lr = objects("apiVersion: v1\nkind: LimitRange\nmetadata: {name: l, creationTimestamp: \"2024-05-01T11:59:00+00:00\"}\n");
        assert_eq!(render(LimitRange::INFO_REF, &lr, Options::default()), "NAME   CREATED AT\nl      2024-05-01T11:59:00Z\n");
        let ev = objects(
            "apiVersion: v1\nkind: Event\nmetadata: {name: web.1, namespace: default}\ninvolvedObject: {kind: Pod, name: web}\nreason: Scheduled\nmessage: assigned to n1\ntype: Normal\ncount: 2\nfirstTimestamp: \"2024-05-01T11:50:00Z\"\nlastTimestamp: \"2024-05-01T11:59:50Z\"\n",
        );
        assert_eq!(
            render(Event::INFO_REF, &ev, Options::default()),
            "LAST SEEN           TYPE     REASON      OBJECT    MESSAGE\n10s (x2 over 10m)   Normal   Scheduled   pod/web   assigned to n1\n"
        );
        let lease = objects(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: sched, creationTimestamp: \"2024-05-01T11:59:00Z\"}\nspec: {holderIdentity: host-1}\n",
        );
        assert_eq!(render(Lease::INFO_REF, &lease, Options::default()), "NAME    HOLDER   AGE\nsched   host-1   60s\n");
    }

    #[test]
    fn should_print_service_accounts_and_rbac_kinds() {
        let objs = objects(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default, creationTimestamp: "2024-05-01T11:59:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: default, namespace: default}
"#,
        );
        let info = objs[0].info().expect("kind");
        assert_eq!(
            render(info, &objs, Options { wide: true, ..Default::default() }),
            "NAME        ROLE              AGE   USERS   GROUPS   SERVICEACCOUNTS\n\
             read-pods   Role/pod-reader   60s   jane             default/default\n"
        );
        let sa = objects("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, creationTimestamp: \"2024-05-01T11:00:00Z\"}\n");
        assert_eq!(render(sa[0].info().expect("kind"), &sa, Options::default()), "NAME      SECRETS   AGE\ndefault   0         60m\n");
        let role = objects(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin, creationTimestamp: \"2024-05-01T11:00:00Z\"}\n",
        );
        assert_eq!(render(role[0].info().expect("kind"), &role, Options::default()), "NAME    CREATED AT\nadmin   2024-05-01T11:00:00Z\n");
    }

    #[test]
    fn should_hide_headers_and_keep_widths_for_later_rows() {
        let objs = objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: a-long-name}\n");
        let mut t = Table::new(Namespace::INFO_REF, Options::default());
        t.push(&objs[0], now());
        assert_eq!(t.render(true), "a-long-name   Active   <unknown>\n");
        let widths = t.widths(false);
        let later = render_row(&["b".into(), "Terminating".into(), "1s".into()], &widths);
        assert_eq!(later, "b             Terminating   1s\n");
    }

    /// `&'static KindInfo` of a type, for the table constructor.
    trait InfoRef {
        const INFO_REF: &'static KindInfo;
    }
    impl<R: Resource> InfoRef for R {
        const INFO_REF: &'static KindInfo = &R::INFO;
    }
}
