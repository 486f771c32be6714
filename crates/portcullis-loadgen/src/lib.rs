//! Load generators for the benchmark scripts under `bench/`: light HTTP/1.1 clients that
//! share the machine's cores with the server they measure, so they should cost as little
//! CPU as possible. Not part of the server.
//!
//! - `login_load`: password logins through the JSON flow executor (`bench/login`).
