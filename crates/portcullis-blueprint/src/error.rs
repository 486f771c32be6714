//! The one error type of this crate. Every error says where it happened: the blueprint's file
//! name, the entry (index and model) when one is concerned, and the field path inside it
//! (`attrs.groups[0]`), so a person can find the line to fix without reading our code.

use std::fmt;

/// Where in a blueprint an error happened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The blueprint's name as given to [`crate::parse`] (usually its file path).
    pub file: String,
    /// The entry's index in the flattened entry list (0-based), when an entry is concerned.
    pub entry: Option<usize>,
    /// The entry's model (`authentik_core.user`), when known.
    pub model: Option<String>,
    /// The field path inside the entry or document (`attrs.groups[0]`), empty at the top.
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.entry.is_some() || !self.path.is_empty() {
            f.write_str(":")?;
        }
        if let Some(index) = self.entry {
            write!(f, " entry {index}")?;
            if let Some(model) = &self.model {
                write!(f, " ({model})")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        Ok(())
    }
}

/// A blueprint that cannot be parsed or one of whose values cannot be evaluated.
///
/// Displays as `blueprints/x.yaml: entry 3 (authentik_core.user) attrs.name: unknown tag !Foo`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct BlueprintError {
    pub location: Box<Location>,
    pub kind: ErrorKind,
}

impl BlueprintError {
    pub fn new(location: Location, kind: ErrorKind) -> Self {
        Self {
            location: Box::new(location),
            kind,
        }
    }

    /// An error about the whole document (no entry).
    pub(crate) fn document(file: &str, path: &str, kind: ErrorKind) -> Self {
        Self::new(
            Location {
                file: file.to_owned(),
                path: path.to_owned(),
                ..Location::default()
            },
            kind,
        )
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("blueprint is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("document has more than {limit} nodes once YAML aliases are expanded")]
    AliasExpansion { limit: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("unsupported blueprint version {0}, only version 1 is supported")]
    UnsupportedVersion(String),
    #[error("missing `entries`")]
    MissingEntries,
    #[error("{0}")]
    Invalid(String),
    #[error("unknown tag !{0}")]
    UnknownTag(String),
    /// A tag whose arguments have the wrong shape, found while parsing.
    #[error("!{tag}: {message}")]
    TagSyntax { tag: &'static str, message: String },
    /// A tag that failed while being evaluated.
    #[error("!{tag}: {message}")]
    Evaluation { tag: &'static str, message: String },
    #[error("!{tag}: {message}")]
    Resolver { tag: &'static str, message: String },
    #[error("!File: {0}")]
    FileRefused(String),
    #[error("evaluation exceeded its budget of {limit} steps")]
    StepBudget { limit: usize },
    #[error("evaluation produced more than {limit} values")]
    OutputBudget { limit: usize },
    #[error("evaluation nested deeper than {limit} levels")]
    EvaluationTooDeep { limit: usize },
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// The model refused the values (validation, a missing reference, a conflict).
    #[error("{0}")]
    Model(String),
    /// `must_created` found the object already there.
    #[error("object already exists (state: must_created)")]
    AlreadyExists,
    #[error("the database failed: {0}")]
    Store(String),
}
