//! Flows: the planner, the executor, challenges and the built-in stages (one per file).
//!
//! A flow is an ordered list of stage bindings. For each request the planner decides which
//! bindings apply (policies), and the executor walks the plan one challenge and one response at a
//! time. The same executor serves the JSON executor API and the HTML pages; plans live in the
//! database-backed session so any process can continue a flow another one started.
//! No HTTP framework types appear here: the `http` crate adapts requests and responses.

pub mod cache;
pub mod challenge;
pub mod context;
pub mod credentials;
pub mod error;
pub mod executor;
pub mod kinds;
pub mod plan;
pub mod policies;
pub mod session;
pub mod stages;

pub use challenge::{Challenge, ErrorDetail, FlowInfo};
pub use error::{ConfigError, FlowError};
pub use executor::{Executor, FlowRequest, FlowServices, Reply, SessionEndHook, safe_next};
pub use kinds::{STAGE_KINDS, StageKind, normalize_stage_config, stage_kind, stage_kind_by_path};
pub use plan::{FlowPlan, PlannedStage};
pub use policies::{POLICY_KINDS, PolicyKind, PolicyServices, policy_kind, policy_kind_by_path};
pub use session::{CookieChange, SessionState};
