//! Mutual TLS between the nodes of a cluster.
//!
//! Every node (the domain node, the scheduler, each executor) holds the domain's cluster
//! CA and a certificate of its own that the CA signed, with its key. A node serves only
//! over TLS and accepts only a peer presenting a certificate of that CA; it connects to
//! others over TLS, presenting its own and checking theirs against the CA (and their name
//! against the address it dials). A process without such a certificate can neither submit
//! a plan to the scheduler nor read a partition (clamped rows) from an executor.
//!
//! Ballista 55 names its peers `http://host:port` whatever its `use_tls` says in some
//! places (the executor's scheduler, the scheduler's executors); [`NodeTls::endpoint`]
//! turns every endpoint a node makes into `https` with this TLS, so that no connection of
//! a TLS cluster is made in the clear.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// One node's TLS: the cluster CA and the node's certificate chain and key (PEM).
#[derive(Clone)]
pub struct NodeTls {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
    /// Where they were read from (for messages).
    from: PathBuf,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("NodeTls")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl PartialEq for NodeTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca == other.ca && self.cert == other.cert && self.key == other.key
    }
}

impl Eq for NodeTls {}

fn invalid(detail: String) -> sandbox_core::Error {
    sandbox_core::Error::Invalid(detail)
}

impl NodeTls {
    /// The TLS of a node from its PEM files: the cluster CA's certificate(s), the node's
    /// certificate chain and its private key. Each is checked to hold what it should.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> sandbox_core::Result<NodeTls> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| invalid(format!("the cluster TLS {what} `{}`: {e}", path.display())))
        };
        NodeTls::from_pem(
            read(ca, "CA")?,
            read(cert, "certificate")?,
            read(key, "key")?,
        )
        .map(|tls| NodeTls {
            from: cert.to_path_buf(),
            ..tls
        })
    }

    /// The TLS of a node from PEM bytes (see [`NodeTls::from_files`]).
    pub fn from_pem(ca: Vec<u8>, cert: Vec<u8>, key: Vec<u8>) -> sandbox_core::Result<NodeTls> {
        let certificates = |pem: &[u8], what: &str| -> sandbox_core::Result<usize> {
            let mut n = 0;
            for c in CertificateDer::pem_slice_iter(pem) {
                c.map_err(|e| invalid(format!("the cluster TLS {what}: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(invalid(format!(
                    "the cluster TLS {what} holds no PEM certificate"
                )));
            }
            Ok(n)
        };
        certificates(&ca, "CA")?;
        certificates(&cert, "certificate")?;
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| invalid(format!("the cluster TLS key holds no private key: {e}")))?;
        // The key must be the certificate's: rustls checks it when a server is built.
        key_matches(&cert, &key)?;
        Ok(NodeTls {
            ca,
            cert,
            key,
            from: PathBuf::from("(PEM)"),
        })
    }

    /// How this node serves: its certificate, and only clients the CA signed.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.ca))
            .client_auth_optional(false)
    }

    /// How this node connects: checking the server against the CA, presenting its own.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
    }

    /// `endpoint` made to connect over this TLS: an `http` endpoint becomes `https` to the
    /// same host and port (with the timeouts of the cluster's connections).
    pub fn endpoint(&self, endpoint: Endpoint) -> Result<Endpoint, tonic::transport::Error> {
        let uri = endpoint.uri();
        let endpoint = if uri.scheme_str() == Some("https") {
            endpoint
        } else {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            Endpoint::from_shared(format!("https://{authority}"))?
                .connect_timeout(Duration::from_secs(20))
                .tcp_nodelay(true)
                .tcp_keepalive(Some(Duration::from_secs(3600)))
                .http2_keep_alive_interval(Duration::from_secs(300))
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true)
        };
        endpoint.tls_config(self.client())
    }

    /// [`NodeTls::endpoint`] as Ballista's endpoint override (every endpoint a Ballista
    /// scheduler or executor makes goes through it).
    pub fn endpoint_override(&self) -> ballista_core::extension::EndpointOverrideFn {
        let tls = self.clone();
        Arc::new(move |endpoint| Ok(tls.endpoint(endpoint)?))
    }
}

/// Whether `key` is the private key of the first certificate of `cert` (the public key the
/// key derives is the certificate's; a key type that cannot say passes, as in rustls).
fn key_matches(cert: &[u8], key: &[u8]) -> sandbox_core::Result<()> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("the cluster TLS certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| invalid(format!("the cluster TLS key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(format!("the cluster TLS key: {e}")))?;
    match rustls::sign::CertifiedKey::new(chain, signing).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(invalid(format!(
            "the cluster TLS key does not go with its certificate: {e}"
        ))),
    }
}
