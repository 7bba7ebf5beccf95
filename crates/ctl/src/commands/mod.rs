//! berthctl's verbs, one module each, and what they share: the connection,
//! the namespace, kind lookup and output.
//!
//! # Layout
//! - [`apply`], [`create`]: write manifests.
//! - [`get`], [`describe`]: read objects.
//! - [`delete`], [`label`], [`scale`]: change objects.
//! - [`rolling_update`]: move an RC's replicas to a new template.
//! - [`config`]: the config file's clusters, users and contexts.
//! - [`logs`], [`exec`], [`top`]: a pod's log, commands in its containers,
//!   usage of nodes and pods (the apiserver relays them from the kubelets).
//! - [`snapshot`]: save a snapshot of the store, check one.
//! - [`version`]: print the client version.
//! - [`cordon`] (also uncordon), [`drain`]: take nodes out of service.
//! - [`wait`]: block until objects reach a condition.
//! - [`api_resources`], [`completion`]: what the server serves; shell completion.
//! - [`explain`]: the documentation of a kind or field.

pub mod api_resources;
pub mod apply;
pub mod auth;
pub mod certs;
pub mod completion;
pub mod config;
pub mod cordon;
pub mod create;
pub mod delete;
pub mod describe;
pub mod drain;
pub mod exec;
pub mod explain;
pub mod get;
pub mod label;
pub mod logs;
pub mod rolling_update;
pub mod scale;
pub mod snapshot;
pub mod top;
pub mod version;
pub mod wait;

use std::io::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::resource::find_kind;
use berth_api::{KindInfo, Object};
use berth_client::kubeconfig::Resolved;
use berth_client::{Client, ClientConfig, ConnectArgs};

/// The namespace used when `-n` is not given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What every command gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Ctx {
    config: ClientConfig,
    /// `-n`.
    namespace: Option<String>,
    /// The current context's namespace, used when `-n` is not given.
    context_namespace: Option<String>,
}

impl Ctx {
    /// The flags alone, no config file.
    pub fn new(connect: &ConnectArgs, namespace: Option<String>) -> Ctx {
        Ctx { config: connect.into(), namespace, context_namespace: None }
    }

    /// The flags over a context of the config file: `server_given` says
    /// whether `--server` (or `BERTH_SERVER`) was set, which then wins
    /// over the context's server; other flags win when set.
    pub fn with_context(connect: &ConnectArgs, server_given: bool, namespace: Option<String>, context: &Resolved) -> Ctx {
        let mut config: ClientConfig = connect.into();
        context.apply(&mut config, server_given);
        Ctx { config, namespace, context_namespace: context.namespace.clone().filter(|n| !n.is_empty()) }
    }

    /// Connects to the API server (only commands that need it do). A
    /// server that cannot be reached is named with the ways to point
    /// berthctl elsewhere.
    pub async fn client(&self) -> Result<Client> {
        match Client::connect(&self.config).await {
            Ok(c) => Ok(c),
            Err(e @ berth_client::Error::Connect { .. }) => Err(anyhow!(
                "{:#} - is the cluster running? Point berthctl at another API server with --server URL, BERTH_SERVER or a context (berthctl config use-context NAME)",
                anyhow::Error::from(e)
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The namespace of `-n`, else the context's, else `default`.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().or(self.context_namespace.as_deref()).unwrap_or(DEFAULT_NAMESPACE)
    }

    /// The namespace when `-n` was given explicitly.
    pub fn explicit_namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The namespace to address an object of `info`'s kind in: `-n`'s for
    /// namespaced kinds, none for cluster-scoped ones.
    pub fn namespace_for(&self, info: &KindInfo) -> &str {
        if info.namespaced { self.namespace() } else { "" }
    }

    /// Fills in `-n`'s namespace where a manifest left it out, and refuses
    /// a manifest whose namespace contradicts an explicit `-n`.
    pub fn place(&self, object: &mut Object) -> Result<()> {
        let Some(info) = object.info() else { bail!("the object has no kind") };
        if !info.namespaced {
            return Ok(());
        }
        let ns = self.namespace().to_string();
        let explicit = self.explicit_namespace().map(str::to_string);
        let Some(meta) = object.metadata_mut() else { return Ok(()) };
        if meta.namespace.is_empty() {
            meta.namespace = ns;
        } else if let Some(explicit) = explicit.filter(|e| *e != meta.namespace) {
            bail!(
                "the namespace from the provided object {:?} does not match the namespace {:?}. You must pass '--namespace={}' to perform this operation.",
                meta.namespace,
                explicit,
                meta.namespace
            );
        }
        Ok(())
    }
}

/// Looks up a kind by any of its names (`po`, `pods`, `Pod`).
pub fn resolve_kind(name: &str) -> Result<&'static KindInfo> {
    find_kind(name).ok_or_else(|| anyhow!("the server doesn't have a resource type {name:?}"))
}

/// Splits `KIND/NAME`, or None when there is no slash.
pub fn split_ref(s: &str) -> Result<Option<(&'static KindInfo, String)>> {
    match s.split_once('/') {
        Some((kind, name)) => {
            if name.is_empty() {
                bail!("arguments in resource/name form must have a single resource and name");
            }
            Ok(Some((resolve_kind(kind)?, name.to_string())))
        }
        None => Ok(None),
    }
}

/// The resources the positional arguments name: `KIND NAME...`,
/// `KIND,KIND NAME...` or `KIND/NAME...`, grouped by kind in the order given.
pub fn targets(args: &[String]) -> Result<Vec<(&'static KindInfo, Vec<String>)>> {
    let Some(first) = args.first() else { bail!("you must specify the type of resource") };
    if first.contains('/') {
        let mut groups: Vec<(&'static KindInfo, Vec<String>)> = Vec::new();
        for a in args {
            let Some((info, name)) = split_ref(a)? else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'berthctl get resource/<resource_name>' instead of 'berthctl get resource resource/<resource_name>')"
                );
            };
            match groups.iter_mut().find(|(i, _)| i.kind == info.kind) {
                Some((_, names)) => names.push(name),
                None => groups.push((info, vec![name])),
            }
        }
        return Ok(groups);
    }
    if let Some(a) = args[1..].iter().find(|a| a.contains('/')) {
        bail!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'berthctl get resource/<resource_name>' instead of 'berthctl get resource {a}')"
        );
    }
    // `po,svc` names several kinds at once.
    let mut groups: Vec<(&'static KindInfo, Vec<String>)> = Vec::new();
    for kind in first.split(',').filter(|k| !k.is_empty()) {
        let info = resolve_kind(kind)?;
        if !groups.iter().any(|(i, _)| i.kind == info.kind) {
            groups.push((info, args[1..].to_vec()));
        }
    }
    if groups.is_empty() {
        bail!("you must specify the type of resource");
    }
    Ok(groups)
}

