//! Request headers the gateway owns, settled once before the plugins run:
//! identity headers a client could forge are removed, ambiguous credentials
//! refused, and whether the request carries a `Forwarded` chain to extend is
//! noted. One pass over the headers; nothing is changed unless needed.

use http::header::{self, HeaderMap, HeaderName};

use super::ProxyError;

/// What the pass found that the proxy acts on later.
pub struct Inbound {
    /// The client sent `Forwarded`: the gateway appends its own element.
    pub forwarded: bool,
}

/// Checks and cleans the client's headers. `identity`: the route's identity
/// headers (what auth plugins set, e.g. `x-consumer-id`), removed so that only
/// a plugin of this request can have set them upstream.
pub fn settle(headers: &mut HeaderMap, identity: &[HeaderName]) -> Result<Inbound, ProxyError> {
    let mut authorizations = 0;
    let mut forwarded = false;
    let mut forged = false;
    for (name, _) in headers.iter() {
        if name == header::AUTHORIZATION {
            authorizations += 1;
        } else if name == header::FORWARDED {
            forwarded = true;
        } else if !forged && identity.contains(name) {
            forged = true;
        }
    }
    if authorizations > 1 {
        // Which one would an auth plugin check, and which one the backend?
        return Err(ProxyError::BadRequest("more than one Authorization header"));
    }
    if forged {
        for name in identity {
            headers.remove(name);
        }
    }
    Ok(Inbound { forwarded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_go_and_two_credentials_are_refused() {
        let identity = [HeaderName::from_static("x-consumer-id"), HeaderName::from_static("x-tenant")];
        let mut h = HeaderMap::new();
        h.append("x-consumer-id", "forged".parse().unwrap());
        h.append("x-consumer-id", "forged2".parse().unwrap());
        h.insert("x-tenant", "t".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        h.insert(header::FORWARDED, "for=1.2.3.4".parse().unwrap());
        let found = settle(&mut h, &identity).unwrap();
        assert!(found.forwarded);
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.contains_key("x-kept"));

        h.append(header::AUTHORIZATION, "Bearer a".parse().unwrap());
        assert!(settle(&mut h, &identity).is_ok());
        h.append(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert!(matches!(settle(&mut h, &identity), Err(ProxyError::BadRequest(_))));
    }
}
