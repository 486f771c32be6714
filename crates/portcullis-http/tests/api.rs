//! Black-box tests of the REST API v3: a real server on a loopback port and a fresh database
//! (SQLite and PostgreSQL), driven over HTTP with reqwest. Every refused mutating request is
//! also checked to leave the database unchanged, row for row.
//!
//! One binary on purpose (each extra test binary is another slow link); the modules under
//! `api/` hold the tests of one resource each, `common/` the client and the assertions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

#[path = "api/applications.rs"]
mod applications;
#[path = "api/brands.rs"]
mod brands;
#[path = "api/certificates.rs"]
mod certificates;
#[path = "api/events.rs"]
mod events;
#[path = "api/flows.rs"]
mod flows;
#[path = "api/groups.rs"]
mod groups;
#[path = "api/hostile.rs"]
mod hostile;
#[path = "api/policies.rs"]
mod policies;
#[path = "api/providers.rs"]
mod providers;
#[path = "api/shape.rs"]
mod shape;
#[path = "api/stages.rs"]
mod stages;
#[path = "api/tokens.rs"]
mod tokens;
#[path = "api/users.rs"]
mod users;
