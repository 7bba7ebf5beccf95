//! Authentication: who a request comes from. Static tokens
//! (`--token-auth-file`), x509 client certificates (verified during the TLS
//! handshake against `--client-ca-file`), ServiceAccount tokens, anonymous
//! requests (only with `--anonymous-auth`), and the insecure loopback mode
//! in which, with no authenticator configured at all, every request is
//! `system:masters`. A tower layer puts the outcome into each request's
//! extensions, for gRPC handlers and HTTP endpoints alike. The identities
//! it produces ([`UserInfo`], the group names) are [`crate::user`]'s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderMap;

use crate::serviceaccount::ServiceAccounts;
use crate::tls::ConnInfo;
use crate::user::{GROUP_AUTHENTICATED, GROUP_MASTERS, INSECURE_USER, UserInfo};

/// Why a request could not be authenticated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No credentials, and anonymous requests are not allowed.
    #[error("Unauthorized: no credentials (give a bearer token or a client certificate)")]
    NoCredentials,
    /// A bearer token no authenticator recognises.
    #[error("Unauthorized: invalid bearer token")]
    InvalidToken,
    /// A ServiceAccount token whose account is gone or was replaced.
    #[error("Unauthorized: {0}")]
    ServiceAccount(String),
    /// A client certificate without a common name.
    #[error("Unauthorized: the client certificate names no user (CN)")]
    BadCertificate,
}

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Line { path: String, line: usize, reason: String },
}

/// What the authentication layer found out about a request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: Result<UserInfo, Error>,
    /// The client's address.
    pub source: Option<IpAddr>,
}

/// The configured ways to authenticate.
pub struct Authenticator {
    /// No authenticator configured: everyone is `system:masters`.
    insecure: bool,
    anonymous: bool,
    tokens: HashMap<String, UserInfo>,
    service_accounts: Option<Arc<ServiceAccounts>>,
}

impl Authenticator {
    /// The insecure loopback mode: no authenticator is configured.
    pub fn insecure() -> Authenticator {
        Authenticator { insecure: true, anonymous: false, tokens: HashMap::new(), service_accounts: None }
    }

    /// Authentication on: static tokens, client certificates (already
    /// verified by TLS), ServiceAccount tokens, and anonymous requests if allowed.
    pub fn new(tokens: HashMap<String, UserInfo>, service_accounts: Option<Arc<ServiceAccounts>>, anonymous: bool) -> Authenticator {
        Authenticator { insecure: false, anonymous, tokens, service_accounts }
    }

    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Authenticates a request from its headers and connection.
    pub fn authenticate(&self, headers: &HeaderMap, conn: Option<&ConnInfo>) -> Result<UserInfo, Error> {
        if let Some(token) = bearer(headers) {
            if let Some(u) = self.tokens.get(token) {
                return Ok(with_authenticated(u.clone()));
            }
            if let Some(sa) = &self.service_accounts
                && let Some(result) = sa.authenticate(token)
            {
                return result.map(with_authenticated).map_err(Error::ServiceAccount);
            }
            if self.insecure {
                return Ok(insecure_user());
            }
            return Err(Error::InvalidToken);
        }
        if let Some(cert) = conn.and_then(|c| c.peer_certs.as_ref()).and_then(|c| c.first()) {
            let (cn, orgs) = berth_base::tls::certificate_identity(cert).ok_or(Error::BadCertificate)?;
            if cn.is_empty() {
                return Err(Error::BadCertificate);
            }
            return Ok(with_authenticated(UserInfo { name: cn, uid: String::new(), groups: orgs }));
        }
        if self.insecure {
            return Ok(insecure_user());
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(Error::NoCredentials)
    }
}

fn insecure_user() -> UserInfo {
    UserInfo::new(INSECURE_USER, &[GROUP_MASTERS, GROUP_AUTHENTICATED])
}

fn with_authenticated(mut u: UserInfo) -> UserInfo {
    if !u.in_group(GROUP_AUTHENTICATED) {
        u.groups.push(GROUP_AUTHENTICATED.into());
    }
    u
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Reads a Kubernetes static token file: `token,user,uid,"group1,group2"`
/// per line (groups optional; `#` starts a comment).
pub fn read_token_file(path: &Path) -> Result<HashMap<String, UserInfo>, TokenFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read { path: path.display().to_string(), source })?;
    parse_token_file(&text).map_err(|(line, reason)| TokenFileError::Line { path: path.display().to_string(), line, reason })
}

