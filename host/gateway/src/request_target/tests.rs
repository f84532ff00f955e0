use std::borrow::Cow;

use super::*;
use PathError::{
    Backslash, ControlByte, DotSegmentEncodedSlash, DotSegmentParameter, DoubleEncoding, InvalidEscape, NotAbsolute,
};

const REFUSE: PathRules = PathRules { encoded_slash: EncodedSlash::Refuse };
const KEEP: PathRules = PathRules { encoded_slash: EncodedSlash::Keep };

/// (input, rules, the normalised path or the error). Hostile shapes first, then ordinary ones.
const TABLE: &[(&str, PathRules, Result<&str, PathError>)] = &[
    // Walking out of a prefix, plain and encoded.
    ("/public/../admin", REFUSE, Ok("/admin")),
    ("/public/%2e%2e/admin", REFUSE, Ok("/admin")),
    ("/public/%2E%2E/admin", REFUSE, Ok("/admin")),
    ("/public/.%2e/admin", REFUSE, Ok("/admin")),
    ("/public/%2e./admin", REFUSE, Ok("/admin")),
    ("/public/./../admin", REFUSE, Ok("/admin")),
    ("/public/%2E%2E%2Fadmin", REFUSE, Err(PathError::EncodedSlash)),
    ("/public/..%2fadmin", REFUSE, Err(PathError::EncodedSlash)),
    ("/public/%2fadmin", REFUSE, Err(PathError::EncodedSlash)),
    ("/public%2F..%2Fadmin", REFUSE, Err(PathError::EncodedSlash)),
    ("/../../etc/passwd", REFUSE, Ok("/etc/passwd")),
    ("/..", REFUSE, Ok("/")),
    ("/.", REFUSE, Ok("/")),
    ("/%2e", REFUSE, Ok("/")),
    ("/a/.", REFUSE, Ok("/a/")),
    ("/a/..", REFUSE, Ok("/")),
    ("/a/b/..", REFUSE, Ok("/a/")),
    ("/a/b/../", REFUSE, Ok("/a/")),
    ("/a/./b", REFUSE, Ok("/a/b")),
    ("/a/b/../../../c", REFUSE, Ok("/c")),
    ("/a/%2e", REFUSE, Ok("/a/")),
    ("/a//..", REFUSE, Ok("/")),
    // Empty segments merge, like nginx's merge_slashes.
    ("//", REFUSE, Ok("/")),
    ("/api//admin", REFUSE, Ok("/api/admin")),
    ("//a//b//", REFUSE, Ok("/a/b/")),
    ("///etc/passwd", REFUSE, Ok("/etc/passwd")),
    // Tomcat's path parameters next to dots.
    ("/public/..;/admin", REFUSE, Err(DotSegmentParameter)),
    ("/public/..;jsessionid=1/admin", REFUSE, Err(DotSegmentParameter)),
    ("/public/.;/admin", REFUSE, Err(DotSegmentParameter)),
    ("/public/%2e%2e;/admin", REFUSE, Err(DotSegmentParameter)),
    ("/public/..%3b/admin", REFUSE, Err(DotSegmentParameter)),
    ("/public/;/admin", REFUSE, Ok("/public/;/admin")),
    ("/a;b=c/d;e", REFUSE, Ok("/a;b=c/d;e")),
    ("/a/..x;y", REFUSE, Ok("/a/..x;y")),
    // Backslash, raw or encoded.
    ("/public\\..\\admin", REFUSE, Err(Backslash)),
    ("/public/%5c../admin", REFUSE, Err(Backslash)),
    ("/public/..%5Cadmin", REFUSE, Err(Backslash)),
    // Control bytes, raw or encoded.
    ("/a%00", REFUSE, Err(ControlByte)),
    ("/a%00.html", REFUSE, Err(ControlByte)),
    ("/a%0a", REFUSE, Err(ControlByte)),
    ("/a%0D%0ASet-Cookie:x", REFUSE, Err(ControlByte)),
    ("/a%7f", REFUSE, Err(ControlByte)),
    ("/a\0b", REFUSE, Err(ControlByte)),
    ("/a\tb", REFUSE, Err(ControlByte)),
    ("/a\x7f", REFUSE, Err(ControlByte)),
    // Invalid escapes.
    ("/a%", REFUSE, Err(InvalidEscape)),
    ("/a%2", REFUSE, Err(InvalidEscape)),
    ("/a%zz", REFUSE, Err(InvalidEscape)),
    ("/a%%41", REFUSE, Err(InvalidEscape)),
    ("/%u002e%u002e/admin", REFUSE, Err(InvalidEscape)),
    ("/%2/", REFUSE, Err(InvalidEscape)),
    // Double encoding, including one that only appears once `%32` and `%65` are decoded.
    ("/public/%252e%252e/admin", REFUSE, Err(DoubleEncoding)),
    ("/a%252f", REFUSE, Err(DoubleEncoding)),
    ("/a%25%32%65", REFUSE, Err(DoubleEncoding)),
    ("/a%252%65", REFUSE, Err(DoubleEncoding)),
    ("/100%25", REFUSE, Ok("/100%25")),
    ("/a%25zz", REFUSE, Ok("/a%25zz")),
    ("/a%252", REFUSE, Ok("/a%252")),
    ("/a%25/2e", REFUSE, Ok("/a%25/2e")),
    // Not a path.
    ("", REFUSE, Err(NotAbsolute)),
    ("a/b", REFUSE, Err(NotAbsolute)),
    ("*", REFUSE, Err(NotAbsolute)),
    ("%2Fadmin", REFUSE, Err(NotAbsolute)),
    // Escapes made canonical: unreserved decoded, the rest upper-cased.
    ("/%41%42c", REFUSE, Ok("/ABc")),
    ("/%7e%7Euser", REFUSE, Ok("/~~user")),
    ("/%2d%5f%2E%7e", REFUSE, Ok("/-_.~")),
    ("/%c3%a9", REFUSE, Ok("/%C3%A9")),
    ("/%3b%3a%40", REFUSE, Ok("/%3B%3A%40")),
    ("/a%20b", REFUSE, Ok("/a%20b")),
    ("/a%3f%23", REFUSE, Ok("/a%3F%23")),
    // Bytes that are not pchars get escaped.
    ("/é", REFUSE, Ok("/%C3%A9")),
    ("/a b", REFUSE, Ok("/a%20b")),
    ("/a\"<>^`{|}", REFUSE, Ok("/a%22%3C%3E%5E%60%7B%7C%7D")),
    ("/a#b?c", REFUSE, Ok("/a%23b%3Fc")),
    ("/a[b]", REFUSE, Ok("/a%5Bb%5D")),
    // Ordinary paths stay as they are.
    ("/", REFUSE, Ok("/")),
    ("/a", REFUSE, Ok("/a")),
    ("/a/", REFUSE, Ok("/a/")),
    ("/api/users/7", REFUSE, Ok("/api/users/7")),
    ("/.well-known/acme-challenge/x", REFUSE, Ok("/.well-known/acme-challenge/x")),
    ("/a.b/c..d/.../..x/x..", REFUSE, Ok("/a.b/c..d/.../..x/x..")),
    ("/files/My%20Doc.pdf", REFUSE, Ok("/files/My%20Doc.pdf")),
    ("/x/%C3%A9", REFUSE, Ok("/x/%C3%A9")),
    ("/~user/a-b_c", REFUSE, Ok("/~user/a-b_c")),
    ("/a:b@c!$&'()*+,=", REFUSE, Ok("/a:b@c!$&'()*+,=")),
    // `encoded_slashes = "keep"`: `%2F` is data, never a boundary, never beside a dot.
    ("/a%2fb", KEEP, Ok("/a%2Fb")),
    ("/a%2Fb/../c", KEEP, Ok("/c")),
    ("/%2F%2F", KEEP, Ok("/%2F%2F")),
    ("/files/a%2Fb.txt", KEEP, Ok("/files/a%2Fb.txt")),
    ("/public/..%2Fadmin", KEEP, Err(DotSegmentEncodedSlash)),
    ("/public/%2E%2E%2Fadmin", KEEP, Err(DotSegmentEncodedSlash)),
    ("/public/%2F..%2Fadmin", KEEP, Err(DotSegmentEncodedSlash)),
    ("/public/a%2F%2e%2e", KEEP, Err(DotSegmentEncodedSlash)),
    ("/public/a%2F.", KEEP, Err(DotSegmentEncodedSlash)),
    ("/..%3B%2Fx", KEEP, Err(DotSegmentParameter)),
    ("/a%252f", KEEP, Err(DoubleEncoding)),
    ("/a%5c", KEEP, Err(Backslash)),
];

