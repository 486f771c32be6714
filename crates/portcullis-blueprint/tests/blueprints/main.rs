//! One test binary for the blueprint crate: the corpus of blueprints in authentik's format
//! evaluated against a fake resolver, hostile inputs, and random input into the parser.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod corpus;
mod fuzz;
mod hostile;