/// Parses the token file's text; errors carry the 1-based line number.
pub fn parse_token_file(text: &str) -> Result<HashMap<String, UserInfo>, (usize, String)> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = csv_fields(line).map_err(|e| (i + 1, e))?;
        if fields.len() < 3 {
            return Err((i + 1, "want at least token,user,uid".into()));
        }
        let (token, name, uid) = (fields[0].clone(), fields[1].clone(), fields[2].clone());
        if token.is_empty() || name.is_empty() {
            return Err((i + 1, "the token and the user must not be empty".into()));
        }
        let groups =
            fields.get(3).map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect()).unwrap_or_default();
        if out.insert(token, UserInfo { name, uid, groups }).is_some() {
            return Err((i + 1, "duplicate token".into()));
        }
    }
    Ok(out)
}

/// Splits one CSV line, with double-quoted fields (`""` inside quotes is a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur.trim().to_string());
    Ok(fields)
}

/// The tower layer that authenticates every request on the API port.
#[derive(Clone)]
pub struct AuthnLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthnLayer {
    pub fn new(authenticator: Arc<Authenticator>) -> AuthnLayer {
        AuthnLayer { authenticator }
    }
}

impl<S> tower::Layer<S> for AuthnLayer {
    type Service = AuthnService<S>;
    fn layer(&self, inner: S) -> AuthnService<S> {
        AuthnService { inner, authenticator: self.authenticator.clone() }
    }
}

/// See [`AuthnLayer`].
#[derive(Clone)]
pub struct AuthnService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthnService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let user = self.authenticator.authenticate(req.headers(), conn.as_ref());
        let source = conn.and_then(|c| c.remote).map(|a| a.ip());
        req.extensions_mut().insert(Authenticated { user, source });
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::ANONYMOUS;

    #[test]
    fn should_parse_kubernetes_token_files() {
        let text = "# comment\nt1,alice,1,\"dev,ops\"\nt2,bob,2\n";
        let tokens = parse_token_file(text).expect("parse");
        assert_eq!(tokens["t1"], UserInfo { name: "alice".into(), uid: "1".into(), groups: vec!["dev".into(), "ops".into()] });
        assert_eq!(tokens["t2"].groups, Vec::<String>::new());
        assert_eq!(parse_token_file("only,two").map_err(|e| e.0), Err(1));
        assert_eq!(parse_token_file("a,b,c\na,d,e").map_err(|e| e.0), Err(2));
    }

    #[test]
    fn should_refuse_unknown_tokens_and_missing_credentials_when_auth_is_on() {
        let tokens = parse_token_file("good,alice,1").expect("parse");
        let a = Authenticator::new(tokens, None, false);
        let mut h = HeaderMap::new();
        assert!(matches!(a.authenticate(&h, None), Err(Error::NoCredentials)));
        h.insert(http::header::AUTHORIZATION, "Bearer bad".parse().expect("header"));
        assert!(matches!(a.authenticate(&h, None), Err(Error::InvalidToken)));
        h.insert(http::header::AUTHORIZATION, "Bearer good".parse().expect("header"));
        let u = a.authenticate(&h, None).expect("alice");
        assert_eq!(u.name, "alice");
        assert!(u.in_group(GROUP_AUTHENTICATED));
    }

    #[test]
    fn should_treat_requests_as_anonymous_only_when_allowed() {
        let a = Authenticator::new(HashMap::new(), None, true);
        assert_eq!(a.authenticate(&HeaderMap::new(), None).expect("anonymous").name, ANONYMOUS);
        let insecure = Authenticator::insecure();
        assert!(insecure.authenticate(&HeaderMap::new(), None).expect("masters").in_group(GROUP_MASTERS));
    }
}
