//! The in-process relays over real loopback sockets: round robin over the
//! endpoints, the next endpoint when a connect is refused, ClientIP
//! affinity, endpoints that go away, and UDP. The relays listen on a
//! NodePort of 127.0.0.1, as they do in every mode.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use berth_proxy::model::{PortName, Protocol, ServicePort, State};
use berth_proxy::userspace::{Plan, RelayCounters, Relays};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A TCP server on 127.0.0.1 that answers every connection with `name`.
async fn named_server(name: &'static str) -> SocketAddrV4 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = match listener.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not v4: {other}"),
    };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(name.as_bytes()).await;
            });
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens (connects are refused).
fn dead_port() -> SocketAddrV4 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port(protocol: Protocol, node_port: u16, endpoints: Vec<SocketAddrV4>, affinity: Option<Duration>) -> ServicePort {
    let mut endpoints = endpoints;
    endpoints.sort();
    ServicePort {
        name: PortName { namespace: "default".into(), name: "web".into(), port: String::new(), protocol },
        // Not listened on: the plan serves NodePorts only.
        cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
        port: 80,
        node_port: Some(node_port),
        affinity,
        endpoints,
    }
}

async fn get(addr: SocketAddrV4) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    Ok(out)
}

fn relays() -> Relays {
    Relays::new(Plan { vips: false, nodeport_addresses: vec![Ipv4Addr::LOCALHOST] }, Duration::from_secs(5), RelayCounters::default())
}

#[tokio::test]
async fn should_spread_connections_skip_refused_endpoints_and_keep_affinity() {
    let (a, b, c) = (named_server("a").await, named_server("b").await, named_server("c").await);
    let np = free_port();
    let front = SocketAddrV4::new(Ipv4Addr::LOCALHOST, np);
    let mut state = State::new();
    state.set("default/web", vec![port(Protocol::Tcp, np, vec![a, b, c, dead_port()], None)]);
    let mut relays = relays();
    assert!(relays.sync_full(&state).await.is_empty());

    let mut seen = Vec::new();
    for _ in 0..12 {
        seen.push(get(front).await.expect("every request is answered, the refused endpoint skipped"));
    }
    for name in ["a", "b", "c"] {
        assert!(seen.iter().filter(|s| *s == name).count() >= 3, "round robin reaches {name}: {seen:?}");
    }

    // ClientIP affinity: one client, one endpoint.
    let change = state.set("default/web", vec![port(Protocol::Tcp, np, vec![a, b, c], Some(Duration::from_secs(60)))]).unwrap();
    assert!(relays.apply(&[change]).await.is_empty());
    let first = get(front).await.unwrap();
    for _ in 0..10 {
        assert_eq!(get(front).await.unwrap(), first);
    }

    // The endpoint the client sticks to goes away: new connections go elsewhere.
    let kept: Vec<SocketAddrV4> = [(a, "a"), (b, "b"), (c, "c")].into_iter().filter(|(_, n)| *n != first).map(|(e, _)| e).collect();
    let change = state.set("default/web", vec![port(Protocol::Tcp, np, kept, Some(Duration::from_secs(60)))]).unwrap();
    assert!(relays.apply(&[change]).await.is_empty());
    for _ in 0..6 {
        assert_ne!(get(front).await.unwrap(), first);
    }

    // The service goes away: nothing listens any more.
    let change = state.set("default/web", Vec::new()).unwrap();
    assert!(relays.apply(&[change]).await.is_empty());
    assert!(relays.listening().is_empty());
    assert!(TcpStream::connect(front).await.is_err());
}

#[tokio::test]
async fn should_close_connections_at_once_without_endpoints() {
    let np = free_port();
    let mut state = State::new();
    state.set("default/web", vec![port(Protocol::Tcp, np, vec![], None)]);
    let mut relays = relays();
    assert!(relays.sync_full(&state).await.is_empty());
    let answer = get(SocketAddrV4::new(Ipv4Addr::LOCALHOST, np)).await;
    assert!(matches!(answer.as_deref(), Ok("") | Err(_)), "{answer:?}");
    relays.shutdown().await;
}

#[tokio::test]
async fn should_relay_udp_datagrams_both_ways() {
    let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = match echo.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("not v4: {other}"),
    };
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = echo.send_to(&reply, from).await;
        }
    });
    let np = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let mut state = State::new();
    state.set("default/web", vec![port(Protocol::Udp, np, vec![echo_addr], None)]);
    let mut relays = relays();
    assert!(relays.sync_full(&state).await.is_empty());

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(("127.0.0.1", np)).await.unwrap();
    let mut buf = [0u8; 1500];
    for i in 0..5 {
        let msg = format!("ping {i}");
        client.send(msg.as_bytes()).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(10), client.recv(&mut buf)).await.expect("a reply within 10 s").unwrap();
        assert_eq!(&buf[..n], format!("echo:{msg}").as_bytes());
    }
    relays.shutdown().await;
}
