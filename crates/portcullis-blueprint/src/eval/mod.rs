//! Evaluating tags: turning an entry's [`Node`]s into JSON at apply time, in entry order, with
//! authentik's semantics (`authentik/blueprints/v1/common.py`).
//!
//! The evaluator knows nothing of models or storage: lookups that need the database (`!KeyOf`,
//! `!Find`, `!FindObject`) go through a [`Resolver`] that the apply step implements. Every
//! evaluation runs on a budget (node visits, values produced, nesting, `!Enumerate` length), so
//! a hostile blueprint ends with an error instead of a hang or an exhausted heap.
//!
//! Where authentik only resolves a tag found directly as another tag's argument, we resolve
//! tags wherever they are nested (a list inside `!Format`'s arguments, a mapping held in the
//! context): the results are the same for every blueprint authentik handles, and sensible
//! for the rest.

mod file;
mod tags;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::error::{BlueprintError, ErrorKind, Location};
use crate::node::{Node, Tag};
use crate::parse::{Blueprint, Entry};
use crate::python::{py_str, truthy};

/// Lookups that need the objects applied so far or the database.
///
/// Implementations write `async fn`; the futures must be `Send` so an apply can run inside a
/// request handler.
pub trait Resolver: Sync {
    /// The primary key of the object made by the earlier entry of this blueprint whose `id` is
    /// `id`, or `None` when there is no such entry or it made no object. `for_model` is the
    /// model of the entry being evaluated: authentik answers with the policy binding target's
    /// `pbm_uuid` rather than its pk when that is `authentik_policies.policybinding`.
    fn key_of(&self, id: &str, for_model: &str) -> impl Future<Output = Option<Value>> + Send;

    /// The primary key of the first `model` object matching every `(field, value)`, or `None`.
    /// `Err` for an unknown model or field, with a message for the person who wrote it.
    fn find(
        &self,
        model: &str,
        query: &[(String, Value)],
    ) -> impl Future<Output = Result<Option<Value>, String>> + Send;

    /// Like [`Resolver::find`], but the object itself, serialized as the API shows it.
    fn find_object(
        &self,
        model: &str,
        query: &[(String, Value)],
    ) -> impl Future<Output = Result<Option<Value>, String>> + Send;
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nodes visited (a node inside an `!Enumerate` body counts once per item).
    pub max_steps: usize,
    /// Values produced, counting one per JSON value plus one per 64 bytes of string.
    pub max_output: usize,
    /// Items one `!Enumerate` may iterate over.
    pub max_enumerate_items: usize,
    /// Tags and containers nested during evaluation (`!Context` indirections included).
    pub max_depth: usize,
    /// Largest file `!File` reads.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 1_000_000,
            max_output: 1_000_000,
            max_enumerate_items: 10_000,
            max_depth: 128,
            max_file_bytes: 1024 * 1024,
        }
    }
}

/// An entry with its tags evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedEntry {
    pub identifiers: Value,
    pub attrs: Value,
    pub permissions: Vec<Value>,
}

/// Evaluates the tags of a blueprint's entries.
pub struct Evaluator<'a, R: Resolver> {
    source: String,
    context: BTreeMap<String, Node>,
    resolver: &'a R,
    env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    blueprints_dir: Option<PathBuf>,
    limits: Limits,
}

type Eval<'s> = Pin<Box<dyn Future<Output = Result<Value, BlueprintError>> + Send + 's>>;

/// The state of one evaluation.
struct Run<'e> {
    entry: usize,
    model: &'e str,
    steps: usize,
    output: usize,
    depth: usize,
    /// One slot per enclosing `!Enumerate`, innermost last; `None` while its iterable is
    /// evaluated (authentik's empty context).
    enumerations: Vec<Option<(Value, Value)>>,
    /// Context keys being evaluated, to refuse `a: !Context a`.
    context_keys: Vec<String>,
}

impl Run<'_> {
    fn error(&self, file: &str, path: &str, kind: ErrorKind) -> BlueprintError {
        BlueprintError::new(
            Location {
                file: file.to_owned(),
                entry: Some(self.entry),
                model: Some(self.model.to_owned()),
                path: path.to_owned(),
            },
            kind,
        )
    }
}

