//! A small Kubernetes REST/JSON client for the `api` scenario's `--rest`
//! phases: one HTTP/2 connection (prior knowledge, plaintext, as on the
//! apiserver's insecure loopback port) per [`RestClient`], many requests in
//! flight on it, JSON bodies built and parsed with serde_json as any
//! Kubernetes client would, and watch streams read line by line.

use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::{Method, Request, Response, StatusCode, Uri, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpStream;
use tracing::debug;

/// What can go wrong talking REST to the apiserver.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("the REST phases need a plaintext http:// server URL with host and port, not {0:?}")]
    Url(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("HTTP/2 handshake with {addr} failed (does the server speak HTTP/2 with prior knowledge?): {source}")]
    Handshake { addr: String, source: hyper::Error },
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("HTTP/2: {0}")]
    Http(#[from] hyper::Error),
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status { method: Method, path: String, status: StatusCode, body: String },
    #[error("the answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the watch stream ended after {0} events")]
    WatchEnded(usize),
}

/// A client on one HTTP/2 connection; clones share the connection.
#[derive(Clone)]
pub struct RestClient {
    /// `http://host:port`, prefixed to every path.
    base: String,
    authorization: Option<String>,
    sender: http2::SendRequest<Full<Bytes>>,
}

/// `http://host:port` from a server URL (a trailing `/` allowed).
pub fn base_url(server: &str) -> Result<(String, String), RestError> {
    let bad = || RestError::Url(server.to_string());
    let uri: Uri = server.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || !matches!(uri.path(), "" | "/") {
        return Err(bad());
    }
    let authority = uri.authority().ok_or_else(bad)?;
    let port = authority.port_u16().ok_or_else(bad)?;
    let addr = format!("{}:{port}", authority.host());
    Ok((format!("http://{addr}"), addr))
}

impl RestClient {
    /// Opens one HTTP/2 connection to `server` (`http://host:port`).
    pub async fn connect(server: &str, token: Option<&str>) -> Result<RestClient, RestError> {
        let (base, addr) = base_url(server)?;
        let tcp = TcpStream::connect(&addr).await.map_err(|source| RestError::Connect { addr: addr.clone(), source })?;
        tcp.set_nodelay(true).map_err(|source| RestError::Connect { addr: addr.clone(), source })?;
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new()).keep_alive_interval(Duration::from_secs(30)).keep_alive_while_idle(true);
        let (sender, connection) =
            builder.handshake(TokioIo::new(tcp)).await.map_err(|source| RestError::Handshake { addr: addr.clone(), source })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "REST connection ended");
            }
        });
        Ok(RestClient { base, authorization: token.map(|t| format!("Bearer {t}")), sender })
    }

    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response<Incoming>, RestError> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base)).header(header::ACCEPT, "application/json");
        if let Some(auth) = &self.authorization {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let mut sender = self.sender.clone();
        Ok(sender.send_request(req.body(body)?).await?)
    }

    /// One request whose answer is a JSON document; a status other than
    /// 2xx is an error carrying the answer's text.
    pub async fn json(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value, RestError> {
        let resp = self.send(method.clone(), path, body).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
            return Err(RestError::Status { method, path: path.to_string(), status, body });
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Opens a watch (`path` with `watch=true` in its query) and parses
    /// its events until `until` returns true for one, returning how many
    /// events were read; the stream is closed when this returns.
    pub async fn watch_until(&self, path: &str, mut until: impl FnMut(&Value) -> bool) -> Result<usize, RestError> {
        let resp = self.send(Method::GET, path, None).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
            return Err(RestError::Status { method: Method::GET, path: path.to_string(), status, body });
        }
        let mut lines = LineBuffer::default();
        let mut events = 0;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            for line in lines.push(data) {
                let event: Value = serde_json::from_slice(&line)?;
                events += 1;
                if until(&event) {
                    return Ok(events);
                }
            }
        }
        Err(RestError::WatchEnded(events))
    }
}

/// Splits a byte stream into its non-empty `\n`-terminated lines.
#[derive(Default)]
struct LineBuffer {
    pending: BytesMut,
}

impl LineBuffer {
    /// Adds a chunk and returns the lines it completed.
    fn push(&mut self, mut chunk: Bytes) -> Vec<Bytes> {
        let mut lines = Vec::new();
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            let head = chunk.split_to(end);
            chunk.advance(1);
            let line = if self.pending.is_empty() {
                head
            } else {
                self.pending.extend_from_slice(&head);
                self.pending.split().freeze()
            };
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line);
            }
        }
        self.pending.extend_from_slice(&chunk);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_take_host_and_port_from_plain_urls_only() {
        let (base, addr) = base_url("http://127.0.0.1:16443/").unwrap();
        assert_eq!((base.as_str(), addr.as_str()), ("http://127.0.0.1:16443", "127.0.0.1:16443"));
        assert!(matches!(base_url("https://127.0.0.1:6443"), Err(RestError::Url(_))));
        assert!(matches!(base_url("http://127.0.0.1"), Err(RestError::Url(_))));
        assert!(matches!(base_url("http://127.0.0.1:6443/prefix"), Err(RestError::Url(_))));
    }

    #[test]
    fn should_split_lines_across_chunks() {
        let mut b = LineBuffer::default();
        assert!(b.push(Bytes::from_static(b"{\"a\":")).is_empty());
        let lines = b.push(Bytes::from_static(b"1}\n{\"b\":2}\n\n{\"c\""));
        assert_eq!(lines, vec![Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{\"b\":2}")]);
        assert_eq!(b.push(Bytes::from_static(b":3}\n")), vec![Bytes::from_static(b"{\"c\":3}")]);
    }
}
