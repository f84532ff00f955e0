//! The strict HTTP/1 framing watcher never panics, whatever the bytes and however
//! they are split across reads, and only ever changes a byte into NUL when it
//! refuses a head.
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
    assert!(changed.len() <= 1);
    if let Some(&i) = changed.first() {
        assert_eq!(copy[i], 0);
        assert!(framing.refused.is_some());
    }
});
