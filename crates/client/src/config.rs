//! Where a client finds the API server and how it proves who it is: the
//! flags every daemon and berthctl share (`--server`, `--token`, `--ca-file`).

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
    /// CA bundle that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { server: DEFAULT_SERVER.to_string(), token: None, ca_file: None }
    }
}

impl ClientConfig {
    /// A config for a server address, without credentials.
    pub fn new(server: impl Into<String>) -> Self {
        ClientConfig { server: server.into(), ..Default::default() }
    }
}

/// The shared connection flags, flattened into each binary's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// API server address.
    #[arg(long, env = "BERTH_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Bearer token.
    #[arg(long, env = "BERTH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate file to verify the API server with.
    #[arg(long, env = "BERTH_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

impl From<&ConnectArgs> for ClientConfig {
    fn from(a: &ConnectArgs) -> Self {
        ClientConfig { server: a.server.clone(), token: a.token.clone(), ca_file: a.ca_file.clone() }
    }
}