fn eval_error(tag: &'static str, message: impl Into<String>) -> ErrorKind {
    ErrorKind::Evaluation {
        tag,
        message: message.into(),
    }
}

impl<'a, R: Resolver> Evaluator<'a, R> {
    /// An evaluator for `blueprint`, whose context is the blueprint's defaults with `context`
    /// merged over them the way authentik does (mappings merged key by key, lists appended,
    /// anything else replaced). `env` reads environment variables for `!Env`; `!File` is
    /// refused until [`Evaluator::with_blueprints_dir`] names the directory it may read.
    pub fn new(
        blueprint: &Blueprint,
        context: &Map<String, Value>,
        resolver: &'a R,
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    ) -> Self {
        let mut merged = blueprint.context.clone();
        for (key, value) in context {
            let value = Node::from_json(value);
            match merged.get_mut(key) {
                Some(existing) => merge_node(existing, value),
                None => {
                    merged.insert(key.clone(), value);
                }
            }
        }
        Self {
            source: blueprint.source.clone(),
            context: merged,
            resolver,
            env,
            blueprints_dir: None,
            limits: Limits::default(),
        }
    }

    /// Lets `!File` read files under `dir` (and nowhere else).
    pub fn with_blueprints_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.blueprints_dir = Some(dir.into());
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The merged context, before evaluation.
    pub fn context(&self) -> &BTreeMap<String, Node> {
        &self.context
    }

    /// Evaluates `node`, which belongs to `entry` at `path` (`attrs`, `identifiers.slug`).
    pub async fn evaluate(
        &self,
        entry: &Entry,
        node: &Node,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let mut run = self.run(entry);
        self.eval(&mut run, node, path.to_owned()).await
    }

    /// Whether every condition of `entry` is truthy (no conditions: it applies). Every condition
    /// is evaluated, as authentik does, before they are combined.
    pub async fn entry_applies(&self, entry: &Entry) -> Result<bool, BlueprintError> {
        let mut values = Vec::with_capacity(entry.conditions.len());
        for (i, condition) in entry.conditions.iter().enumerate() {
            values.push(
                self.evaluate(entry, condition, &format!("conditions[{i}]"))
                    .await?,
            );
        }
        Ok(values.iter().all(truthy))
    }

    /// Evaluates an entry's identifiers, attrs and permissions, in that order.
    pub async fn evaluate_entry(&self, entry: &Entry) -> Result<EvaluatedEntry, BlueprintError> {
        let identifiers = self
            .evaluate(entry, &entry.identifiers, "identifiers")
            .await?;
        let attrs = self.evaluate(entry, &entry.attrs, "attrs").await?;
        let mut permissions = Vec::with_capacity(entry.permissions.len());
        for (i, permission) in entry.permissions.iter().enumerate() {
            permissions.push(
                self.evaluate(entry, permission, &format!("permissions[{i}]"))
                    .await?,
            );
        }
        Ok(EvaluatedEntry {
            identifiers,
            attrs,
            permissions,
        })
    }

