//! The bits of Python behaviour that authentik's tags inherit and blueprints rely on: truthiness
//! (`!Condition`, `!If`, entry conditions), `str()`/`repr()` of values, and `%` string formatting
//! (`!Format`). Implemented over JSON values, since that is what evaluated tags produce.

use std::fmt::Write as _;

use serde_json::Value;

/// Python's `bool(x)`: null, false, 0, 0.0, "", [] and {} are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i != 0
            } else if let Some(u) = n.as_u64() {
                u != 0
            } else {
                n.as_f64().is_some_and(|f| f != 0.0)
            }
        }
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str(x)`.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(x)`.
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (None, None, Some(f)) => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&string_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string_repr(k));
                out.push_str(": ");
                write_repr(out, v);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `1.0` for integers, exponent form below
/// 1e-4 and from 1e16 (`1e+16`, `1e-05`).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        return fix_exponent(&s);
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Rust's `1.5e-7` to Python's `1.5e-07`.
fn fix_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp.strip_prefix('+').unwrap_or(exp)),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_owned()
            };
            format!("{mantissa}e{sign}{digits}")
        }
        None => s.to_owned(),
    }
}

fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The name Python gives a value's type, for error messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A JSON value as a mapping key, the way it reads once stored as JSON.
/// `None` for values Python cannot hash (lists, dicts).
pub fn json_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_f64() => n.as_f64().map(float_repr),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

#[derive(Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
}

/// Python's `format % tuple(args)`.
///
/// Supports the conversions `s r a d i u o x X e E f F g G c` and `%%`, with flags `-+ #0`,
/// width and precision (`*` too). Errors read like Python's (`not enough arguments for format
/// string`, `not all arguments converted during string formatting`, `%d format: a real number
/// is required, not str`).
pub fn percent_format(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::with_capacity(format.len());
    let mut args = args.iter();
    let mut chars = format.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        if chars.peek().map(|(_, c)| *c) == Some('(') {
            return Err("format requires a mapping".into());
        }
        while let Some((_, c)) = chars.peek().copied() {
            match c {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            chars.next();
        }
        if let Some(width) = number(&mut chars, &mut args)? {
            if width < 0 {
                spec.left = true;
            }
            spec.width = usize::try_from(width.unsigned_abs())
                .unwrap_or(0)
                .min(1_000_000);
        }
        if chars.peek().map(|(_, c)| *c) == Some('.') {
            chars.next();
            let precision = number(&mut chars, &mut args)?.unwrap_or(0);
            spec.precision = Some(usize::try_from(precision.max(0)).unwrap_or(0).min(1_000));
        }
        while matches!(chars.peek().map(|(_, c)| *c), Some('h' | 'l' | 'L')) {
            chars.next();
        }
        let Some((_, conversion)) = chars.next() else {
            return Err("incomplete format".into());
        };
        let body = match conversion {
            '%' => {
                out.push('%');
                continue;
            }
            's' | 'r' | 'a' => {
                let arg = next_arg(&mut args)?;
                let mut s = if conversion == 's' {
                    py_str(arg)
                } else {
                    py_repr(arg)
                };
                if let Some(p) = spec.precision {
                    s = s.chars().take(p).collect();
                }
                spec.zero = false;
                (String::new(), s)
            }
            'd' | 'i' | 'u' => {
                let arg = next_arg(&mut args)?;
                let n = as_integer(arg, true).ok_or_else(|| {
                    format!(
                        "%{conversion} format: a real number is required, not {}",
                        type_name(arg)
                    )
                })?;
                int_body(n, 10, false, &spec, "")
            }
            'x' | 'X' | 'o' => {
                let arg = next_arg(&mut args)?;
                let n = as_integer(arg, false).ok_or_else(|| {
                    format!(
                        "%{conversion} format: an integer is required, not {}",
                        type_name(arg)
                    )
                })?;
                let (radix, prefix) = match conversion {
                    'o' => (8, "0o"),
                    'x' => (16, "0x"),
                    _ => (16, "0X"),
                };
                int_body(n, radix, conversion == 'X', &spec, prefix)
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                let arg = next_arg(&mut args)?;
                let f = as_float(arg)
                    .ok_or_else(|| format!("must be real number, not {}", type_name(arg)))?;
                float_body(f, conversion, &spec)
            }
            'c' => {
                let arg = next_arg(&mut args)?;
                let c = match arg {
                    Value::String(s) if s.chars().count() == 1 => s.clone(),
                    Value::Number(n) => n
                        .as_u64()
                        .and_then(|u| u32::try_from(u).ok())
                        .and_then(char::from_u32)
                        .map(String::from)
                        .ok_or("%c arg not in range(0x110000)")?,
                    _ => return Err("%c requires int or char".into()),
                };
                spec.zero = false;
                (String::new(), c)
            }
            other => {
                return Err(format!(
                    "unsupported format character '{other}' (0x{:x}) at index {}",
                    other as u32,
                    start + 1
                ));
            }
        };
        pad(&mut out, body, &spec);
    }
    if args.next().is_some() {
        return Err("not all arguments converted during string formatting".into());
    }
    Ok(out)
}

