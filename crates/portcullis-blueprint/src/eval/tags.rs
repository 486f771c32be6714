//! One method per tag, each with authentik's semantics (`authentik/blueprints/v1/common.py`):
//! what it accepts, what it returns, and the errors it raises.

use serde_json::{Map, Value};

use super::{Evaluator, Resolver, Run, eval_error, merge_json};
use crate::error::{BlueprintError, ErrorKind};
use crate::node::{Node, Tag};
use crate::python::{json_key, percent_format, py_str, truthy};

impl<R: Resolver> Evaluator<'_, R> {
    /// `!KeyOf id`: the pk of the object an earlier entry made; an error when there is none.
    pub(super) async fn key_of(
        &self,
        run: &mut Run<'_>,
        id: &str,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "KeyOf";
        match self.resolver.key_of(id, run.model).await {
            Some(pk) => {
                self.charge(run, path, &pk)?;
                Ok(pk)
            }
            None => Err(self.fail(
                run,
                path,
                eval_error(
                    name,
                    format!(
                        "no earlier entry with `id` `{id}` has made an object (is the entry \
                         defined before this one, and did it apply?)"
                    ),
                ),
            )),
        }
    }

    /// `!Find` / `!FindObject`: the first match's pk (or the object), null when nothing matches.
    pub(super) async fn find(
        &self,
        run: &mut Run<'_>,
        tag: &Tag,
        model: &Node,
        query: &[(Node, Node)],
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = tag.name();
        let model = self.string_arg(run, model, path, name, "the model").await?;
        let mut pairs = Vec::with_capacity(query.len());
        for (field, value) in query {
            let field = self.string_arg(run, field, path, name, "a field").await?;
            let value = self.eval(run, value, path.to_owned()).await?;
            pairs.push((field, value));
        }
        let found = if matches!(tag, Tag::Find { .. }) {
            self.resolver.find(&model, &pairs).await
        } else {
            self.resolver.find_object(&model, &pairs).await
        };
        match found {
            Ok(value) => {
                let value = value.unwrap_or(Value::Null);
                self.charge(run, path, &value)?;
                Ok(value)
            }
            Err(message) => Err(self.fail(run, path, ErrorKind::Resolver { tag: name, message })),
        }
    }

    /// `!Context key`: the context's value (tags in it evaluated), else the default, else null.
    pub(super) async fn context_value(
        &self,
        run: &mut Run<'_>,
        key: &Node,
        default: &Option<Node>,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "Context";
        let key = self.eval(run, key, path.to_owned()).await?;
        let Some(key) = json_key(&key) else {
            return Err(self.fail(run, path, eval_error(name, "the key must be a string")));
        };
        match self.context.get(&key) {
            Some(node) => {
                if run.context_keys.contains(&key) {
                    let mut chain = run.context_keys.join(" -> ");
                    chain.push_str(" -> ");
                    chain.push_str(&key);
                    return Err(self.fail(
                        run,
                        path,
                        eval_error(name, format!("context refers to itself: {chain}")),
                    ));
                }
                run.context_keys.push(key);
                let value = self.eval(run, node, path.to_owned()).await;
                run.context_keys.pop();
                value
            }
            None => match default {
                Some(default) => self.eval(run, default, path.to_owned()).await,
                None => Ok(Value::Null),
            },
        }
    }

    /// `!Format [format, args...]`: `format % tuple(args)`, Python's errors on a mismatch.
    pub(super) async fn format(
        &self,
        run: &mut Run<'_>,
        format: &Node,
        args: &[Node],
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "Format";
        let format = self
            .string_arg(run, format, path, name, "the format")
            .await?;
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(run, arg, path.to_owned()).await?);
        }
        match percent_format(&format, &values) {
            Ok(s) => {
                let value = Value::String(s);
                self.charge(run, path, &value)?;
                Ok(value)
            }
            Err(message) => Err(self.fail(run, path, eval_error(name, message))),
        }
    }

    /// `!Condition [mode, args...]`: the args' truthiness combined; at least one arg.
    pub(super) async fn condition(
        &self,
        run: &mut Run<'_>,
        mode: &Node,
        args: &[Node],
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "Condition";
        let mode = self.string_arg(run, mode, path, name, "the mode").await?;
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(truthy(&self.eval(run, arg, path.to_owned()).await?));
        }
        if values.is_empty() {
            return Err(self.fail(
                run,
                path,
                eval_error(name, "at least one value is required after the mode"),
            ));
        }
        let xor = || values.iter().fold(false, |acc, v| acc ^ v);
        let result = match mode.to_uppercase().as_str() {
            "AND" => values.iter().all(|v| *v),
            "NAND" => !values.iter().all(|v| *v),
            "OR" => values.iter().any(|v| *v),
            "NOR" => !values.iter().any(|v| *v),
            "XOR" => xor(),
            "XNOR" => !xor(),
            other => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(
                        name,
                        format!(
                            "unknown mode `{other}` (expected AND, NAND, OR, NOR, XOR \
                             or XNOR)"
                        ),
                    ),
                ));
            }
        };
        Ok(Value::Bool(result))
    }

    /// `!If [condition, when_true, when_false]`: only the branch taken is evaluated.
    pub(super) async fn if_(
        &self,
        run: &mut Run<'_>,
        condition: &Node,
        when_true: &Node,
        when_false: &Node,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let condition = self.eval(run, condition, path.to_owned()).await?;
        let branch = if truthy(&condition) {
            when_true
        } else {
            when_false
        };
        self.eval(run, branch, path.to_owned()).await
    }

    /// `!Env name`: the variable when set and not empty (`getenv(key) or default`), else the
    /// default, else null.
    pub(super) async fn env(
        &self,
        run: &mut Run<'_>,
        var: &Node,
        default: &Option<Node>,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "Env";
        let var = self
            .string_arg(run, var, path, name, "the variable name")
            .await?;
        // authentik: `getenv(key) or default`, so an empty variable gives the default.
        match (self.env)(&var).filter(|v| !v.is_empty()) {
            Some(value) => {
                let value = Value::String(value);
                self.charge(run, path, &value)?;
                Ok(value)
            }
            None => match default {
                Some(default) => self.eval(run, default, path.to_owned()).await,
                None => Ok(Value::Null),
            },
        }
    }

    /// `!File path`: the file's content, stripped; the default when it cannot be read.
    pub(super) async fn file(
        &self,
        run: &mut Run<'_>,
        file: &Node,
        default: &Option<Node>,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "File";
        let file = self.string_arg(run, file, path, name, "the path").await?;
        match self.read_file(&file) {
            Ok(Some(content)) => {
                let value = Value::String(content);
                self.charge(run, path, &value)?;
                Ok(value)
            }
            // authentik falls back to the default when the file cannot be read.
            Ok(None) => match default {
                Some(default) => self.eval(run, default, path.to_owned()).await,
                None => Ok(Value::Null),
            },
            Err(message) => Err(self.fail(run, path, ErrorKind::FileRefused(message))),
        }
    }

    /// `!Value n` / `!Index n`: the current item (or its index or key) of the `!Enumerate` `n`
    /// levels up; 0 is the innermost.
    pub(super) async fn enumerated_item(
        &self,
        run: &mut Run<'_>,
        tag: &Tag,
        depth: &usize,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = tag.name();
        let count = run.enumerations.len();
        let slot = count
            .checked_sub(depth + 1)
            .and_then(|i| run.enumerations.get(i));
        let value = match slot {
            None if *depth == 0 => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(name, "only usable inside an !Enumerate"),
                ));
            }
            None => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(
                        name,
                        format!("invalid depth {depth}: {} enclosing !Enumerate", count),
                    ),
                ));
            }
            Some(None) => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(
                        name,
                        format!(
                            "depth {depth} is an !Enumerate whose iterable is being \
                             evaluated; it has no item yet"
                        ),
                    ),
                ));
            }
            Some(Some((index, value))) => {
                if matches!(tag, Tag::Index(_)) {
                    index.clone()
                } else {
                    value.clone()
                }
            }
        };
        self.charge(run, path, &value)?;
        Ok(value)
    }

    /// `!AtIndex [target, index, default?]`: Python indexing (negative counts from the end) or
    /// a key lookup; the default, evaluated only when used, else an error.
    pub(super) async fn at_index(
        &self,
        run: &mut Run<'_>,
        target: &Node,
        index: &Node,
        default: &Option<Node>,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "AtIndex";
        let target = self.eval(run, target, path.to_owned()).await?;
        let index = self.eval(run, index, path.to_owned()).await?;
        let found = match &target {
            Value::Array(items) => {
                let i = match &index {
                    Value::Bool(b) => Some(i64::from(*b)),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                };
                let Some(i) = i else {
                    return Err(self.fail(
                        run,
                        path,
                        eval_error(name, format!("invalid index for list: {}", py_str(&index))),
                    ));
                };
                // Python indexing: negative counts from the end.
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let i = if i < 0 { i + len } else { i };
                usize::try_from(i).ok().and_then(|i| items.get(i))
            }
            Value::Object(map) => match &index {
                Value::String(k) => map.get(k),
                _ => None,
            },
            other => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(name, format!("cannot index into {}", py_str(other))),
                ));
            }
        };
        match (found, default) {
            (Some(value), _) => {
                self.charge(run, path, value)?;
                Ok(value.clone())
            }
            (None, Some(default)) => self.eval(run, default, path.to_owned()).await,
            (None, None) => {
                let what = if target.is_array() {
                    "index out of range"
                } else {
                    "key does not exist"
                };
                Err(self.fail(
                    run,
                    path,
                    eval_error(name, format!("{what}: {}", py_str(&index))),
                ))
            }
        }
    }

    /// `!ParseJSON text`: the JSON value the text holds.
    pub(super) async fn parse_json(
        &self,
        run: &mut Run<'_>,
        raw: &str,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        let name = "ParseJSON";
        match serde_json::from_str::<Value>(raw) {
            Ok(value) => {
                self.charge(run, path, &value)?;
                Ok(value)
            }
            Err(e) => Err(self.fail(run, path, eval_error(name, e.to_string()))),
        }
    }

    /// `!Enumerate [iterable, SEQ|MAP, body]`: the body evaluated once per item of a list (index,
    /// item), a mapping (key, value) or a string (index, character), collected into a list, or
    /// merged into a mapping from `[key, value]` pairs or mappings (deepmerge's always_merger).
    pub(super) async fn enumerate(
        &self,
        run: &mut Run<'_>,
        iterable: &Node,
        output: &Node,
        body: &Node,
        path: &str,
    ) -> Result<Value, BlueprintError> {
        const NAME: &str = "Enumerate";
        // As in authentik, this tag's own (empty) context is in place while its iterable is
        // evaluated, so `!Value 1` there names the enclosing Enumerate.
        run.enumerations.push(None);
        let iterable = self.eval(run, iterable, path.to_owned()).await?;
        let output = self
            .string_arg(run, output, path, NAME, "the output")
            .await?;
        let as_map = match output.to_uppercase().as_str() {
            "SEQ" => false,
            "MAP" => true,
            other => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(NAME, format!("output must be SEQ or MAP, found `{other}`")),
                ));
            }
        };
        let count = match &iterable {
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            Value::String(s) => s.chars().count(),
            other => {
                return Err(self.fail(
                    run,
                    path,
                    eval_error(
                        NAME,
                        format!(
                            "the iterable must be a sequence or a mapping, found {}",
                            py_str(other)
                        ),
                    ),
                ));
            }
        };
        if count > self.limits.max_enumerate_items {
            return Err(self.fail(
                run,
                path,
                eval_error(
                    NAME,
                    format!(
                        "the iterable has {count} items, more than the limit of {}",
                        self.limits.max_enumerate_items
                    ),
                ),
            ));
        }
        let items: Vec<(Value, Value)> = match iterable {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect(),
            Value::String(s) => s
                .chars()
                .enumerate()
                .map(|(i, c)| (Value::from(i), Value::String(c.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        let mut seq = Vec::new();
        let mut map = Map::new();
        for (i, item) in items.into_iter().enumerate() {
            if let Some(slot) = run.enumerations.last_mut() {
                *slot = Some(item);
            }
            let result = self.eval(run, body, format!("{path}[{i}]")).await?;
            if !as_map {
                seq.push(result);
                continue;
            }
            match result {
                Value::Array(pair) if pair.len() >= 2 => {
                    let mut pair = pair.into_iter();
                    let (Some(key), Some(value)) = (pair.next(), pair.next()) else {
                        continue;
                    };
                    let Some(key) = json_key(&key) else {
                        return Err(self.fail(
                            run,
                            path,
                            eval_error(NAME, format!("a key cannot be {}", py_str(&key))),
                        ));
                    };
                    let mut single = Map::new();
                    single.insert(key, value);
                    merge_json(&mut map, single);
                }
                Value::Object(object) => merge_json(&mut map, object),
                other => {
                    return Err(self.fail(
                        run,
                        path,
                        eval_error(
                            NAME,
                            format!(
                                "invalid item for MAP: {} (expected [key, value] or a mapping)",
                                py_str(&other)
                            ),
                        ),
                    ));
                }
            }
        }
        run.enumerations.pop();
        Ok(if as_map {
            Value::Object(map)
        } else {
            Value::Array(seq)
        })
    }
}
