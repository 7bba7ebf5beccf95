//! berth-apiserver: the only door to the cluster state. It serves the
//! generic gRPC `Api` over every kind, keeps the semantics of DESIGN.md §3,
//! and persists to sled with group-committed, flushed writes (§4).
//!
//! # Layout
//! Top to bottom as a request goes: in at a transport (gRPC or REST), into the handlers, through the gate
//! (authentication, authorization, audit), into the registry, which runs
//! admission and then writes to storage. After each arrow, the modules it
//! imports besides [`error`]; every import points down this list, so there
//! is no cycle. Admission plugins and authorizers only read, through the
//! [`lister`].
//! - [`serve`]: the API port's connection loop (HTTP/1.1 with upgrades and HTTP/2, one router for both transports) → tls.
//! - [`rest`]: the Kubernetes REST transport (discovery, OpenAPI, CRUD, watch, patch, Tables, logs, exec) → handlers, authn, registry.
//! - [`service`]: the gRPC transport → handlers, authn, registry.
//! - [`handlers`]: the request core both transports call → watch, gate, authn, authz, serviceaccount, kubelet_proxy, registry, user, encryption, metrics, storage.
//! - [`watch`]: watches with selectors and bookmarks, events encoded once for every watcher → handlers' state, lister, encryption, storage.
//! - [`http`]: `/healthz`, `/livez`, `/readyz`, `/metrics` → gate, authn, authz, metrics, storage.
//! - [`gate`]: the check every request passes (kind served, authn, authz, audit) → authn, authz, audit, lister, user, metrics.
//! - [`authn`]: who a request comes from (tokens, certificates, anonymous) → tls, serviceaccount, user.
//! - [`tls`]: the API port's connections (TLS, client certificates) → allowlist, metrics, coalesce.
//! - [`coalesce`]: socket writes gathered into fewer, larger ones.
//! - [`allowlist`]: `--allow-hosts`; imports nothing of the crate.
//! - [`serviceaccount`]: accounts and their tokens; checks tokens, writes through the registry → registry, admission, lister, user.
//! - [`authz`]: what a user may do (masters, Node, RBAC), judged from what it reads → lister, user.
//! - [`audit`]: the audit log → user.
//! - [`kubelet_proxy`]: logs, exec and stats relayed to the kubelet of a pod's node → registry, lister.
//! - [`registry`]: the API's object semantics; runs the admission chain it owns → admission, allocator, defaults, user, lister, storage.
//! - [`admission`]: the admission plugins (mutate or refuse a write) → defaults, user, lister.
//! - [`allocator`]: ClusterIP and NodePort allocation for Services; imports nothing of the crate.
//! - [`defaults`]: Kubernetes' defaulting of omitted fields; imports nothing of the crate.
//! - [`user`]: identities: `UserInfo`, well-known users and groups; imports nothing of the crate.
//! - [`lister`]: read-only gets and selector lists, decoded from the store → storage.
//! - [`encryption`]: Secrets encrypted at rest, a store wrapper → storage.
//! - [`metrics`]: the Prometheus metrics and the metered store → storage.
//! - [`error`]: errors and their one mapping to gRPC codes → storage.
//! - [`storage`]: the `Store` trait, its sled backend and the watch cache; imports nothing above it.

pub mod admission;
pub mod allocator;
pub mod allowlist;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod coalesce;
pub mod defaults;
pub mod encryption;
pub mod error;
pub mod gate;
pub mod handlers;
pub mod http;
pub mod kubelet_proxy;
pub mod kubernetes_service;
pub mod lister;
pub mod metrics;
pub mod registry;
pub mod rest;
pub mod serve;
pub mod service;
pub mod serviceaccount;
pub mod storage;
pub mod tls;
pub mod user;
pub mod watch;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use berth_api::wire::server::api_server::ApiServer;
use tokio::net::TcpListener;

use tracing::{info, warn};

use crate::storage::sled_store::{SledOptions, SledStore};

