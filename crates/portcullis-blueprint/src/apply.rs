//! Applying a blueprint: entries in order, each found by its identifiers and then created,
//! updated, left alone or deleted according to its state, through a [`Registry`] of models.
//!
//! ```text
//!   entry --conditions false--> skipped
//!     |
//!   evaluate identifiers, attrs (tags resolved; !KeyOf sees earlier entries' objects)
//!     |
//!   find by identifiers --+-- found ----- present: update the attrs that differ (none: no-op)
//!                         |               created: leave it      must_created: error
//!                         |               absent: delete it
//!                         +-- not found - present/created/must_created: create
//!                                         absent: nothing
//! ```
//!
//! This module knows no database: the caller hands in a context `C` (for Portcullis, a store
//! inside one transaction) that the models use, and commits or rolls back around [`apply`].
//! An error stops the apply at the entry that caused it, naming file, entry, model and field,
//! so the caller can roll everything back.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::error::{BlueprintError, ErrorKind, Location};
use crate::eval::{Evaluator, Resolver};
use crate::parse::{Blueprint, Entry, EntryState};

/// An object a model found or wrote: its primary key (what `!KeyOf` and `!Find` give) and its
/// serialized form (what `!FindObject` gives, and what updates are compared against).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub pk: Value,
    pub object: Value,
}

/// A model's refusal: a message, and the attribute it concerns when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelError {
    pub field: Option<String>,
    pub message: String,
}

impl ModelError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// One model (`authentik_core.user`, ...) as blueprints see it. Implementations validate
/// exactly as the API does.
#[async_trait::async_trait]
pub trait ModelHandler<C: Sync>: Send + Sync {
    /// The first object matching every `(field, value)`.
    async fn find(&self, ctx: &C, query: &[(String, Value)]) -> Result<Option<Found>, ModelError>;

    /// Creates an object from `fields` (the identifiers and attrs together).
    async fn create(&self, ctx: &C, fields: &Map<String, Value>) -> Result<Found, ModelError>;

