//! Forwarding names outside the cluster domain to the node's resolvers (the `nameserver` lines of a resolv.conf) through hickory-resolver, with its bounded cache.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::Record;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;

/// Why the upstream resolvers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: hickory_resolver::ResolveError,
    },
    #[error("{path} names no nameserver other than berth-dns itself")]
    NoUpstream { path: String },
}

/// An upstream's answer, as the cluster server passes it on.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
}

/// The upstream resolvers.
#[derive(Clone)]
pub struct Forwarder {
    resolver: TokioResolver,
    upstreams: Vec<SocketAddr>,
}

impl Forwarder {
    /// Reads the nameservers of `resolv_conf`, leaving out `own` (the addresses berth-dns serves on,
    /// so that it never forwards to itself); caches at most `cache_size` answers.
    pub fn from_resolv_conf(resolv_conf: &Path, own: &[SocketAddr], cache_size: usize) -> Result<Forwarder, Error> {
        let path = resolv_conf.display().to_string();
        let data = std::fs::read(resolv_conf).map_err(|source| Error::Read { path: path.clone(), source })?;
        let (config, _) =
            hickory_resolver::system_conf::parse_resolv_conf(data).map_err(|source| Error::Parse { path: path.clone(), source })?;
        let mut ips: Vec<std::net::IpAddr> = Vec::new();
        for ns in config.name_servers() {
            let ip = ns.socket_addr.ip();
            let is_self = own.iter().any(|o| o.port() == 53 && (o.ip() == ip || (o.ip().is_unspecified() && ip.is_loopback())));
            if !is_self && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if ips.is_empty() {
            return Err(Error::NoUpstream { path });
        }
        Ok(Forwarder::new(&ips, 53, cache_size))
    }

    /// Forwards to `ips` on `port` (UDP, falling back to TCP for truncated answers).
    pub fn new(ips: &[std::net::IpAddr], port: u16, cache_size: usize) -> Forwarder {
        let group = NameServerConfigGroup::from_ips_clear(ips, port, true);
        let upstreams = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut opts = ResolverOpts::default();
        opts.cache_size = cache_size;
        opts.ndots = 0;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.preserve_intermediates = true;
        let mut builder = TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
        *builder.options_mut() = opts;
        Forwarder { resolver: builder.build(), upstreams }
    }

    /// Where names are forwarded.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Asks the upstreams (or the cache) for `query`.
    pub async fn forward(&self, query: &Query) -> Forwarded {
        match self.resolver.lookup(query.name().clone(), query.query_type()).await {
            Ok(lookup) => Forwarded { rcode: ResponseCode::NoError, answers: lookup.records().to_vec(), authority: Vec::new() },
            Err(e) => {
                let rcode = if e.is_nx_domain() {
                    ResponseCode::NXDomain
                } else if e.is_no_records_found() {
                    ResponseCode::NoError
                } else {
                    tracing::debug!(name = %query.name(), cause = %e, "forwarding failed");
                    ResponseCode::ServFail
                };
                let authority = e.into_soa().map(|soa| vec![soa.into_record_of_rdata()]).unwrap_or_default();
                Forwarded { rcode, answers: Vec::new(), authority }
            }
        }
    }
}
