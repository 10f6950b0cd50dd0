//! Mutual TLS: a rustls server configuration that requires client
//! certificates from a configured CA bundle, and the caller's identity read
//! from the verified peer certificate (SAN URI including SPIFFE IDs, SAN DNS,
//! subject CN) as an `etdi_core::Principal`.
//!
//! Certificate-bound access tokens (RFC 8705) are checked by
//! [`crate::TokenVerifier::verify_with_certificate`] with the DER this module
//! exposes through [`peer_certificate`].

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use etdi_core::{AuthMethod, Principal};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// Why an mTLS configuration or a peer certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MtlsError {
    /// PEM or DER input could not be read.
    #[error("cannot read {what}: {reason}")]
    Input {
        /// What was being read (`CA bundle`, `certificate chain`, `private key`).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The peer certificate is not valid X.509.
    #[error("peer certificate is not valid X.509")]
    BadCertificate,
    /// No client certificate was presented on the connection.
    #[error("no client certificate was presented")]
    NoCertificate,
    /// The certificate names no usable identity.
    #[error("peer certificate has no SAN URI, SAN DNS name or subject CN")]
    NoIdentity,
    /// A SAN URI starts with `spiffe://` but is not a valid SPIFFE ID, or
    /// there are several (an X.509-SVID has exactly one).
    #[error("peer certificate has an invalid or ambiguous SPIFFE ID")]
    BadSpiffeId,
}

fn input(what: &'static str, reason: impl ToString) -> MtlsError {
    MtlsError::Input {
        what,
        reason: reason.to_string(),
    }
}

/// Reads every certificate of a PEM bundle.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, MtlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| input("certificates", e))?;
    if certs.is_empty() {
        return Err(input("certificates", "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, MtlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| input("private key", e))
}

/// Builds a rustls [`rustls::ServerConfig`] that requires a client
/// certificate chaining to one of the configured CAs.
///
/// rustls checks the chain, the validity period (an expired client
/// certificate fails the handshake) and the `clientAuth` extended key usage.
/// Crypto is aws-lc-rs; TLS 1.3 and 1.2.
#[derive(Debug)]
pub struct MtlsServerConfigBuilder {
    client_cas: Vec<CertificateDer<'static>>,
    crls: Vec<rustls::pki_types::CertificateRevocationListDer<'static>>,
    alpn: Vec<Vec<u8>>,
}

impl MtlsServerConfigBuilder {
    /// Client certificates must chain to one of these CA certificates (DER).
    pub fn new(client_cas: Vec<CertificateDer<'static>>) -> Self {
        MtlsServerConfigBuilder {
            client_cas,
            crls: Vec::new(),
            alpn: Vec::new(),
        }
    }

    /// Client CAs from a PEM bundle.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, MtlsError> {
        Ok(Self::new(certificates_from_pem(pem)?))
    }

    /// Adds certificate revocation lists (DER) checked for client chains.
    pub fn crls(
        mut self,
        crls: Vec<rustls::pki_types::CertificateRevocationListDer<'static>>,
    ) -> Self {
        self.crls = crls;
        self
    }

    /// ALPN protocols to offer (e.g. `h2`, `http/1.1`).
    pub fn alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// The server configuration, with the server's own chain and key.
    pub fn build(
        self,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: PrivateKeyDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, MtlsError> {
        if self.client_cas.is_empty() {
            return Err(input("CA bundle", "no CA certificate"));
        }
        let mut roots = rustls::RootCertStore::empty();
        for ca in self.client_cas {
            roots.add(ca).map_err(|e| input("CA bundle", e))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .with_crls(self.crls)
        .build()
        .map_err(|e| MtlsError::Tls(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MtlsError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(server_chain, server_key)
            .map_err(|e| MtlsError::Tls(e.to_string()))?;
        config.alpn_protocols = self.alpn;
        Ok(Arc::new(config))
    }
}

/// The verified end-entity certificate of a server-side connection, if the
/// client presented one (with [`MtlsServerConfigBuilder`] it always has,
/// once the handshake is complete).
pub fn peer_certificate(connection: &rustls::ServerConnection) -> Option<&CertificateDer<'static>> {
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
}

/// The identities a client certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateIdentity {
    /// The SPIFFE ID (`spiffe://trust-domain/path`), if the certificate is an
    /// X.509-SVID.
    pub spiffe_id: Option<String>,
    /// Every SAN URI (including the SPIFFE ID).
    pub uris: Vec<String>,
    /// Every SAN DNS name.
    pub dns_names: Vec<String>,
    /// The subject common name, if any.
    pub common_name: Option<String>,
    /// The issuer's distinguished name (RFC 4514 text).
    pub issuer: String,
    /// `base64url(SHA-256(DER))`: the RFC 8705 `x5t#S256` of this certificate.
    pub thumbprint: String,
}

impl CertificateIdentity {
    /// Reads the identity of a DER certificate. The certificate must already
    /// be verified (the TLS handshake does that); this only parses it.
    pub fn from_der(der: &[u8]) -> Result<Self, MtlsError> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|_| MtlsError::BadCertificate)?;
        if !rest.is_empty() {
            return Err(MtlsError::BadCertificate);
        }
        let mut uris = Vec::new();
        let mut dns_names = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|_| MtlsError::BadCertificate)?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    _ => {}
                }
            }
        }
        let mut spiffe = uris.iter().filter(|u| {
            u.get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("spiffe://"))
        });
        let spiffe_id = match (spiffe.next(), spiffe.next()) {
            (None, _) => None,
            (Some(id), None) if is_spiffe_id(id) => Some(id.clone()),
            _ => return Err(MtlsError::BadSpiffeId),
        };
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        Ok(CertificateIdentity {
            spiffe_id,
            uris,
            dns_names,
            common_name,
            issuer: cert.issuer().to_string(),
            thumbprint: certificate_thumbprint(der),
        })
    }

    /// The principal: subject from the SPIFFE ID, else the first SAN URI,
    /// else the first SAN DNS name, else the subject CN. `issuer` is the
    /// certificate issuer's DN; no scopes or roles (assign them by policy).
    pub fn to_principal(&self) -> Result<Principal, MtlsError> {
        let subject = self
            .spiffe_id
            .as_ref()
            .or_else(|| self.uris.first())
            .or_else(|| self.dns_names.first())
            .or(self.common_name.as_ref())
            .filter(|s| !s.is_empty())
            .ok_or(MtlsError::NoIdentity)?;
        let mut principal = Principal::new(subject.clone(), AuthMethod::MutualTls);
        principal.issuer = Some(self.issuer.clone());
        Ok(principal)
    }
}

