//! `get`: lists or fetches objects and prints them as a table, JSON, YAML,
//! names, a JSONPath template or custom columns; `-w` then follows their
//! changes (a table redrawn in place on a terminal, one line per change
//! otherwise).

use std::io::IsTerminal as _;

use anyhow::{Context as _, Result, bail};
use berth_api::manifest::list_to_json;
use berth_api::pb::api::object::Kind as K;
use berth_api::printers::event_last_seen;
use berth_api::{KindInfo, Object};
use berth_client::{Client, ListParams};
use chrono::Utc;
use futures::StreamExt as _;

use super::{Ctx, object_ref, out, targets, to_json_pretty, to_yaml, warn_error};
use crate::custom_columns::Columns;
use crate::error;
use crate::jsonpath::Template;
use crate::live_table::LiveTable;
use crate::printers::{self, Options, Table, render_row};

/// How `get` prints objects.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The table with the kind's extra columns.
    Wide,
    Yaml,
    Json,
    /// `kind/name` per line.
    Name,
    /// `jsonpath=TEMPLATE`: the template rendered against the JSON
    /// (one object, or the list), with no newline added.
    JsonPath(Template),
    /// `custom-columns=HEADER:PATH,...`: a table of those columns.
    CustomColumns(Columns),
}

/// Reads `-o`'s value as kubectl does: a format name, or `jsonpath=` /
/// `custom-columns=` followed by their template.
pub fn parse_output(s: &str) -> Result<Output, String> {
    match s.split_once('=') {
        Some(("jsonpath", t)) => Template::parse(t).map(Output::JsonPath),
        Some(("custom-columns", spec)) => Columns::parse(spec).map(Output::CustomColumns),
        _ => match s {
            "wide" => Ok(Output::Wide),
            "yaml" => Ok(Output::Yaml),
            "json" => Ok(Output::Json),
            "name" => Ok(Output::Name),
            "jsonpath" | "custom-columns" => Err(format!("{s} format specified but no template given: write -o {s}=...")),
            _ => Err(format!(
                "unable to match a printer suitable for the output format {s:?}, allowed formats are: custom-columns,json,jsonpath,name,wide,yaml"
            )),
        },
    }
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Kind of object (pods, po, Pod, rc, svc, ...), or KIND/NAME.
    pub kind: String,
    /// Names of objects (all objects of the kind when none is given).
    pub names: Vec<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE or
    /// custom-columns=HEADER:PATH,...
    #[arg(short = 'o', long, value_parser = parse_output)]
    pub output: Option<Output>,
    /// After printing, watch for changes and print each one.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Label selector (`app=web,tier!=db`, `env in (a,b)`, `!canary`).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector (metadata.name, metadata.namespace, spec.nodeName, status.phase).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Add a LABELS column.
    #[arg(long)]
    pub show_labels: bool,
    /// Print tables without their header line.
    #[arg(long)]
    pub no_headers: bool,
}

/// The objects of one kind that were found.
struct Found {
    info: &'static KindInfo,
    items: Vec<Object>,
    /// The revision a list was read at (0 for objects fetched by name).
    revision: u64,
}

pub async fn run(ctx: &Ctx, args: GetArgs) -> Result<()> {
    let mut all = vec![args.kind.clone()];
    all.extend(args.names.iter().cloned());
    let groups = targets(&all)?;
    let named: usize = groups.iter().map(|(_, n)| n.len()).sum();
    if named > 0 && (args.selector.is_some() || args.field_selector.is_some()) {
        bail!("name cannot be provided when a selector is specified");
    }
    if named > 0 && args.all_namespaces {
        bail!("a resource cannot be retrieved by name across all namespaces");
    }
    if args.watch && groups.len() > 1 {
        bail!("you may only specify a single resource type with --watch");
    }
    let client = ctx.client().await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (info, names) in &groups {
        let ns = if args.all_namespaces { "" } else { ctx.namespace_for(info) };
        let f = if names.is_empty() || args.watch {
            let params = params(&args, names);
            let (found, missing) = list(&client, info, ns, &params, names).await?;
            errors.extend(missing);
            found
        } else {
            let mut items = Vec::new();
            for name in names {
                match client.get_object(info.kind, ns, name).await {
                    Ok(o) => items.push(o),
                    Err(e) => errors.push(error::api(e, info, name)),
                }
            }
            Found { info, items, revision: 0 }
        };
        found.push(f);
    }

    let options =
        Options { wide: matches!(args.output, Some(Output::Wide)), namespace_column: args.all_namespaces, show_labels: args.show_labels };
    if args.watch {
        let Some((info, names)) = groups.into_iter().next() else { return Ok(()) };
        let initial = found.pop().expect("one group was fetched");
        if let Some(last) = errors.pop() {
            errors.iter().for_each(warn_error);
            return Err(last);
        }
        let ns = if args.all_namespaces { "" } else { ctx.namespace_for(info) };
        return watch(&client, &args, options, ns, &names, initial).await;
    }

    match &args.output {
        None | Some(Output::Wide) => print_tables(&found, options, args.no_headers, errors.is_empty(), ctx, &args),
        Some(Output::Name) => {
            for f in &found {
                for o in &f.items {
                    out(&format!("{}\n", object_ref(f.info, o.name())));
                }
            }
        }
        Some(Output::CustomColumns(columns)) => {
            let objects: Vec<_> = found.iter().flat_map(|f| f.items.iter().map(Object::to_json_value)).collect();
            if !objects.is_empty() {
                out(&columns.render(&objects, args.no_headers));
            }
        }
        Some(format @ (Output::Json | Output::Yaml | Output::JsonPath(_))) => {
            let value = if named == 1 && found.len() == 1 && found[0].items.len() == 1 {
                found[0].items[0].to_json_value()
            } else if named == 1 && errors.len() == 1 {
                serde_json::Value::Null
            } else if found.len() == 1 {
                list_to_json(found[0].info.kind, &found[0].items, found[0].revision)
            } else {
                let items: Vec<_> = found.iter().flat_map(|f| f.items.iter().map(Object::to_json_value)).collect();
                serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
            };
            if !value.is_null() {
                out(&match format {
                    Output::JsonPath(template) => template.execute(&value),
                    Output::Json => to_json_pretty(&value),
                    _ => to_yaml(&value)?,
                });
            }
        }
    }
    super::finish(errors)
}

