//! `-f FILE|DIR|-`: reads every manifest first, so that a mistake anywhere
//! is found before anything is written.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use berth_api::Object;
use berth_api::manifest;

/// One object of a manifest, with where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from, or `STDIN`.
    pub source: String,
    pub object: Object,
}

/// Reads and parses every `-f` argument: a file, `-` for stdin, or a
/// directory whose `.yaml`, `.yml` and `.json` files are read in name order.
pub fn read(files: &[String]) -> Result<Vec<Manifest>> {
    if files.is_empty() {
        bail!("must specify one of -f and -k");
    }
    let mut out = Vec::new();
    for f in files {
        if f == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading manifests from stdin")?;
            parse_into("STDIN", &text, &mut out)?;
            continue;
        }
        let path = Path::new(f);
        if path.is_dir() {
            for file in manifest_files(path)? {
                read_file(&file, &mut out)?;
            }
        } else if path.exists() {
            read_file(path, &mut out)?;
        } else {
            bail!("the path \"{f}\" does not exist");
        }
    }
    Ok(out)
}

/// The manifest files of a directory (not recursive), in name order.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading directory {}", dir.display()))?.path();
        let is_manifest = path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, out: &mut Vec<Manifest>) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_into(&path.display().to_string(), &text, out)
}

fn parse_into(source: &str, text: &str, out: &mut Vec<Manifest>) -> Result<()> {
    let objects = manifest::parse(text).with_context(|| format!("error parsing {source}"))?;
    out.extend(objects.into_iter().map(|object| Manifest { source: source.to_string(), object }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_a_directory_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).expect("write");
        write("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n");
        write("a.json", r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#);
        write("notes.txt", "not a manifest");
        write("c.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: d}\n");
        let got = read(&[dir.path().display().to_string()]).expect("reads");
        let names: Vec<&str> = got.iter().map(|m| m.object.name()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn should_name_the_file_of_a_bad_document() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containerz: []}\n")
            .expect("write");
        let err = format!("{:#}", read(&[path.display().to_string()]).expect_err("refused"));
        assert!(err.contains("bad.yaml") && err.contains("document 2") && err.contains("containerz"), "{err}");
        let missing = read(&["/nonexistent/x.yaml".to_string()]).expect_err("refused").to_string();
        assert_eq!(missing, "the path \"/nonexistent/x.yaml\" does not exist");
    }
}
