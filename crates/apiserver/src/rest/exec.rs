//! `pods/log` and `pods/exec` over Kubernetes' REST API, relayed to the
//! pod's kubelet as berthctl's logs and exec are. Logs stream as plain
//! text (`follow`, `tailLines`, `sinceSeconds`, `sinceTime`, `limitBytes`,
//! `container`, `previous`, `timestamps`). Exec is a WebSocket with
//! Kubernetes' channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`):
//! binary frames whose first byte is the channel (0 stdin, 1 stdout,
//! 2 stderr, 3 the final status, 4 terminal resize, 255 close a channel in v5).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::FromRequestParts as _;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use berth_api::pb::kubelet::{ExecInput, ExecOutput, ExecStart, LogsRequest};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::status::Problem;
use super::{Query, Rest};
use crate::authn::Authenticated;
use crate::error::Error;
use crate::kubelet_proxy::Relay;

/// The WebSocket subprotocols served, in order of preference.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// `GET …/pods/{name}/log`.
pub async fn logs(rest: &Rest, who: Option<&Authenticated>, ns: &str, name: &str, query: &Query) -> Response {
    match start_logs(rest, who, ns, name, query).await {
        Ok(r) => r,
        Err(e) => Problem::from_error(e, berth_api::resource::find_kind("pods")).into_response(),
    }
}

async fn start_logs(rest: &Rest, who: Option<&Authenticated>, ns: &str, name: &str, query: &Query) -> Result<Response, Error> {
    let since = match (query.int("sinceSeconds")?, query.get("sinceTime")) {
        (Some(s), _) if s > 0 => Some(chrono::Utc::now() - chrono::Duration::seconds(s)),
        (Some(s), _) if s <= 0 => return Err(Error::BadRequest(format!("sinceSeconds: Invalid value: {s}: must be greater than 0"))),
        (_, Some(t)) if !t.is_empty() => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| Error::BadRequest(format!("sinceTime: Invalid value: {t:?}: must be an RFC 3339 time")))?
                .with_timezone(&chrono::Utc),
        ),
        _ => None,
    };
    let timestamps = query.flag("timestamps")?;
    let mut limit = query.int("limitBytes")?.map(|l| l.max(0) as usize);
    let request = LogsRequest {
        namespace: ns.to_string(),
        pod: name.to_string(),
        container: query.string("container").to_string(),
        follow: query.flag("follow")?,
        tail_lines: query.int("tailLines")?,
        previous: query.flag("previous")?,
        deleted: false,
        // A since filter reads each line's timestamp, then takes it off unless asked for.
        timestamps: timestamps || since.is_some(),
    };
    let relay = rest.handlers.logs(who, request).await?;
    let mut filter = since.map(|s| LineFilter { since: s, keep_timestamps: timestamps, partial: Vec::new() });
    let chunks = relay.take_while(|c| std::future::ready(c.is_ok())).filter_map(move |c| {
        let mut data = c.map(|c| c.data).unwrap_or_default();
        if let Some(f) = filter.as_mut() {
            data = f.feed(&data);
        }
        if let Some(left) = limit.as_mut() {
            data.truncate(*left);
            *left -= data.len();
        }
        std::future::ready((!data.is_empty()).then(|| Ok::<Bytes, Infallible>(Bytes::from(data))))
    });
    Ok((StatusCode::OK, [(http::header::CONTENT_TYPE, "text/plain")], Body::from_stream(chunks)).into_response())
}

/// Keeps the log lines stamped at or after `since`.
struct LineFilter {
    since: chrono::DateTime<chrono::Utc>,
    keep_timestamps: bool,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl LineFilter {
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(data);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut out = Vec::new();
        for line in complete.split_inclusive(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(line);
            let (stamp, rest) = text.split_once(' ').unwrap_or((&text, ""));
            let keep = chrono::DateTime::parse_from_rfc3339(stamp).map(|t| t >= self.since).unwrap_or(true);
            if keep {
                out.extend_from_slice(if self.keep_timestamps { line } else { rest.as_bytes() });
            }
        }
        out
    }
}