/// The principal of a TLS server connection's verified client certificate.
pub fn connection_principal(connection: &rustls::ServerConnection) -> Result<Principal, MtlsError> {
    let cert = peer_certificate(connection).ok_or(MtlsError::NoCertificate)?;
    CertificateIdentity::from_der(cert.as_ref())?.to_principal()
}

/// `base64url(SHA-256(der))`, the RFC 8705 `x5t#S256` thumbprint.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(crate::verifier::cert_thumbprint(der))
}

/// A SPIFFE ID per the SPIFFE-ID specification: `spiffe://` (lowercase), a
/// trust domain of `[a-z0-9._-]`, an optional path of non-empty segments of
/// `[A-Za-z0-9._-]` that are not `.` or `..`; no query, fragment, port or
/// user info; at most 2048 bytes.
pub fn is_spiffe_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return false;
    };
    if id.len() > 2048 {
        return false;
    }
    let (domain, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    let domain_ok = !domain.is_empty()
        && domain.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    let path_ok = path.is_empty()
        || path.split('/').skip(1).all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        });
    domain_ok && path_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids() {
        assert!(is_spiffe_id("spiffe://example.org/ns/prod/sa/tools"));
        assert!(is_spiffe_id("spiffe://example.org"));
        assert!(!is_spiffe_id("spiffe://Example.org/x"));
        assert!(!is_spiffe_id("spiffe://example.org/"));
        assert!(!is_spiffe_id("spiffe://example.org/a//b"));
        assert!(!is_spiffe_id("spiffe://example.org/../x"));
        assert!(!is_spiffe_id("spiffe://example.org:443/x"));
        assert!(!is_spiffe_id("spiffe://example.org/x?y"));
        assert!(!is_spiffe_id("spiffe:///x"));
        assert!(!is_spiffe_id("https://example.org/x"));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(
            CertificateIdentity::from_der(b"not a certificate"),
            Err(MtlsError::BadCertificate)
        );
        assert!(certificates_from_pem(b"nothing").is_err());
    }
}
