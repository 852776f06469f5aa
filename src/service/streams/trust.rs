//! Which certificates a stream's TLS destinations are checked against: the
//! public web's roots (Mozilla's, as webpki-roots ships them) and, for
//! destinations on the operator's own network, the CAs of
//! `--stream-ca-file`. The same trust serves webhooks, S3 and syslog.

use std::sync::Arc;

use tokio_rustls::rustls::{
    self,
    pki_types::{pem::PemObject as _, CertificateDer},
};

/// The roots a stream's TLS trusts: the public ones and those an operator
/// added (none by default), with the TLS client configuration built on them
/// once.
#[derive(Debug, Clone)]
pub struct Trust {
    added: Arc<[CertificateDer<'static>]>,
    tls: Arc<rustls::ClientConfig>,
}

impl Default for Trust {
    fn default() -> Self {
        Self::with_added(Vec::new())
    }
}

impl Trust {
    /// Reads a PEM file of CA certificates; each must parse as one.
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: holds no PEM certificate", path.display()));
        }
        // Each must be usable as a trust anchor, or the file is refused
        // whole rather than trusted in part.
        let mut store = rustls::RootCertStore::empty();
        for cert in &certs {
            store.add(cert.clone()).map_err(|e| {
                format!("{}: a certificate is not a usable CA: {e}", path.display())
            })?;
        }
        Ok(Self::with_added(certs))
    }

    fn with_added(added: Vec<CertificateDer<'static>>) -> Self {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        // Each was checked when the file was read.
        roots.add_parsable_certificates(added.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            added: added.into(),
            tls: Arc::new(config),
        }
    }

    /// The CA certificates the operator added, for clients that take
    /// their roots one by one (reqwest).
    pub fn added(&self) -> &[CertificateDer<'static>] {
        &self.added
    }

    /// The TLS client configuration of syslog connections.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_or_with_garbage_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let err = Trust::from_pem_file(&empty).unwrap_err();
        assert!(err.ends_with("holds no PEM certificate"), "{err}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = Trust::from_pem_file(&garbage).unwrap_err();
        assert!(err.contains("not a PEM certificate file"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = Trust::from_pem_file(&missing).unwrap_err();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
    }
}
