//! Any path the normaliser accepts comes out stable (normalising it again changes
//! nothing) and cannot walk out of a route: for every prefix the result lies under,
//! nginx's view of it (every escape decoded, slashes merged, dot segments resolved)
//! lies under it too, and (refusing `%2F`) the other way round. The first byte
//! picks the rules (odd: `encoded_slashes = "keep"`).
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use wasmgate::request_target::{normalize_path, route_prefix_problem, EncodedSlash, PathRules};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(bytes) else {
        return;
    };
    let encoded_slash = if flags & 1 == 0 { EncodedSlash::Refuse } else { EncodedSlash::Keep };
    let rules = PathRules { encoded_slash };
    let Ok(normal) = normalize_path(path, &rules) else {
        return;
    };
    assert_eq!(normalize_path(&normal, &rules), Ok(Cow::Borrowed(&*normal)), "{path:?}");
    assert!(!normal.contains("//"), "{path:?} → {normal:?}");
    let view = nginx_view(normal.as_bytes());
    for prefix in route_prefixes(&normal) {
        assert!(under(normal.as_bytes(), prefix));
        assert!(under(&view, prefix), "{path:?} → {normal:?} under {prefix:?}, nginx serves {view:?}");
    }
    // Nor is it served from under a prefix it is not routed under (with `keep`, a
    // decoding backend reads `/admin%2Fx` as `/admin/x`: that is what `keep` means).
    if encoded_slash == EncodedSlash::Refuse {
        let view = String::from_utf8_lossy(&view);
        for prefix in route_prefixes(&view) {
            assert!(
                under(normal.as_bytes(), prefix),
                "{path:?} → {normal:?} not under {prefix:?}, nginx serves {view:?}"
            );
        }
    }
});

/// Every whole-segment prefix of `path` that a route could have.
fn route_prefixes(path: &str) -> impl Iterator<Item = &str> {
    let cuts = path.match_indices('/').flat_map(|(at, _)| [&path[..at.max(1)], &path[..at + 1]]);
    cuts.chain([path]).filter(|p| route_prefix_problem(p).is_none())
}

/// `router`'s rule: `path` lies under `prefix` on whole segments.
fn under(path: &[u8], prefix: &str) -> bool {
    match path.strip_prefix(prefix.as_bytes()) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(b"/"),
        None => false,
    }
}

/// nginx: decode every escape (`%2F` too), merge slashes, resolve dot segments.
fn nginx_view(path: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        match (path[i], hex(path.get(i + 1)), hex(path.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let segments: Vec<&[u8]> = decoded.strip_prefix(b"/").unwrap_or(&decoded).split(|&b| b == b'/').collect();
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
    let mut out = Vec::with_capacity(decoded.len() + 1);
    for segment in &kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || kept.is_empty() {
        out.push(b'/');
    }
    out
}
