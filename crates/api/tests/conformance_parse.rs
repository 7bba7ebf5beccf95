//! Every conformance manifest parses, and its JSON form keeps every field the
//! file set; every refused one is refused with a message naming the problem.

use std::path::PathBuf;

fn dir(sub: &str) -> PathBuf {
    berth_api::manifest::conformance_dir().unwrap_or_else(|e| panic!("{e}")).join(sub)
}

#[test]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
fn should_parse_every_conformance_manifest_and_keep_its_fields() {
    let mut count = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(dir("manifests")).expect("conformance dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        match berth_api::manifest::parse(&text) {
            Err(e) => failures.push(format!("{}: {e}", path.display())),
            Ok(objs) => {
                let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
                    .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
                    .filter(|v: &serde_json::Value| !v.is_null())
                    .collect();
                assert_eq!(docs.len(), objs.len(), "{}", path.display());
                for (want, obj) in docs.iter().zip(&objs) {
                    let errs = berth_api::manifest::missing_fields(want, &obj.to_json_value());
                    for e in errs {
                        failures.push(format!("{}: {e}", path.display()));
                    }
                }
                count += objs.len();
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count > 20, "only {count} objects");
}

#[test]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
fn should_refuse_every_refused_manifest() {
    for entry in std::fs::read_dir(dir("manifests/refused")).expect("refused dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let err = berth_api::manifest::parse(&text).expect_err(&path.display().to_string());
        assert!(!err.to_string().is_empty());
        eprintln!("{}: {err}", path.display());
    }
}
