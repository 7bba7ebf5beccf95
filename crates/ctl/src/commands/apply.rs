//! `apply -f`: creates each object, or merges the manifest into the live
//! object (kubectl's three-way merge) and updates it when that changes
//! anything.

use anyhow::{Context as _, Result, bail};
use berth_api::Object;
use berth_api::manifest;
use berth_api::pb::api::object::Kind as K;
use berth_client::Client;
use serde_json::Value;

use super::{Ctx, object_ref, out};
use crate::error;
use crate::manifests::{self, Manifest};
use crate::merge::{self, LAST_APPLIED};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Manifest file, directory (its .yaml, .yml and .json files, in name
    /// order) or `-` for stdin; may be repeated.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// What apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

pub async fn run(ctx: &Ctx, args: ApplyArgs) -> Result<()> {
    // Every document is read before anything is written.
    let mut manifests = manifests::read(&args.files)?;
    if manifests.is_empty() {
        bail!("no objects passed to apply");
    }
    for m in &mut manifests {
        ctx.place(&mut m.object).with_context(|| format!("error when applying {}", describe(m)))?;
        if m.object.name().is_empty() {
            bail!("error when applying {}: metadata.name is required (apply cannot use generateName; use create)", describe(m));
        }
    }
    let client = ctx.client().await?;
    for m in manifests {
        let what = describe(&m);
        let info = m.object.info().expect("parsed objects have a kind");
        let name = m.object.name().to_string();
        let outcome = apply_one(&client, m.object).await.with_context(|| format!("error when applying {what}"))?;
        out(&format!("{} {}\n", object_ref(info, &name), outcome.as_str()));
    }
    Ok(())
}

/// `pod/web from "file.yaml"`
fn describe(m: &Manifest) -> String {
    let kind = m.object.info().map(super::kind_ref).unwrap_or_default();
    format!("{kind}/{} from {:?}", m.object.name(), m.source)
}

/// Applies one object (its namespace already set).
pub async fn apply_one(client: &Client, manifest: Object) -> Result<Outcome> {
    let info = manifest.info().expect("parsed objects have a kind");
    let (ns, name) = (manifest.namespace().to_string(), manifest.name().to_string());
    let mut new = manifest.to_json_value();
    // A manifest saved from `get -o yaml` carries an old last-applied annotation: not part of the intent.
    merge::remove_annotation(&mut new, LAST_APPLIED);
    let last_applied = last_applied_text(&new);

    for _ in 0..3 {
        let current = match client.get_object(info.kind, &ns, &name).await {
            Ok(current) => current,
            Err(e) if e.is_not_found() => {
                let mut obj = new.clone();
                merge::annotations_mut(&mut obj).insert(LAST_APPLIED.into(), Value::String(last_applied.clone()));
                let obj = manifest::from_json(obj).context("adding the last-applied annotation")?;
                match client.create_object(obj, false).await {
                    Ok(_) => return Ok(Outcome::Created),
                    // Created meanwhile by someone else: update it instead.
                    Err(e) if e.is_already_exists() => continue,
                    Err(e) => return Err(error::api(e, info, &name)),
                }
            }
            Err(e) => return Err(error::api(e, info, &name)),
        };
        let desired = merged(&current, &new, &last_applied)?;
        let manifest_rv = manifest.metadata().map(|m| m.resource_version.clone()).unwrap_or_default();
        let current_rv = current.metadata().map(|m| m.resource_version.as_str()).unwrap_or("");
        // A stale resourceVersion in the manifest always goes to the server, which refuses it.
        let precondition_matches = manifest_rv.is_empty() || manifest_rv == current_rv;
        if precondition_matches && comparable(&desired) == comparable(&current) {
            return Ok(Outcome::Unchanged);
        }
        return match client.update_object(desired, false).await {
            Ok(_) => Ok(Outcome::Configured),
            Err(e) => Err(error::api(e, info, &name)),
        };
    }
    bail!("the object was created and deleted concurrently three times; try again")
}

/// The manifest as the last-applied annotation records it: without
/// resourceVersion and status, which are not intent.
fn last_applied_text(new: &Value) -> String {
    let mut v = new.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    if let Some(root) = v.as_object_mut() {
        root.remove("status");
    }
    v.to_string()
}

/// The object to send: the manifest merged into the live object, keeping
/// its status, with its resourceVersion unless the manifest carries one.
fn merged(current: &Object, new: &Value, last_applied: &str) -> Result<Object> {
    let live = current.to_json_value();
    let last: Option<Value> = current.metadata().and_then(|m| m.annotations.get(LAST_APPLIED)).and_then(|s| serde_json::from_str(s).ok());
    let mut out = merge::three_way(&live, last.as_ref(), new);
    merge::annotations_mut(&mut out).insert(LAST_APPLIED.into(), Value::String(last_applied.to_string()));
    let manifest_rv = new.pointer("/metadata/resourceVersion").cloned();
    let live_rv = live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
    merge::metadata_mut(&mut out).insert("resourceVersion".into(), manifest_rv.unwrap_or(live_rv));
    if let Some(root) = out.as_object_mut() {
        match live.get("status") {
            Some(s) => root.insert("status".into(), s.clone()),
            None => root.remove("status"),
        };
    }
    manifest::from_json(out).context("merging the manifest into the live object")
}

/// What decides "unchanged": the object without status and
/// resourceVersion, with a Secret's write-only stringData folded into data.
fn comparable(object: &Object) -> Value {
    let mut o = object.clone();
    o.take_status();
    if let Some(m) = o.metadata_mut() {
        m.resource_version.clear();
    }
    if let Some(K::Secret(s)) = &mut o.kind {
        for (k, v) in std::mem::take(&mut s.string_data) {
            s.data.insert(k, v.into_bytes());
        }
    }
    o.to_json_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(yaml: &str) -> Object {
        manifest::parse(yaml).expect("parses").remove(0)
    }

    #[test]
    fn should_keep_server_fields_and_status_when_merging() {
        let live = obj(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, resourceVersion: \"7\", uid: u1}\nspec: {nodeName: n1, restartPolicy: Always, containers: [{name: c, image: a}]}\nstatus: {phase: Running}\n",
        );
        let new = obj("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: c, image: b}]}\n")
            .to_json_value();
        let desired = merged(&live, &new, &last_applied_text(&new)).expect("merges").to_json_value();
        assert_eq!(desired["spec"]["nodeName"], "n1");
        assert_eq!(desired["spec"]["containers"][0]["image"], "b");
        assert_eq!(desired["status"]["phase"], "Running");
        assert_eq!(desired["metadata"]["resourceVersion"], "7");
        assert_eq!(desired["metadata"]["uid"], "u1");
        assert!(desired["metadata"]["annotations"][LAST_APPLIED].as_str().is_some_and(|s| s.contains("\"b\"")));
    }

    #[test]
    fn should_see_a_reapplied_manifest_as_unchanged() {
        let new = obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {k: v}\n").to_json_value();
        let mut live = new.clone();
        merge::annotations_mut(&mut live).insert(LAST_APPLIED.into(), Value::String(last_applied_text(&new)));
        merge::metadata_mut(&mut live).insert("resourceVersion".into(), Value::String("3".into()));
        merge::metadata_mut(&mut live).insert("creationTimestamp".into(), Value::String("2024-01-01T00:00:00Z".into()));
        let live = manifest::from_json(live).expect("valid");
        let desired = merged(&live, &new, &last_applied_text(&new)).expect("merges");
        assert_eq!(comparable(&desired), comparable(&live));

        let changed = obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {k: w}\n").to_json_value();
        let desired = merged(&live, &changed, &last_applied_text(&changed)).expect("merges");
        assert_ne!(comparable(&desired), comparable(&live));
    }

    #[test]
    fn should_keep_the_manifest_resource_version_as_precondition() {
        let live = obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default, resourceVersion: \"9\"}\n");
        let new = obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default, resourceVersion: \"4\"}\n").to_json_value();
        let desired = merged(&live, &new, &last_applied_text(&new)).expect("merges");
        assert_eq!(desired.metadata().map(|m| m.resource_version.as_str()), Some("4"));
        assert!(!last_applied_text(&new).contains("resourceVersion"));
    }
}
