//! Self-signed certificates made in the test (rcgen) and a rustls client that
//! trusts them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A certificate and key as PEM files in a temp dir (removed on drop).
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
    dir: PathBuf,
}

impl TestCert {
    /// A self-signed certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> TestCert {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names).unwrap_or_else(|e| panic!("rcgen: {e}"));
        let dir = std::env::temp_dir().join(format!("wasmgate-cert-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap_or_else(|e| panic!("write cert: {e}"));
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap_or_else(|e| panic!("write key: {e}"));
        TestCert { cert, key, der: certified.cert.der().clone(), dir }
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The TOML inline table for a listener's `certificates` list.
    pub fn toml(&self) -> String {
        format!("{{ cert = \"{}\", key = \"{}\" }}", self.cert.display(), self.key.display())
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client config trusting `certs`, offering `alpn`.
pub fn client_config(certs: &[&TestCert], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert.der.clone()).unwrap_or_else(|e| panic!("root: {e}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("tls versions: {e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects with TLS to `addr`, sending `name` as SNI.
pub async fn connect(addr: std::net::SocketAddr, name: &str, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let name = ServerName::try_from(name.to_owned()).unwrap_or_else(|e| panic!("server name: {e}"));
    TlsConnector::from(config).connect(name, tcp).await.unwrap_or_else(|e| panic!("TLS handshake: {e}"))
}
