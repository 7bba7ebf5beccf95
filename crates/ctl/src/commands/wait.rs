//! `wait --for=...`: blocks until objects reach a state, following them
//! with a watch, as `kubectl wait` does:
//! - `--for=condition=Ready` (`=True` implied) or `--for=condition=Ready=False`:
//!   an entry of `status.conditions` with that type (any case) has that
//!   status; works for every kind with `status.conditions`;
//! - `--for=delete`: the object is gone (or replaced by one with another uid);
//! - `--for=jsonpath={.status.phase}=Running`: the expression gives that
//!   value (or, without `=VALUE`, gives anything).
//!
//! Each object gets `--timeout` (default 30s); when it passes the error is
//! kubectl's `timed out waiting for the condition on pods/NAME`. While it
//! waits, each change of what the object shows (`condition Ready is False`)
//! is reported on stderr with the time waited.

use std::time::Duration;

use anyhow::{Result, bail};
use berth_api::{KindInfo, Object};
use berth_base::duration::parse_duration;
use berth_client::{Client, ListParams};
use futures::StreamExt as _;
use serde_json::Value;
use tokio::time::Instant;

use super::{Ctx, object_ref, out, revision, targets};
use crate::error;
use crate::jsonpath::{Path, format_value};
use crate::progress::Progress;

/// What to wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum For {
    Delete,
    Condition { name: String, status: String },
    JsonPath { path: Path, value: Option<String> },
}

