//! TLS to the server (feature `tls`): rustls with the ring provider.

use std::sync::Arc;

use crm_core::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Which servers a TLS connection trusts: the root certificates a server's certificate must
/// chain to. The server's certificate must also name the host of the connection string.
///
/// ```no_run
/// # async fn demo() -> crm_core::Result<()> {
/// use crm_postgres::{PostgresStore, PostgresTls};
///
/// let ca = std::fs::read("/etc/crm/postgres-ca.pem").expect("CA file");
/// let store = PostgresStore::builder("host=db.internal user=crm dbname=crm sslmode=require")
///     .tls(PostgresTls::new().with_root_certificate_pem(&ca)?)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresTls {
    roots: rustls::RootCertStore,
}

impl std::fmt::Debug for PostgresTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTls")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl Default for PostgresTls {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresTls {
    /// Trusts nothing yet: add roots with
    /// [`with_root_certificate_pem`](Self::with_root_certificate_pem).
    pub fn new() -> Self {
        PostgresTls {
            roots: rustls::RootCertStore::empty(),
        }
    }

    /// Also trusts every certificate in `pem` (one or more `CERTIFICATE` blocks): a private
    /// CA, or a whole bundle such as the system's `/etc/ssl/certs/ca-certificates.crt`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] on field `root_certificate` when `pem` holds no certificate or
    /// one that cannot be parsed.
    pub fn with_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::validation("root_certificate", reason);
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad(format!("not PEM: {e}")))?;
            self.roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no PEM certificate found".to_string()));
        }
        Ok(self)
    }

    /// The connector the pool makes connections with.
    pub(crate) fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::validation("tls", e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}