fn next_arg<'v>(args: &mut std::slice::Iter<'v, Value>) -> Result<&'v Value, String> {
    args.next()
        .ok_or_else(|| "not enough arguments for format string".to_owned())
}

/// A width or precision: digits, or `*` taking an int argument.
fn number(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    args: &mut std::slice::Iter<'_, Value>,
) -> Result<Option<i64>, String> {
    if chars.peek().map(|(_, c)| *c) == Some('*') {
        chars.next();
        return match next_arg(args)? {
            Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64()),
            _ => Err("* wants int".into()),
        };
    }
    let mut value: Option<i64> = None;
    while let Some((_, c)) = chars.peek().copied() {
        let Some(d) = c.to_digit(10) else { break };
        value = Some(
            value
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(d)))
                .filter(|v| *v <= 1_000_000)
                .ok_or("width too big")?,
        );
        chars.next();
    }
    Ok(value)
}

fn as_integer(value: &Value, allow_float: bool) -> Option<i128> {
    match value {
        Value::Bool(b) => Some(i128::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(i128::from(u))
            } else if allow_float {
                // Python's int(float) truncates toward zero; JSON floats are always finite.
                n.as_f64().map(|f| f.trunc() as i128)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// (sign and prefix, digits)
fn int_body(n: i128, radix: u32, upper: bool, spec: &Spec, prefix: &str) -> (String, String) {
    let mut digits = match radix {
        8 => format!("{:o}", n.unsigned_abs()),
        16 if upper => format!("{:X}", n.unsigned_abs()),
        16 => format!("{:x}", n.unsigned_abs()),
        _ => n.unsigned_abs().to_string(),
    };
    if let Some(p) = spec.precision
        && digits.len() < p
    {
        digits = format!("{}{digits}", "0".repeat(p - digits.len()));
    }
    let mut head = sign(n < 0, spec);
    if spec.alt {
        head.push_str(prefix);
    }
    (head, digits)
}

fn sign(negative: bool, spec: &Spec) -> String {
    if negative {
        "-".into()
    } else if spec.plus {
        "+".into()
    } else if spec.space {
        " ".into()
    } else {
        String::new()
    }
}

fn float_body(f: f64, conversion: char, spec: &Spec) -> (String, String) {
    let precision = spec.precision.unwrap_or(6);
    let abs = f.abs();
    let body = match conversion {
        'f' | 'F' => format!("{abs:.precision$}"),
        'e' | 'E' => fix_exponent(&format!("{abs:.precision$e}")),
        _ => {
            // %g: exponent form when the exponent is below -4 or not below the precision.
            let p = precision.max(1);
            let as_e = format!("{abs:.prec$e}", prec = p - 1);
            let exp: i64 = as_e
                .split_once('e')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            let p_i = i64::try_from(p).unwrap_or(i64::MAX);
            let mut s = if exp < -4 || exp >= p_i {
                let (mantissa, e) = as_e.split_once('e').unwrap_or((&as_e, "0"));
                let mantissa = if spec.alt {
                    mantissa.to_owned()
                } else {
                    strip_zeros(mantissa)
                };
                fix_exponent(&format!("{mantissa}e{e}"))
            } else {
                let decimals = usize::try_from(p_i - 1 - exp).unwrap_or(0);
                let s = format!("{abs:.decimals$}");
                if spec.alt { s } else { strip_zeros(&s) }
            };
            if conversion == 'G' {
                s = s.to_uppercase();
            }
            s
        }
    };
    let body = if conversion.is_ascii_uppercase() {
        body.to_uppercase()
    } else {
        body
    };
    (sign(f.is_sign_negative() && f != 0.0, spec), body)
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

fn pad(out: &mut String, (head, body): (String, String), spec: &Spec) {
    let len = head.chars().count() + body.chars().count();
    let fill = spec.width.saturating_sub(len);
    if spec.left {
        out.push_str(&head);
        out.push_str(&body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero {
        out.push_str(&head);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&body);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(&head);
        out.push_str(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(f: &str, args: Value) -> Result<String, String> {
        match args {
            Value::Array(a) => percent_format(f, &a),
            _ => percent_format(f, &[]),
        }
    }

    #[test]
    fn formats_like_python() {
        let cases = [
            (
                "foo-%s-%s-%s",
                json!(["bar", "baz", "qux"]),
                "foo-bar-baz-qux",
            ),
            ("%s", json!([null]), "None"),
            ("%s|%s", json!([true, false]), "True|False"),
            ("%s", json!([1.5]), "1.5"),
            ("%s", json!([2.0]), "2.0"),
            ("%s", json!([1e16]), "1e+16"),
            ("%s", json!([0.00001]), "1e-05"),
            ("%s", json!([["a", 1, null]]), "['a', 1, None]"),
            ("%s", json!([{"k": "it's"}]), "{'k': \"it's\"}"),
            ("%r", json!(["x"]), "'x'"),
            ("%d%%", json!([42]), "42%"),
            ("%i", json!([-3.9]), "-3"),
            ("%d", json!([true]), "1"),
            ("%05d", json!([42]), "00042"),
            ("%-5s|", json!(["ab"]), "ab   |"),
            ("%5s|", json!(["ab"]), "   ab|"),
            ("%.2s", json!(["abcdef"]), "ab"),
            ("%+d", json!([5]), "+5"),
            ("%x %X %#x %o", json!([255, 255, 255, 8]), "ff FF 0xff 10"),
            ("%.2f", json!([1.23456]), "1.23"),
            ("%f", json!([1]), "1.000000"),
            ("%e", json!([12345.678]), "1.234568e+04"),
            ("%g", json!([0.0001]), "0.0001"),
            ("%g", json!([1234567.0]), "1.23457e+06"),
            ("%g", json!([100.0]), "100"),
            ("%c", json!([65]), "A"),
            ("%*d", json!([4, 7]), "   7"),
            ("no args", json!([]), "no args"),
        ];
        for (f, args, want) in cases {
            assert_eq!(fmt(f, args.clone()).as_deref(), Ok(want), "{f} % {args}");
        }
    }

    #[test]
    fn errors_like_python() {
        let cases = [
            (
                "%s %s",
                json!(["a"]),
                "not enough arguments for format string",
            ),
            (
                "%s",
                json!(["a", "b"]),
                "not all arguments converted during string formatting",
            ),
            (
                "x",
                json!(["a"]),
                "not all arguments converted during string formatting",
            ),
            (
                "%d",
                json!(["a"]),
                "%d format: a real number is required, not str",
            ),
            (
                "%x",
                json!([1.5]),
                "%x format: an integer is required, not float",
            ),
            (
                "%d",
                json!([null]),
                "%d format: a real number is required, not NoneType",
            ),
            ("%(name)s", json!(["a"]), "format requires a mapping"),
            ("%", json!([]), "incomplete format"),
            (
                "%z",
                json!([1]),
                "unsupported format character 'z' (0x7a) at index 1",
            ),
        ];
        for (f, args, want) in cases {
            assert_eq!(fmt(f, args.clone()), Err(want.to_owned()), "{f} % {args}");
        }
    }

    #[test]
    fn truthiness_matches_python() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for t in [
            json!(true),
            json!(1),
            json!(-1),
            json!(0.5),
            json!("a"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&t), "{t}");
        }
    }
}
