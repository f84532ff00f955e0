//! The strict HTTP/1 framing watcher never panics, whatever the bytes and however
//! they are split across reads, and changes bytes only when it refuses something:
//! one poisoned byte (NUL, or CR/LF where hyper's chunk decoder takes NUL), then
//! only NULs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmgate::server::strict_http1::Framing;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let mut copy = bytes.to_vec();
    let at = usize::from(split).min(copy.len());
    let (a, b) = copy.split_at_mut(at);
    let mut framing = Framing::default();
    let _ = framing.scan(a);
    let _ = framing.scan(b);
    let changed: Vec<usize> = (0..bytes.len()).filter(|&i| copy[i] != bytes[i]).collect();
    if let Some((&first, rest)) = changed.split_first() {
        assert!(framing.refused.is_some());
        assert!(matches!(copy[first], 0 | b'\r' | b'\n'));
        assert!(rest.iter().all(|&i| copy[i] == 0));
    }
});
