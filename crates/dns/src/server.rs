//! Serving DNS: a UDP loop of our own (so that a packet that is not a DNS query is dropped unanswered and counted, which hickory-server's `ServerFuture` offers no hook for: it answers FORMERR itself; and so that one client's flood is cut at the door by [`ClientLimiter`]) and TCP through hickory-server's `ServerFuture` with a [`RequestHandler`]; both answer through one [`Answerer`].

use std::iter;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tracing::debug;

use crate::answer::{Answer, Answerer};
use crate::limit::ClientLimiter;
use crate::metrics::Metrics;

/// The UDP payload berth-dns offers in EDNS (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;
/// The most queries answered at once over UDP; more are dropped (and counted), as a flood must not grow memory.
pub const MAX_IN_FLIGHT: usize = 4096;
/// How long an idle TCP connection is kept.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a packet is not a query berth-dns answers.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("not a DNS message: {0}")]
    Decode(#[from] hickory_proto::ProtoError),
    #[error("a response, not a query")]
    Response,
    #[error("{0} questions (exactly one is answered)")]
    Questions(usize),
}

/// Reads a UDP packet as a query with exactly one question.
pub fn parse_query(packet: &[u8]) -> Result<Message, Malformed> {
    let message = Message::from_vec(packet)?;
    if message.message_type() != MessageType::Query {
        return Err(Malformed::Response);
    }
    if message.queries().len() != 1 {
        return Err(Malformed::Questions(message.queries().len()));
    }
    Ok(message)
}

/// The wire bytes of the response to `request`, truncated (TC set, records left out) when larger than the client accepts.
pub fn response_bytes(request: &Message, answer: &Answer) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(answer.authoritative)
        .set_response_code(answer.rcode);
    response.add_queries(request.queries().iter().cloned());
    let max = match request.extensions() {
        Some(edns) => {
            let mut ours = Edns::new();
            ours.set_max_payload(EDNS_PAYLOAD);
            response.set_edns(ours);
            edns.max_payload().clamp(512, EDNS_PAYLOAD)
        }
        None => 512,
    };
    response.add_answers(answer.answers.iter().cloned());
    response.add_name_servers(answer.authority.iter().cloned());
    let bytes = response.to_vec()?;
    if bytes.len() <= usize::from(max) {
        return Ok(bytes);
    }
    response.take_answers();
    response.take_name_servers();
    response.set_truncated(true);
    response.to_vec()
}

/// Answers queries on `socket` until the task is dropped; a client asking
/// more than `per_client` queries per second (0: no limit) has the excess
/// dropped before it is parsed.
pub async fn serve_udp(socket: Arc<UdpSocket>, answerer: Answerer, metrics: Arc<Metrics>, per_client: u32) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut limiter = ClientLimiter::new(per_client);
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                debug!(cause = %e, "UDP receive failed");
                continue;
            }
        };
        if !limiter.allow(peer, std::time::Instant::now()) {
            metrics.rate_limited.inc();
            continue;
        }
        let request = match parse_query(&buf[..len]) {
            Ok(m) => m,
            Err(e) => {
                metrics.malformed.inc();
                debug!(%peer, cause = %e, "dropped a malformed packet");
                continue;
            }
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            metrics.dropped.inc();
            continue;
        };
        let socket = socket.clone();
        let answerer = answerer.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(query) = request.queries().first() else { return };
            let answer = if request.op_code() == OpCode::Query {
                answerer.answer(query).await
            } else {
                Answer { rcode: ResponseCode::NotImp, authoritative: false, answers: Vec::new(), authority: Vec::new() }
            };
            metrics.observe(query.query_type(), answer.source(), answer.rcode, "udp");
            match response_bytes(&request, &answer) {
                Ok(bytes) => {
                    if let Err(e) = socket.send_to(&bytes, peer).await {
                        debug!(%peer, cause = %e, "UDP send failed");
                    }
                }
                Err(e) => debug!(cause = %e, "cannot encode a response"),
            }
        });
    }
}

/// hickory-server's request handler for TCP.
pub struct TcpHandler {
    pub answerer: Answerer,
    pub metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, mut response_handle: R) -> ResponseInfo {
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        let builder = MessageResponseBuilder::from_message_request(request);
        let answer = match (request.op_code(), request.queries()) {
            (OpCode::Query, [query]) => {
                let answer = self.answerer.answer(query.original()).await;
                self.metrics.observe(query.original().query_type(), answer.source(), answer.rcode, "tcp");
                answer
            }
            (OpCode::Query, _) => {
                self.metrics.malformed.inc();
                Answer { rcode: ResponseCode::FormErr, authoritative: false, answers: Vec::new(), authority: Vec::new() }
            }
            _ => Answer { rcode: ResponseCode::NotImp, authoritative: false, answers: Vec::new(), authority: Vec::new() },
        };
        header.set_authoritative(answer.authoritative);
        header.set_response_code(answer.rcode);
        let response = builder.build(header, answer.answers.iter(), answer.authority.iter(), iter::empty(), iter::empty());
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                debug!(cause = %e, "TCP send failed");
                let mut failed = Header::response_from_request(request.header());
                failed.set_response_code(ResponseCode::ServFail);
                failed.into()
            }
        }
    }
}

/// Serves TCP on `listener` through hickory-server until `shutdown` resolves.
pub async fn serve_tcp(listener: TcpListener, answerer: Answerer, metrics: Arc<Metrics>, shutdown: impl std::future::Future<Output = ()>) {
    let mut server = hickory_server::ServerFuture::new(TcpHandler { answerer, metrics });
    server.register_listener(listener, TCP_TIMEOUT);
    shutdown.await;
    if let Err(e) = server.shutdown_gracefully().await {
        debug!(cause = %e, "TCP server stopped with an error");
    }
}