fn params(args: &GetArgs, names: &[String]) -> ListParams {
    let mut p =
        ListParams::default().labels(args.selector.clone().unwrap_or_default()).fields(args.field_selector.clone().unwrap_or_default());
    if let [name] = names {
        p.field_selector = format!("metadata.name={name}");
    }
    p
}

/// Lists a kind, keeping only `names` when given; a name not found is an error.
async fn list(
    client: &Client,
    info: &'static KindInfo,
    ns: &str,
    params: &ListParams,
    names: &[String],
) -> Result<(Found, Vec<anyhow::Error>)> {
    let resp = client.list_objects(info.kind, ns, params).await.map_err(|e| error::api(e, info, ""))?;
    let mut items = resp.items;
    let mut missing = Vec::new();
    if !names.is_empty() {
        items.retain(|o| names.iter().any(|n| n == o.name()));
        for n in names {
            if !items.iter().any(|o| o.name() == n) {
                missing.push(error::api(tonic::Status::not_found("").into(), info, n));
            }
        }
    }
    sort(&mut items);
    Ok((Found { info, items, revision: resp.resource_version }, missing))
}

/// Events by when they were last seen, everything else by namespace and name.
fn sort(items: &mut [Object]) {
    items.sort_by(|a, b| match (&a.kind, &b.kind) {
        (Some(K::Event(x)), Some(K::Event(y))) => event_last_seen(x).cmp(event_last_seen(y)),
        _ => (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())),
    });
}

fn print_tables(found: &[Found], options: Options, no_headers: bool, no_errors: bool, ctx: &Ctx, args: &GetArgs) {
    let now = Utc::now();
    let mut first = true;
    for f in found.iter().filter(|f| !f.items.is_empty()) {
        let mut table = Table::new(f.info, options);
        for o in &f.items {
            table.push(o, now);
        }
        if !first {
            out("\n");
        }
        first = false;
        out(&table.render(no_headers));
    }
    if first && no_errors {
        let namespaced = found.iter().any(|f| f.info.namespaced);
        if namespaced && !args.all_namespaces {
            eprintln!("No resources found in {} namespace.", ctx.namespace());
        } else {
            eprintln!("No resources found");
        }
    }
}

