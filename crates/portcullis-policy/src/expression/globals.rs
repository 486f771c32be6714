//! The helpers an expression can call, with authentik's names and argument conventions.

use std::num::NonZeroI32;
use std::rc::Rc;

use regex::{Regex, RegexBuilder};
use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list::ListRef;
use starlark::values::none::NoneType;
use starlark::values::range::Range;
use starlark::values::tuple::TupleRef;
use starlark::values::{Heap, Value};
use uuid::Uuid;

use super::convert;
use super::run::EvalState;
use crate::error::Budget;
use crate::request::UserFilter;

/// At most this many `ak_message` messages and `ak_logger` lines are kept per run.
const MAX_LINES: usize = 256;
/// Each message or log line is cut to this many bytes.
const MAX_LINE_BYTES: usize = 4096;
/// Regex patterns longer than this are refused.
const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled-program and lazy-DFA size limits of one regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
enum HelperError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> starlark::Error {
    starlark::Error::new_native(HelperError::Invalid(msg.into()))
}

fn state() -> starlark::Result<Rc<EvalState>> {
    EvalState::current().ok_or_else(|| invalid("policy helpers called outside a policy"))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn push_line(lines: &std::cell::RefCell<Vec<String>>, line: String) {
    let mut lines = lines.borrow_mut();
    if lines.len() < MAX_LINES {
        lines.push(truncate(line));
    }
}

/// `str()` of a value without quotes for strings, as Python's `str()`.
fn display(value: Value<'_>) -> String {
    value
        .unpack_str()
        .map_or_else(|| value.to_str(), str::to_owned)
}

fn compile_regex(pattern: &str) -> starlark::Result<Regex> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(invalid(format!(
            "regex longer than {MAX_PATTERN_BYTES} bytes"
        )));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| invalid(format!("invalid regex: {e}")))
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<name>`) in the `regex` crate's (`${1}`).
pub(super) fn python_replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut group = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        group.push(d);
                        chars.next();
                        if group.len() == 2 {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Size in bytes of `seq * n` if `seq` is a string, list or tuple, or `None` for other types.
fn repeat_size(seq: Value<'_>, n: Value<'_>) -> Option<usize> {
    let n = usize::try_from(n.unpack_i32()?).unwrap_or(0);
    let unit = if let Some(s) = seq.unpack_str() {
        s.len()
    } else if let Some(l) = ListRef::from_value(seq) {
        l.len().saturating_mul(size_of::<usize>())
    } else if let Some(t) = TupleRef::from_value(seq) {
        t.len().saturating_mul(size_of::<usize>())
    } else {
        return None;
    };
    Some(unit.saturating_mul(n))
}

#[starlark_module]
pub(super) fn helpers(builder: &mut GlobalsBuilder) {
    /// `a * b`, refusing to build a sequence larger than the heap budget left.
    fn __portcullis_mul<'v>(
        #[starlark(require = pos)] a: Value<'v>,
        #[starlark(require = pos)] b: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        if let Some(size) = repeat_size(a, b).or_else(|| repeat_size(b, a)) {
            let st = state()?;
            let left = st
                .limits
                .max_heap_bytes
                .saturating_sub(eval.heap().allocated_bytes());
            if size > left {
                return Err(st.exceeded(
                    Budget::Memory,
                    format!("repetition would allocate {size} bytes, {left} bytes of heap left"),
                ));
            }
        }
        a.mul(b, eval.heap())
    }

    /// Starlark's `range`, refusing a range longer than the tick budget: it could never be
    /// iterated within the budget, and native consumers (`list`, `max`, ...) would iterate it
    /// without ticking.
    fn range(
        #[starlark(require = pos)] a1: i32,
        #[starlark(require = pos)] a2: Option<i32>,
        #[starlark(require = pos, default = 1)] step: i32,
    ) -> starlark::Result<Range> {
        let (start, stop) = match a2 {
            None => (0, a1),
            Some(stop) => (a1, stop),
        };
        let step = NonZeroI32::new(step)
            .ok_or_else(|| invalid("Third argument of range (step) cannot be zero"))?;
        let span = (i64::from(stop) - i64::from(start)).unsigned_abs();
        let len = span / u64::from(step.get().unsigned_abs());
        let st = state()?;
        if len > st.limits.max_ticks {
            return Err(st.exceeded(
                Budget::Ticks,
                format!(
                    "range of {len} items is longer than the budget of {} ticks",
                    st.limits.max_ticks
                ),
            ));
        }
        Ok(Range::new(start, stop, step))
    }

    /// authentik's `ak_message`: adds a message for the user to the policy result.
    fn ak_message<'v>(#[starlark(require = pos)] message: Value<'v>) -> starlark::Result<NoneType> {
        push_line(&state()?.messages, display(message));
        Ok(NoneType)
    }

    /// Puts `value` (anything JSON can hold) into the running flow's context under `key` when the
    /// policy passes: Portcullis' counterpart of authentik's
    /// `context["flow_plan"].context[key] = value`, which Starlark's frozen context cannot do.
    fn ak_set_context<'v>(
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] value: Value<'v>,
    ) -> starlark::Result<NoneType> {
        const MAX_KEYS: usize = 32;
        const MAX_VALUE_BYTES: usize = 64 * 1024;
        if key.is_empty() || key.len() > 128 {
            return Err(invalid("ak_set_context: the key must be 1 to 128 bytes"));
        }
        let text = value
            .to_json()
            .map_err(|e| invalid(format!("ak_set_context: {e}")))?;
        if text.len() > MAX_VALUE_BYTES {
            return Err(invalid("ak_set_context: the value is too large"));
        }
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("ak_set_context: {e}")))?;
        let st = state()?;
        let mut ctx = st.context.borrow_mut();
        if ctx.len() >= MAX_KEYS && !ctx.contains_key(key) {
            return Err(invalid("ak_set_context: too many keys"));
        }
        ctx.insert(key.to_owned(), json);
        Ok(NoneType)
    }

    /// authentik's `ak_is_group_member(user, **group_filters)`.
    fn ak_is_group_member<'v>(
        #[starlark(require = pos)] user: Value<'v>,
        #[starlark(kwargs)] filters: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<bool> {
        let st = state()?;
        let Some(pk) = user
            .get_attr("pk", eval.heap())?
            .and_then(Value::unpack_i32)
        else {
            return Err(invalid(
                "ak_is_group_member: the first argument must be a user",
            ));
        };
        let users = st.users.borrow();
        let Some(user) = users.iter().find(|u| u.pk == pk) else {
            return Ok(false);
        };
        let mut wanted: Vec<(&str, String)> = Vec::new();
        for (key, value) in &filters {
            match key.as_str() {
                "name" | "name__iexact" | "pk" | "group_uuid" => {
                    wanted.push((key, display(*value)))
                }
                other => {
                    return Err(invalid(format!(
                        "ak_is_group_member: unsupported filter `{other}`"
                    )));
                }
            }
        }
        Ok(user.groups.iter().any(|g| {
            wanted.iter().all(|(key, value)| match *key {
                "name" => g.name == *value,
                "name__iexact" => g.name.to_lowercase() == value.to_lowercase(),
                _ => Uuid::parse_str(value).is_ok_and(|u| u == g.pk),
            })
        }))
    }

    /// authentik's `ak_user_by(**filters)`: the first user matching, or `None`. Supported filters:
    /// `username`, `email`, `pk`, `uuid`; any other filter gives `None`, as a `FieldError` does.
    fn ak_user_by<'v>(
        #[starlark(kwargs)] filters: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let st = state()?;
        let mut filter = UserFilter::default();
        for (key, value) in &filters {
            match key.as_str() {
                "username" => filter.username = Some(display(*value)),
                "email" => filter.email = Some(display(*value)),
                "pk" => match value.unpack_i32().or_else(|| display(*value).parse().ok()) {
                    Some(pk) => filter.pk = Some(pk),
                    None => return Ok(Value::new_none()),
                },
                "uuid" => match Uuid::parse_str(&display(*value)) {
                    Ok(u) => filter.uuid = Some(u),
                    Err(_) => return Ok(Value::new_none()),
                },
                _ => return Ok(Value::new_none()),
            }
        }
        if filter == UserFilter::default() {
            return Ok(Value::new_none());
        }
        let found = st
            .directory
            .find_user(&filter)
            .map_err(|e| invalid(format!("ak_user_by: {e}")))?;
        Ok(match found {
            Some(user) => {
                let value = convert::user(eval.heap(), &user);
                st.users.borrow_mut().push(user);
                value
            }
            None => Value::new_none(),
        })
    }

    /// authentik's `regex_match(value, regex)`: Python's `re.search`.
    fn regex_match<'v>(
        #[starlark(require = pos)] value: Value<'v>,
        #[starlark(require = pos)] regex: &str,
    ) -> starlark::Result<bool> {
        let value = value
            .unpack_str()
            .ok_or_else(|| invalid("regex_match: value must be a string"))?;
        Ok(compile_regex(regex)?.is_match(value))
    }

    /// authentik's `regex_replace(value, regex, repl)`: Python's `re.sub`.
    fn regex_replace<'v>(
        #[starlark(require = pos)] value: Value<'v>,
        #[starlark(require = pos)] regex: &str,
        #[starlark(require = pos)] repl: &str,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        let value = value
            .unpack_str()
            .ok_or_else(|| invalid("regex_replace: value must be a string"))?;
        let replaced = compile_regex(regex)?.replace_all(value, python_replacement(repl).as_str());
        Ok(heap.alloc_str(&replaced).to_value())
    }

    /// authentik's `list_flatten`: the first item of a list (or `None` if empty), else the value.
    fn list_flatten<'v>(
        #[starlark(require = pos)] value: Value<'v>,
    ) -> starlark::Result<Value<'v>> {
        Ok(match ListRef::from_value(value) {
            Some(list) => list
                .content()
                .first()
                .copied()
                .unwrap_or_else(Value::new_none),
            None => value,
        })
    }
}

/// authentik's `ak_logger` (a structlog logger): `ak_logger.info("msg", key=value)` and the
/// other levels, collected into the result's `log`.
#[starlark_module]
pub(super) fn logger(builder: &mut GlobalsBuilder) {
    fn debug<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("debug", msg, &kw)
    }
    fn info<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("info", msg, &kw)
    }
    fn warning<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("warning", msg, &kw)
    }
    fn warn<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("warning", msg, &kw)
    }
    fn error<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("error", msg, &kw)
    }
    fn exception<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("error", msg, &kw)
    }
    fn critical<'v>(
        #[starlark(require = pos)] msg: Value<'v>,
        #[starlark(kwargs)] kw: SmallMap<String, Value<'v>>,
    ) -> starlark::Result<NoneType> {
        log("critical", msg, &kw)
    }
}

fn log<'v>(
    level: &str,
    msg: Value<'v>,
    kw: &SmallMap<String, Value<'v>>,
) -> starlark::Result<NoneType> {
    let mut line = format!("{level}: {}", display(msg));
    for (key, value) in kw {
        line.push_str(&format!(" {key}={}", value.to_repr()));
    }
    push_line(&state()?.log, line);
    Ok(NoneType)
}