/// `GET|POST …/pods/{name}/exec`: a WebSocket, or a refusal naming why.
pub async fn exec(rest: &Rest, who: Option<Authenticated>, ns: &str, name: &str, query: Query, req: Request) -> Response {
    let offered: Vec<String> = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    let Some(protocol) = PROTOCOLS.iter().find(|p| offered.iter().any(|o| o == *p)) else {
        let message = if req.headers().contains_key(http::header::UPGRADE) {
            format!("this server supports only WebSocket streaming ({})", PROTOCOLS.join(", "))
        } else {
            "Upgrade request required".to_string()
        };
        return Problem::bad_request(message).into_response();
    };
    let (mut parts, _) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return Problem::bad_request(format!("Upgrade request required: {e}")).into_response(),
    };
    let (stdin, stdout, stderr, tty) =
        match (|| Ok::<_, Error>((query.flag("stdin")?, query.flag("stdout")?, query.flag("stderr")?, query.flag("tty")?)))() {
            Ok(x) => x,
            Err(e) => return Problem::from_error(e, None).into_response(),
        };
    if !stdin && !stdout && !stderr {
        return Problem::bad_request("you must specify at least 1 of stdin, stdout, stderr").into_response();
    }
    let first = ExecInput {
        start: Some(ExecStart {
            namespace: ns.to_string(),
            pod: name.to_string(),
            container: query.string("container").to_string(),
            command: query.all("command"),
            stdin,
            tty,
        }),
        ..Default::default()
    };
    let (input_tx, input_rx) = mpsc::channel::<ExecInput>(16);
    let input = ReceiverStream::new(input_rx).map(Ok);
    // Authorized, the pod found and the kubelet reached before the 101, so a refusal is an HTTP Status.
    let output = match rest.handlers.exec(who.as_ref(), first, input).await {
        Ok(o) => o,
        Err(e) => return Problem::from_error(e, berth_api::resource::find_kind("pods")).into_response(),
    };
    let v5 = *protocol == PROTOCOLS[0];
    upgrade.protocols(PROTOCOLS).on_upgrade(move |socket| relay(socket, v5, stdin, input_tx, output)).into_response()
}

/// Moves frames between the WebSocket and the kubelet until the command ends.
async fn relay(socket: WebSocket, v5: bool, stdin: bool, input: mpsc::Sender<ExecInput>, mut output: Relay<ExecOutput>) {
    let (mut sink, mut source) = socket.split();
    let reader = tokio::spawn(async move {
        let mut input = Some(input);
        while let Some(Ok(msg)) = source.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::from(t.as_str().as_bytes().to_vec()),
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else { continue };
            let Some(tx) = input.as_ref() else { continue };
            let sent = match channel {
                STDIN if stdin && !payload.is_empty() => tx.send(ExecInput { stdin: payload.to_vec(), ..Default::default() }).await,
                CLOSE if v5 && payload.first() == Some(&STDIN) => {
                    let r = tx.send(ExecInput { stdin_eof: true, ..Default::default() }).await;
                    input = None;
                    r
                }
                // Terminal resizes (4) and anything else: Berth's exec has no resize.
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
        // The socket closing ends the command's input, as v4 clients mean it.
        if let Some(tx) = input {
            let _ = tx.send(ExecInput { stdin_eof: true, ..Default::default() }).await;
        }
    });
    let mut status = json!({"metadata": {}, "status": "Success"});
    while let Some(item) = output.next().await {
        match item {
            Ok(out) => {
                for (channel, data) in [(STDOUT, out.stdout), (STDERR, out.stderr)] {
                    if !data.is_empty() {
                        let mut frame = Vec::with_capacity(data.len() + 1);
                        frame.push(channel);
                        frame.extend_from_slice(&data);
                        if sink.send(Message::Binary(frame.into())).await.is_err() {
                            reader.abort();
                            return;
                        }
                    }
                }
                if let Some(code) = out.exit_code.filter(|c| *c != 0) {
                    status = json!({
                        "metadata": {},
                        "status": "Failure",
                        "message": format!("command terminated with non-zero exit code: exit status {code}"),
                        "reason": "NonZeroExitCode",
                        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                    });
                }
            }
            Err(e) => {
                status = json!({"metadata": {}, "status": "Failure", "message": e.message(), "reason": "InternalError"});
                break;
            }
        }
    }
    let mut frame = vec![ERROR];
    frame.extend_from_slice(&serde_json::to_vec(&status).unwrap_or_default());
    let _ = sink.send(Message::Binary(frame.into())).await;
    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_keep_only_lines_since_a_time_across_chunks() {
        let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z").expect("time").with_timezone(&chrono::Utc);
        let mut f = LineFilter { since, keep_timestamps: false, partial: Vec::new() };
        let mut out = f.feed(b"2026-01-01T00:00:05Z old\n2026-01-01T00:00:1");
        out.extend(f.feed(b"5Z new\n"));
        assert_eq!(String::from_utf8_lossy(&out), "new\n");
        let mut keep = LineFilter { since, keep_timestamps: true, partial: Vec::new() };
        assert_eq!(String::from_utf8_lossy(&keep.feed(b"2026-01-01T00:00:11Z a\n")), "2026-01-01T00:00:11Z a\n");
    }
}