/// Prints the current objects, then one line (or document) per change,
/// until the stream ends or berthctl is interrupted (kubectl's way when
/// stdout is not a terminal; on a terminal tables are redrawn in place).
async fn watch(client: &Client, args: &GetArgs, options: Options, ns: &str, names: &[String], initial: Found) -> Result<()> {
    if std::io::stdout().is_terminal() && matches!(args.output, None | Some(Output::Wide) | Some(Output::CustomColumns(_))) {
        return watch_live(client, args, options, ns, names, initial).await;
    }
    let info = initial.info;
    let mut table = Table::new(info, options);
    let now = Utc::now();
    for o in &initial.items {
        table.push(o, now);
    }
    let widths = table.widths(args.no_headers);
    // Custom columns are as wide as the first objects make them; later
    // changes are one row each in those widths.
    let column_widths = match &args.output {
        Some(Output::CustomColumns(c)) => {
            let rows: Vec<_> = initial.items.iter().map(|o| c.row(&o.to_json_value())).collect();
            printers::widths(&c.headers(), &rows, args.no_headers)
        }
        _ => Vec::new(),
    };
    let mut header_printed = args.no_headers;
    let mut printed_documents = 0usize;
    let mut print = |o: &Object, header_printed: &mut bool| -> Result<()> {
        match &args.output {
            None | Some(Output::Wide) => {
                if !*header_printed {
                    out(&render_row(&table.headers, &widths));
                    *header_printed = true;
                }
                out(&render_row(&table.row(o, Utc::now()), &widths));
            }
            Some(Output::Name) => out(&format!("{}\n", object_ref(info, o.name()))),
            Some(Output::Json) => out(&to_json_pretty(&o.to_json_value())),
            Some(Output::Yaml) => {
                if printed_documents > 0 {
                    out("---\n");
                }
                out(&to_yaml(&o.to_json_value())?);
            }
            Some(Output::JsonPath(template)) => out(&template.execute(&o.to_json_value())),
            Some(Output::CustomColumns(columns)) => {
                if !*header_printed {
                    out(&render_row(&columns.headers(), &column_widths));
                    *header_printed = true;
                }
                out(&render_row(&columns.row(&o.to_json_value()), &column_widths));
            }
        }
        printed_documents += 1;
        Ok(())
    };
    for o in &initial.items {
        print(o, &mut header_printed)?;
    }

    let params = params(args, names);
    follow(client, info, ns, &params, names, initial.revision, |change| match change {
        Change::Event(_, o) => print(&o, &mut header_printed),
        // Printing the objects as they are now.
        Change::Relisted(items) => items.iter().try_for_each(|o| print(o, &mut header_printed)),
    })
    .await
}

/// What the watch saw.
enum Change {
    /// ADDED, MODIFIED or DELETED, and the object.
    Event(String, Box<Object>),
    /// The revision was compacted away and the kind was listed again: every object as it is now.
    Relisted(Vec<Object>),
}

/// Follows the changes of a kind from `revision` on (only objects named in
/// `names`, when given), calling `handle` for each, until the server fails
/// or berthctl is interrupted. A closed stream is resumed; a compacted
/// revision is recovered by listing again.
async fn follow(
    client: &Client,
    info: &'static KindInfo,
    ns: &str,
    params: &ListParams,
    names: &[String],
    mut revision: u64,
    mut handle: impl FnMut(Change) -> Result<()>,
) -> Result<()> {
    let wanted = |o: &Object| names.is_empty() || names.iter().any(|n| n == o.name());
    loop {
        let mut too_old = false;
        match client.watch_objects(info.kind, ns, params, revision).await {
            Ok(mut stream) => {
                while let Some(ev) = stream.next().await {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) if e.is_too_old() => {
                            too_old = true;
                            break;
                        }
                        Err(e) => return Err(error::api(e, info, "")).context("watching"),
                    };
                    revision = revision.max(ev.resource_version);
                    if ev.r#type == "BOOKMARK" {
                        continue;
                    }
                    let Some(o) = ev.object else { continue };
                    if wanted(&o) {
                        handle(Change::Event(ev.r#type, Box::new(o)))?;
                    }
                }
            }
            Err(e) if e.is_too_old() => too_old = true,
            Err(e) => return Err(error::api(e, info, "")).context("watching"),
        }
        if !too_old {
            // The server closed the stream: resume from the last revision seen.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        let resp = client.list_objects(info.kind, ns, params).await.map_err(|e| error::api(e, info, ""))?;
        let mut items = resp.items;
        sort(&mut items);
        items.retain(wanted);
        handle(Change::Relisted(items))?;
        revision = resp.resource_version;
    }
}

/// The cells of an object's row.
type RowFn<'a> = Box<dyn Fn(&Object) -> Vec<String> + 'a>;

/// `get -w` on a terminal, for tables: one row per object, redrawn in place.
async fn watch_live(client: &Client, args: &GetArgs, options: Options, ns: &str, names: &[String], initial: Found) -> Result<()> {
    let info = initial.info;
    let table = Table::new(info, options);
    let (headers, row): (Vec<String>, RowFn) = match &args.output {
        Some(Output::CustomColumns(c)) => (c.headers(), Box::new(|o: &Object| c.row(&o.to_json_value()))),
        _ => (table.headers.clone(), Box::new(|o: &Object| table.row(o, Utc::now()))),
    };
    let mut live = LiveTable::new(headers, args.no_headers);
    for o in &initial.items {
        live.upsert(o.namespace(), o.name(), row(o));
    }
    out(&live.frame());
    let params = params(args, names);
    follow(client, info, ns, &params, names, initial.revision, |change| {
        match change {
            Change::Event(t, o) if t == "DELETED" => live.remove(o.namespace(), o.name()),
            Change::Event(_, o) => live.upsert(o.namespace(), o.name(), row(&o)),
            Change::Relisted(items) => {
                live.clear();
                for o in &items {
                    live.upsert(o.namespace(), o.name(), row(o));
                }
            }
        }
        out(&live.frame());
        Ok(())
    })
    .await
}
