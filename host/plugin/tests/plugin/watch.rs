//! The watcher reports a settled change once, including rename-into-place.

use std::sync::mpsc;
use std::time::Duration;

use wasmgate_plugin::watch::Watcher;

use super::support::temp_dir;

#[test]
fn reports_a_file_renamed_into_place() {
    let dir = temp_dir("watch");
    let (tx, rx) = mpsc::channel();
    let watcher = Watcher::spawn(
        std::slice::from_ref(&dir),
        Duration::from_millis(50),
        move |paths| {
            let _ = tx.send(paths);
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // Written under a hidden name (ignored), then renamed into place.
    let temp = dir.join(".new.wasm.tmp");
    std::fs::write(&temp, b"plugin bytes").unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&temp, dir.join("new.wasm")).unwrap_or_else(|e| panic!("{e}"));

    let paths = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no change reported: {e}"));
    assert_eq!(
        paths,
        vec![std::path::absolute(dir.join("new.wasm")).unwrap_or_default()]
    );
    drop(watcher);
    let _ = std::fs::remove_dir_all(&dir);
}
