//! Allow and deny lists of addresses and networks, on the real client ip.
//! Deny wins; a non-empty allow list refuses everything it does not hold.

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    /// Proxies whose `forwarded_header` is believed. Empty: the header is
    /// ignored and the connection's address is the client.
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default = "default_forwarded_header")]
    forwarded_header: String,
    /// Status for refused requests.
    #[serde(default = "forbidden")]
    status: u16,
}

fn default_forwarded_header() -> String {
    "x-forwarded-for".into()
}

fn forbidden() -> u16 {
    403
}

pub struct IpAcl {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    trusted: Vec<IpNet>,
    forwarded_header: String,
    status: u16,
}

/// `10.0.0.0/8`, `::1`, `192.168.1.7` (a bare address is a /32 or /128).
/// An IPv4-mapped network (`::ffff:10.0.0.0/104`) becomes the IPv4 one, as
/// client addresses do (`canonical`), so that it can match.
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))?;
    Some(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?),
            None => net,
        },
        net => net,
    })
}

fn parse_list(key: &str, list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            parse_net(text).ok_or_else(|| {
                format!("invalid config at `{key}[{i}]`: `{text}` is not an IP address or CIDR")
            })
        })
        .collect()
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn contains(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|net| net.contains(&ip))
}

impl IpAcl {
    /// The client: the connection's address, or, when that is a trusted
    /// proxy, the right-most untrusted address of the forwarded header.
    fn client(&self, request: &Request, cx: &Context) -> Option<IpAddr> {
        let mut ip = canonical(cx.client_ip()?);
        if !contains(&self.trusted, ip) {
            return Some(ip);
        }
        let hops: Vec<&[u8]> = request.headers().get_all(&self.forwarded_header).collect();
        for line in hops.iter().rev() {
            let Ok(line) = std::str::from_utf8(line) else {
                return None;
            };
            for hop in line.rsplit(',') {
                // An unparsable hop: the chain cannot be trusted past it.
                ip = canonical(hop.trim().parse().ok()?);
                if !contains(&self.trusted, ip) {
                    return Some(ip);
                }
            }
        }
        Some(ip)
    }
}

impl Plugin for IpAcl {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        if !(200..=599).contains(&config.status) {
            return Err("invalid config at `status`: must be 200..=599".into());
        }
        if !valid_header_name(&config.forwarded_header) {
            return Err(format!(
                "invalid config at `forwarded_header`: {:?} is not a header name",
                config.forwarded_header
            ));
        }
        Ok(Self {
            allow: parse_list("allow", &config.allow)?,
            deny: parse_list("deny", &config.deny)?,
            trusted: parse_list("trusted_proxies", &config.trusted_proxies)?,
            forwarded_header: config.forwarded_header.to_ascii_lowercase(),
            status: config.status,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let allowed = match self.client(request, cx) {
            Some(ip) => {
                !contains(&self.deny, ip) && (self.allow.is_empty() || contains(&self.allow, ip))
            }
            // Unknown client: only an open (deny-list-only) ACL lets it by.
            None => self.allow.is_empty(),
        };
        if allowed {
            RequestFlow::Continue
        } else {
            let body = json!({ "error": "forbidden" });
            RequestFlow::Respond(Response::json(self.status, &body))
        }
    }
}

export_plugin!(IpAcl);
