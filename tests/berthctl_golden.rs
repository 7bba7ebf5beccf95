//! berthctl's output checked against golden files: a real apiserver gets
//! the objects of `tests/golden/manifests.yaml` (every kind), then each case
//! below runs berthctl and compares its stdout, stderr and exit code with
//! `tests/golden/NAME.txt`. A mismatch prints a diff; all cases run before
//! the test fails.
//!
//! The files are updated deliberately: `BERTH_UPDATE_GOLDEN=1 cargo test
//! --workspace --locked --test berthctl_golden` rewrites them (and removes
//! the ones no case uses); review the diff before committing.
//!
//! What varies from run to run is normalised by [`normalise`] before the
//! comparison (and before writing): uids, resourceVersions, RFC 3339
//! timestamps, describe's dates and ages under 100s.
//!
//! berthctl is the binary in the target directory: build it first
//! (`cargo build -p berthctl`), as `cargo test --test` builds only this
//! package.

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_api::pb::core::{Node, Pod};
use berth_client::Client;
use berth_e2e::{Apiserver, berthctl, berthctl_with_env, free_port};

/// NAME (the golden file's) and berthctl's arguments (after `--server URL`).
const CASES: &[(&str, &[&str])] = &[
    // get: a table for each kind
    ("get-namespaces", &["get", "namespaces"]),
    ("get-nodes", &["get", "nodes"]),
    ("get-pods", &["get", "pods", "-n", "golden"]),
    ("get-rc", &["get", "rc", "-n", "golden"]),
    ("get-services", &["get", "svc", "-n", "golden"]),
    ("get-endpoints", &["get", "endpoints", "-n", "golden"]),
    ("get-secrets", &["get", "secrets", "-n", "golden"]),
    ("get-configmaps", &["get", "cm", "-n", "golden"]),
    ("get-resourcequotas", &["get", "quota", "-n", "golden"]),
    ("get-limitranges", &["get", "limits", "-n", "golden"]),
    ("get-events", &["get", "events", "-n", "golden"]),
    ("get-leases", &["get", "leases", "-n", "golden"]),
    ("get-serviceaccounts", &["get", "sa", "-n", "golden"]),
    ("get-roles", &["get", "roles", "-n", "golden"]),
    ("get-rolebindings", &["get", "rolebindings", "-n", "golden"]),
    ("get-clusterroles", &["get", "clusterroles", "golden-node-reader"]),
    ("get-clusterrolebindings", &["get", "clusterrolebindings", "golden-node-readers"]),
    // get: the other output formats
    ("get-pods-wide", &["get", "pods", "-n", "golden", "-o", "wide"]),
    ("get-pods-show-labels", &["get", "pods", "-n", "golden", "--show-labels"]),
    ("get-pod-yaml", &["get", "pod", "web-1", "-n", "golden", "-o", "yaml"]),
    ("get-configmap-json", &["get", "cm", "web-config", "-n", "golden", "-o", "json"]),
    ("get-name", &["get", "pods,svc,rc", "-n", "golden", "-o", "name"]),
    (
        "get-custom-columns",
        &["get", "pods", "-n", "golden", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,IMAGE:.spec.containers[*].image"],
    ),
    ("get-jsonpath", &["get", "pods", "-n", "golden", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}"]),
    // describe: every kind
    ("describe-namespace", &["describe", "namespace", "golden"]),
    ("describe-node", &["describe", "node", "n1"]),
    ("describe-pod", &["describe", "pod", "web-1", "-n", "golden"]),
    ("describe-rc", &["describe", "rc", "web", "-n", "golden"]),
    ("describe-service", &["describe", "svc", "web", "-n", "golden"]),
    ("describe-endpoints", &["describe", "endpoints", "web", "-n", "golden"]),
    ("describe-secret", &["describe", "secret", "creds", "-n", "golden"]),
    ("describe-configmap", &["describe", "cm", "web-config", "-n", "golden"]),
    ("describe-resourcequota", &["describe", "quota", "quota", "-n", "golden"]),
    ("describe-limitrange", &["describe", "limits", "limits", "-n", "golden"]),
    ("describe-event", &["describe", "event", "web-1.scheduled", "-n", "golden"]),
    ("describe-lease", &["describe", "lease", "n1", "-n", "golden"]),
    ("describe-serviceaccount", &["describe", "sa", "builder", "-n", "golden"]),
    ("describe-role", &["describe", "role", "pod-reader", "-n", "golden"]),
    ("describe-rolebinding", &["describe", "rolebinding", "read-pods", "-n", "golden"]),
    ("describe-clusterrole", &["describe", "clusterrole", "golden-node-reader"]),
    ("describe-clusterrolebinding", &["describe", "clusterrolebinding", "golden-node-readers"]),
    // explain
    ("explain-pods", &["explain", "pods"]),
    ("explain-pod-spec-containers", &["explain", "pods.spec.containers"]),
    ("explain-rc-spec-replicas", &["explain", "rc.spec.replicas"]),
    ("explain-service-port-target", &["explain", "svc.spec.ports.targetPort"]),
    ("explain-clusterrolebinding", &["explain", "clusterrolebindings.roleRef"]),
    ("explain-rolebinding-recursive", &["explain", "rolebindings", "--recursive"]),
    // the server's kinds, the client
    ("api-resources", &["api-resources"]),
    ("version-client", &["version", "--client"]),
    // bad input: clear errors naming what is wrong
    ("error-unknown-kind", &["get", "pdos"]),
    ("error-unknown-output", &["get", "pods", "-o", "yml"]),
    ("error-not-found", &["describe", "pod", "nosuch", "-n", "golden"]),
    ("error-explain-unknown-kind", &["explain", "widgets"]),
    ("error-explain-unknown-field", &["explain", "pods.spec.nodename"]),
    ("error-explain-below-a-string", &["explain", "pods.metadata.name.first"]),
    ("error-bad-selector", &["get", "pods", "-n", "golden", "-l", "=web"]),
];

/// The pod's status, as a kubelet would have written it.
const POD_STATUS: &str = "
phase: Running
hostIP: 10.0.0.1
podIP: 172.30.1.5
qosClass: Burstable
startTime: \"2024-05-01T12:00:00Z\"
conditions:
- {type: Ready, status: \"True\"}
containerStatuses:
- name: app
  ready: true
  restartCount: 0
  image: berth/busybox:1
  state: {running: {startedAt: \"2024-05-01T12:00:01Z\"}}
";

/// The node's status, as its kubelet would have written it (no conditions:
/// their heartbeat times would vary).
const NODE_STATUS: &str = "
capacity: {cpu: \"2\", memory: 2Gi, pods: \"110\"}
allocatable: {cpu: \"2\", memory: 2Gi, pods: \"110\"}
addresses:
- {type: InternalIP, address: 10.0.0.1}
- {type: Hostname, address: n1}
";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What one run shows, in the golden file's form.
fn render(args: &[&str], out: &Output) -> String {
    let quoted: Vec<String> =
        args.iter().map(|a| if a.contains([' ', '{', '"', '*', '[']) { format!("'{a}'") } else { a.to_string() }).collect();
    format!(
        "$ berthctl {}\n--- stdout\n{}--- stderr\n{}--- exit {}\n",
        quoted.join(" "),
        normalise(&text(&out.stdout)),
        normalise(&text(&out.stderr)),
        out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "signal".into())
    )
}

/// Replaces what changes from run to run with fixed placeholders:
/// - uids (`8-4-4-4-12` hex) → `<uid>`;
/// - resourceVersion values in YAML and JSON → `<rv>`;
/// - RFC 3339 timestamps → `<timestamp>`, describe's dates → `<date>`;
/// - ages under 100s (`7s`, `42s`) in table and describe columns → `<age>`,
///   keeping the column aligned (such ages are never wider than the
///   `AGE` header, so the column's width does not depend on them).
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let mut l = replace_uids(line);
        for key in ["resourceVersion: ", "\"resourceVersion\": "] {
            if let Some(i) = l.find(key) {
                let start = i + key.len();
                let end = l[start..].find([',', '\n']).map(|e| start + e).unwrap_or(l.len());
                if l[start..end].trim_matches(['"', '\'']).chars().all(|c| c.is_ascii_digit()) && end > start {
                    l.replace_range(start..end, "<rv>");
                }
            }
        }
        l = replace_words(&l, |w| {
            let core = w.trim_matches(['"', '\'', ',']);
            is_rfc3339(core).then(|| w.replace(core, "<timestamp>"))
        });
        l = replace_dates(&l);
        l = replace_ages(&l);
        out.push_str(&l);
    }
    out
}

fn replace_uids(line: &str) -> String {
    replace_words(line, |w| {
        let core = w.trim_matches(['"', '\'', ',']);
        let parts: Vec<&str> = core.split('-').collect();
        let shape = parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
        (shape && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))).then(|| w.replace(core, "<uid>"))
    })
}

/// Applies `f` to each space-separated word, keeping the spacing.
fn replace_words(line: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in line.chars() {
        if c == ' ' || c == '\n' {
            out.push_str(&f(&word).unwrap_or(word.clone()));
            word.clear();
            out.push(c);
        } else {
            word.push(c);
        }
    }
    out.push_str(&f(&word).unwrap_or(word));
    out
}

fn is_rfc3339(w: &str) -> bool {
    w.len() >= 20 && w.as_bytes()[4] == b'-' && w.as_bytes()[10] == b'T' && w[..4].chars().all(|c| c.is_ascii_digit())
}

/// `Wed, 01 May 2024 12:00:00 +0000` → `<date>`.
fn replace_dates(line: &str) -> String {
    const DAYS: [&str; 7] = ["Mon, ", "Tue, ", "Wed, ", "Thu, ", "Fri, ", "Sat, ", "Sun, "];
    let mut l = line.to_string();
    for d in DAYS {
        while let Some(i) = l.find(d) {
            let end = (i + 31).min(l.len());
            l.replace_range(i..end, "<date>");
        }
    }
    l
}

/// `42s` followed by spaces (or the end of the line) → `<age>` padded to the same column.
fn replace_ages(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || chars[i - 1] == ' ';
        let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if at_word_start && (1..=2).contains(&digits) && chars.get(i + digits) == Some(&'s') {
            let after = i + digits + 1;
            let spaces = chars[after..].iter().take_while(|c| **c == ' ').count();
            let rest = &chars[after + spaces..];
            let ends_line = rest.is_empty() || rest[0] == '\n';
            if ends_line || spaces > 0 {
                let cell = digits + 1 + spaces;
                out.push_str("<age>");
                if !ends_line {
                    out.extend(std::iter::repeat_n(' ', cell.saturating_sub(5).max(1)));
                }
                i = after + spaces;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The lines of `want` and `got` with `-` and `+` where they differ (a
/// longest-common-subsequence diff; the files are small).
fn diff(want: &str, got: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

async fn load_objects(server: &Apiserver, client: &Client) {
    let manifests = std::fs::read_to_string(golden_dir().join("manifests.yaml")).expect("read tests/golden/manifests.yaml");
    let out = berthctl(&server.url(), &["apply", "-f", "-"], Some(&manifests));
    assert!(out.status.success(), "apply failed: {}", text(&out.stderr));
    let mut pod: Pod = client.get("golden", "web-1").await.expect("get pod");
    pod.status = Some(serde_yaml::from_str(POD_STATUS).expect("pod status"));
    client.update_status(pod).await.expect("write the pod's status");
    let mut node: Node = client.get("", "n1").await.expect("get node");
    node.status = Some(serde_yaml::from_str(NODE_STATUS).expect("node status"));
    client.update_status(node).await.expect("write the node's status");
}

#[tokio::test]
async fn berthctl_output_matches_the_golden_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Apiserver::start(&dir.path().join("data"), free_port(), &[]).await;
    let client = server.client().await;
    load_objects(&server, &client).await;

    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, args) in CASES {
        let out = berthctl(&server.url(), args, None);
        let got = render(args, &out);
        let path = golden_dir().join(format!("{name}.txt"));
        if update {
            std::fs::write(&path, &got).expect("write golden file");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{name}: output differs from {} (- golden, + now):\n{}", path.display(), diff(&want, &got))),
            Err(e) => failures.push(format!("{name}: no golden file {} ({e}); run with BERTH_UPDATE_GOLDEN=1 to write it", path.display())),
        }
    }
    // A golden file no case writes is stale.
    let mut known: Vec<String> = CASES.iter().map(|(n, _)| format!("{n}.txt")).collect();
    known.push("config-view.txt".into()); // config_view_matches_its_golden_file's
    for entry in std::fs::read_dir(golden_dir()).expect("list tests/golden") {
        let file = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
        if file.ends_with(".txt") && !known.contains(&file) {
            if update {
                std::fs::remove_file(golden_dir().join(&file)).expect("remove stale golden file");
            } else {
                failures.push(format!("{file}: no case writes it; remove it or run with BERTH_UPDATE_GOLDEN=1"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} golden files differ:\n\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// `config view` of a config file made by `config set-*`: no server needed.
#[test]
fn config_view_matches_its_golden_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    let env = [("BERTHCONFIG", config.as_path())];
    for args in [
        &["config", "set-cluster", "prod", "--server", "https://10.0.0.1:6443"][..],
        &["config", "set-credentials", "jane", "--token", "t0ken"],
        &["config", "set-context", "prod", "--cluster", "prod", "--user", "jane", "--namespace", "web"],
        &["config", "use-context", "prod"],
    ] {
        let out = berthctl_with_env(args, &env, None);
        assert!(out.status.success(), "berthctl {args:?} failed: {}", text(&out.stderr));
    }
    let args = ["config", "view"];
    let got = render(&args, &berthctl_with_env(&args, &env, None));
    let path = golden_dir().join("config-view.txt");
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &got).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(want == got, "config view differs from {} (- golden, + now):\n{}", path.display(), diff(&want, &got));
}

#[test]
fn normalise_replaces_what_varies_and_keeps_columns_aligned() {
    assert_eq!(normalise("uid: 0f8b5a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n"), "uid: <uid>\n");
    assert_eq!(normalise("  resourceVersion: \"42\"\n"), "  resourceVersion: <rv>\n");
    assert_eq!(normalise("    \"resourceVersion\": \"7\",\n"), "    \"resourceVersion\": <rv>,\n");
    assert_eq!(normalise("  creationTimestamp: \"2024-05-01T12:00:00Z\"\n"), "  creationTimestamp: \"<timestamp>\"\n");
    assert_eq!(normalise("  \"startedAt\": \"2024-05-01T12:00:00Z\",\n"), "  \"startedAt\": \"<timestamp>\",\n");
    assert_eq!(normalise("Start Time:   Wed, 01 May 2024 12:00:00 +0000\n"), "Start Time:   <date>\n");
    assert_eq!(normalise("web-1   1/1     Running   0          5s\n"), "web-1   1/1     Running   0          <age>\n");
    assert_eq!(normalise("web   12s   172.30.1.5\n"), normalise("web   7s    172.30.1.5\n"));
    assert_eq!(normalise("port 8080s3 and 80\n"), "port 8080s3 and 80\n");
}