    fn run<'e>(&self, entry: &'e Entry) -> Run<'e> {
        Run {
            entry: entry.index,
            model: &entry.model,
            steps: 0,
            output: 0,
            depth: 0,
            enumerations: Vec::new(),
            context_keys: Vec::new(),
        }
    }

    fn fail(&self, run: &Run<'_>, path: &str, kind: ErrorKind) -> BlueprintError {
        run.error(&self.source, path, kind)
    }

    /// Counts `value` against the output budget, before it is copied.
    fn charge(&self, run: &mut Run<'_>, path: &str, value: &Value) -> Result<(), BlueprintError> {
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            run.output += 1;
            match v {
                Value::String(s) => run.output += s.len() / 64,
                Value::Array(items) => stack.extend(items),
                Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
            if run.output > self.limits.max_output {
                return Err(self.fail(
                    run,
                    path,
                    ErrorKind::OutputBudget {
                        limit: self.limits.max_output,
                    },
                ));
            }
        }
        Ok(())
    }

    fn eval<'s>(&'s self, run: &'s mut Run<'_>, node: &'s Node, path: String) -> Eval<'s> {
        Box::pin(async move {
            run.steps += 1;
            if run.steps > self.limits.max_steps {
                return Err(self.fail(
                    run,
                    &path,
                    ErrorKind::StepBudget {
                        limit: self.limits.max_steps,
                    },
                ));
            }
            let scalar = match node {
                Node::Null => Some(Value::Null),
                Node::Bool(b) => Some(Value::Bool(*b)),
                Node::Number(n) => Some(Value::Number(n.clone())),
                Node::String(s) => Some(Value::String(s.clone())),
                _ => None,
            };
            if let Some(value) = scalar {
                self.charge(run, &path, &value)?;
                return Ok(value);
            }
            run.depth += 1;
            if run.depth > self.limits.max_depth {
                return Err(self.fail(
                    run,
                    &path,
                    ErrorKind::EvaluationTooDeep {
                        limit: self.limits.max_depth,
                    },
                ));
            }
            let result = match node {
                Node::Seq(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        out.push(self.eval(run, item, format!("{path}[{i}]")).await?);
                    }
                    run.output += 1;
                    Ok(Value::Array(out))
                }
                Node::Map(entries) => {
                    let mut out = Map::new();
                    for (key, value) in entries {
                        let child = crate::node::join(&path, key);
                        out.insert(key.clone(), self.eval(run, value, child).await?);
                    }
                    run.output += 1;
                    Ok(Value::Object(out))
                }
                Node::Tag(tag) => self.eval_tag(run, tag, &path).await,
                _ => Ok(Value::Null),
            };
            run.depth -= 1;
            result
        })
    }

    /// Evaluates a tag's argument that must be a string; errors name the tag's path.
    async fn string_arg(
        &self,
        run: &mut Run<'_>,
        node: &Node,
        path: &str,
        tag: &'static str,
        what: &str,
    ) -> Result<String, BlueprintError> {
        match self.eval(run, node, path.to_owned()).await? {
            Value::String(s) => Ok(s),
            other => Err(self.fail(
                run,
                path,
                eval_error(
                    tag,
                    format!("{what} must be a string, found {}", py_str(&other)),
                ),
            )),
        }
    }

    /// Each tag's work is its own boxed future: polling a deep evaluation then costs a small
    /// stack frame per level, not the frame of one function that handles every tag.
    fn eval_tag<'s>(&'s self, run: &'s mut Run<'_>, tag: &'s Tag, path: &'s str) -> Eval<'s> {
        match tag {
            Tag::KeyOf(id) => Box::pin(self.key_of(run, id, path)),
            Tag::Find { model, query } | Tag::FindObject { model, query } => {
                Box::pin(self.find(run, tag, model, query, path))
            }
            Tag::Context { key, default } => Box::pin(self.context_value(run, key, default, path)),
            Tag::Format { format, args } => Box::pin(self.format(run, format, args, path)),
            Tag::Condition { mode, args } => Box::pin(self.condition(run, mode, args, path)),
            Tag::If {
                condition,
                when_true,
                when_false,
            } => Box::pin(self.if_(run, condition, when_true, when_false, path)),
            Tag::Env { name, default } => Box::pin(self.env(run, name, default, path)),
            Tag::File {
                path: file,
                default,
            } => Box::pin(self.file(run, file, default, path)),
            Tag::Enumerate {
                iterable,
                output,
                body,
            } => Box::pin(self.enumerate(run, iterable, output, body, path)),
            Tag::Value(depth) | Tag::Index(depth) => {
                Box::pin(self.enumerated_item(run, tag, depth, path))
            }
            Tag::AtIndex {
                target,
                index,
                default,
            } => Box::pin(self.at_index(run, target, index, default, path)),
            Tag::ParseJson(raw) => Box::pin(self.parse_json(run, raw, path)),
        }
    }
}

/// deepmerge's `always_merger`: mappings merged key by key, lists appended, else replaced.
fn merge_json(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(a)), Value::Object(b)) => merge_json(a, b),
            (Some(Value::Array(a)), Value::Array(b)) => a.extend(b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn merge_node(into: &mut Node, from: Node) {
    match (into, from) {
        (Node::Map(a), Node::Map(b)) => {
            for (key, value) in b {
                match a.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, existing)) => merge_node(existing, value),
                    None => a.push((key, value)),
                }
            }
        }
        (Node::Seq(a), Node::Seq(b)) => a.extend(b),
        (into, from) => *into = from,
    }
}