/// Reads `--for`'s value.
pub fn parse_for(s: &str) -> Result<For, String> {
    if s.eq_ignore_ascii_case("delete") {
        return Ok(For::Delete);
    }
    if let Some(c) = s.strip_prefix("condition=") {
        let (name, status) = c.split_once('=').unwrap_or((c, "True"));
        if name.is_empty() {
            return Err(format!("{s:?}: name the condition, like --for=condition=Ready"));
        }
        return Ok(For::Condition { name: name.to_string(), status: status.to_string() });
    }
    if let Some(j) = s.strip_prefix("jsonpath=") {
        // `{.status.phase}=Running`: the value follows the closing brace;
        // unbraced, it follows the first `=`.
        let (expr, value) = match j.strip_prefix('{').and_then(|r| r.find('}').map(|end| (&r[..end], &r[end + 1..]))) {
            Some((expr, "")) => (expr, None),
            Some((expr, rest)) => match rest.strip_prefix('=') {
                Some(v) => (expr, Some(v)),
                None => return Err(format!("{s:?}: write --for=jsonpath='{{.status.phase}}'=Running")),
            },
            None => match j.split_once('=') {
                Some((expr, v)) => (expr, Some(v)),
                None => (j, None),
            },
        };
        let path = Path::parse_relaxed(expr)?;
        return Ok(For::JsonPath { path, value: value.map(str::to_string) });
    }
    Err(format!("unrecognized condition: {s:?}: use delete, condition=NAME[=VALUE] or jsonpath={{PATH}}[=VALUE]"))
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// KIND/NAME..., KIND NAME..., or KIND with -l or --all.
    pub resources: Vec<String>,
    /// delete, condition=NAME[=VALUE] or jsonpath={PATH}[=VALUE].
    #[arg(long = "for", required = true, value_parser = parse_for)]
    pub condition: For,
    /// How long to wait for each object, like 30s or 5m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Wait for the objects of KIND matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Wait for every object of KIND in the namespace.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(ctx: &Ctx, args: WaitArgs) -> Result<()> {
    if args.resources.is_empty() {
        bail!("you must specify what to wait for: KIND/NAME, or KIND with -l or --all");
    }
    let selecting = args.selector.is_some() || args.all;
    let client = ctx.client().await?;
    let mut work: Vec<(&'static KindInfo, String, String)> = Vec::new(); // kind, namespace, name
    for (info, names) in targets(&args.resources)? {
        let ns = ctx.namespace_for(info).to_string();
        match (names.is_empty(), selecting) {
            (false, true) => bail!("name cannot be provided when a selector is specified"),
            (true, false) => bail!("resource(s) were provided, but no name was specified (use -l or --all to wait for many)"),
            (false, false) => work.extend(names.into_iter().map(|n| (info, ns.clone(), n))),
            (true, true) => {
                let params = ListParams::default().labels(args.selector.clone().unwrap_or_default());
                let resp = client.list_objects(info.kind, &ns, &params).await.map_err(|e| error::api(e, info, ""))?;
                work.extend(resp.items.iter().map(|o| (info, ns.clone(), o.name().to_string())));
            }
        }
    }
    if work.is_empty() {
        bail!("no matching resources found");
    }
    let mut errors = Vec::new();
    for (info, ns, name) in work {
        match wait_one(&client, info, &ns, &name, &args.condition, args.timeout).await {
            Ok(true) => out(&format!("{} condition met\n", object_ref(info, &name))),
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
    }
    super::finish(errors)
}

/// Waits for one object; true once the condition is met, false when a
/// delete was awaited for an object that did not exist at all.
async fn wait_one(client: &Client, info: &'static KindInfo, ns: &str, name: &str, cond: &For, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let timed_out = || {
        let plural = match info.group() {
            "" => info.plural.to_string(),
            g => format!("{}.{g}", info.plural),
        };
        anyhow::anyhow!("timed out waiting for the condition on {plural}/{name}")
    };
    // The first look: a missing object is an error unless we wait for its deletion.
    let first = match client.get_object(info.kind, ns, name).await {
        Ok(o) => o,
        Err(e) if e.is_not_found() && *cond == For::Delete => return Ok(false),
        Err(e) => return Err(error::api(e, info, name)),
    };
    if *cond != For::Delete && met(cond, &first) {
        return Ok(true);
    }
    if timeout.is_zero() {
        return Err(timed_out());
    }
    let uid = first.metadata().map(|m| m.uid.clone()).unwrap_or_default();
    let mut progress = Progress::new();
    let started = Instant::now();
    let message = |o: &Object| format!("waiting for {}: {}", object_ref(info, name), state(cond, o));
    // The first line has no time yet; later ones say how long it has been.
    progress.report(&message(&first));
    let mut report = |o: &Object| progress.report_after(&message(o), started.elapsed());
    match tokio::time::timeout_at(deadline, follow(client, info, ns, name, cond, &uid, revision(&first), &mut report)).await {
        Ok(result) => result.map(|()| true),
        Err(_) => Err(timed_out()),
    }
}

/// Watches one object from revision `from` until the condition holds,
/// calling `seen` with each version of it that does not meet it.
#[allow(clippy::too_many_arguments)]
async fn follow(
    client: &Client,
    info: &'static KindInfo,
    ns: &str,
    name: &str,
    cond: &For,
    uid: &str,
    from: u64,
    seen: &mut impl FnMut(&Object),
) -> Result<()> {
    let params = ListParams::default().fields(format!("metadata.name={name}"));
    let mut from = from;
    loop {
        let mut stream = match client.watch_objects(info.kind, ns, &params, from).await {
            Ok(s) => s,
            Err(e) if e.is_too_old() => {
                // History is gone: look at the object as it is now, then watch on.
                match client.get_object(info.kind, ns, name).await {
                    Ok(o) if *cond == For::Delete && o.metadata().is_some_and(|m| m.uid != uid) => return Ok(()),
                    Ok(o) if *cond != For::Delete && met(cond, &o) => return Ok(()),
                    Ok(o) => {
                        seen(&o);
                        from = revision(&o);
                    }
                    Err(e) if e.is_not_found() && *cond == For::Delete => return Ok(()),
                    Err(e) if e.is_not_found() => from = 0,
                    Err(e) => return Err(error::api(e, info, name)),
                }
                continue;
            }
            Err(e) => return Err(error::api(e, info, name)),
        };
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) if e.is_too_old() => break,
                Err(e) => return Err(error::api(e, info, name)),
            };
            from = from.max(ev.resource_version);
            let Some(o) = ev.object.filter(|_| ev.r#type != "BOOKMARK") else { continue };
            let same = o.metadata().is_some_and(|m| m.uid == uid);
            let done = match cond {
                For::Delete => ev.r#type == "DELETED" || !same,
                // A deleted object waits for its successor.
                _ => ev.r#type != "DELETED" && met(cond, &o),
            };
            if done {
                return Ok(());
            }
            if ev.r#type != "DELETED" {
                seen(&o);
            }
        }
        // The server ended the stream: resume from the last revision seen.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the object shows of what is awaited, for the progress line.
