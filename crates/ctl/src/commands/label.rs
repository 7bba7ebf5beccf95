//! `label`: adds, changes (with `--overwrite`) and removes (`key-`) labels.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use berth_api::{KindInfo, names};
use berth_client::{Client, ListParams};

use super::{Ctx, object_ref, out, targets};
use crate::error;

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// KIND NAME... or KIND/NAME..., then the changes: `key=value` sets a
    /// label, `key-` removes one.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Allow changing the value of a label that is already set.
    #[arg(long)]
    pub overwrite: bool,
    /// Label the objects of KIND matching this selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Label every object of KIND in the namespace.
    #[arg(long)]
    pub all: bool,
}

/// The label edits of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// Splits the arguments into resources and label changes, checking the
/// changes' syntax.
pub fn split_args(args: &[String]) -> Result<(Vec<String>, Changes)> {
    let mut resources = Vec::new();
    let mut changes = Changes::default();
    for a in args {
        if let Some((k, v)) = a.split_once('=') {
            let mut errs = names::qualified_name(k);
            errs.extend(names::label_value(v));
            if !errs.is_empty() {
                bail!("invalid label spec {a:?}: {}", errs.join("; "));
            }
            changes.set.insert(k.to_string(), v.to_string());
        } else if let Some(k) = a.strip_suffix('-').filter(|_| !resources.is_empty()) {
            let errs = names::qualified_name(k);
            if !errs.is_empty() {
                bail!("invalid label spec {a:?}: {}", errs.join("; "));
            }
            changes.remove.push(k.to_string());
        } else if changes.set.is_empty() && changes.remove.is_empty() {
            resources.push(a.clone());
        } else {
            bail!("invalid label spec {a:?}: a label is key=value or key-");
        }
    }
    if changes.set.is_empty() && changes.remove.is_empty() {
        bail!("at least one label update is required");
    }
    if let Some(k) = changes.remove.iter().find(|k| changes.set.contains_key(*k)) {
        bail!("can not both modify and remove the label {k:?} in the same command");
    }
    Ok((resources, changes))
}

/// Applies the changes to a label map. Returns whether anything changed,
/// or an error for a changed value without `overwrite`.
pub fn edit(labels: &mut BTreeMap<String, String>, changes: &Changes, overwrite: bool) -> Result<bool> {
    let mut changed = false;
    for (k, v) in &changes.set {
        match labels.get(k) {
            Some(old) if old == v => {}
            Some(old) if !overwrite => bail!("'{k}' already has a value ({old}), and --overwrite is false"),
            _ => {
                labels.insert(k.clone(), v.clone());
                changed = true;
            }
        }
    }
    for k in &changes.remove {
        if labels.remove(k).is_some() {
            changed = true;
        } else {
            eprintln!("label {k:?} not found.");
        }
    }
    Ok(changed)
}

pub async fn run(ctx: &Ctx, args: LabelArgs) -> Result<()> {
    let (resources, changes) = split_args(&args.args)?;
    let selecting = args.selector.is_some() || args.all;
    let client = ctx.client().await?;
    let mut work: Vec<(&'static KindInfo, String)> = Vec::new();
    for (info, names) in targets(&resources)? {
        match (names.is_empty(), selecting) {
            (false, true) => bail!("name cannot be provided when a selector is specified"),
            (true, false) => bail!("resource(s) were provided, but no name was specified"),
            (false, false) => work.extend(names.into_iter().map(|n| (info, n))),
            (true, true) => {
                let params = ListParams::default().labels(args.selector.clone().unwrap_or_default());
                let resp = client.list_objects(info.kind, ctx.namespace_for(info), &params).await.map_err(|e| error::api(e, info, ""))?;
                work.extend(resp.items.iter().map(|o| (info, o.name().to_string())));
            }
        }
    }
    let mut errors = Vec::new();
    for (info, name) in work {
        match label_one(&client, info, ctx.namespace_for(info), &name, &changes, args.overwrite).await {
            Ok(true) => {
                let verb = if changes.set.is_empty() { "unlabeled" } else { "labeled" };
                out(&format!("{} {verb}\n", object_ref(info, &name)));
            }
            Ok(false) => out(&format!("{} not labeled\n", object_ref(info, &name))),
            Err(e) => errors.push(e),
        }
    }
    super::finish(errors)
}

/// Edits one object's labels, with its resourceVersion as precondition,
/// retrying when someone else wrote it meanwhile.
async fn label_one(client: &Client, info: &'static KindInfo, ns: &str, name: &str, changes: &Changes, overwrite: bool) -> Result<bool> {
    loop {
        let mut obj = client.get_object(info.kind, ns, name).await.map_err(|e| error::api(e, info, name))?;
        let Some(meta) = obj.metadata_mut() else { bail!("the server returned an empty object") };
        if !edit(&mut meta.labels, changes, overwrite)? {
            return Ok(false);
        }
        match client.update_object(obj, false).await {
            Ok(_) => return Ok(true),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(error::api(e, info, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn should_split_resources_from_changes() {
        let (res, ch) = split_args(&args(&["pods", "web", "db", "app=x", "old-"])).expect("valid");
        assert_eq!(res, ["pods", "web", "db"]);
        assert_eq!(ch.set.get("app").map(String::as_str), Some("x"));
        assert_eq!(ch.remove, ["old"]);
        assert!(split_args(&args(&["pods", "web"])).is_err());
        assert!(split_args(&args(&["pods", "web", "bad key=x"])).is_err());
        assert!(split_args(&args(&["pods", "web", "a=x", "a-"])).is_err());
    }

    #[test]
    fn should_refuse_to_overwrite_without_the_flag() {
        let mut labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let (_, ch) = split_args(&args(&["po", "p", "app=db"])).expect("valid");
        let err = edit(&mut labels, &ch, false).expect_err("refused").to_string();
        assert_eq!(err, "'app' already has a value (web), and --overwrite is false");
        assert!(edit(&mut labels, &ch, true).expect("allowed"));
        assert_eq!(labels["app"], "db");
        assert!(!edit(&mut labels, &ch, false).expect("same value is fine"));
    }
}
