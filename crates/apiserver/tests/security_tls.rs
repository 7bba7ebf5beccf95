//! The API port's transport promises, each tried against a real server: TLS
//! with the server verified against the cluster CA, x509 client
//! certificates (CN the user, O the groups) and none from another CA, the
//! allowlist refusing before TLS, and no plaintext outside loopback.

use std::path::Path;
use std::time::Duration;

use berth_api::pb::api::AccessReviewRequest;
use berth_api::pb::core::Namespace;
use berth_apiserver::{Config, TlsFiles};
use berth_client::pki::{Ca, Usage};
use berth_client::{Client, ClientConfig, ListParams};
use tokio::sync::oneshot;
use tonic::Code;

/// Writes a certificate and key as `name.crt` / `name.key`.
fn write(dir: &Path, name: &str, issued: &berth_client::pki::Issued) {
    std::fs::write(dir.join(format!("{name}.crt")), &issued.cert_pem).expect("cert");
    std::fs::write(dir.join(format!("{name}.key")), &issued.key_pem).expect("key");
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::generate("berth-ca").expect("ca");
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).expect("ca");
        write(
            dir.path(),
            "apiserver",
            &ca.issue("berth-apiserver", &[], &["127.0.0.1".into(), "localhost".into()], Usage::Server).expect("server"),
        );
        write(dir.path(), "admin", &ca.issue("carol", &["system:masters"], &[], Usage::Client).expect("admin"));
        write(dir.path(), "dev", &ca.issue("dave", &["dev"], &[], Usage::Client).expect("dev"));
        let other = Ca::generate("someone-else").expect("other ca");
        std::fs::write(dir.path().join("other-ca.crt"), other.cert_pem()).expect("other ca");
        write(dir.path(), "intruder", &other.issue("mallory", &["system:masters"], &[], Usage::Client).expect("intruder"));
        Pki { dir }
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
    fn config(&self, addr: std::net::SocketAddr, cert: Option<&str>) -> ClientConfig {
        let mut c = ClientConfig::new(format!("https://{addr}")).with_ca_file(self.path("ca.crt"));
        if let Some(name) = cert {
            c = c.with_client_certificate(self.path(&format!("{name}.crt")), self.path(&format!("{name}.key")));
        }
        c
    }
}

async fn start(pki: &Pki, data: &Path, f: impl FnOnce(&mut Config)) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let mut config = Config {
        data_dir: data.to_path_buf(),
        tls: Some(TlsFiles { cert_file: pki.path("apiserver.crt"), key_file: pki.path("apiserver.key") }),
        client_ca_file: Some(pki.path("ca.crt")),
        ..Default::default()
    };
    f(&mut config);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(berth_apiserver::run(config, listener, async move {
        let _ = rx.await;
    }));
    let admin = pki.config(addr, Some("admin"));
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&admin).await
            && c.list::<Namespace>("", &ListParams::default()).await.is_ok()
        {
            return (addr, tx);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("TLS apiserver did not come up");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_serve_tls_and_take_the_user_and_groups_from_client_certificates() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("data");
    let (addr, _stop) = start(&pki, data.path(), |_| {}).await;
    let carol = Client::connect(&pki.config(addr, Some("admin"))).await.expect("connect");
    let me = carol
        .access_review(AccessReviewRequest { verb: "delete".into(), resource: "nodes".into(), ..Default::default() })
        .await
        .expect("review");
    assert_eq!(me.user, "carol");
    assert!(me.groups.contains(&"system:masters".to_string()));
    assert!(me.allowed);
    let dave = Client::connect(&pki.config(addr, Some("dev"))).await.expect("connect");
    let err = dave.list::<Namespace>("", &ListParams::default()).await.expect_err("dave has no role");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.to_string().contains("\"dave\""), "{err}");
    // TLS without a certificate or token: no credentials.
    let nobody = Client::connect(&pki.config(addr, None)).await.expect("connect");
    assert_eq!(nobody.list::<Namespace>("", &ListParams::default()).await.expect_err("anonymous").code(), Code::Unauthenticated);
    // Plaintext to a TLS port does not get through.
    let plain = ClientConfig::new(format!("http://{addr}"));
    let refused = match Client::connect(&plain).await {
        Ok(c) => c.list::<Namespace>("", &ListParams::default()).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "plaintext must not be served on the TLS port");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_a_client_certificate_from_another_ca() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("data");
    let (addr, _stop) = start(&pki, data.path(), |_| {}).await;
    let intruder = pki.config(addr, Some("intruder"));
    let result = match Client::connect(&intruder).await {
        Ok(c) => c.list::<Namespace>("", &ListParams::default()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err(), "a certificate from another CA must not authenticate");
    // And a client that trusts another CA does not accept our server.
    let mut wrong_ca = pki.config(addr, Some("admin"));
    wrong_ca.ca_file = Some(pki.path("other-ca.crt"));
    let result = match Client::connect(&wrong_ca).await {
        Ok(c) => c.list::<Namespace>("", &ListParams::default()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(result.is_err(), "the server must be verified against --ca-file");
}

/// Connects from `source`, sends bytes and returns what the server answered
/// before closing (nothing when refused before TLS).
async fn probe_from(source: &str, addr: std::net::SocketAddr) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().expect("source"))?;
    let mut s = socket.connect(addr).await?;
    // A TLS ClientHello would do; garbage shows the same: a TLS server answers with an alert.
    let _ = s.write_all(b"\x16\x03\x01\x00\x05hello").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    Ok(out)
}

/// A TLS handshake from `source` that trusts the cluster CA.
async fn handshake_from(source: &str, addr: std::net::SocketAddr, ca: &Path) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in berth_base::tls::load_certs(ca).map_err(|e| e.to_string())? {
        roots.add(c).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(berth_base::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind(format!("{source}:0").parse().expect("source")).map_err(|e| e.to_string())?;
    let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn should_close_connections_from_outside_the_allowlist_before_tls() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("data");
    let (addr, _stop) = start(&pki, data.path(), |c| c.allow_hosts = vec!["127.0.0.1/32".into()]).await;
    let outsider = probe_from("127.0.0.2", addr).await.expect("connect from 127.0.0.2");
    assert!(outsider.is_empty(), "the outsider got {} bytes: the server must close before TLS", outsider.len());
    assert!(handshake_from("127.0.0.2", addr, &pki.path("ca.crt")).await.is_err(), "no TLS for the outsider");
    handshake_from("127.0.0.1", addr, &pki.path("ca.crt")).await.expect("an allowed client completes the TLS handshake");
    let admin = Client::connect(&pki.config(addr, Some("admin"))).await.expect("connect");
    admin.list::<Namespace>("", &ListParams::default()).await.expect("allowed clients are served");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_plaintext_on_a_non_loopback_address() {
    let config = Config::default();
    let err = config.check_listen("0.0.0.0:6443".parse().expect("addr")).expect_err("plaintext outside loopback");
    assert!(err.to_string().contains("--tls-cert-file"), "{err}");
    config.check_listen("127.0.0.1:6443".parse().expect("addr")).expect("loopback plaintext is fine");
    // The library refuses too, whoever calls it.
    let data = tempfile::tempdir().expect("data");
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await.expect("bind");
    let err = berth_apiserver::run(Config { data_dir: data.path().to_path_buf(), ..Default::default() }, listener, async {})
        .await
        .expect_err("run refuses");
    assert!(err.to_string().contains("--tls-cert-file"), "{err}");
}