fn state(cond: &For, object: &Object) -> String {
    let json = object.to_json_value();
    match cond {
        For::Delete if json.pointer("/metadata/deletionTimestamp").is_some() => "terminating".into(),
        For::Delete => "not deleted yet".into(),
        For::Condition { name, .. } => {
            let conditions = json.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
            let status = conditions
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(name)))
                .and_then(|c| c.get("status").and_then(Value::as_str).map(str::to_string));
            match status {
                Some(s) => format!("condition {name} is {s}"),
                None => format!("condition {name} is not reported yet"),
            }
        }
        For::JsonPath { path, .. } => {
            let found: Vec<String> = path.find(&json).into_iter().map(format_value).collect();
            if found.is_empty() { "the JSONPath finds nothing yet".into() } else { format!("the JSONPath gives {}", found.join(" ")) }
        }
    }
}

/// Whether an object meets a condition or JSONPath test.
fn met(cond: &For, object: &Object) -> bool {
    let json = object.to_json_value();
    match cond {
        For::Delete => false,
        For::Condition { name, status } => condition_met(&json, name, status),
        For::JsonPath { path, value } => {
            let found = path.find(&json);
            match value {
                None => !found.is_empty(),
                Some(v) => found.len() == 1 && format_value(found[0]) == *v,
            }
        }
    }
}

/// Whether `status.conditions` has an entry of type `name` with `status`
/// (both in any case), not older than the object's generation.
fn condition_met(json: &Value, name: &str, status: &str) -> bool {
    let generation = json.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let Some(conditions) = json.pointer("/status/conditions").and_then(Value::as_array) else { return false };
    conditions.iter().any(|c| {
        let is = |field: &str, want: &str| c.get(field).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(want));
        let current = c.get("observedGeneration").and_then(Value::as_i64).is_none_or(|g| g >= generation);
        is("type", name) && is("status", status) && current
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn should_read_every_form_of_for() {
        assert_eq!(parse_for("delete"), Ok(For::Delete));
        assert_eq!(parse_for("condition=Ready"), Ok(For::Condition { name: "Ready".into(), status: "True".into() }));
        assert_eq!(parse_for("condition=Ready=False"), Ok(For::Condition { name: "Ready".into(), status: "False".into() }));
        let For::JsonPath { value, .. } = parse_for("jsonpath={.status.phase}=Running").expect("valid") else { panic!("jsonpath") };
        assert_eq!(value.as_deref(), Some("Running"));
        let For::JsonPath { value, .. } = parse_for("jsonpath=.status.podIP").expect("valid") else { panic!("jsonpath") };
        assert_eq!(value, None);
        assert!(parse_for("ready").expect_err("unknown").starts_with("unrecognized condition: \"ready\""));
    }

    #[test]
    fn should_match_conditions_in_any_case() {
        let pod = json!({"metadata": {"generation": 1}, "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "False"}]}});
        assert!(condition_met(&pod, "ready", "true"));
        assert!(!condition_met(&pod, "Ready", "False"));
        assert!(condition_met(&pod, "PodScheduled", "False"));
        assert!(!condition_met(&pod, "Initialized", "True"));
        assert!(!condition_met(&json!({}), "Ready", "True"));
    }
}
