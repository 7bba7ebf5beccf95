//! The paths of a kind and their operations: list, create, read, replace,
//! patch, delete, `/status` and `/scale`, with the query parameters kubectl
//! looks for (`fieldValidation` on every PATCH) and the patch media types.

use serde_json::{Map, Value, json};

use super::schemas::{list_schema_name, message_schema_name};
use super::{META_V1, SCALE, SCALED_KINDS, group_version, gvk, kind_gvk, reference};
use crate::KindInfo;

/// One query parameter.
fn query(name: &str, type_name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": type_name, "uniqueItems": true } })
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string", "uniqueItems": true } })
}

fn dry_run() -> Value {
    query("dryRun", "string", "When present (All), the request is checked but nothing is stored.")
}

fn field_manager() -> Value {
    query("fieldManager", "string", "A name associated with the actor or entity that is making these changes.")
}

/// What kubectl looks for on a kind's PATCH to decide that the server validates fields.
fn field_validation() -> Value {
    query(
        "fieldValidation",
        "string",
        "How the server treats fields it does not know or finds twice: Ignore, Warn or Strict (the server rejects the request).",
    )
}

fn list_parameters() -> Vec<Value> {
    vec![
        query("allowWatchBookmarks", "boolean", "With watch, asks for BOOKMARK events that carry the latest resourceVersion."),
        query("continue", "string", "The continue token of the previous page."),
        query("fieldSelector", "string", "Restricts the list to objects whose fields match (metadata.name=x,status.phase!=Running)."),
        query("labelSelector", "string", "Restricts the list to objects whose labels match (app=web,tier in (a,b))."),
        query("limit", "integer", "The most items to return; the rest is behind the continue token."),
        query("resourceVersion", "string", "The revision to list at or watch from."),
        query("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
        query("timeoutSeconds", "integer", "How long a watch lasts."),
        query("watch", "boolean", "Watch for changes instead of listing: a stream of ADDED, MODIFIED and DELETED events."),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "integer", "Seconds before the object is deleted; 0 deletes at once."),
        query("propagationPolicy", "string", "How dependents are collected: Orphan, Background or Foreground."),
    ]
}

/// A JSON body or reply of the given schema.
fn json_content(schema: &str) -> Value {
    json!({ "application/json": { "schema": reference(schema) } })
}

fn responses(ok_schema: &str, created: bool) -> Value {
    let mut r = json!({
        "200": { "description": "OK", "content": json_content(ok_schema) },
        "401": { "description": "Unauthorized" },
    });
    if created {
        r["201"] = json!({ "description": "Created", "content": json_content(ok_schema) });
    }
    r
}

/// One operation; `gvk` is what kubectl looks up operations by.
struct Operation<'a> {
    id: String,
    description: String,
    action: &'a str,
    gvk: Value,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: Value,
}