/// How the apiserver runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where sled keeps the cluster state.
    pub data_dir: PathBuf,
    /// How many recent events the watch history retains (in memory and on disk).
    pub history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// sled's page cache.
    pub cache_capacity_bytes: u64,
    /// How long a group commit waits for more writes under concurrent load
    /// (`--storage-commit-delay`).
    pub commit_delay: Duration,
    /// When the store rebuilds itself to give disk space back (`--storage-defrag-ratio`,
    /// `--storage-defrag-min-mib`).
    pub defrag: storage::DefragPolicy,
    /// ClusterIPs come from this range (`--service-cidr`).
    pub service_cidr: String,
    /// NodePorts come from this range (`--service-node-port-range`).
    pub node_port_range: String,
    /// Serve TLS with this certificate and key (`--tls-cert-file`, `--tls-private-key-file`).
    pub tls: Option<TlsFiles>,
    /// Accept client certificates signed by this CA (`--client-ca-file`).
    pub client_ca_file: Option<PathBuf>,
    /// Static bearer tokens (`--token-auth-file`).
    pub token_auth_file: Option<PathBuf>,
    /// Let requests without credentials in as `system:anonymous` (`--anonymous-auth`).
    pub anonymous_auth: bool,
    /// HMAC key of ServiceAccount tokens (`--service-account-key-file`); when
    /// authentication is on and this is unset, a key is made once and kept in the data directory.
    pub service_account_key_file: Option<PathBuf>,
    /// Client networks allowed to connect (`--allow-hosts`); empty: all.
    pub allow_hosts: Vec<String>,
    /// Kinds not served at all (`--disable-api`).
    pub disabled_kinds: Vec<String>,
    /// Admission plugins on besides the defaults, and off (`--enable-admission-plugins`, `--disable-admission-plugins`).
    pub enable_admission_plugins: Vec<String>,
    pub disable_admission_plugins: Vec<String>,
    /// The audit log (`--audit-log-path`).
    pub audit: Option<audit::AuditConfig>,
    /// Keys that encrypt Secrets at rest (`--encryption-key-file`).
    pub encryption_key_file: Option<PathBuf>,
    /// How the apiserver proves itself to kubelets and verifies them.
    pub kubelet_client: KubeletClientFiles,
    /// The address the `kubernetes` Service's Endpoints name (`--advertise-address`);
    /// unset: the listen address, or 127.0.0.1 when listening on every address.
    pub advertise_address: Option<std::net::IpAddr>,
}

/// The apiserver's TLS towards kubelets (`--kubelet-client-certificate`,
/// `--kubelet-client-key`, `--kubelet-certificate-authority`). With none
/// set kubelets are called over plaintext gRPC.
#[derive(Debug, Clone, Default)]
pub struct KubeletClientFiles {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub certificate_authority: Option<PathBuf>,
}

impl KubeletClientFiles {
    /// The TLS settings to call kubelets with; None for plaintext.
    pub fn tls_config(&self) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |flag: &str, p: &std::path::Path| std::fs::read(p).with_context(|| format!("cannot read {flag} {}", p.display()));
        let Some(ca) = &self.certificate_authority else {
            if self.certificate.is_some() || self.key.is_some() {
                anyhow::bail!(
                    "--kubelet-client-certificate needs --kubelet-certificate-authority: the CA that signed the kubelets' certificates"
                );
            }
            return Ok(None);
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--kubelet-certificate-authority", ca)?));
        match (&self.certificate, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read("--kubelet-client-certificate", cert)?, read("--kubelet-client-key", key)?));
            }
            (None, None) => {}
            _ => anyhow::bail!("--kubelet-client-certificate and --kubelet-client-key go together"),
        }
        Ok(Some(tls))
    }
}

