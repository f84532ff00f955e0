//! The generated bindings of the `http-middleware` world. Plugin authors
//! never use these directly: `export_plugin!` wires them to a `Plugin`.

#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "http-middleware",
    // `sdk/wit` links to the workspace's `wit/`, so the packaged crate carries the contract.
    path: "wit",
    pub_export_macro: true,
    export_macro_name: "__export_http_middleware",
    default_bindings_module: "wasmgate_sdk::__private::bindings",
    runtime_path: "wasmgate_sdk::__private::wit_bindgen::rt",
});
