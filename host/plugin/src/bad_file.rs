//! Why a file is not a plugin, in words that say what to do: checked before
//! and after wasmtime compiles it, because wasmtime's own messages (the first
//! bytes dumped as an array, "a component parser", "no export `init` found")
//! leave the author to guess.

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::PluginError;

/// The WebAssembly magic number every module and component starts with.
const MAGIC: &[u8] = b"\0asm";
/// How many bytes of a file that is not WebAssembly its message quotes.
const QUOTED: usize = 8;

/// Refuses bytes that are not WebAssembly, or are a core module: the header
/// tells (magic, then a version and a layer, each a little-endian u16; layer
/// 0 is a core module, 1 a component).
pub(crate) fn check_header(plugin: &str, bytes: &[u8]) -> Result<(), PluginError> {
    if !bytes.starts_with(MAGIC) {
        return Err(PluginError::NotWasm {
            plugin: plugin.to_owned(),
            start: quote_start(bytes),
        });
    }
    if bytes.get(6..8) == Some(&[0, 0]) {
        return Err(PluginError::CoreModule {
            plugin: plugin.to_owned(),
        });
    }
    Ok(())
}

/// Refuses a component that does not export `init`: its crate did not call
/// `export_plugin!` (any other mismatch with the world is wasmtime's to name).
pub(crate) fn check_exports(
    plugin: &str,
    engine: &Engine,
    component: &Component,
) -> Result<(), PluginError> {
    let ty = component.component_type();
    let has_init = ty.exports(engine).any(|(name, _)| name == "init");
    match has_init {
        true => Ok(()),
        false => Err(PluginError::NotAPlugin {
            plugin: plugin.to_owned(),
        }),
    }
}

/// The first `QUOTED` bytes as a quoted string, `…` when there is more.
fn quote_start(bytes: &[u8]) -> String {
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED)]);
    let more = if bytes.len() > QUOTED { "…" } else { "" };
    format!("\"{}{more}\"", start.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> String {
        check_header("notes", bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_file_that_is_not_wasm_is_quoted_on_one_line_with_how_to_build_one() {
        assert_eq!(
            message(b"hello world\nand more lines\n"),
            "not a WebAssembly file (starts with \"hello wo…\"); build the plugin with cargo build --target wasm32-wasip2"
        );
        assert_eq!(
            message(b"\x7fELF\x02\x01\x01\0\0\0"),
            "not a WebAssembly file (starts with \"\\u{7f}ELF\\u{2}\\u{1}\\u{1}\\0…\"); build the plugin with cargo build --target wasm32-wasip2"
        );
        assert!(
            message(b"").contains("(starts with \"\")"),
            "{}",
            message(b"")
        );
    }

    #[test]
    fn a_core_module_is_named_as_such_with_the_target_that_makes_components() {
        assert_eq!(
            message(b"\0asm\x01\0\0\0"),
            "a core WebAssembly module, not a component; build the plugin with cargo build --target wasm32-wasip2 (which makes components)"
        );
        assert_eq!(
            message(b"\0asm\x0d\0\x01\0"),
            "",
            "a component header passes"
        );
    }
}
