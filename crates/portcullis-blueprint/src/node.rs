//! The un-evaluated YAML tree of a blueprint ([`Node`]) and its custom tags ([`Tag`]).
//!
//! Reading YAML happens in two steps. First `serde_norway` drives our own visitor, which builds a
//! raw tree and counts as it goes: every node after alias expansion, and the nesting depth. The
//! counting is what defeats alias bombs: the visitor stops the parser as soon as the document
//! grows past [`crate::MAX_NODES`], before anything big is allocated. Then the raw tree is turned
//! into [`Node`]s, and each `!Tag` is checked against authentik's list and the shape of its
//! arguments, so an unknown tag or a malformed `!Format` is refused when the file is read, with
//! the entry and the field path in the error.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_json::{Number, Value};

use crate::error::{BlueprintError, ErrorKind, Location};

/// A YAML value as written in the blueprint, with its tags not yet evaluated.
///
/// Map keys are scalars turned into strings (`1` becomes `"1"`), as they become once stored as
/// JSON; maps keep the order they were written in, a repeated key keeps its last value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    Tag(Box<Tag>),
}

/// One of authentik's blueprint tags, with its arguments.
///
/// Arguments are [`Node`]s: they may hold tags themselves, evaluated first.
#[derive(Debug, Clone, PartialEq)]
pub enum Tag {
    /// `!KeyOf id`: the primary key of the object made by the earlier entry with this `id`.
    KeyOf(String),
    /// `!Find [model, [field, value], ...]`: the primary key of the first matching object, or null.
    Find {
        model: Node,
        query: Vec<(Node, Node)>,
    },
    /// `!FindObject [model, [field, value], ...]`: the serialized object, or null.
    FindObject {
        model: Node,
        query: Vec<(Node, Node)>,
    },
    /// `!Context key` or `!Context [key, default]`.
    Context { key: Node, default: Option<Node> },
    /// `!Format [format, args...]`: Python `%` formatting.
    Format { format: Node, args: Vec<Node> },
    /// `!Condition [mode, args...]` with mode AND, NAND, OR, NOR, XOR or XNOR.
    Condition { mode: Node, args: Vec<Node> },
    /// `!If [condition, when_true, when_false]`; `!If [condition]` means `[condition, true, false]`.
    If {
        condition: Node,
        when_true: Node,
        when_false: Node,
    },
    /// `!Env name` or `!Env [name, default]`.
    Env { name: Node, default: Option<Node> },
    /// `!File path` or `!File [path, default]`.
    File { path: Node, default: Option<Node> },
    /// `!Enumerate [iterable, SEQ|MAP, body]`.
    Enumerate {
        iterable: Node,
        output: Node,
        body: Node,
    },
    /// `!Value n`: the current item of the Enumerate `n` levels up.
    Value(usize),
    /// `!Index n`: the current index (or key) of the Enumerate `n` levels up.
    Index(usize),
    /// `!AtIndex [sequence_or_mapping, index_or_key, default?]`.
    AtIndex {
        target: Node,
        index: Node,
        default: Option<Node>,
    },
    /// `!ParseJSON string`.
    ParseJson(String),
}

impl Tag {
    /// The tag's name as written, without the `!`.
    pub fn name(&self) -> &'static str {
        match self {
            Tag::KeyOf(_) => "KeyOf",
            Tag::Find { .. } => "Find",
            Tag::FindObject { .. } => "FindObject",
            Tag::Context { .. } => "Context",
            Tag::Format { .. } => "Format",
            Tag::Condition { .. } => "Condition",
            Tag::If { .. } => "If",
            Tag::Env { .. } => "Env",
            Tag::File { .. } => "File",
            Tag::Enumerate { .. } => "Enumerate",
            Tag::Value(_) => "Value",
            Tag::Index(_) => "Index",
            Tag::AtIndex { .. } => "AtIndex",
            Tag::ParseJson(_) => "ParseJSON",
        }
    }
}

impl Node {
    /// A JSON value as a node (used for the caller's context).
    pub fn from_json(value: &Value) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::String(s.clone()),
            Value::Array(items) => Node::Seq(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The node as JSON when it holds no tag.
    pub fn to_json(&self) -> Option<Value> {
        Some(match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(Node::to_json)
                    .collect::<Option<Vec<_>>>()?,
            ),
            Node::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_json()?);
                }
                Value::Object(map)
            }
            Node::Tag(_) => return None,
        })
    }

    /// The value under `key` when this is a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::String(_) => "a string",
            Node::Seq(_) => "a sequence",
            Node::Map(_) => "a mapping",
            Node::Tag(_) => "a tag",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Step 1: YAML text to a raw tree, counted.

