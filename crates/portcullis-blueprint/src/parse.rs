//! Reading a blueprint file into a [`Blueprint`]: authentik's v1 format (`version`, `metadata`,
//! `context`, `entries`), with the limits that keep a hostile file from costing more than a
//! small, fixed amount of memory and time. Tags are checked here but evaluated later
//! ([`crate::Evaluator`]), entry by entry, at apply time.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeSeed;

use crate::error::{BlueprintError, ErrorKind};
use crate::node::{Abort, Budget, Builder, Node, Raw, RawSeed, join, scalar_string};

/// Largest blueprint accepted, in bytes.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most YAML nodes a document may hold once its aliases are expanded.
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting of sequences and mappings.
pub const MAX_DEPTH: usize = 64;
/// Most entries in one blueprint.
pub const MAX_ENTRIES: usize = 10_000;

/// A parsed blueprint, tags not yet evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Blueprint {
    /// The name errors use for this blueprint (its file path, usually).
    pub source: String,
    /// Always 1.
    pub version: u32,
    /// Optional in authentik's format; when present it has a name.
    pub metadata: Option<Metadata>,
    /// Default context; the caller's context is merged over it. Values may hold tags
    /// (`!Env`, another `!Context`), evaluated when read.
    pub context: BTreeMap<String, Node>,
    /// Entries in order; a dict of lists in the file is flattened in the order written.
    pub entries: Vec<Entry>,
}

/// A blueprint's `metadata`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What an entry asks for its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryState {
    /// Create the object or update the attributes given (the default).
    #[default]
    Present,
    /// Create the object if it does not exist; never update it.
    Created,
    /// Create the object; fail if it exists.
    MustCreated,
    /// Delete the object if it exists.
    Absent,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Present => "present",
            EntryState::Created => "created",
            EntryState::MustCreated => "must_created",
            EntryState::Absent => "absent",
        }
    }
}

/// One entry of a blueprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the flattened entry list, from 0; errors name it.
    pub index: usize,
    /// `app_label.model`, as written.
    pub model: String,
    pub state: EntryState,
    /// Name for `!KeyOf` references from later entries.
    pub id: Option<String>,
    /// Fields that find the existing object (a mapping, or a tag producing one).
    pub identifiers: Node,
    /// Fields to set (a mapping, or a tag producing one); `attrs: null` reads as `{}`.
    pub attrs: Node,
    /// All must evaluate truthy for the entry to apply.
    pub conditions: Vec<Node>,
    /// Object permissions (`{permission, user?, role?}` mappings), kept as written.
    pub permissions: Vec<Node>,
}

/// Parses a blueprint. `source` names it in errors (a file path, `built-in:bootstrap`, ...).
pub fn parse(text: &str, source: &str) -> Result<Blueprint, BlueprintError> {
    let top = |kind| BlueprintError::document(source, "", kind);
    if text.len() > MAX_BYTES {
        return Err(top(ErrorKind::TooLarge {
            size: text.len(),
            limit: MAX_BYTES,
        }));
    }
    let raw = read_yaml(text).map_err(top)?;
    let builder = Builder {
        file: source,
        entry: None,
        model: None,
    };
    let Raw::Map(root) = raw else {
        return Err(top(ErrorKind::Invalid(
            "a blueprint must be a mapping".into(),
        )));
    };

    let mut version = None;
    let mut metadata = None;
    let mut context = BTreeMap::new();
    let mut entries_raw = None;
    for (key, value) in root {
        let Some(key) = scalar_string(&key) else {
            return Err(top(ErrorKind::Invalid("keys must be scalars".into())));
        };
        match key.as_str() {
            "version" => version = Some(value),
            "metadata" => metadata = Some(parse_metadata(&builder, value)?),
            "context" => context = parse_context(&builder, value)?,
            "entries" => entries_raw = Some(value),
            // authentik ignores keys it does not know (its dataclass loader is not strict).
            _ => {}
        }
    }

    match version {
        None | Some(Raw::Null) => {}
        Some(Raw::Number(n)) if n.as_u64() == Some(1) => {}
        Some(other) => {
            let shown = scalar_string(&other).unwrap_or_else(|| "(not a number)".into());
            return Err(BlueprintError::document(
                source,
                "version",
                ErrorKind::UnsupportedVersion(shown),
            ));
        }
    }

    let entries_raw = entries_raw.ok_or_else(|| top(ErrorKind::MissingEntries))?;
    let flat = flatten_entries(&builder, entries_raw)?;
    if flat.len() > MAX_ENTRIES {
        return Err(top(ErrorKind::TooManyEntries {
            count: flat.len(),
            limit: MAX_ENTRIES,
        }));
    }
    let entries = flat
        .into_iter()
        .enumerate()
        .map(|(index, raw)| parse_entry(source, index, raw))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Blueprint {
        source: source.to_owned(),
        version: 1,
        metadata,
        context,
        entries,
    })
}

