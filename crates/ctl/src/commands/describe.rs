//! `describe`: fetches objects and what relates to them (events, a
//! controller's pods, a node's pods, a service's endpoints, a namespace's
//! quotas and limit ranges) and prints the readable view.

use std::collections::HashMap;

use anyhow::Result;
use berth_api::pb::api::object::Kind as K;
use berth_api::pb::core::{Endpoints, Event, LimitRange, Pod, ResourceQuota};
use berth_api::printers::event_last_seen;
use berth_api::{Object, Resource};
use berth_client::{Client, ListParams};
use chrono::Utc;

use super::{Ctx, out, targets};
use crate::describe::{Related, describe, is_about};
use crate::error;

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// Kind of object, or KIND/NAME.
    pub kind: String,
    /// Names of objects (all objects of the kind when none is given).
    pub names: Vec<String>,
    /// Describe the objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

pub async fn run(ctx: &Ctx, args: DescribeArgs) -> Result<()> {
    let mut all = vec![args.kind.clone()];
    all.extend(args.names.iter().cloned());
    let groups = targets(&all)?;
    let client = ctx.client().await?;
    let mut objects: Vec<Object> = Vec::new();
    let mut errors = Vec::new();
    for (info, names) in &groups {
        let ns = ctx.namespace_for(info);
        if names.is_empty() {
            let params = ListParams::default().labels(args.selector.clone().unwrap_or_default());
            let resp = client.list_objects(info.kind, ns, &params).await.map_err(|e| error::api(e, info, ""))?;
            let mut items = resp.items;
            items.sort_by(|a, b| a.name().cmp(b.name()));
            objects.extend(items);
        } else {
            for name in names {
                match client.get_object(info.kind, ns, name).await {
                    Ok(o) => objects.push(o),
                    Err(e) => errors.push(error::api(e, info, name)),
                }
            }
        }
    }
    if objects.is_empty() && errors.is_empty() {
        eprintln!("No resources found in {} namespace.", ctx.namespace());
    }

    let mut events_by_ns: HashMap<String, Vec<Event>> = HashMap::new();
    let now = Utc::now();
    for (i, object) in objects.iter().enumerate() {
        let related = related(&client, object, &mut events_by_ns).await?;
        if i > 0 {
            out("\n\n");
        }
        out(&describe(object, &related, now));
    }
    super::finish(errors)
}

/// Events, pods and endpoints of an object. Events are listed once per
/// namespace and filtered here, since the server selects events only by
/// metadata fields.
async fn related(client: &Client, object: &Object, events_by_ns: &mut HashMap<String, Vec<Event>>) -> Result<Related> {
    let ns = object.namespace().to_string();
    if !events_by_ns.contains_key(&ns) {
        // Events about cluster-scoped objects may live in any namespace.
        let (events, _) = client.list::<Event>(&ns, &ListParams::default()).await.map_err(|e| error::api(e, &Event::INFO, ""))?;
        events_by_ns.insert(ns.clone(), events);
    }
    let mut events: Vec<Event> = events_by_ns[&ns].iter().filter(|e| is_about(e, object)).cloned().collect();
    events.sort_by(|a, b| event_last_seen(a).cmp(event_last_seen(b)));
    let mut related = Related { events, ..Default::default() };
    match &object.kind {
        Some(K::ReplicationController(rc)) => {
            let selector = rc.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
            if !selector.is_empty() {
                let sel = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                let (pods, _) =
                    client.list::<Pod>(&ns, &ListParams::default().labels(sel)).await.map_err(|e| error::api(e, &Pod::INFO, ""))?;
                related.pods = Some(pods);
            } else {
                related.pods = Some(Vec::new());
            }
        }
        Some(K::Node(n)) => {
            let params = ListParams::default().fields(format!("spec.nodeName={}", n.name()));
            let (mut pods, _) = client.list::<Pod>("", &params).await.map_err(|e| error::api(e, &Pod::INFO, ""))?;
            pods.retain(|p| p.status.as_ref().is_none_or(|s| s.phase != "Succeeded" && s.phase != "Failed"));
            pods.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
            related.pods = Some(pods);
        }
        Some(K::Namespace(n)) => {
            let name = n.name();
            let params = ListParams::default();
            related.quotas = client.list::<ResourceQuota>(name, &params).await.map_err(|e| error::api(e, &ResourceQuota::INFO, ""))?.0;
            related.limit_ranges = client.list::<LimitRange>(name, &params).await.map_err(|e| error::api(e, &LimitRange::INFO, ""))?.0;
        }
        Some(K::Service(_)) => match client.get::<Endpoints>(&ns, object.name()).await {
            Ok(ep) => related.endpoints = Some(ep),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(error::api(e, &Endpoints::INFO, object.name())),
        },
        _ => {}
    }
    Ok(related)
}
