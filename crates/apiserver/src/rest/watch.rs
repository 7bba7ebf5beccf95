//! Watch streams as Kubernetes sends them: one JSON object per line,
//! `{"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": …}`, flushed
//! per event; with `get -w`'s Accept header each object is a one-row Table
//! (column definitions on the first only). A compacted revision answers an
//! ERROR event carrying a 410 Expired Status, then the stream ends, as
//! kube-apiserver's watch cache does; `timeoutSeconds` ends it too.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use berth_api::KindInfo;
use berth_api::pb::api::WatchEvent;
use berth_api::printers::IncludeObject;
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, StatusCode};
use prost::Message as _;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use super::status::Problem;
use super::{Query, Rest, wants_table};
use crate::authn::Authenticated;
use crate::error::Error;

/// Starts a watch and answers its stream.
pub async fn serve(
    rest: &Rest,
    who: Option<&Authenticated>,
    info: &'static KindInfo,
    ns: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Response {
    let start = || -> Result<_, Error> {
        let rv = query.resource_version()?;
        let bookmarks = query.flag("allowWatchBookmarks")?;
        let timeout = query.int("timeoutSeconds")?.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
        let events =
            rest.handlers.watch(who, info.kind, ns, query.string("labelSelector"), query.string("fieldSelector"), rv, bookmarks)?;
        Ok((events, timeout))
    };
    let (events, timeout) = match start() {
        Ok(x) => x,
        // A compacted revision is an ERROR event in a 200 stream, as kube-apiserver's watch cache answers it.
        Err(e @ Error::Gone { .. }) => {
            let line = error_line(e, info).unwrap_or_default();
            return (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], line).into_response();
        }
        Err(e) => return Problem::from_error(e, Some(info)).into_response(),
    };
    let table = wants_table(headers).then(|| IncludeObject::parse(query.string("includeObject")));
    let mut first_row = true;
    let lines = ReceiverStream::new(events)
        .map(move |item| {
            let (line, last) = match item {
                Ok(encoded) => match WatchEvent::decode(encoded.as_bytes().clone()) {
                    Ok(ev) => (event_line(info, ev, table, &mut first_row), false),
                    Err(e) => (error_line(Error::Internal(format!("undecodable watch event: {e}")), info), true),
                },
                // The server stopping ends the stream; clients reconnect elsewhere.
                Err(Error::Unavailable(_)) => (None, true),
                Err(e) => (error_line(e, info), true),
            };
            (line, last)
        })
        .scan(false, |ended, (line, last)| {
            if *ended {
                return std::future::ready(None);
            }
            *ended = last;
            std::future::ready(Some(line))
        })
        .filter_map(|line| std::future::ready(line.map(Ok::<Bytes, Infallible>)));
    let mut stopping = rest.stopping.clone();
    let end = async move {
        let stop = stopping.stopped();
        match timeout {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep(t) => {}
                    _ = stop => {}
                }
            }
            None => stop.await,
        }
    };
    let body = Body::from_stream(lines.take_until(Box::pin(end)));
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One event as a line.
fn event_line(info: &KindInfo, ev: WatchEvent, table: Option<IncludeObject>, first_row: &mut bool) -> Option<Bytes> {
    let object = ev.object.unwrap_or_default();
    let value = match (ev.r#type.as_str(), table) {
        ("BOOKMARK", _) => json!({
            "kind": info.kind,
            "apiVersion": info.api_version,
            "metadata": {"resourceVersion": ev.resource_version.to_string()},
        }),
        (_, Some(include)) => {
            let rv = object.metadata().map(|m| m.resource_version.clone()).unwrap_or_default();
            let t = berth_api::printers::table(info, std::slice::from_ref(&object), &rv, include, *first_row, chrono::Utc::now());
            *first_row = false;
            t
        }
        _ => object.to_json_value(),
    };
    line(&json!({"type": ev.r#type, "object": value}))
}

fn error_line(e: Error, info: &KindInfo) -> Option<Bytes> {
    line(&json!({"type": "ERROR", "object": Problem::from_error(e, Some(info)).to_status()}))
}

fn line(v: &Value) -> Option<Bytes> {
    let mut bytes = serde_json::to_vec(v).ok()?;
    bytes.push(b'\n');
    Some(Bytes::from(bytes))
}