/// `pod`, or `lease.coordination.k8s.io` for kinds outside the core group,
/// as kubectl names a kind in its messages.
pub fn kind_ref(info: &KindInfo) -> String {
    match info.group() {
        "" => info.singular.to_string(),
        g => format!("{}.{g}", info.singular),
    }
}

/// `pod/web`
pub fn object_ref(info: &KindInfo, name: &str) -> String {
    format!("{}/{}", kind_ref(info), name)
}

/// The pod an argument names: `NAME` or `pod/NAME` (`verb` says what
/// cannot be done to other kinds).
pub fn pod_name(arg: &str, verb: &str) -> Result<String> {
    match split_ref(arg)? {
        Some((info, name)) if info.kind == "Pod" => Ok(name),
        Some((info, _)) => bail!("cannot {verb} {}: only pods are supported", info.plural),
        None if arg.is_empty() => bail!("a pod name is required"),
        None => Ok(arg.to_string()),
    }
}

/// Writes to stdout at once; a closed pipe (`| head`) ends berthctl quietly.
pub fn out(text: &str) {
    out_bytes(text.as_bytes());
}

/// [`out`] for bytes that need not be UTF-8 (logs, a command's output).
pub fn out_bytes(data: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(data).and_then(|_| stdout.flush());
    if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        std::process::exit(0);
    }
}

/// Prints an error that does not stop the command (kubectl goes on with
/// the next name), in the same one-line form as a final error.
pub fn warn_error(err: &anyhow::Error) {
    eprintln!("{}", crate::error::render(err));
}

/// How a command that went on past errors ends, as kubectl does: every
/// error but the last printed as a warning, the last one returned (so it is
/// printed last and sets the exit code); success when there was none.
pub fn finish(mut errors: Vec<anyhow::Error>) -> Result<()> {
    match errors.pop() {
        Some(last) => {
            errors.iter().for_each(warn_error);
            Err(last)
        }
        None => Ok(()),
    }
}

/// JSON as kubectl prints it: indented by four spaces, ending in a newline.
pub fn to_json_pretty(value: &serde_json::Value) -> String {
    use serde::Serialize as _;
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    value.serialize(&mut ser).expect("a JSON value always serializes");
    let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// YAML of a JSON value.
pub fn to_yaml(value: &serde_json::Value) -> Result<String> {
    serde_yaml::to_string(value).context("printing YAML")
}

/// The resourceVersion of an object as a watch revision.
pub fn revision(object: &Object) -> u64 {
    object.metadata().and_then(|m| m.resource_version.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn kinds(groups: &[(&'static KindInfo, Vec<String>)]) -> Vec<(&'static str, Vec<String>)> {
        groups.iter().map(|(i, n)| (i.kind, n.clone())).collect()
    }

    #[test]
    fn should_read_targets_in_every_form() {
        let g = targets(&args(&["po", "a", "b"])).expect("valid");
        assert_eq!(kinds(&g), [("Pod", args(&["a", "b"]))]);
        let g = targets(&args(&["po,svc"])).expect("valid");
        assert_eq!(kinds(&g), [("Pod", vec![]), ("Service", vec![])]);
        let g = targets(&args(&["po/a", "rc/b", "pod/c"])).expect("valid");
        assert_eq!(kinds(&g), [("Pod", args(&["a", "c"])), ("ReplicationController", args(&["b"]))]);
        assert!(targets(&args(&["po/a", "b"])).is_err());
        assert!(targets(&args(&["po", "rc/b"])).is_err());
        let err = targets(&args(&["foo"])).expect_err("unknown").to_string();
        assert_eq!(err, "the server doesn't have a resource type \"foo\"");
    }
}