impl Operation<'_> {
    fn into_json(self) -> Value {
        let mut op = json!({
            "operationId": self.id,
            "description": self.description,
            "parameters": self.parameters,
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = self.request_body {
            op["requestBody"] = body;
        }
        op
    }
}

/// The operation ID's middle: `CoreV1`, `RbacAuthorizationV1`, `CoordinationV1`.
fn operation_group(api_version: &str) -> String {
    let (group, version) = group_version(api_version);
    let group = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
    group.split('.').chain([version]).map(capitalize).collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|first| first.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The paths of one kind: its collection, its items (with `/status` and
/// `/scale` when it has them) and, for namespaced kinds, the list across
/// namespaces.
pub(super) fn add_paths(paths: &mut Map<String, Value>, kind: &KindInfo) {
    let base = if kind.api_version.contains('/') { format!("/apis/{}", kind.api_version) } else { format!("/api/{}", kind.api_version) };
    let scope = if kind.namespaced { "/namespaces/{namespace}" } else { "" };
    let collection = format!("{base}{scope}/{}", kind.plural);
    let item = format!("{collection}/{{name}}");
    let k = kind.kind;
    let id = |verb: &str, suffix: &str| {
        let namespaced = if kind.namespaced { "Namespaced" } else { "" };
        format!("{verb}{}{namespaced}{k}{suffix}", operation_group(kind.api_version))
    };
    let schema = message_schema_name(k);
    let list_schema = list_schema_name(kind);
    let status = format!("{META_V1}.Status");
    let gvk = kind_gvk(kind);

    let mut collection_parameters = vec![query("pretty", "string", "If 'true', the output is pretty printed.")];
    let mut item_parameters = vec![path_parameter("name", &format!("name of the {k}")), collection_parameters[0].clone()];
    if kind.namespaced {
        let ns = path_parameter("namespace", "object name and auth scope, such as for teams and projects");
        collection_parameters.push(ns.clone());
        item_parameters.push(ns);
    }

    let op = |id: String, description: String, action: &'static str, parameters: Vec<Value>, body: Option<Value>, responses: Value| {
        Operation { id, description, action, gvk: gvk.clone(), parameters, request_body: body, responses }.into_json()
    };
    let write_body = || Some(json!({ "required": true, "content": json_content(&schema) }));
    let write_parameters = || vec![dry_run(), field_manager(), field_validation()];
    let patch = |id: String, description: String, target: &str| {
        op(id, description, "patch", patch_parameters(), Some(patch_body(target)), responses(target, true))
    };

    paths.insert(
        collection.clone(),
        json!({
            "parameters": collection_parameters,
            "get": op(id("list", ""), format!("list or watch objects of kind {k}"), "list", list_parameters(), None, responses(&list_schema, false)),
            "post": op(id("create", ""), format!("create a {k}"), "post", write_parameters(), write_body(), responses(&schema, true)),
            "delete": op(
                id("deleteCollection", ""),
                format!("delete collection of {k}"),
                "deletecollection",
                [list_parameters(), delete_parameters()].concat(),
                None,
                responses(&status, false),
            ),
        }),
    );
    paths.insert(
        item.clone(),
        json!({
            "parameters": item_parameters,
            "get": op(id("read", ""), format!("read the specified {k}"), "get", vec![], None, responses(&schema, false)),
            "put": op(id("replace", ""), format!("replace the specified {k}"), "put", write_parameters(), write_body(), responses(&schema, true)),
            "patch": patch(id("patch", ""), format!("partially update the specified {k}"), &schema),
            "delete": op(id("delete", ""), format!("delete a {k}"), "delete", delete_parameters(), None, responses(&status, false)),
        }),
    );
    if kind.namespaced {
        paths.insert(
            format!("{base}/{}", kind.plural),
            json!({
                "parameters": [collection_parameters[0].clone()],
                "get": op(
                    format!("list{}{k}ForAllNamespaces", operation_group(kind.api_version)),
                    format!("list or watch objects of kind {k} in all namespaces"),
                    "list",
                    list_parameters(),
                    None,
                    responses(&list_schema, false),
                ),
            }),
        );
    }
    if kind.has_status {
        paths.insert(
            format!("{item}/status"),
            json!({
                "parameters": item_parameters,
                "get": op(id("read", "Status"), format!("read status of the specified {k}"), "get", vec![], None, responses(&schema, false)),
                "put": op(id("replace", "Status"), format!("replace status of the specified {k}"), "put", write_parameters(), write_body(), responses(&schema, true)),
                "patch": patch(id("patch", "Status"), format!("partially update status of the specified {k}"), &schema),
            }),
        );
    }
    if SCALED_KINDS.contains(&k) {
        let scale_op = |id: String, description: String, action: &'static str, parameters: Vec<Value>, body: Option<Value>| {
            let gvk = gvk_of_scale();
            let created = action == "put";
            Operation { id, description, action, gvk, parameters, request_body: body, responses: responses(SCALE, created) }.into_json()
        };
        paths.insert(
            format!("{item}/scale"),
            json!({
                "parameters": item_parameters,
                "get": scale_op(id("read", "Scale"), format!("read scale of the specified {k}"), "get", vec![], None),
                "put": scale_op(
                    id("replace", "Scale"),
                    format!("replace scale of the specified {k}"),
                    "put",
                    write_parameters(),
                    Some(json!({ "required": true, "content": json_content(SCALE) })),
                ),
                "patch": scale_op(id("patch", "Scale"), format!("partially update scale of the specified {k}"), "patch", patch_parameters(), Some(patch_body(SCALE))),
            }),
        );
    }
}

fn gvk_of_scale() -> Value {
    gvk("autoscaling", "v1", "Scale")
}

/// A PATCH's query parameters: `fieldValidation` is what kubectl checks for.
fn patch_parameters() -> Vec<Value> {
    vec![
        dry_run(),
        field_manager(),
        field_validation(),
        query("force", "boolean", "Server-side apply: take over fields other managers own."),
    ]
}

/// A PATCH's body: the patch types the server takes. Listing strategic merge
/// patch makes kubectl compute `apply`'s patches from the schemas.
fn patch_body(schema: &str) -> Value {
    let content: Map<String, Value> = [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ]
    .into_iter()
    .map(|media_type| (media_type.to_string(), json!({ "schema": reference(schema) })))
    .collect();
    json!({ "required": true, "content": content })
}