/// Prefixes a config might hold; the random test adds every prefix of each result.
const PREFIXES: &[&str] = &["/", "/public", "/public/", "/a", "/A", "/a/b", "/api", "/api/", "/admin", "/~", "/2e"];

#[test]
fn the_table_holds_and_every_row_keeps_the_properties() {
    assert!(TABLE.len() >= 60, "{}", TABLE.len());
    let mut failures = Vec::new();
    for &(input, rules, expected) in TABLE {
        let got = normalize_path(input, &rules);
        if got.as_deref().map_err(|e| *e) != expected {
            failures.push(format!("{input:?} ({:?}): expected {expected:?}, got {got:?}", rules.encoded_slash));
        }
        check_properties(input, &rules, &[]);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_normal_path_is_borrowed_and_a_changed_one_is_not() {
    for path in ["/", "/api/users/7", "/.well-known/x", "/a;b/c", "/a%20b", "/%C3%A9/", "/a..b/"] {
        assert!(matches!(normalize_path(path, &REFUSE), Ok(Cow::Borrowed(p)) if p == path), "{path}");
    }
    assert!(matches!(normalize_path("/a%2Fb", &KEEP), Ok(Cow::Borrowed(_))));
    for path in ["//", "/a/./b", "/%41", "/a%2f", "/é", "/a/.."] {
        assert!(matches!(normalize_path(path, &KEEP), Ok(Cow::Owned(_))), "{path}");
    }
}

#[test]
fn reasons_are_short_and_stable() {
    let reasons = [
        (NotAbsolute, "path does not start with /"),
        (InvalidEscape, "invalid percent-encoding in path"),
        (ControlByte, "control character in path"),
        (Backslash, "backslash in path"),
        (PathError::EncodedSlash, "encoded slash in path"),
        (DoubleEncoding, "double percent-encoding in path"),
        (DotSegmentParameter, "dot segment with parameters in path"),
        (DotSegmentEncodedSlash, "dot segment beside encoded slash in path"),
    ];
    for (error, text) in reasons {
        assert_eq!(error.to_string(), text);
        assert_eq!(error.reason(), text);
    }
}

#[test]
fn a_route_prefix_must_be_normal_and_unreserved() {
    for ok in ["/", "/api", "/api/", "/.well-known/acme-challenge", "/~user/v1.2-beta_3"] {
        assert_eq!(route_prefix_problem(ok), None, "{ok}");
    }
    let refused = [
        ("/a/../b", "`/a/../b` must be a normalised path: `/b`?"),
        ("/api//v1", "`/api//v1` must be a normalised path: `/api/v1`?"),
        ("/%61pi", "`/%61pi` must be a normalised path: `/api`?"),
        ("/a\\b", "`/a\\b` must be a normalised path: backslash in path"),
        ("/a%2Fb", "`/a%2Fb` must be a normalised path: encoded slash in path"),
        ("/a%20b", "`/a%20b` must be a normalised path of letters, digits, `-`, `.`, `_`, `~` and `/`"),
        ("/a:b", "`/a:b` must be a normalised path of letters, digits, `-`, `.`, `_`, `~` and `/`"),
        ("/a;b", "`/a;b` must be a normalised path of letters, digits, `-`, `.`, `_`, `~` and `/`"),
        ("api", "`api` must be a normalised path: path does not start with /"),
    ];
    for (prefix, reason) in refused {
        assert_eq!(route_prefix_problem(prefix).as_deref(), Some(reason), "{prefix}");
    }
}

#[test]
fn the_default_refuses_encoded_slashes() {
    assert_eq!(PathRules::default(), REFUSE);
    assert_eq!(normalize_path("/a%2Fb", &PathRules::default()), Err(PathError::EncodedSlash));
}

#[test]
fn random_paths_keep_the_properties() {
    const TOKENS: &[&str] = &[
        "/", "/", "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", ";", "%3b", "%25", "%252e", "%25%32", "a",
        "admin", "public", "api", "%41", "~", "%7e", "%00", "é", "%c3%a9", "%", "%2", "%g0", " ", "x;y", "%20", "2e",
        "b", "?", "%61", "%3A", ":", "%2D", "-",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed_2024);
    let (mut accepted, mut changed) = (0, 0);
    for round in 0..200_000 {
        let mut path = String::from("/");
        for _ in 0..rng.usize(0..10) {
            path.push_str(TOKENS[rng.usize(..TOKENS.len())]);
        }
        let rules = if round % 4 == 0 { KEEP } else { REFUSE };
        if let Ok(normal) = normalize_path(&path, &rules) {
            accepted += 1;
            changed += usize::from(normal != path);
            // Every whole-segment prefix of the result and of what nginx makes of it,
            // as far as a route's `path_prefix` could be it.
            let view = String::from_utf8_lossy(&nginx_view(&normal)).into_owned();
            let own: Vec<&str> = [&*normal, &*view]
                .into_iter()
                .flat_map(|p| p.match_indices('/').flat_map(|(at, _)| [&p[..at.max(1)], &p[..at + 1]]).chain([p]))
                .filter(|p| route_prefix_problem(p).is_none())
                .collect();
            check_properties(&path, &rules, &own);
        }
    }
    // The generator must reach both sides, or the test proves little.
    assert!(accepted > 30_000 && changed > 15_000, "accepted {accepted}, changed {changed}");
}

/// The fast check says "normal" exactly when the full rewrite would return the input.
#[test]
fn the_fast_path_is_exact() {
    const TOKENS: &[&str] =
        &["/", ".", "..", "%2E", "%2F", "%2f", "%3B", ";", "%25", "A", "%41", "%C3", "é", "%5C", "%20"];
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..100_000 {
        let mut path = String::from("/");
        for _ in 0..rng.usize(0..8) {
            path.push_str(TOKENS[rng.usize(..TOKENS.len())]);
        }
        for keep in [false, true] {
            let fast = is_normal(path.as_bytes(), keep);
            let slow = rewrite(path.as_bytes(), keep);
            assert_eq!(fast, slow.as_deref() == Ok(&*path), "{path:?} keep={keep}: slow path gives {slow:?}");
        }
    }
}

/// What every accepted input must give: a normal, stable result that lies under
/// the same route prefixes as what a backend serves for it.
fn check_properties(input: &str, rules: &PathRules, extra_prefixes: &[&str]) {
    let Ok(normal) = normalize_path(input, rules) else { return };
    let normal = &*normal;
    assert_eq!(normalize_path(normal, rules), Ok(Cow::Borrowed(normal)), "not idempotent: {input:?} → {normal:?}");
    assert_normal_shape(normal, rules);
    let refuse = rules.encoded_slash == EncodedSlash::Refuse;
    let nginx = nginx_view(normal);
    if refuse {
        // Normalising does not change which resource nginx serves.
        assert_eq!(nginx, nginx_view(input), "{input:?} → {normal:?}");
    }
    let views = [("nginx", nginx), ("tomcat", tomcat_view(normal)), ("twice", decoding_twice(normal))];
    for &prefix in PREFIXES.iter().chain(extra_prefixes) {
        assert_eq!(route_prefix_problem(prefix), None);
        let routed = under(normal.as_bytes(), prefix);
        for (backend, view) in &views {
            // Served from under a prefix: routed under it. And, refusing `%2F`, the other way
            // round (with `keep`, nginx serves `/admin%2Fx` as `/admin/x`; for Tomcat, whose
            // `/a;x/b` is `/a/b`, the proxy refuses a path whose route changes without its
            // parameters: `without_parameters_changes_nothing_else` below).
            let must = if routed {
                Some(true)
            } else if refuse && *backend != "tomcat" {
                Some(false)
            } else {
                None
            };
            if let Some(must) = must {
                assert_eq!(
                    under(view, prefix),
                    must,
                    "{input:?} → {normal:?}, routed under {prefix:?}: {routed}, but {backend} serves {:?}",
                    String::from_utf8_lossy(view)
                );
            }
        }
        if routed {
            let stripped = crate::router::strip(prefix, normal);
            assert_eq!(stripped, strip_rule(prefix, normal));
            assert!(!stripped.starts_with("//"), "{prefix:?} from {normal:?}: {stripped:?}");
            assert_eq!(normalize_path(&stripped, rules).as_deref(), Ok(&*stripped), "{prefix:?} from {normal:?}");
        }
    }
}

fn assert_normal_shape(normal: &str, rules: &PathRules) {
    let bytes = normal.as_bytes();
    assert!(normal.starts_with('/') && !normal.contains("//"), "{normal:?}");
    for segment in normal[1..].split('/') {
        assert!(segment != "." && segment != "..", "{normal:?}");
    }
    for (at, &b) in bytes.iter().enumerate() {
        assert!(b.is_ascii_graphic() && b != b'\\', "{normal:?}");
        if b == b'%' {
            let digits = &bytes[at + 1..at + 3];
            assert!(digits.iter().all(|d| d.is_ascii_digit() || (b'A'..=b'F').contains(d)), "{normal:?}");
            let value = u8::from_str_radix(std::str::from_utf8(digits).unwrap(), 16).unwrap();
            assert!(!is_unreserved(value), "encoded unreserved byte in {normal:?}");
            assert!(value != b'/' || rules.encoded_slash == EncodedSlash::Keep, "{normal:?}");
        }
    }
}

/// `router`'s rule: `path` lies under `prefix` on whole segments.
fn under(path: &[u8], prefix: &str) -> bool {
    match path.strip_prefix(prefix.as_bytes()) {
        Some(rest) => {
            prefix.ends_with('/')
                || rest.is_empty()
                || rest.starts_with(b"/")
                || rest.starts_with(b";")
                || rest.starts_with(b"%3B")
        }
        None => false,
    }
}

/// `router::strip`'s rule, written out: what follows the prefix, `/` when nothing does.
fn strip_rule(prefix: &str, path: &str) -> String {
    let rest = &path[prefix.trim_end_matches('/').len()..];
    if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    }
}

/// nginx: decode every escape (`%2F` too), merge slashes, resolve dot segments.
fn nginx_view(path: &str) -> Vec<u8> {
    resolve(&decode(path.as_bytes()))
}

/// Tomcat: drop each segment's `;` parameters, then decode and resolve.
fn tomcat_view(path: &str) -> Vec<u8> {
    let without_parameters: Vec<u8> = path
        .as_bytes()
        .split(|&b| b == b'/')
        .map(|segment| segment.split(|&b| b == b';').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(&b'/');
    resolve(&decode(&without_parameters))
}

/// A backend (or a chain of two) that decodes twice.
fn decoding_twice(path: &str) -> Vec<u8> {
    resolve(&decode(&decode(path.as_bytes())))
}

/// Every valid `%XX` decoded; anything else, invalid escapes included, copied.
fn decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)));
        match (bytes[i], digits) {
            (b'%', (Some(h), Some(l))) => {
                out.push((h << 4) | l);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Empty segments dropped (a trailing slash kept), `.` and `..` resolved, `..` stopping at the root.
fn resolve(path: &[u8]) -> Vec<u8> {
    let segments: Vec<&[u8]> = path.strip_prefix(b"/").unwrap_or(path).split(|&b| b == b'/').collect();
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for (i, &segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match segment {
            b"" | b"." => trailing_slash = last,
            b".." => {
                kept.pop();
                trailing_slash = last;
            }
            _ => {
                kept.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for segment in &kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || kept.is_empty() {
        out.push(b'/');
    }
    out
}

#[test]
fn without_parameters_changes_nothing_else() {
    assert_eq!(without_parameters("/a/b"), None);
    assert_eq!(without_parameters("/a;x/b;jsessionid=1").as_deref(), Some("/a/b"));
    assert_eq!(without_parameters("/;x").as_deref(), Some("/"));
    assert_eq!(without_parameters("/a;/b;;c/").as_deref(), Some("/a/b/"));
}
