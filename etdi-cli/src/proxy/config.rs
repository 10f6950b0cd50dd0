//! The gateway's TOML configuration: parsed strictly (unknown keys refused),
//! checked completely and with every referenced file read and parsed before
//! anything is written, so a bad configuration fails with one sentence naming
//! the file, line, column and field, and leaves the disk untouched.
//!
//! Relative paths are resolved against the configuration file's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use etdi_core::tool::MAX_CALL_DEPTH;
use etdi_core::{Permission, SecurityLevel, SecurityPolicy, ToolId, ToolVersion};
use etdi_crypto::{Algorithm, CryptoProvider, SigningKey};
use etdi_policy::PolicyDocument;
use etdi_policy::file::{field_of, line_col};
use serde::Deserialize;
use toml::Spanned;

/// Largest configuration file accepted.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// Largest file a configuration refers to (JWKS, keys, certificates).
const MAX_REFERENCED_BYTES: u64 = 1024 * 1024;

/// A configuration error: one sentence naming the file, place and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do with upstream tools that `[tools]` does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// Not pinned, not advertised, not callable (the default).
    Hide,
    /// Pinned and advertised with the defaults (id `<provider>/<name>`,
    /// version `1.0.0`, no permissions).
    Expose,
}

/// How the gateway reaches the upstream MCP server.
#[derive(Debug, Clone)]
pub enum UpstreamConfig {
    /// A child process speaking MCP over stdin/stdout.
    Stdio {
        /// Program to run.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set for it (the rest of the gateway's environment is
        /// not passed, except the names in `inherit_env`).
        env: BTreeMap<String, String>,
        /// Variables copied from the gateway's environment.
        inherit_env: Vec<String>,
        /// Working directory (default: the configuration's directory).
        cwd: Option<PathBuf>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// Endpoint URL.
        url: String,
        /// The gateway's own bearer token for the upstream (never a
        /// downstream caller's), read from the environment at start.
        token: Option<String>,
    },
}

/// One trusted token issuer, as configured.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// `iss`.
    pub issuer: String,
}

/// TLS for the downstream listener.
#[derive(Clone)]
pub struct TlsSettings {
    /// The rustls server configuration (with client-certificate
    /// verification when `client_ca_file` is set).
    pub server: Arc<rustls::ServerConfig>,
    /// Accept a verified client certificate without a token.
    pub accept_client_certificates: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field(
                "accept_client_certificates",
                &self.accept_client_certificates,
            )
            .finish_non_exhaustive()
    }
}

/// The downstream (client-facing) endpoint.
#[derive(Debug)]
pub struct DownstreamConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// This resource's id (RFC 8707): the audience of tokens, request
    /// signatures and hops.
    pub resource: String,
    /// Path of the MCP endpoint.
    pub path: String,
    /// Accepted `Host` header values.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call (any other `Origin` gets 403).
    pub allowed_origins: Vec<String>,
    /// Scopes every request needs.
    pub required_scopes: Vec<String>,
    /// Scopes listed in the RFC 9728 document.
    pub scopes_supported: Vec<String>,
    /// Longest wait for in-flight requests after SIGTERM / Ctrl-C.
    pub shutdown_grace: std::time::Duration,
    /// Trusted issuers.
    pub issuers: Vec<IssuerSettings>,
    /// The token verifier built from them.
    pub verifier: Arc<etdi_auth::TokenVerifier>,
    /// TLS, when configured.
    pub tls: Option<TlsSettings>,
}

/// ETDI fields the gateway gives one upstream tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSettings {
    /// Stable ETDI id.
    pub id: ToolId,
    /// ETDI version.
    pub version: ToolVersion,
    /// Required permissions.
    pub permissions: BTreeSet<Permission>,
    /// Longest call chain accepted.
    pub max_call_depth: Option<u32>,
}

/// The gateway's attestation key and issuer.
#[derive(Debug)]
pub struct SigningSettings {
    /// A configured key; `None` means the key in the state directory
    /// (generated on first start).
    pub key: Option<SigningKey>,
    /// Algorithm of a generated key.
    pub algorithm: Algorithm,
    /// `iss` of the attestations.
    pub issuer: String,
}

