//! berthctl's config file, as an operator uses it: set a cluster and a
//! context, switch to it, and every command then talks to that server in
//! that namespace; flags still win; mistakes are named.

use std::path::Path;
use std::process::Output;

use berth_e2e::{Apiserver, berthctl_with_env, free_port};

fn run(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    berthctl_with_env(args, &[("BERTHCONFIG", config)], stdin)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "berthctl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "berthctl should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn should_use_the_current_context_for_server_and_namespace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = Apiserver::start(&dir.path().join("data"), free_port(), &[]).await;
    let config = dir.path().join("home/.berth/config");

    // With no config and the default server unreachable, the error says
    // what was tried and how to point berthctl elsewhere.
    let e = err(run(&config, &["--server", "http://127.0.0.1:1", "get", "pods"], None));
    assert!(e.starts_with("error: cannot reach the API server at http://127.0.0.1:1"), "{e}");
    assert!(e.contains("--server URL, BERTH_SERVER or a context"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    assert_eq!(ok(run(&config, &["config", "set-cluster", "local", "--server", &api.url()], None)), "Cluster \"local\" set.\n");
    assert_eq!(ok(run(&config, &["config", "set-credentials", "me", "--token", "t0ken"], None)), "User \"me\" set.\n");
    assert_eq!(ok(run(&config, &["config", "set-context", "dev", "--cluster", "local", "-n", "team"], None)), "Context \"dev\" created.\n");
    assert_eq!(ok(run(&config, &["config", "set-context", "other", "--cluster", "local"], None)), "Context \"other\" created.\n");
    let e = err(run(&config, &["config", "current-context"], None));
    assert_eq!(e, "error: current-context is not set (berthctl config use-context NAME sets it)\n");
    let e = err(run(&config, &["config", "use-context", "prod"], None));
    assert_eq!(e, "error: no context exists with the name: \"prod\" (berthctl config get-contexts lists them)\n");
    assert_eq!(ok(run(&config, &["config", "use-context", "dev"], None)), "Switched to context \"dev\".\n");
    assert_eq!(ok(run(&config, &["config", "current-context"], None)), "dev\n");
    assert_eq!(
        ok(run(&config, &["config", "get-contexts"], None)),
        "CURRENT   NAME    CLUSTER   AUTHINFO   NAMESPACE\n*         dev     local                team\n          other   local\n"
    );
    let view = ok(run(&config, &["config", "view"], None));
    assert!(view.contains("current-context: dev") && view.contains(&format!("server: {}", api.url())), "{view}");
    assert!(view.contains("token: REDACTED") && !view.contains("t0ken"), "{view}");
    assert!(ok(run(&config, &["config", "view", "--raw"], None)).contains("token: t0ken"));

    // Commands now go to the context's server, in its namespace.
    ok(run(&config, &["apply", "-f", "-"], Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n")));
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";
    assert_eq!(ok(run(&config, &["apply", "-f", "-"], Some(cm))), "configmap/settings created\n");
    assert_eq!(ok(run(&config, &["get", "configmaps", "-o", "name"], None)), "configmap/settings\n");
    assert!(ok(run(&config, &["get", "configmap", "settings", "-o", "yaml"], None)).contains("  namespace: team\n"));
    assert_eq!(ok(run(&config, &["get", "configmaps", "-n", "default", "-o", "name"], None)), "", "-n wins over the context");
    // --context picks another one for one command; --server wins over the context's.
    assert_eq!(ok(run(&config, &["--context", "other", "get", "configmaps", "-o", "name"], None)), "");
    let e = err(run(&config, &["--server", "http://127.0.0.1:1", "get", "configmaps"], None));
    assert!(e.contains("http://127.0.0.1:1"), "{e}");
    let e = err(run(&config, &["--context", "nope", "get", "pods"], None));
    assert_eq!(e, format!("error: context \"nope\" not found in {} (contexts: dev, other)\n", config.display()));

    // The file is kubeconfig-shaped, readable by its owner only.
    let text = std::fs::read_to_string(&config).expect("config written");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(yaml["kind"].as_str(), Some("Config"));
    assert_eq!(yaml["contexts"][0]["context"]["namespace"].as_str(), Some("team"));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&config).expect("file").permissions().mode() & 0o777, 0o600);

    assert_eq!(
        ok(run(&config, &["config", "delete-context", "other"], None)),
        format!("deleted context other from {}\n", config.display())
    );
}
