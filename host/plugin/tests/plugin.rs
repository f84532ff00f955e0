//! Integration tests of the plugin runtime with the real test plugins
//! (plugins/testing/*, built once per run for wasm32-wasip2).

mod plugin {
    pub mod support;

    mod capabilities;
    mod deadline;
    mod faults;
    mod loading;
    mod phases;
    mod pool;
    mod sandbox;
    mod validation;
    mod watch;
}
