//! Where a client finds the API server and how it proves who it is: the
//! flags every daemon and berthctl share (`--server`, `--token`,
//! `--ca-file`, `--client-certificate`, `--client-key`).

use std::path::PathBuf;

/// The default API server address (DESIGN.md §7).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";

/// Connection settings of a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`.
    pub server: String,
    /// Bearer token sent with every request.
    pub token: Option<String>,
    /// CA bundle that signed the server's certificate; an `https://` server
    /// is verified against it (and only it).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate to authenticate with (x509 client authentication).
    pub client_certificate: Option<PathBuf>,
    /// The private key of `client_certificate`.
    pub client_key: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { server: DEFAULT_SERVER.to_string(), token: None, ca_file: None, client_certificate: None, client_key: None }
    }
}

impl ClientConfig {
    /// A config for a server address, without credentials.
    pub fn new(server: impl Into<String>) -> Self {
        ClientConfig { server: server.into(), ..Default::default() }
    }

    /// The same config with a bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The same config verifying the server against this CA.
    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }

    /// The same config authenticating with a client certificate.
    pub fn with_client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }
}

/// The shared connection flags, flattened into each binary's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// API server address (`https://` verifies the server against --ca-file).
    #[arg(long, env = "BERTH_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Bearer token.
    #[arg(long, env = "BERTH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate file to verify the API server with.
    #[arg(long, env = "BERTH_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) to authenticate with.
    #[arg(long, env = "BERTH_CLIENT_CERTIFICATE", global = true, requires = "client_key")]
    pub client_certificate: Option<PathBuf>,
    /// The private key (PEM) of --client-certificate.
    #[arg(long, env = "BERTH_CLIENT_KEY", global = true, requires = "client_certificate")]
    pub client_key: Option<PathBuf>,
}

impl Default for ConnectArgs {
    fn default() -> Self {
        ConnectArgs { server: DEFAULT_SERVER.into(), token: None, ca_file: None, client_certificate: None, client_key: None }
    }
}

impl From<&ConnectArgs> for ClientConfig {
    fn from(a: &ConnectArgs) -> Self {
        ClientConfig {
            server: a.server.clone(),
            token: a.token.clone(),
            ca_file: a.ca_file.clone(),
            client_certificate: a.client_certificate.clone(),
            client_key: a.client_key.clone(),
        }
    }
}