/// YAML text to a raw tree, with the node and depth limits enforced while parsing.
fn read_yaml(text: &str) -> Result<Raw, ErrorKind> {
    let budget = Budget::new(MAX_NODES, MAX_DEPTH);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let deserializer = serde_norway::Deserializer::from_str(text);
        RawSeed {
            budget: &budget,
            depth: 0,
        }
        .deserialize(deserializer)
    }));
    match result {
        Ok(Ok(raw)) => Ok(raw),
        Ok(Err(error)) => Err(match budget.abort.get() {
            Some(Abort::Nodes) => ErrorKind::AliasExpansion { limit: MAX_NODES },
            Some(Abort::Depth) => ErrorKind::TooDeep { limit: MAX_DEPTH },
            None => {
                let message = error.to_string();
                if message.contains("repetition limit exceeded") {
                    ErrorKind::AliasExpansion { limit: MAX_NODES }
                } else if message.contains("recursion limit exceeded") {
                    ErrorKind::TooDeep { limit: MAX_DEPTH }
                } else {
                    ErrorKind::Yaml(message)
                }
            }
        }),
        Err(_) => Err(ErrorKind::Yaml(
            "the YAML parser failed on this input".into(),
        )),
    }
}

fn parse_metadata(builder: &Builder<'_>, raw: Raw) -> Result<Metadata, BlueprintError> {
    let Raw::Map(fields) = raw else {
        return Err(builder.error("metadata", ErrorKind::Invalid("must be a mapping".into())));
    };
    let mut name = None;
    let mut labels = BTreeMap::new();
    for (key, value) in fields {
        match scalar_string(&key).as_deref() {
            Some("name") => match value {
                Raw::String(s) => name = Some(s),
                _ => {
                    return Err(builder.error(
                        "metadata.name",
                        ErrorKind::Invalid("must be a string".into()),
                    ));
                }
            },
            Some("labels") => match value {
                Raw::Null => {}
                Raw::Map(pairs) => {
                    for (k, v) in pairs {
                        match (scalar_string(&k), &v) {
                            (Some(k), Raw::String(_) | Raw::Number(_) | Raw::Bool(_)) => {
                                let v = scalar_string(&v).unwrap_or_default();
                                labels.insert(k, v);
                            }
                            (k, _) => {
                                return Err(builder.error(
                                    &join("metadata.labels", k.as_deref().unwrap_or("?")),
                                    ErrorKind::Invalid("labels must be strings".into()),
                                ));
                            }
                        }
                    }
                }
                _ => {
                    return Err(builder.error(
                        "metadata.labels",
                        ErrorKind::Invalid("must be a mapping".into()),
                    ));
                }
            },
            _ => {}
        }
    }
    let name = name.ok_or_else(|| {
        builder.error(
            "metadata.name",
            ErrorKind::Invalid("required when metadata is given".into()),
        )
    })?;
    Ok(Metadata { name, labels })
}

fn parse_context(
    builder: &Builder<'_>,
    raw: Raw,
) -> Result<BTreeMap<String, Node>, BlueprintError> {
    match builder.node(raw, "context")? {
        Node::Null => Ok(BTreeMap::new()),
        Node::Map(pairs) => Ok(pairs.into_iter().collect()),
        other => Err(builder.error(
            "context",
            ErrorKind::Invalid(format!("must be a mapping, found {}", other.kind())),
        )),
    }
}

