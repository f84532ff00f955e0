use http::{Request, Version};

use super::*;

fn parts(version: Version, target: &str, hosts: &[&str]) -> Parts {
    let mut builder = Request::builder().version(version).uri(target);
    for host in hosts {
        builder = builder.header("host", *host);
    }
    builder.body(()).unwrap().into_parts().0
}

fn authority(version: Version, target: &str, hosts: &[&str]) -> Result<Option<String>, &'static str> {
    match of_request(&parts(version, target, hosts)) {
        Ok(a) => Ok(a.map(|a| format!("{}|{}", a.value.to_str().unwrap(), a.host()))),
        Err(ProxyError::BadRequest(reason)) => Err(reason),
        Err(e) => panic!("{e}"),
    }
}

/// (version, target, Host headers, the authority and its host, or the refusal)
type Case = (Version, &'static str, &'static [&'static str], Result<Option<&'static str>, &'static str>);

#[test]
fn one_authority_per_request() {
    const HTTP_10: Version = Version::HTTP_10;
    const HTTP_11: Version = Version::HTTP_11;
    const HTTP_2: Version = Version::HTTP_2;
    let cases: &[Case] = &[
        (HTTP_11, "/x", &["api.test"], Ok(Some("api.test|api.test"))),
        (HTTP_11, "/x", &["API.Test:8080"], Ok(Some("api.test:8080|api.test"))),
        (HTTP_11, "/x", &["secure.example."], Ok(Some("secure.example|secure.example"))),
        (HTTP_11, "/x", &["secure.example.:81"], Ok(Some("secure.example:81|secure.example"))),
        (HTTP_11, "/x", &["[::1]:8080"], Ok(Some("[::1]:8080|[::1]"))),
        (HTTP_11, "/x", &["127.0.0.1"], Ok(Some("127.0.0.1|127.0.0.1"))),
        // Absolute form: the target's authority replaces Host.
        (HTTP_11, "http://www.example/x", &["secure.example"], Ok(Some("www.example|www.example"))),
        (HTTP_11, "http://WWW.EXAMPLE/x", &["secure.example"], Ok(Some("www.example|www.example"))),
        (HTTP_11, "http://user@www.example/x", &["www.example"], Err("user information in the authority")),
        (HTTP_11, "/x", &["a", "b"], Err("more than one Host header")),
        (HTTP_11, "/x", &[], Err("HTTP/1.1 request without Host")),
        (HTTP_10, "/x", &[], Ok(None)),
        (HTTP_11, "/x", &["a/b"], Err("invalid host")),
        (HTTP_11, "/x", &["a b"], Err("invalid host")),
        (HTTP_11, "/x", &["a..b"], Err("invalid host")),
        (HTTP_11, "/x", &["."], Err("invalid host")),
        (HTTP_11, "/x", &[""], Err("invalid host")),
        (HTTP_11, "/x", &["a:"], Err("invalid host")),
        (HTTP_11, "/x", &["a:123456"], Err("invalid host")),
        (HTTP_11, "/x", &["a:8x"], Err("invalid host")),
        (HTTP_11, "/x", &["[::1"], Err("invalid host")),
        (HTTP_11, "/x", &["[zz]"], Err("invalid host")),
        (HTTP_11, "/x", &["u@a"], Err("user information in the authority")),
        // HTTP/2: :authority wins, a host header that disagrees is refused.
        (HTTP_2, "http://www.example/x", &[], Ok(Some("www.example|www.example"))),
        (HTTP_2, "http://www.example/x", &["WWW.example."], Ok(Some("www.example|www.example"))),
        (HTTP_2, "http://www.example/x", &["secure.example"], Err("the host header and :authority differ")),
        (HTTP_2, "/x", &["secure.example"], Ok(Some("secure.example|secure.example"))),
    ];
    let mut wrong = Vec::new();
    for (version, target, hosts, expected) in cases {
        let got = authority(*version, target, hosts);
        if got.as_ref().map(|a| a.as_deref()).map_err(|e| *e) != *expected {
            wrong.push(format!("{version:?} {target} {hosts:?}: got {got:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn a_normal_host_is_not_copied() {
    let value = HeaderValue::from_static("api.test:80");
    let authority = normalize(value.as_bytes(), Some(&value)).unwrap();
    assert_eq!(authority.value, value);
    assert_eq!(authority.host(), "api.test");
}

#[test]
fn the_one_pass_check_agrees_with_the_full_one() {
    for text in ["a", "api.test", "api.test:80", "127.0.0.1:65535", "a-b_c.d", "a:", "a:123456", "a.", "a..b", ".a", "A.b", "[::1]", "a@b", "a:8x", ""] {
        let full = normalize(text.as_bytes(), None).ok().filter(|a| a.value.as_bytes() == text.as_bytes()).map(|a| a.host_len);
        assert_eq!(plain_len(text.as_bytes()), full.filter(|_| !text.starts_with('[')), "{text:?}");
    }
}

#[test]
fn in_host_says_whether_host_already_holds_the_authority() {
    let in_host = |version, target: &str, hosts: &[&str]| of_request(&parts(version, target, hosts)).unwrap().map(|a| a.in_host);
    assert_eq!(in_host(Version::HTTP_11, "/x", &["api.test:80"]), Some(true));
    assert_eq!(in_host(Version::HTTP_11, "/x", &["API.test"]), Some(false));
    assert_eq!(in_host(Version::HTTP_11, "/x", &["api.test."]), Some(false));
    assert_eq!(in_host(Version::HTTP_11, "http://www.example/x", &["secure.example"]), Some(false));
    assert_eq!(in_host(Version::HTTP_11, "http://www.example/x", &["www.example"]), Some(true));
    assert_eq!(in_host(Version::HTTP_2, "http://www.example/x", &[]), Some(false));
    assert_eq!(in_host(Version::HTTP_10, "/x", &[]), None);
}