/// The YAML tree as the parser gives it: tags by name, map keys still nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
    Tagged(String, Box<Raw>),
}

/// Why the counting visitor stopped the parser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Abort {
    Nodes,
    Depth,
}

pub(crate) struct Budget {
    nodes: Cell<usize>,
    pub(crate) abort: Cell<Option<Abort>>,
    max_nodes: usize,
    max_depth: usize,
}

impl Budget {
    pub(crate) fn new(max_nodes: usize, max_depth: usize) -> Self {
        Self {
            nodes: Cell::new(0),
            abort: Cell::new(None),
            max_nodes,
            max_depth,
        }
    }

    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > self.max_nodes {
            self.abort.set(Some(Abort::Nodes));
            return Err(E::custom("too many nodes"));
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
pub(crate) struct RawSeed<'a> {
    pub(crate) budget: &'a Budget,
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Raw;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl RawSeed<'_> {
    fn nested<E: de::Error>(&self) -> Result<RawSeed<'_>, E> {
        if self.depth >= self.budget.max_depth {
            self.budget.abort.set(Some(Abort::Depth));
            return Err(E::custom("too deep"));
        }
        Ok(RawSeed {
            budget: self.budget,
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Err(E::custom(format!("integer {v} is too large")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Err(E::custom(format!("integer {v} is too large")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        self.budget.count()?;
        match Number::from_f64(v) {
            Some(n) => Ok(Raw::Number(n)),
            None => Err(E::custom(format!("{v} is not a finite number"))),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        self.budget.count()?;
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        self.budget.count()?;
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        self.budget.count()?;
        let inner = self.nested()?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(inner)? {
            let value = map.next_value_seed(inner)?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Raw, A::Error> {
        self.budget.count()?;
        let (tag, content): (String, _) = data.variant()?;
        let value = content.newtype_variant_seed(RawSeed {
            budget: self.budget,
            depth: self.depth,
        })?;
        Ok(Raw::Tagged(tag, Box::new(value)))
    }
}

// ---------------------------------------------------------------------------------------------
// Step 2: raw tree to nodes, tags checked.

/// Converts raw values to nodes, naming the place of any error.
pub(crate) struct Builder<'a> {
    pub(crate) file: &'a str,
    pub(crate) entry: Option<usize>,
    pub(crate) model: Option<&'a str>,
}

impl Builder<'_> {
    pub(crate) fn error(&self, path: &str, kind: ErrorKind) -> BlueprintError {
        BlueprintError::new(
            Location {
                file: self.file.to_owned(),
                entry: self.entry,
                model: self.model.map(str::to_owned),
                path: path.to_owned(),
            },
            kind,
        )
    }

    pub(crate) fn node(&self, raw: Raw, path: &str) -> Result<Node, BlueprintError> {
        Ok(match raw {
            Raw::Null => Node::Null,
            Raw::Bool(b) => Node::Bool(b),
            Raw::Number(n) => Node::Number(n),
            Raw::String(s) => Node::String(s),
            Raw::Seq(items) => Node::Seq(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.node(item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Raw::Map(entries) => self.map(entries, path)?,
            Raw::Tagged(name, content) => Node::Tag(Box::new(self.tag(&name, *content, path)?)),
        })
    }

    fn map(&self, entries: Vec<(Raw, Raw)>, path: &str) -> Result<Node, BlueprintError> {
        let mut out: Vec<(String, Node)> = Vec::with_capacity(entries.len());
        let mut merged: Vec<(String, Node)> = Vec::new();
        for (key, value) in entries {
            let key = self.key(key, path)?;
            if key == "<<" {
                // YAML merge key: the merged mappings give defaults for keys not written here.
                let value = self.node(value, &join(path, "<<"))?;
                let sources = match value {
                    Node::Map(m) => vec![Node::Map(m)],
                    Node::Seq(items) => items,
                    other => {
                        return Err(self.error(
                            &join(path, "<<"),
                            ErrorKind::Invalid(format!(
                                "merge key `<<` needs a mapping, found {}",
                                other.kind()
                            )),
                        ));
                    }
                };
                for source in sources {
                    let Node::Map(m) = source else {
                        return Err(self.error(
                            &join(path, "<<"),
                            ErrorKind::Invalid("merge key `<<` needs mappings".into()),
                        ));
                    };
                    for (k, v) in m {
                        if !merged.iter().any(|(mk, _)| *mk == k) {
                            merged.push((k, v));
                        }
                    }
                }
                continue;
            }
            let value = self.node(value, &join(path, &key))?;
            if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                out.push((key, value));
            }
        }
        for (k, v) in merged {
            if !out.iter().any(|(ok, _)| *ok == k) {
                out.push((k, v));
            }
        }
        Ok(Node::Map(out))
    }

    fn key(&self, key: Raw, path: &str) -> Result<String, BlueprintError> {
        match key {
            Raw::String(s) => Ok(s),
            Raw::Number(n) => Ok(n.to_string()),
            Raw::Bool(b) => Ok(b.to_string()),
            Raw::Null => Ok("null".into()),
            Raw::Tagged(name, _) => Err(self.error(
                path,
                ErrorKind::Invalid(format!("a tag (!{name}) cannot be a mapping key")),
            )),
            Raw::Seq(_) | Raw::Map(_) => Err(self.error(
                path,
                ErrorKind::Invalid("mapping keys must be scalars".into()),
            )),
        }
    }

    fn tag(&self, name: &str, content: Raw, path: &str) -> Result<Tag, BlueprintError> {
        let syntax = |tag: &'static str, message: String| {
            self.error(path, ErrorKind::TagSyntax { tag, message })
        };
        let arg_path = |i: usize| format!("{path}[{i}]");
        match name {
            "KeyOf" => {
                Ok(Tag::KeyOf(scalar_string(&content).ok_or_else(|| {
                    syntax("KeyOf", "expects a scalar id".into())
                })?))
            }
            "Find" | "FindObject" => {
                let tag = if name == "Find" { "Find" } else { "FindObject" };
                let items = self.seq(tag, content, path, 1)?;
                let mut items = items.into_iter().enumerate();
                let model = match items.next() {
                    Some((i, raw)) => self.node(raw, &arg_path(i))?,
                    None => return Err(syntax(tag, "expects a model".into())),
                };
                let mut query = Vec::new();
                for (i, raw) in items {
                    let Raw::Seq(pair) = raw else {
                        return Err(syntax(tag, format!("argument {i} must be [field, value]")));
                    };
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next(), pair.next()) {
                        (Some(k), Some(v), None) => query.push((
                            self.node(k, &format!("{path}[{i}][0]"))?,
                            self.node(v, &format!("{path}[{i}][1]"))?,
                        )),
                        _ => {
                            return Err(syntax(
                                tag,
                                format!("argument {i} must be a [field, value] pair"),
                            ));
                        }
                    }
                }
                Ok(if tag == "Find" {
                    Tag::Find { model, query }
                } else {
                    Tag::FindObject { model, query }
                })
            }
            "Context" | "Env" | "File" => {
                let (key, default) = match content {
                    Raw::Seq(items) => {
                        let mut items = items.into_iter();
                        match (items.next(), items.next(), items.next()) {
                            (Some(k), default, None) => (
                                self.node(k, &arg_path(0))?,
                                default.map(|d| self.node(d, &arg_path(1))).transpose()?,
                            ),
                            _ => {
                                let tag = static_name(name);
                                return Err(syntax(tag, "expects key or [key, default]".into()));
                            }
                        }
                    }
                    other => match scalar_string(&other) {
                        Some(s) => (Node::String(s), None),
                        None => {
                            let tag = static_name(name);
                            return Err(syntax(tag, "expects key or [key, default]".into()));
                        }
                    },
                };
                Ok(match name {
                    "Context" => Tag::Context { key, default },
                    "Env" => Tag::Env { name: key, default },
                    _ => Tag::File { path: key, default },
                })
            }
            "Format" | "Condition" => {
                let tag = static_name(name);
                let mut items = self
                    .seq(tag, content, path, 1)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| self.node(raw, &arg_path(i)));
                let first = match items.next() {
                    Some(n) => n?,
                    None => return Err(syntax(tag, "expects at least one argument".into())),
                };
                let args = items.collect::<Result<Vec<_>, _>>()?;
                Ok(if tag == "Format" {
                    Tag::Format {
                        format: first,
                        args,
                    }
                } else {
                    Tag::Condition { mode: first, args }
                })
            }
            "If" => {
                let items = self.seq("If", content, path, 1)?;
                let mut nodes = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| self.node(raw, &arg_path(i)))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter();
                match (nodes.next(), nodes.next(), nodes.next(), nodes.next()) {
                    (Some(condition), None, None, None) => Ok(Tag::If {
                        condition,
                        when_true: Node::Bool(true),
                        when_false: Node::Bool(false),
                    }),
                    (Some(condition), Some(when_true), Some(when_false), None) => Ok(Tag::If {
                        condition,
                        when_true,
                        when_false,
                    }),
                    _ => Err(syntax(
                        "If",
                        "expects [condition] or [condition, when_true, when_false]".into(),
                    )),
                }
            }
            "Enumerate" => {
                let items = self.seq("Enumerate", content, path, 3)?;
                let mut nodes = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| self.node(raw, &arg_path(i)))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter();
                match (nodes.next(), nodes.next(), nodes.next(), nodes.next()) {
                    (Some(iterable), Some(output), Some(body), None) => {
                        if let Node::Tag(t) = &iterable
                            && matches!(**t, Tag::Value(0) | Tag::Index(0))
                        {
                            return Err(syntax(
                                "Enumerate",
                                "the iterable references this tag's own context; use a depth \
                                 bigger than 0"
                                    .into(),
                            ));
                        }
                        Ok(Tag::Enumerate {
                            iterable,
                            output,
                            body,
                        })
                    }
                    _ => Err(syntax(
                        "Enumerate",
                        "expects [iterable, SEQ|MAP, body]".into(),
                    )),
                }
            }
            "Value" | "Index" => {
                let tag = static_name(name);
                let depth = match &content {
                    Raw::Number(n) => n.as_u64().and_then(|d| usize::try_from(d).ok()),
                    Raw::String(s) => s.trim().parse::<usize>().ok(),
                    _ => None,
                }
                .ok_or_else(|| syntax(tag, "expects a depth, a number 0 or more".into()))?;
                Ok(if tag == "Value" {
                    Tag::Value(depth)
                } else {
                    Tag::Index(depth)
                })
            }
            "AtIndex" => {
                let items = self.seq("AtIndex", content, path, 2)?;
                let mut nodes = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, raw)| self.node(raw, &arg_path(i)))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter();
                match (nodes.next(), nodes.next(), nodes.next(), nodes.next()) {
                    (Some(target), Some(index), default, None) => Ok(Tag::AtIndex {
                        target,
                        index,
                        default,
                    }),
                    _ => Err(syntax(
                        "AtIndex",
                        "expects [sequence_or_mapping, index_or_key, default?]".into(),
                    )),
                }
            }
            "ParseJSON" => match content {
                Raw::String(s) => Ok(Tag::ParseJson(s)),
                _ => Err(syntax("ParseJSON", "expects a string".into())),
            },
            other => Err(self.error(path, ErrorKind::UnknownTag(other.to_owned()))),
        }
    }

    fn seq(
        &self,
        tag: &'static str,
        content: Raw,
        path: &str,
        min: usize,
    ) -> Result<Vec<Raw>, BlueprintError> {
        match content {
            Raw::Seq(items) if items.len() >= min => Ok(items),
            Raw::Seq(items) => Err(self.error(
                path,
                ErrorKind::TagSyntax {
                    tag,
                    message: format!(
                        "expects at least {min} argument{}, found {}",
                        if min == 1 { "" } else { "s" },
                        items.len()
                    ),
                },
            )),
            _ => Err(self.error(
                path,
                ErrorKind::TagSyntax {
                    tag,
                    message: "expects a sequence of arguments".into(),
                },
            )),
        }
    }
}

/// A scalar as PyYAML's node text would give it (`!KeyOf 12` names the id `"12"`).
pub(crate) fn scalar_string(raw: &Raw) -> Option<String> {
    match raw {
        Raw::String(s) => Some(s.clone()),
        Raw::Number(n) => Some(n.to_string()),
        Raw::Bool(b) => Some(b.to_string()),
        Raw::Null => Some(String::new()),
        _ => None,
    }
}

fn static_name(name: &str) -> &'static str {
    match name {
        "Context" => "Context",
        "Env" => "Env",
        "File" => "File",
        "Format" => "Format",
        "Condition" => "Condition",
        "Value" => "Value",
        "Index" => "Index",
        _ => "tag",
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