fn flatten_entries(builder: &Builder<'_>, raw: Raw) -> Result<Vec<Raw>, BlueprintError> {
    match raw {
        Raw::Seq(items) => Ok(items),
        // authentik allows named sections: a dict of lists, taken in order.
        Raw::Map(sections) => {
            let mut out = Vec::new();
            for (name, section) in sections {
                let name = scalar_string(&name).unwrap_or_default();
                match section {
                    Raw::Seq(items) => out.extend(items),
                    Raw::Null => {}
                    _ => {
                        return Err(builder.error(
                            &join("entries", &name),
                            ErrorKind::Invalid("a section of entries must be a list".into()),
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(builder.error(
            "entries",
            ErrorKind::Invalid("must be a list, or a mapping of lists".into()),
        )),
    }
}

fn parse_entry(source: &str, index: usize, raw: Raw) -> Result<Entry, BlueprintError> {
    let mut builder = Builder {
        file: source,
        entry: Some(index),
        model: None,
    };
    let Raw::Map(fields) = raw else {
        return Err(builder.error("", ErrorKind::Invalid("an entry must be a mapping".into())));
    };
    let mut fields: Vec<(String, Raw)> = fields
        .into_iter()
        .map(|(k, v)| (scalar_string(&k).unwrap_or_default(), v))
        .collect();
    let mut take = |name: &str| {
        fields
            .iter()
            .rposition(|(k, _)| k == name)
            .map(|i| fields.swap_remove(i).1)
    };

    let model = match take("model") {
        Some(Raw::String(model)) => model,
        Some(Raw::Tagged(tag, _)) => {
            return Err(builder.error(
                "model",
                ErrorKind::Invalid(format!(
                    "must be a plain string (a tag here, !{tag}, is not supported)"
                )),
            ));
        }
        Some(_) => {
            return Err(builder.error("model", ErrorKind::Invalid("must be a string".into())));
        }
        None => return Err(builder.error("model", ErrorKind::Invalid("required".into()))),
    };
    let model_name = model.clone();
    builder.model = Some(&model_name);
    let state = match take("state") {
        None | Some(Raw::Null) => EntryState::Present,
        Some(Raw::String(s)) => match s.as_str() {
            "present" => EntryState::Present,
            "created" => EntryState::Created,
            "must_created" => EntryState::MustCreated,
            "absent" => EntryState::Absent,
            other => {
                return Err(builder.error(
                    "state",
                    ErrorKind::Invalid(format!(
                        "`{other}` is not one of present, created, must_created, absent"
                    )),
                ));
            }
        },
        Some(_) => {
            return Err(builder.error(
                "state",
                ErrorKind::Invalid(
                    "must be one of present, created, must_created, absent (tags are not \
                     supported here)"
                        .into(),
                ),
            ));
        }
    };
    let id = match take("id") {
        None | Some(Raw::Null) => None,
        Some(raw @ (Raw::String(_) | Raw::Number(_) | Raw::Bool(_))) => scalar_string(&raw),
        Some(_) => return Err(builder.error("id", ErrorKind::Invalid("must be a string".into()))),
    };
    let identifiers = take("identifiers");
    let attrs = take("attrs");
    let conditions = take("conditions");
    let permissions = take("permissions");

    let identifiers = match identifiers {
        None | Some(Raw::Null) => Node::Map(Vec::new()),
        Some(raw) => builder.node(raw, "identifiers")?,
    };
    let attrs = match attrs {
        None | Some(Raw::Null) => Node::Map(Vec::new()),
        Some(raw) => builder.node(raw, "attrs")?,
    };
    let list = |raw: Option<Raw>, name: &str| -> Result<Vec<Node>, BlueprintError> {
        match raw {
            None | Some(Raw::Null) => Ok(Vec::new()),
            Some(Raw::Seq(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| builder.node(item, &format!("{name}[{i}]")))
                .collect(),
            Some(_) => Err(builder.error(name, ErrorKind::Invalid("must be a list".into()))),
        }
    };
    let conditions = list(conditions, "conditions")?;
    let permissions = list(permissions, "permissions")?;

    Ok(Entry {
        index,
        model,
        state,
        id,
        identifiers,
        attrs,
        conditions,
        permissions,
    })
}