    /// Changes the given attributes of an existing object.
    async fn update(
        &self,
        ctx: &C,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError>;

    async fn delete(&self, ctx: &C, existing: &Found) -> Result<(), ModelError>;

    /// Whether entries of this model must name identifiers. Models that are actions rather
    /// than objects (authentik's `metaapplyblueprint`) have none.
    fn needs_identifiers(&self) -> bool {
        true
    }

    /// Whether `existing` already holds every attribute in `attrs`, so that applying again
    /// changes nothing. The default compares each attribute with the serialized object
    /// (mappings compare recursively on the keys given; lists as sets when they hold ids).
    async fn is_unchanged(&self, _ctx: &C, existing: &Found, attrs: &Map<String, Value>) -> bool {
        attrs_match(&existing.object, attrs, &[])
    }
}

/// Whether `object` already holds every attribute of `attrs` (by [`same`]), leaving out the
/// attributes named in `skip` (write-only ones a model compares its own way).
pub fn attrs_match(object: &Value, attrs: &Map<String, Value>, skip: &[&str]) -> bool {
    attrs
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .all(|(k, v)| object.get(k).is_some_and(|cur| same(cur, v)))
}

/// Whether `current` already says what `wanted` says: objects match on `wanted`'s keys, lists
/// match as multisets (membership lists have no meaningful order), scalars exactly.
pub fn same(current: &Value, wanted: &Value) -> bool {
    match (current, wanted) {
        (Value::Object(c), Value::Object(w)) => {
            w.iter()
                .all(|(k, v)| c.get(k).is_some_and(|cv| same(cv, v)))
                && c.len() == w.len()
        }
        (Value::Array(c), Value::Array(w)) => {
            if c.len() != w.len() {
                return false;
            }
            let mut left: Vec<String> = c.iter().map(Value::to_string).collect();
            let mut right: Vec<String> = w.iter().map(Value::to_string).collect();
            left.sort();
            right.sort();
            left == right
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => current == wanted,
    }
}

/// Models by authentik's name. Aliases (for example authentik's older names) map to the same
/// handler.
pub struct Registry<C: Sync> {
    models: BTreeMap<String, std::sync::Arc<dyn ModelHandler<C>>>,
}

impl<C: Sync> Default for Registry<C> {
    fn default() -> Self {
        Self {
            models: BTreeMap::new(),
        }
    }
}

impl<C: Sync> Registry<C> {
    pub fn register(&mut self, name: &str, handler: impl ModelHandler<C> + 'static) -> &mut Self {
        self.models
            .insert(name.to_owned(), std::sync::Arc::new(handler));
        self
    }

    /// Makes `alias` another name of the already registered `name`.
    pub fn alias(&mut self, alias: &str, name: &str) -> &mut Self {
        if let Some(h) = self.models.get(name).cloned() {
            self.models.insert(alias.to_owned(), h);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&dyn ModelHandler<C>> {
        self.models.get(name).map(|h| h.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

impl ApplyReport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

/// How an apply is run.
pub struct ApplyOptions<'a> {
    /// Context given by the caller, merged over the blueprint's own.
    pub context: Map<String, Value>,
    /// Environment for `!Env`.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Where `!File` may read.
    pub blueprints_dir: Option<PathBuf>,
}

struct ApplyResolver<'a, C: Sync> {
    registry: &'a Registry<C>,
    ctx: &'a C,
    keys: Mutex<HashMap<String, Value>>,
}

impl<C: Sync> Resolver for ApplyResolver<'_, C> {
    async fn key_of(&self, id: &str, _for_model: &str) -> Option<Value> {
        self.keys.lock().ok()?.get(id).cloned()
    }

    async fn find(&self, model: &str, query: &[(String, Value)]) -> Result<Option<Value>, String> {
        Ok(self.lookup(model, query).await?.map(|f| f.pk))
    }

    async fn find_object(
        &self,
        model: &str,
        query: &[(String, Value)],
    ) -> Result<Option<Value>, String> {
        Ok(self.lookup(model, query).await?.map(|f| f.object))
    }
}

impl<C: Sync> ApplyResolver<'_, C> {
    async fn lookup(
        &self,
        model: &str,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, String> {
        let handler = self
            .registry
            .get(model)
            .ok_or_else(|| format!("unknown model {model:?}"))?;
        handler
            .find(self.ctx, query)
            .await
            .map_err(|e| match e.field {
                Some(f) => format!("{f}: {}", e.message),
                None => e.message,
            })
    }
}

fn location(bp: &Blueprint, entry: &Entry, path: &str) -> Location {
    Location {
        file: bp.source.clone(),
        entry: Some(entry.index),
        model: Some(entry.model.clone()),
        path: path.to_owned(),
    }
}

fn model_error(bp: &Blueprint, entry: &Entry, section: &str, e: ModelError) -> BlueprintError {
    let path = match &e.field {
        Some(f) => format!("{section}.{f}"),
        None => section.to_owned(),
    };
    BlueprintError::new(location(bp, entry, &path), ErrorKind::Model(e.message))
}

fn as_map(
    bp: &Blueprint,
    entry: &Entry,
    path: &str,
    v: Value,
) -> Result<Map<String, Value>, BlueprintError> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(BlueprintError::new(
            location(bp, entry, path),
            ErrorKind::Invalid(format!("expected a mapping, found {}", kind_of(&other))),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks that every entry names a registered model, before anything is written.
pub fn check_models<C: Sync>(bp: &Blueprint, registry: &Registry<C>) -> Result<(), BlueprintError> {
    for entry in &bp.entries {
        if registry.get(&entry.model).is_none() {
            return Err(BlueprintError::new(
                location(bp, entry, "model"),
                ErrorKind::UnknownModel(entry.model.clone()),
            ));
        }
    }
    Ok(())
}

/// Applies `bp`'s entries in order with `registry`'s models on `ctx`. Stops at the first error;
/// the caller rolls back what came before it.
pub async fn apply<C: Sync>(
    bp: &Blueprint,
    registry: &Registry<C>,
    ctx: &C,
    options: &ApplyOptions<'_>,
) -> Result<ApplyReport, BlueprintError> {
    check_models(bp, registry)?;
    let resolver = ApplyResolver {
        registry,
        ctx,
        keys: Mutex::new(HashMap::new()),
    };
    let mut evaluator = Evaluator::new(bp, &options.context, &resolver, options.env);
    if let Some(dir) = &options.blueprints_dir {
        evaluator = evaluator.with_blueprints_dir(dir.clone());
    }
    let mut report = ApplyReport::default();
    for entry in &bp.entries {
        let handler = registry.get(&entry.model).ok_or_else(|| {
            BlueprintError::new(
                location(bp, entry, "model"),
                ErrorKind::UnknownModel(entry.model.clone()),
            )
        })?;
        if !evaluator.entry_applies(entry).await? {
            report.skipped += 1;
            continue;
        }
        let evaluated = evaluator.evaluate_entry(entry).await?;
        let identifiers = as_map(bp, entry, "identifiers", evaluated.identifiers)?;
        let attrs = as_map(bp, entry, "attrs", evaluated.attrs)?;
        if identifiers.is_empty() && handler.needs_identifiers() {
            return Err(BlueprintError::new(
                location(bp, entry, "identifiers"),
                ErrorKind::Invalid("an entry needs at least one identifier".into()),
            ));
        }
        let query: Vec<(String, Value)> = identifiers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let existing = handler
            .find(ctx, &query)
            .await
            .map_err(|e| model_error(bp, entry, "identifiers", e))?;
        let result = match (entry.state, existing) {
            (EntryState::Absent, Some(found)) => {
                handler
                    .delete(ctx, &found)
                    .await
                    .map_err(|e| model_error(bp, entry, "identifiers", e))?;
                report.deleted += 1;
                None
            }
            (EntryState::Absent, None) => {
                report.unchanged += 1;
                None
            }
            (EntryState::MustCreated, Some(_)) => {
                return Err(BlueprintError::new(
                    location(bp, entry, "identifiers"),
                    ErrorKind::AlreadyExists,
                ));
            }
            (EntryState::Created, Some(found)) => {
                report.unchanged += 1;
                Some(found)
            }
            (EntryState::Present, Some(found)) => {
                if attrs.is_empty() || handler.is_unchanged(ctx, &found, &attrs).await {
                    report.unchanged += 1;
                    Some(found)
                } else {
                    let updated = handler
                        .update(ctx, &found, &attrs)
                        .await
                        .map_err(|e| model_error(bp, entry, "attrs", e))?;
                    report.updated += 1;
                    Some(updated)
                }
            }
            (_, None) => {
                let mut fields = identifiers.clone();
                for (k, v) in attrs {
                    fields.insert(k, v);
                }
                let created = handler
                    .create(ctx, &fields)
                    .await
                    .map_err(|e| model_error(bp, entry, "attrs", e))?;
                report.created += 1;
                Some(created)
            }
        };
        if let (Some(id), Some(found)) = (&entry.id, result)
            && let Ok(mut keys) = resolver.keys.lock()
        {
            keys.insert(id.clone(), found.pk);
        }
    }
    Ok(report)
}