/// The serving certificate and its key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Config {
    /// Whether any authenticator is configured. Without one the server runs
    /// in the insecure loopback mode: plaintext on loopback only, and every
    /// request is `system:masters`.
    pub fn authentication_configured(&self) -> bool {
        self.tls.is_some() || self.client_ca_file.is_some() || self.token_auth_file.is_some()
    }

    /// Refuses a plaintext listener outside loopback, naming what is missing.
    pub fn check_listen(&self, addr: std::net::SocketAddr) -> anyhow::Result<()> {
        if self.tls.is_none() && !addr.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve plaintext on {addr}: without TLS the API is served only on a loopback address; set --tls-cert-file and --tls-private-key-file (or use --listen 127.0.0.1:PORT)"
            );
        }
        if self.client_ca_file.is_some() && self.tls.is_none() {
            anyhow::bail!("--client-ca-file needs TLS: set --tls-cert-file and --tls-private-key-file");
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/berth/apiserver"),
            history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            cache_capacity_bytes: 64 * 1024 * 1024,
            commit_delay: storage::DEFAULT_COMMIT_DELAY,
            defrag: storage::DefragPolicy::default(),
            service_cidr: registry::DEFAULT_SERVICE_CIDR.into(),
            node_port_range: "30000-32767".into(),
            tls: None,
            client_ca_file: None,
            token_auth_file: None,
            anonymous_auth: false,
            service_account_key_file: None,
            allow_hosts: Vec::new(),
            disabled_kinds: Vec::new(),
            enable_admission_plugins: Vec::new(),
            disable_admission_plugins: Vec::new(),
            audit: None,
            encryption_key_file: None,
            kubelet_client: KubeletClientFiles::default(),
            advertise_address: None,
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then ends every
/// watch, finishes in-flight requests and closes the store.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener has no address")?;
    config.check_listen(addr)?;
    let cidr: allocator::Cidr = config.service_cidr.parse().with_context(|| format!("--service-cidr {:?}", config.service_cidr))?;
    let ports: allocator::PortRange = config
        .node_port_range
        .parse()
        .with_context(|| format!("--service-node-port-range {:?}: write it like 30000-32767", config.node_port_range))?;
    let allow = Arc::new(allowlist::Allowlist::parse(&config.allow_hosts).context("--allow-hosts")?);
    let disabled = disabled_kinds(&config.disabled_kinds)?;
    let kubelet_tls = config.kubelet_client.tls_config()?;
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(
            berth_base::tls::server_config(
                &t.cert_file,
                &t.key_file,
                config.client_ca_file.as_deref(),
                berth_base::tls::ClientAuth::Optional,
            )
            .context("cannot set up TLS (--tls-cert-file, --tls-private-key-file, --client-ca-file)")?,
        )),
        None => None,
    };
    let transformer = Arc::new(match &config.encryption_key_file {
        Some(p) => encryption::Transformer::from_file(p).context("--encryption-key-file")?,
        None => encryption::Transformer::default(),
    });
    let tokens = match &config.token_auth_file {
        Some(p) => authn::read_token_file(p).context("--token-auth-file")?,
        None => Default::default(),
    };
    let audit = match &config.audit {
        Some(a) => Some(audit::AuditLog::open(a.clone()).with_context(|| format!("--audit-log-path {}", a.path.display()))?),
        None => None,
    };
    let secure = config.authentication_configured();
    let sa_key = if secure { Some(service_account_key(&config)?) } else { None };
    let ca_pem = match &config.client_ca_file {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read --client-ca-file {}", p.display()))?),
        None => None,
    };

    let options = SledOptions {
        history: config.history,
        cache_capacity_bytes: config.cache_capacity_bytes,
        defrag: config.defrag,
        commit_delay: config.commit_delay,
    };
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&dir, options))
        .await
        .context("store open task failed")?
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let store = Arc::new(store);
    let sled_store: Arc<dyn storage::Store> = store.clone();
    let sled_store_raw = sled_store.clone();
    let encrypted = Arc::new(encryption::EncryptedStore::new(sled_store, transformer.clone()));
    encrypted.rewrite_stale().await.context("cannot rewrite secrets with the current encryption key")?;
    let metrics = metrics::Metrics::new();
    let dyn_store = metrics::MeteredStore::wrap(encrypted, metrics.clone());
    let admission = admission::build(
        &config.enable_admission_plugins,
        &config.disable_admission_plugins,
        admission::Options { mount_service_account_tokens: sa_key.is_some() },
    )
    .map_err(anyhow::Error::msg)
    .context("--enable-admission-plugins / --disable-admission-plugins")?;
    let registry =
        registry::Registry::new(dyn_store.clone()).with_allocator(allocator::Allocator::new(cidr, ports)).with_admission(admission);
    registry.bootstrap().await.context("cannot create the system namespaces")?;
    let created = registry.create_missing(authz::rbac::default_policy()).await.context("cannot create the default RBAC roles")?;
    if created > 0 {
        info!(created, "created the default RBAC roles and bindings");
    }
    let service_accounts = Arc::new(serviceaccount::ServiceAccounts::new(registry.clone(), sa_key, ca_pem));
    service_accounts.bootstrap().await.context("cannot create the default service accounts")?;
    let advertise = kubernetes_service::advertise_address(config.advertise_address, addr.ip());
    if let Err(e) = kubernetes_service::ensure(&registry, cidr.first_host(), advertise, addr.port()).await {
        // Not fatal: a store from before the address was reserved may hold it for another Service.
        warn!(cause = %e, "cannot create or update the kubernetes Service in default and its Endpoints");
    }

    let authenticator = if secure {
        authn::Authenticator::new(tokens, Some(service_accounts.clone()), config.anonymous_auth)
    } else {
        warn!(%addr, "no authentication configured: serving in the insecure loopback mode, where every request is system:masters");
        authn::Authenticator::insecure()
    };
    let lister = registry.lister().clone();
    let authorizer = if secure { authz::Authorizer::new(lister) } else { authz::Authorizer::allow_all(lister) };

    let gate = Arc::new(gate::Gate { authorizer, audit, disabled, metrics: metrics.clone() });
    let (stop_tx, stop_rx) = berth_base::shutdown::channel();
    // Checked beneath the metrics wrapper: probes are not API traffic.
    let checks = http::checks(sled_store_raw.clone(), config.data_dir.clone());
    let kubelets = Arc::new(kubelet_proxy::KubeletProxy::new(registry.clone(), kubelet_tls));
    let handlers = Arc::new(
        handlers::Handlers::new(
            registry,
            metrics.clone(),
            config.bookmark_interval,
            stop_rx.clone(),
            gate.clone(),
            service_accounts,
            transformer,
            kubelets,
        )
        .with_snapshot_source(sled_store_raw),
    );
    let api = service::ApiService::new(handlers.clone());
    let grpc = ApiServer::new(api).max_decoding_message_size(64 * 1024 * 1024).max_encoding_message_size(256 * 1024 * 1024);
    // One router, two transports: gRPC under /berth.api.v1.Api/, Kubernetes' REST under /api and /apis.
    let router = tonic::service::Routes::new(grpc)
        .add_service(checks.grpc())
        .into_axum_router()
        .merge(http::router(&checks, http::MetricsState { metrics: metrics.clone(), store: dyn_store, gate }))
        .merge(rest::router(handlers, stop_rx));

    info!(
        %addr,
        tls = config.tls.is_some(),
        client_certificates = config.client_ca_file.is_some(),
        anonymous = config.anonymous_auth,
        data_dir = %config.data_dir.display(),
        revision = storage::Store::current_revision(store.as_ref()),
        "serving the API"
    );
    // Under systemd (Type=notify): ready now, and answer the watchdog while serving.
    let watchdog = berth_base::systemd::ready();
    let signal = async move {
        shutdown.await;
        berth_base::systemd::stopping();
        checks.shutting_down();
        // Ending watches first lets the server drain: streams would otherwise keep it open.
        stop_tx.fire();
    };
    let service = tower::ServiceBuilder::new().layer(authn::AuthnLayer::new(Arc::new(authenticator))).service(router);
    let served = serve::serve(tls::incoming(listener, tls, allow, metrics), service, signal).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    let closed = tokio::task::spawn_blocking(move || store.close()).await;
    served.context("the API server failed")?;
    closed.context("store close task failed")?;
    info!("stopped");
    Ok(())
}

/// Resolves `--disable-api` names; an unknown one is an error.
fn disabled_kinds(names: &[String]) -> anyhow::Result<std::collections::HashSet<&'static str>> {
    let mut out = std::collections::HashSet::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let info = berth_api::resource::find_kind(n).with_context(|| format!("--disable-api: unknown kind {n:?}"))?;
        if matches!(info.kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" | "ServiceAccount") {
            anyhow::bail!("--disable-api: {} cannot be disabled: the server itself needs it", info.kind);
        }
        out.insert(info.kind);
    }
    Ok(out)
}

/// The ServiceAccount token key: `--service-account-key-file`, or one made
/// at first start and kept (0600) in the data directory.
fn service_account_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(p) = &config.service_account_key_file {
        let key = std::fs::read(p).with_context(|| format!("cannot read --service-account-key-file {}", p.display()))?;
        anyhow::ensure!(key.len() >= 32, "--service-account-key-file {} must hold at least 32 bytes", p.display());
        return Ok(key);
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let path = config.data_dir.join("service-account.key");
    if let Ok(key) = std::fs::read(&path)
        && key.len() >= 32
    {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key.to_vec())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}
