//! Choosing a listener's certificate by the name the client asked for (SNI).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::LoadedCert;

/// Exact names first, then `*.domain` wildcards (one label deep), else the first
/// certificate: a client without SNI (or with a name no certificate lists) gets
/// the default, as with nginx's first `server`.
#[derive(Debug)]
pub struct SniResolver {
    /// `(name, index into keys)`; wildcard names are stored as `.domain`.
    exact: Vec<(String, usize)>,
    wildcard: Vec<(String, usize)>,
    keys: Vec<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn new(certs: Vec<LoadedCert>) -> SniResolver {
        let (mut exact, mut wildcard, mut keys) = (Vec::new(), Vec::new(), Vec::new());
        for (index, cert) in certs.into_iter().enumerate() {
            for name in cert.names {
                match name.strip_prefix('*') {
                    Some(suffix) if suffix.starts_with('.') => wildcard.push((suffix.to_owned(), index)),
                    _ => exact.push((name, index)),
                }
            }
            keys.push(cert.key);
        }
        SniResolver { exact, wildcard, keys }
    }

    /// The certificate for `name` (already lower case), or the default.
    pub fn pick(&self, name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let index = name.and_then(|name| {
            self.exact.iter().find(|(n, _)| n == name).map(|(_, i)| *i).or_else(|| {
                let dot = name.find('.')?;
                let suffix = &name[dot..];
                self.wildcard.iter().find(|(s, _)| s == suffix).map(|(_, i)| *i)
            })
        });
        self.keys.get(index.unwrap_or(0))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_ascii_lowercase);
        self.pick(name.as_deref()).cloned()
    }
}
