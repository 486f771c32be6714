//! Blueprints in authentik's format: parsing and tag evaluation.
//!
//! A blueprint is YAML (`version: 1`, `metadata`, `context`, `entries`) whose values may carry
//! authentik's tags (`!KeyOf`, `!Find`, `!Format`, `!Enumerate`, ...). This crate reads the file
//! into a [`Blueprint`] of un-evaluated [`Node`]s, refusing hostile input (huge files, alias
//! bombs, deep nesting, too many entries) with an error that names the file, the entry and the
//! field; and evaluates an entry's nodes to JSON with an [`Evaluator`], on a bounded budget,
//! asking a [`Resolver`] for anything that needs the database.
//!
//! It knows no model, no database and no HTTP: the apply step (model registry, one transaction
//! per blueprint) lives above it and calls it entry by entry, in order:
//!
//! ```text
//!   text --parse--> Blueprint { entries: [Entry { identifiers: Node, attrs: Node, .. }] }
//!                       |
//!   for each entry:  Evaluator::entry_applies --> Evaluator::evaluate_entry --> JSON
//!                       |                              |
//!                       +--- Resolver (key_of, find, find_object) <--- apply step
//! ```

mod apply;
mod error;
mod eval;
mod node;
mod parse;
pub mod python;

pub use apply::{
    ApplyOptions, ApplyReport, Found, ModelError, ModelHandler, Registry, apply, attrs_match,
    check_models, same,
};
pub use error::{BlueprintError, ErrorKind, Location};
pub use eval::{EvaluatedEntry, Evaluator, Limits, Resolver};
pub use node::{Node, Tag};
pub use parse::{
    Blueprint, Entry, EntryState, MAX_BYTES, MAX_DEPTH, MAX_ENTRIES, MAX_NODES, Metadata, parse,
};
