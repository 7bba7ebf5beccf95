//! Read-modify-write with the resourceVersion as precondition: read the
//! object fresh, change it, write it, and start over when someone else
//! wrote in between (what Kubernetes controllers do with patches).

use berth_api::{Object, Resource};
use berth_client::Client;

/// How often a conflicting write is retried.
const RETRIES: usize = 8;

/// Applies `change` to the current `R` (it returns false when there is
/// nothing to do) and writes it; Ok(None) when nothing needed writing.
pub async fn update<R: Resource>(
    client: &Client,
    namespace: &str,
    name: &str,
    mut change: impl FnMut(&mut R) -> bool,
) -> Result<Option<R>, berth_client::Error> {
    let mut last = None;
    for _ in 0..RETRIES {
        let mut o: R = client.get(namespace, name).await?;
        if !change(&mut o) {
            return Ok(None);
        }
        match client.update(o).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| berth_client::Error::Api(tonic_conflict())))
}

/// Like [`update`], for the status.
pub async fn update_status<R: Resource>(
    client: &Client,
    namespace: &str,
    name: &str,
    mut change: impl FnMut(&mut R) -> bool,
) -> Result<Option<R>, berth_client::Error> {
    let mut last = None;
    for _ in 0..RETRIES {
        let mut o: R = client.get(namespace, name).await?;
        if !change(&mut o) {
            return Ok(None);
        }
        match client.update_status(o).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| berth_client::Error::Api(tonic_conflict())))
}

/// Like [`update`], for an object of any kind.
pub async fn update_object(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
    mut change: impl FnMut(&mut Object) -> bool,
) -> Result<Option<Object>, berth_client::Error> {
    let mut last = None;
    for _ in 0..RETRIES {
        let mut o = client.get_object(kind, namespace, name).await?;
        if !change(&mut o) {
            return Ok(None);
        }
        match client.update_object(o, false).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| berth_client::Error::Api(tonic_conflict())))
}

fn tonic_conflict() -> tonic::Status {
    tonic::Status::aborted("too many conflicting writes")
}
