//! TLS with rustls (ring provider): the server side of `https` listeners and the
//! client side towards upstreams that ask for it. Everything here runs at config
//! load: a certificate, key or CA bundle that cannot be used is a config error, and
//! a validated config holds ready-made rustls configs (a reload builds new ones).

mod expiry;
mod sni;
mod stream;

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, TlsStream};

use crate::config::UpstreamTls;

pub use sni::SniResolver;
pub use stream::MaybeTls;

/// ALPN protocols an `https` listener offers, in preference order.
pub const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where Debian (and most Linux systems) keep the system's trusted CAs.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One certificate of a listener, loaded and checked, with the host names it serves.
#[derive(Debug)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// Lower-case DNS names (`*.example.com` allowed) this certificate answers for.
    pub names: Vec<String>,
    /// When the certificate expires (Unix seconds), if its date could be read.
    pub not_after: Option<i64>,
}

/// Reads a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1) and
/// checks that they belong together. `names` overrides the certificate's own DNS names.
pub fn load_cert(cert: &Path, key: &Path, names: Option<&[String]>) -> Result<LoadedCert, (&'static str, String)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ("cert", format!("cannot read {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| ("cert", format!("{}: {e}", cert.display())))?;
    let Some(leaf) = chain.first() else {
        return Err(("cert", format!("{} holds no PEM CERTIFICATE", cert.display())));
    };
    let names = match names {
        Some(names) => names.iter().map(|n| n.trim().to_ascii_lowercase()).collect(),
        None => webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| ("cert", format!("{}: not a usable certificate: {e:?}", cert.display())))?
            .valid_dns_names()
            .map(str::to_ascii_lowercase)
            .collect(),
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| ("key", format!("{}: {e}", key.display())))?;
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| ("key", format!("{}: unusable private key: {e}", key.display())))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| ("key", format!("{} is not the key of {}", key.display(), cert.display())))?;
    let not_after = certified.cert.first().and_then(|leaf| expiry::not_after(leaf));
    Ok(LoadedCert { key: Arc::new(certified), names, not_after })
}

/// A server config choosing among `certs` by SNI (the first is the default for
/// clients that send no name or an unknown one), offering h2 and http/1.1.
pub fn server_config(certs: Vec<LoadedCert>) -> Result<Arc<ServerConfig>, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver::new(certs)));
    config.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client config trusting the CAs in `ca_file` (the system bundle when `None`),
/// offering `alpn` (empty: no ALPN).
pub fn client_config(ca_file: Option<&Path>, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no PEM CERTIFICATE", path.display()));
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Opens TLS on `stream` towards a target whose address was written as
/// `authority` (`host:port`): the name sent and verified is the configured
/// `server_name`, else that host.
pub async fn connect(stream: TcpStream, tls: &UpstreamTls, authority: &str) -> io::Result<MaybeTls> {
    let name = match &tls.server_name {
        Some(name) => name.clone(),
        None => {
            let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            ServerName::try_from(host.to_owned())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("`{host}` is not a TLS server name")))?
        }
    };
    let tls = TlsConnector::from(tls.client.clone()).connect(name, stream).await?;
    Ok(MaybeTls::Tls(Box::new(TlsStream::Client(tls))))
}
