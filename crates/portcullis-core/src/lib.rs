//! Portcullis' domain: the types every other crate speaks (users, groups, applications, tokens,
//! certificate keypairs, brands, events), the rules that make them valid, the `Clock`, and the
//! worker pool CPU-bound work runs on.
//!
//! Nothing here does I/O. The store persists these types, the HTTP layer renders them, and the
//! protocol crates reason about them; the rules that decide whether a value is acceptable live
//! here once, so the API, the CLI and blueprints all refuse the same things.

pub mod clock;
pub mod error;
pub mod flow;
pub mod model;
pub mod pool;
pub mod provider;
pub mod validate;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{CoreError, FieldErrors};
pub use flow::*;
pub use model::*;
pub use provider::*;
