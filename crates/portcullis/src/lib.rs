//! The `portcullis` program: CLI, configuration, start-up and shutdown. Wiring only; the
//! behaviour lives in the other crates.

pub mod blueprints;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod server;
