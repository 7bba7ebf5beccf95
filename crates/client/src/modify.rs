//! Read-modify-write with the resourceVersion as precondition: read the
//! object fresh, change it, write it, and start over when someone else
//! wrote in between (what Kubernetes controllers and kubectl do instead of
//! blind writes). Every daemon and berthctl share this one loop.

use std::future::Future;

use berth_api::{Object, Resource};

use crate::client::{Client, Error};

/// How often a conflicting write is retried.
const RETRIES: usize = 8;

/// Reads with `get`, lets `change` edit (false: nothing to do) and writes
/// with `put`, again on a conflict; Ok(None) when nothing needed writing.
async fn retry<T, G, P>(
    mut get: impl FnMut() -> G,
    mut change: impl FnMut(&mut T) -> bool,
    mut put: impl FnMut(T) -> P,
) -> Result<Option<T>, Error>
where
    G: Future<Output = Result<T, Error>>,
    P: Future<Output = Result<T, Error>>,
{
    let mut last = None;
    for _ in 0..RETRIES {
        let mut o = get().await?;
        if !change(&mut o) {
            return Ok(None);
        }
        match put(o).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Api(tonic::Status::aborted("too many conflicting writes"))))
}

/// Applies `change` to the current `R` (it returns false when there is
/// nothing to do) and writes it; Ok(None) when nothing needed writing.
pub async fn update<R: Resource>(
    client: &Client,
    namespace: &str,
    name: &str,
    change: impl FnMut(&mut R) -> bool,
) -> Result<Option<R>, Error> {
    retry(|| client.get::<R>(namespace, name), change, |o| client.update(o)).await
}

/// Like [`update`], for the status.
pub async fn update_status<R: Resource>(
    client: &Client,
    namespace: &str,
    name: &str,
    change: impl FnMut(&mut R) -> bool,
) -> Result<Option<R>, Error> {
    retry(|| client.get::<R>(namespace, name), change, |o| client.update_status(o)).await
}

/// Like [`update`], for an object of any kind.
pub async fn update_object(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
    change: impl FnMut(&mut Object) -> bool,
) -> Result<Option<Object>, Error> {
    retry(|| client.get_object(kind, namespace, name), change, |o| client.update_object(o, false)).await
}