/// A checked configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// Server name in `initialize`.
    pub name: String,
    /// Pins, generated keys and the lock live here.
    pub state_dir: PathBuf,
    /// The etdi-audit file sink's directory.
    pub audit_dir: PathBuf,
    /// Upstream tools not named under `[tools]`.
    pub unlisted: Unlisted,
    /// The upstream.
    pub upstream: UpstreamConfig,
    /// Longest wait for one upstream request.
    pub upstream_timeout: std::time::Duration,
    /// The downstream endpoint.
    pub downstream: DownstreamConfig,
    /// Provider id and name of the upstream's tools.
    pub provider: (String, String),
    /// Attestation key settings.
    pub signing: SigningSettings,
    /// The authorization policy.
    pub policy: PolicyDocument,
    /// Per-tool ETDI fields, by upstream tool name.
    pub tools: BTreeMap<String, ToolSettings>,
}

impl Config {
    /// The ETDI fields of upstream tool `name`, or `None` when the tool is
    /// not to be exposed.
    pub fn tool_settings(&self, name: &str) -> Option<ToolSettings> {
        if let Some(t) = self.tools.get(name) {
            return Some(t.clone());
        }
        if self.unlisted == Unlisted::Hide {
            return None;
        }
        Some(ToolSettings {
            id: ToolId::parse(&format!("{}/{name}", self.provider.0)).ok()?,
            version: ToolVersion::parse("1.0.0").ok()?,
            permissions: BTreeSet::new(),
            max_call_depth: None,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Option<Spanned<String>>,
    state_dir: Spanned<String>,
    audit_dir: Option<Spanned<String>>,
    unlisted_tools: Option<Spanned<String>>,
    upstream: Spanned<RawUpstream>,
    downstream: RawDownstream,
    provider: RawProvider,
    signing: Option<RawSigning>,
    policy: Option<RawPolicy>,
    #[serde(default)]
    tools: BTreeMap<String, RawTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    command: Option<Spanned<String>>,
    args: Option<Spanned<Vec<String>>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    inherit_env: Option<Spanned<Vec<String>>>,
    cwd: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownstream {
    listen: Spanned<String>,
    resource: Spanned<String>,
    path: Option<Spanned<String>>,
    allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    required_scopes: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    shutdown_grace_secs: Option<Spanned<i64>>,
    issuers: Spanned<Vec<RawIssuer>>,
    tls: Option<RawTls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: Spanned<String>,
    audience: Option<Spanned<String>>,
    jwks_file: Option<Spanned<String>>,
    jwks_uri: Option<Spanned<String>>,
    algorithms: Option<Vec<Spanned<String>>>,
    require_at_jwt: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Spanned<String>,
    key_file: Spanned<String>,
    client_ca_file: Option<Spanned<String>>,
    accept_client_certificates: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Spanned<String>,
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    key_file: Option<Spanned<String>>,
    algorithm: Option<Spanned<String>>,
    issuer: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    file: Option<Spanned<String>>,
    security_level: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    id: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    #[serde(default)]
    permissions: Vec<Spanned<String>>,
    max_call_depth: Option<Spanned<i64>>,
}

/// Where errors point: the file, its text and its directory.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        field: &str,
        message: impl std::fmt::Display,
    ) -> ConfigError {
        let mut out = self.file.display().to_string();
        if let Some(s) = span {
            let (line, col) = line_col(self.text, s.start);
            out.push_str(&format!(":{line}:{col}"));
        }
        if !field.is_empty() {
            out.push_str(&format!(": field `{field}`"));
        }
        // One line, whatever the underlying message looks like.
        let message = message.to_string();
        let message: Vec<&str> = message.split_whitespace().collect();
        out.push_str(": ");
        out.push_str(&message.join(" "));
        ConfigError(out)
    }

    fn at<T>(&self, v: &Spanned<T>, field: &str, message: impl std::fmt::Display) -> ConfigError {
        self.err(Some(v.span()), field, message)
    }

    fn path(&self, v: &str) -> PathBuf {
        let p = Path::new(v);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// Reads a file the configuration refers to (bounded).
    fn read(&self, v: &Spanned<String>, field: &str) -> Result<Vec<u8>, ConfigError> {
        use std::io::Read;
        let path = self.path(v.get_ref());
        let file = std::fs::File::open(&path)
            .map_err(|e| self.at(v, field, format!("cannot read {}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        file.take(MAX_REFERENCED_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.at(v, field, format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() as u64 > MAX_REFERENCED_BYTES {
            return Err(self.at(
                v,
                field,
                format!(
                    "{} is larger than {MAX_REFERENCED_BYTES} bytes",
                    path.display()
                ),
            ));
        }
        Ok(bytes)
    }
}

/// Reads and checks the configuration at `file`. Reads the files it refers
/// to; writes nothing.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let name = file.display().to_string();
    let meta = std::fs::metadata(file).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    if meta.len() > MAX_CONFIG_BYTES as u64 {
        return Err(ConfigError(format!(
            "{name}: the file is larger than {MAX_CONFIG_BYTES} bytes"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, file, dir)
}

/// Parses and checks configuration `text` read from `file`; relative paths
/// resolve against `dir`.
pub fn parse(text: &str, file: &Path, dir: PathBuf) -> Result<Config, ConfigError> {
    let ctx = Ctx { file, text, dir };
    let de = toml::Deserializer::parse(text).map_err(|e| ctx.err(e.span(), "", e.message()))?;
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_of(e.path());
        let inner = e.into_inner();
        ctx.err(inner.span(), &field, inner.message())
    })?;
    raw.check(&ctx)
}

fn non_empty(ctx: &Ctx<'_>, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
    if v.get_ref().trim().is_empty() {
        return Err(ctx.at(v, field, "must not be empty"));
    }
    Ok(v.get_ref().clone())
}

fn seconds(ctx: &Ctx<'_>, v: &Spanned<i64>, field: &str) -> Result<u64, ConfigError> {
    match u64::try_from(*v.get_ref()) {
        Ok(s) if (1..=3600).contains(&s) => Ok(s),
        _ => Err(ctx.at(v, field, "must be between 1 and 3600 seconds")),
    }
}

/// True for `http://` URLs whose host is a loopback address or `localhost`.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of an absolute URL (without port).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

impl RawConfig {
    fn check(self, ctx: &Ctx<'_>) -> Result<Config, ConfigError> {
        let name = match &self.name {
            Some(n) => non_empty(ctx, n, "name")?,
            None => "etdi-proxy".to_owned(),
        };
        let state_dir = ctx.path(&non_empty(ctx, &self.state_dir, "state_dir")?);
        let audit_dir = match &self.audit_dir {
            Some(d) => ctx.path(&non_empty(ctx, d, "audit_dir")?),
            None => state_dir.join("audit"),
        };
        let unlisted = match &self.unlisted_tools {
            None => Unlisted::Hide,
            Some(v) => match v.get_ref().as_str() {
                "hide" => Unlisted::Hide,
                "expose" => Unlisted::Expose,
                other => {
                    return Err(ctx.at(
                        v,
                        "unlisted_tools",
                        format!("must be \"hide\" or \"expose\", not {other:?}"),
                    ));
                }
            },
        };
        let provider_id = non_empty(ctx, &self.provider.id, "provider.id")?;
        // A provider id has the syntax of a tool id (PROTOCOL §2).
        ToolId::parse(&provider_id).map_err(|e| ctx.at(&self.provider.id, "provider.id", e))?;
        let provider_name = non_empty(ctx, &self.provider.name, "provider.name")?;

        let (upstream, upstream_timeout) = check_upstream(ctx, &self.upstream)?;
        let downstream = check_downstream(ctx, &self.downstream)?;
        let signing = check_signing(ctx, self.signing.as_ref(), &provider_id)?;
        let policy = check_policy(ctx, self.policy.as_ref())?;

        let mut tools = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for (tool, raw) in &self.tools {
            let field = |f: &str| {
                let key = if tool
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    tool.clone()
                } else {
                    format!("{tool:?}")
                };
                format!("tools.{key}.{f}")
            };
            let id = match &raw.id {
                Some(v) => ToolId::parse(v.get_ref()).map_err(|e| ctx.at(v, &field("id"), e))?,
                None => ToolId::parse(&format!("{provider_id}/{tool}")).map_err(|e| {
                    ctx.err(
                        None,
                        &format!("tools.{tool:?}"),
                        format!("the default id `{provider_id}/{tool}` is not a valid tool id ({e}); set `id`"),
                    )
                })?,
            };
            if let Some(other) = ids.insert(id.clone(), tool.clone()) {
                return Err(ctx.err(
                    raw.id.as_ref().map(Spanned::span),
                    &field("id"),
                    format!("tool id `{id}` is already used by tool `{other}`"),
                ));
            }
            let version =
                match &raw.version {
                    Some(v) => ToolVersion::parse(v.get_ref())
                        .map_err(|e| ctx.at(v, &field("version"), e))?,
                    None => ToolVersion::parse("1.0.0")
                        .map_err(|e| ctx.err(None, &field("version"), e))?,
                };
            let mut permissions = BTreeSet::new();
            for (i, p) in raw.permissions.iter().enumerate() {
                let parsed = Permission::parse(p.get_ref())
                    .map_err(|e| ctx.at(p, &field(&format!("permissions[{i}]")), e))?;
                permissions.insert(parsed);
            }
            let max_call_depth = match &raw.max_call_depth {
                Some(d) => match u32::try_from(*d.get_ref()) {
                    Ok(v) if (1..=MAX_CALL_DEPTH).contains(&v) => Some(v),
                    _ => {
                        return Err(ctx.at(
                            d,
                            &field("max_call_depth"),
                            format!("must be between 1 and {MAX_CALL_DEPTH}"),
                        ));
                    }
                },
                None => None,
            };
            tools.insert(
                tool.clone(),
                ToolSettings {
                    id,
                    version,
                    permissions,
                    max_call_depth,
                },
            );
        }

        Ok(Config {
            file: ctx.file.to_path_buf(),
            name,
            state_dir,
            audit_dir,
            unlisted,
            upstream,
            upstream_timeout,
            downstream,
            provider: (provider_id, provider_name),
            signing,
            policy,
            tools,
        })
    }
}

fn check_upstream(
    ctx: &Ctx<'_>,
    raw: &Spanned<RawUpstream>,
) -> Result<(UpstreamConfig, std::time::Duration), ConfigError> {
    let u = raw.get_ref();
    let timeout = match &u.timeout_secs {
        Some(t) => std::time::Duration::from_secs(seconds(ctx, t, "upstream.timeout_secs")?),
        None => std::time::Duration::from_secs(60),
    };
    let config = match (&u.command, &u.url) {
        (Some(_), Some(url)) => {
            return Err(ctx.at(
                url,
                "upstream.url",
                "set either `command` (stdio) or `url` (Streamable HTTP), not both",
            ));
        }
        (None, None) => {
            return Err(ctx.at(
                raw,
                "upstream",
                "set `command` (a stdio server) or `url` (a Streamable HTTP server)",
            ));
        }
        (Some(command), None) => {
            if let Some(t) = &u.token_env {
                return Err(ctx.at(
                    t,
                    "upstream.token_env",
                    "only applies to an HTTP upstream (`url`)",
                ));
            }
            let inherit_env = match &u.inherit_env {
                Some(list) => {
                    for name in list.get_ref() {
                        if name.is_empty() || name.contains('=') || name.contains('\0') {
                            return Err(ctx.at(
                                list,
                                "upstream.inherit_env",
                                format!("{name:?} is not an environment variable name"),
                            ));
                        }
                    }
                    list.get_ref().clone()
                }
                None => vec!["PATH".to_owned()],
            };
            let env = match &u.env {
                Some(map) => {
                    for k in map.get_ref().keys() {
                        if k.is_empty() || k.contains('=') || k.contains('\0') {
                            return Err(ctx.at(
                                map,
                                "upstream.env",
                                format!("{k:?} is not an environment variable name"),
                            ));
                        }
                    }
                    map.get_ref().clone()
                }
                None => BTreeMap::new(),
            };
            UpstreamConfig::Stdio {
                command: non_empty(ctx, command, "upstream.command")?,
                args: u
                    .args
                    .as_ref()
                    .map(|a| a.get_ref().clone())
                    .unwrap_or_default(),
                env,
                inherit_env,
                // Relative arguments resolve where the configuration is.
                cwd: Some(
                    u.cwd
                        .as_ref()
                        .map_or_else(|| ctx.dir.clone(), |c| ctx.path(c.get_ref())),
                ),
            }
        }
        (None, Some(url)) => {
            for (present, field) in [
                (u.args.as_ref().map(Spanned::span), "upstream.args"),
                (u.env.as_ref().map(Spanned::span), "upstream.env"),
                (
                    u.inherit_env.as_ref().map(Spanned::span),
                    "upstream.inherit_env",
                ),
                (u.cwd.as_ref().map(Spanned::span), "upstream.cwd"),
            ] {
                if let Some(span) = present {
                    return Err(ctx.err(
                        Some(span),
                        field,
                        "only applies to a stdio upstream (`command`)",
                    ));
                }
            }
            let text = url.get_ref();
            // The gateway's own upstream credential must not travel in the
            // clear beyond this host.
            if !(text.starts_with("https://") || is_loopback_http(text)) {
                return Err(ctx.at(
                    url,
                    "upstream.url",
                    "must be an https URL (plain http only to a loopback address)",
                ));
            }
            if url_host(text).is_none() {
                return Err(ctx.at(url, "upstream.url", "has no host"));
            }
            let token = match &u.token_env {
                Some(var) => match std::env::var(var.get_ref()) {
                    Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
                    _ => {
                        return Err(ctx.at(
                            var,
                            "upstream.token_env",
                            format!(
                                "the environment variable `{}` is not set or empty",
                                var.get_ref()
                            ),
                        ));
                    }
                },
                None => None,
            };
            UpstreamConfig::Http {
                url: text.clone(),
                token,
            }
        }
    };
    Ok((config, timeout))
}

fn check_downstream(ctx: &Ctx<'_>, d: &RawDownstream) -> Result<DownstreamConfig, ConfigError> {
    let listen: SocketAddr = d.listen.get_ref().parse().map_err(|_| {
        ctx.at(
            &d.listen,
            "downstream.listen",
            format!(
                "{:?} is not an address such as 127.0.0.1:8443",
                d.listen.get_ref()
            ),
        )
    })?;
    let resource = d.resource.get_ref().clone();
    if !(resource.starts_with("https://") || resource.starts_with("http://"))
        || url_host(&resource).is_none()
    {
        return Err(ctx.at(
            &d.resource,
            "downstream.resource",
            "must be an absolute http(s) URL naming this endpoint (the token audience)",
        ));
    }
    etdi_core::ServerId::parse(&resource)
        .map_err(|e| ctx.at(&d.resource, "downstream.resource", e))?;
    let path = match &d.path {
        Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
        Some(p) => return Err(ctx.at(p, "downstream.path", "must start with `/`")),
        None => "/mcp".to_owned(),
    };
    let allowed_hosts = match &d.allowed_hosts {
        Some(h) => h.clone(),
        None => {
            let mut h = etdi_server::http::HttpOptions::default().allowed_hosts;
            if let Some(host) = url_host(&resource)
                && !h.contains(&host)
            {
                h.push(host);
            }
            h
        }
    };
    let shutdown_grace = match &d.shutdown_grace_secs {
        Some(s) => {
            std::time::Duration::from_secs(seconds(ctx, s, "downstream.shutdown_grace_secs")?)
        }
        None => std::time::Duration::from_secs(10),
    };

    if d.issuers.get_ref().is_empty() {
        return Err(ctx.at(
            &d.issuers,
            "downstream.issuers",
            "name at least one token issuer",
        ));
    }
    let mut builder = etdi_auth::TokenVerifier::builder();
    let mut issuers = Vec::new();
    for (i, raw) in d.issuers.get_ref().iter().enumerate() {
        let field = |f: &str| format!("downstream.issuers[{i}].{f}");
        let iss = non_empty(ctx, &raw.issuer, &field("issuer"))?;
        let audience = match &raw.audience {
            Some(a) => non_empty(ctx, a, &field("audience"))?,
            None => resource.clone(),
        };
        let mut cfg = etdi_auth::IssuerConfig::new(iss.clone()).audience(audience);
        match (&raw.jwks_file, &raw.jwks_uri) {
            (Some(_), Some(uri)) => {
                return Err(ctx.at(
                    uri,
                    &field("jwks_uri"),
                    "set either `jwks_file` or `jwks_uri`, not both",
                ));
            }
            (Some(file), None) => {
                let bytes = ctx.read(file, &field("jwks_file"))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ctx.at(file, &field("jwks_file"), "the file is not UTF-8"))?;
                let jwks = etdi_core::canonical::parse_json(&text).map_err(|e| {
                    ctx.at(file, &field("jwks_file"), format!("not a JWK Set: {e}"))
                })?;
                if !jwks.get("keys").is_some_and(serde_json::Value::is_array) {
                    return Err(ctx.at(
                        file,
                        &field("jwks_file"),
                        "not a JWK Set: no `keys` array",
                    ));
                }
                cfg = cfg.static_jwks(jwks);
            }
            (None, Some(uri)) => cfg = cfg.jwks_uri(uri.get_ref().clone()),
            (None, None) => {}
        }
        if let Some(algs) = &raw.algorithms {
            let mut list = Vec::new();
            for (j, a) in algs.iter().enumerate() {
                list.push(
                    Algorithm::parse(a.get_ref())
                        .map_err(|e| ctx.at(a, &field(&format!("algorithms[{j}]")), e))?,
                );
            }
            cfg = cfg.algorithms(list);
        }
        if let Some(on) = raw.require_at_jwt {
            cfg = cfg.require_at_jwt(on);
        }
        builder = builder.issuer(cfg);
        issuers.push(IssuerSettings { issuer: iss });
    }
    let verifier = builder
        .build()
        .map_err(|e| ctx.at(&d.issuers, "downstream.issuers", e))?;

    let tls = match &d.tls {
        None => None,
        Some(t) => Some(check_tls(ctx, t)?),
    };
    Ok(DownstreamConfig {
        listen,
        resource,
        path,
        allowed_hosts,
        allowed_origins: d.allowed_origins.clone(),
        required_scopes: d.required_scopes.clone(),
        scopes_supported: d.scopes_supported.clone(),
        shutdown_grace,
        issuers,
        verifier: Arc::new(verifier),
        tls,
    })
}

fn check_tls(ctx: &Ctx<'_>, t: &RawTls) -> Result<TlsSettings, ConfigError> {
    let chain_pem = ctx.read(&t.cert_file, "downstream.tls.cert_file")?;
    let chain = etdi_auth::mtls::certificates_from_pem(&chain_pem)
        .map_err(|e| ctx.at(&t.cert_file, "downstream.tls.cert_file", e))?;
    if chain.is_empty() {
        return Err(ctx.at(
            &t.cert_file,
            "downstream.tls.cert_file",
            "the file holds no certificate",
        ));
    }
    let key_pem = ctx.read(&t.key_file, "downstream.tls.key_file")?;
    let key = etdi_auth::mtls::private_key_from_pem(&key_pem)
        .map_err(|e| ctx.at(&t.key_file, "downstream.tls.key_file", e))?;
    let alpn = vec![b"http/1.1".to_vec()];
    let server = match &t.client_ca_file {
        Some(ca) => {
            let pem = ctx.read(ca, "downstream.tls.client_ca_file")?;
            etdi_auth::MtlsServerConfigBuilder::from_ca_pem(&pem)
                .and_then(|b| b.alpn(alpn).build(chain, key))
                .map_err(|e| ctx.at(ca, "downstream.tls.client_ca_file", e))?
        }
        None => {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
                .map_err(|e| ctx.at(&t.key_file, "downstream.tls.key_file", e))?;
            config.alpn_protocols = alpn;
            Arc::new(config)
        }
    };
    let accept = match &t.accept_client_certificates {
        Some(v) if *v.get_ref() && t.client_ca_file.is_none() => {
            return Err(ctx.at(
                v,
                "downstream.tls.accept_client_certificates",
                "needs `client_ca_file`: only verified client certificates can authenticate",
            ));
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    Ok(TlsSettings {
        server,
        accept_client_certificates: accept,
    })
}

fn check_signing(
    ctx: &Ctx<'_>,
    raw: Option<&RawSigning>,
    provider_id: &str,
) -> Result<SigningSettings, ConfigError> {
    let Some(s) = raw else {
        return Ok(SigningSettings {
            key: None,
            algorithm: Algorithm::ES256,
            issuer: provider_id.to_owned(),
        });
    };
    let algorithm = match &s.algorithm {
        Some(a) => Algorithm::parse(a.get_ref()).map_err(|e| ctx.at(a, "signing.algorithm", e))?,
        None => Algorithm::ES256,
    };
    let key = match &s.key_file {
        Some(f) => {
            let pem = ctx.read(f, "signing.key_file")?;
            let pem = String::from_utf8(pem)
                .map_err(|_| ctx.at(f, "signing.key_file", "the file is not UTF-8 PEM"))?;
            Some(
                SigningKey::from_pkcs8_pem(CryptoProvider::get_default(), &pem, algorithm)
                    .map_err(|e| {
                        ctx.at(
                            f,
                            "signing.key_file",
                            format!("not a PKCS#8 {algorithm} private key: {e}"),
                        )
                    })?,
            )
        }
        None => None,
    };
    let issuer = match &s.issuer {
        Some(i) => non_empty(ctx, i, "signing.issuer")?,
        None => provider_id.to_owned(),
    };
    Ok(SigningSettings {
        key,
        algorithm,
        issuer,
    })
}

fn check_policy(ctx: &Ctx<'_>, raw: Option<&RawPolicy>) -> Result<PolicyDocument, ConfigError> {
    let Some(p) = raw else {
        return Ok(PolicyDocument::default());
    };
    match (&p.file, &p.security_level) {
        (Some(_), Some(level)) => Err(ctx.at(
            level,
            "policy.security_level",
            "set the level inside the policy file when `policy.file` is used",
        )),
        (Some(file), None) => {
            let path = ctx.path(file.get_ref());
            let doc =
                PolicyDocument::load_file(&path).map_err(|e| ctx.at(file, "policy.file", e))?;
            // The gateway verifies no request signatures yet (it has no
            // configuration for signers' keys): a policy that requires them
            // could never allow a call.
            let signing_tool = doc
                .tools
                .iter()
                .find(|(_, rules)| rules.require_request_signing)
                .map(|(id, _)| id.to_string());
            if doc.security.require_request_signing || signing_tool.is_some() {
                let what = match signing_tool {
                    Some(id) => format!("tool `{id}`"),
                    None => "the policy".to_owned(),
                };
                return Err(ctx.at(
                    file,
                    "policy.file",
                    format!(
                        "{what} requires request signing (the strict level does too), which etdi proxy does not verify yet; use the basic or enhanced level"
                    ),
                ));
            }
            Ok(doc)
        }
        (None, Some(level)) => {
            let parsed: SecurityLevel = level
                .get_ref()
                .parse()
                .map_err(|e| ctx.at(level, "policy.security_level", e))?;
            let policy = SecurityPolicy::new(parsed);
            if policy.require_request_signing {
                return Err(ctx.at(
                    level,
                    "policy.security_level",
                    format!(
                        "the {parsed} level requires request signing, which etdi proxy does not verify yet; use basic or enhanced"
                    ),
                ));
            }
            Ok(PolicyDocument::new(policy))
        }
        (None, None) => Ok(PolicyDocument::default()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const GOOD: &str = r#"
state_dir = "state"

[upstream]
command = "python3"
args = ["server.py"]

[downstream]
listen = "127.0.0.1:0"
resource = "https://gw.example/mcp"
[[downstream.issuers]]
issuer = "https://issuer.example"

[provider]
id = "com.example.weather"
name = "Example Weather"

[tools.get_forecast]
permissions = ["weather:read"]
"#;

    fn parse_text(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("proxy.toml"), PathBuf::from("/etc/etdi"))
    }

    #[test]
    fn a_minimal_configuration_gets_its_defaults() {
        let c = parse_text(GOOD).unwrap();
        assert_eq!(c.name, "etdi-proxy");
        assert_eq!(c.state_dir, PathBuf::from("/etc/etdi/state"));
        assert_eq!(c.audit_dir, PathBuf::from("/etc/etdi/state/audit"));
        let t = c.tool_settings("get_forecast").unwrap();
        assert_eq!(t.id.as_str(), "com.example.weather/get_forecast");
        assert_eq!(t.version.to_string(), "1.0.0");
        assert!(c.tool_settings("other").is_none(), "unlisted tools hidden");
        assert_eq!(c.downstream.path, "/mcp");
        assert!(
            c.downstream
                .allowed_hosts
                .contains(&"gw.example".to_owned())
        );
        match &c.upstream {
            UpstreamConfig::Stdio { inherit_env, .. } => assert_eq!(inherit_env, &["PATH"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let bad = GOOD.replace("command = \"python3\"", "command = 42");
        let e = parse_text(&bad).unwrap_err().0;
        assert!(
            e.starts_with("proxy.toml:5:11: field `upstream.command`:"),
            "{e}"
        );

        let bad = GOOD.replace("args = [", "comand = \"x\"\nargs = [");
        let e = parse_text(&bad).unwrap_err().0;
        assert!(
            e.contains("field `upstream.comand`") || e.contains("comand"),
            "{e}"
        );
        assert!(e.starts_with("proxy.toml:6:"), "{e}");

        let bad = GOOD.replace("weather:read", "weather read");
        let e = parse_text(&bad).unwrap_err().0;
        assert!(
            e.contains("field `tools.get_forecast.permissions[0]`"),
            "{e}"
        );

        let bad = GOOD.replace("args = [\"server.py\"]", "url = \"http://example.com/mcp\"");
        let e = parse_text(&bad).unwrap_err().0;
        assert!(e.contains("field `upstream.url`"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn a_level_that_requires_request_signing_is_refused_up_front() {
        let text = format!("{GOOD}\n[policy]\nsecurity_level = \"strict\"\n");
        let e = parse_text(&text).unwrap_err().0;
        assert!(e.contains("field `policy.security_level`"), "{e}");
        assert!(e.contains("request signing"), "{e}");
        let text = format!("{GOOD}\n[policy]\nsecurity_level = \"enhanced\"\n");
        parse_text(&text).unwrap();
    }

    #[test]
    fn an_http_upstream_must_be_https_or_loopback() {
        let base = GOOD.replace(
            "command = \"python3\"\nargs = [\"server.py\"]",
            "url = \"URL\"",
        );
        assert!(parse_text(&base.replace("URL", "http://127.0.0.1:9/mcp")).is_ok());
        assert!(parse_text(&base.replace("URL", "https://up.example/mcp")).is_ok());
        let e = parse_text(&base.replace("URL", "http://up.example/mcp"))
            .unwrap_err()
            .0;
        assert!(e.contains("field `upstream.url`"), "{e}");
    }
}
