//! The shared conformance manifests through the real binaries: every file in
//! `manifests/` applies with berthctl into a fresh apiserver and `get -o json`
//! gives back every field the file set; every file in `manifests/refused/` is
//! refused with a message naming the problem, and nothing from it is stored.

use std::collections::BTreeSet;

use berth_api::pb::core::{Namespace, ObjectMeta};
use berth_e2e::{Apiserver, berthctl, conformance_dir, free_port};

fn docs(text: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
async fn should_apply_every_conformance_manifest_and_give_back_its_fields() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::start(tmp.path(), free_port(), &[]).await;
    let client = server.client().await;
    let mut files: Vec<_> = std::fs::read_dir(conformance_dir().join("manifests"))
        .expect("conformance manifests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    // Namespaces the manifests use but do not create are created first.
    let mut texts = Vec::new();
    let mut used = BTreeSet::new();
    let mut created = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        for d in docs(&text) {
            if d["kind"] == "Namespace" {
                created.insert(d["metadata"]["name"].as_str().unwrap_or_default().to_string());
            } else if let Some(ns) = d["metadata"]["namespace"].as_str() {
                used.insert(ns.to_string());
            }
        }
        texts.push((f.clone(), text));
    }
    for ns in used.difference(&created) {
        let _ =
            client.create(Namespace { metadata: Some(ObjectMeta { name: ns.clone(), ..Default::default() }), ..Default::default() }).await;
    }
    // Namespace manifests first, so the rest can land in them.
    texts.sort_by_key(|(_, t)| !docs(t).iter().any(|d| d["kind"] == "Namespace"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, text) in &texts {
        let out = berthctl(&server.url(), &["apply", "-f", "-"], Some(text));
        if !out.status.success() {
            failures.push(format!("{}: apply failed: {}", path.display(), String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        for want in docs(text) {
            let kind = want["kind"].as_str().unwrap_or_default();
            let name = want["metadata"]["name"].as_str().unwrap_or_default();
            let ns = want["metadata"]["namespace"].as_str().unwrap_or("default");
            let out = berthctl(&server.url(), &["get", kind, name, "-n", ns, "-o", "json"], None);
            if !out.status.success() {
                failures.push(format!("{}: get {kind}/{name}: {}", path.display(), String::from_utf8_lossy(&out.stderr)));
                continue;
            }
            let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("get -o json prints JSON");
            let errs = berth_api::manifest::missing_fields(&want, &got);
            failures.extend(errs.into_iter().map(|e| format!("{} {kind}/{name}: {e}", path.display())));
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25, "only {checked} objects checked");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
async fn should_refuse_every_refused_manifest_and_store_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Apiserver::start(tmp.path(), free_port(), &[]).await;
    for entry in std::fs::read_dir(conformance_dir().join("manifests/refused")).expect("refused manifests") {
        let path = entry.expect("entry").path();
        let out = berthctl(&server.url(), &["apply", "-f", path.to_str().expect("utf-8 path")], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", path.display());
        assert!(stderr.starts_with("error") || stderr.starts_with("Error"), "{}: {stderr}", path.display());
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        let text = std::fs::read_to_string(&path).expect("readable");
        for d in docs(&text) {
            let kind = d["kind"].as_str().unwrap_or_default();
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            if berth_api::resource::find_kind(kind).is_some() {
                let out = berthctl(&server.url(), &["get", kind, name], None);
                assert!(!out.status.success(), "{kind}/{name} from a refused manifest was stored");
            }
        }
    }
}
