//! Field rules shared by the API, the CLI and blueprints.

use crate::FieldErrors;

pub const USERNAME_MAX: usize = 150;
pub const NAME_MAX: usize = 256;
pub const SLUG_MAX: usize = 50;
pub const TEXT_MAX: usize = 4096;

/// Invisible formatting characters (the Unicode Cf characters that matter in practice): bidi
/// overrides and isolates, zero-width characters, the soft hyphen and the BOM. A name holding
/// them can look like another one ("admin" + U+202E), so identifiers refuse them.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Usernames: 1..=150 characters, no control or invisible formatting characters, no
/// leading/trailing whitespace.
pub fn username(errors: &mut FieldErrors, field: &str, value: &str) {
    if value.is_empty() {
        errors.add(field, "This field may not be blank.");
    } else if value.chars().count() > USERNAME_MAX {
        errors.add(
            field,
            format!("Ensure this field has no more than {USERNAME_MAX} characters."),
        );
    } else if value
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
        || value.trim() != value
    {
        errors.add(
            field,
            "Enter a valid username: no control or invisible characters, no surrounding spaces.",
        );
    }
}

/// A required, bounded, printable string.
pub fn text(errors: &mut FieldErrors, field: &str, value: &str, max: usize, allow_blank: bool) {
    if !allow_blank && value.trim().is_empty() {
        errors.add(field, "This field may not be blank.");
    } else if value.chars().count() > max {
        errors.add(
            field,
            format!("Ensure this field has no more than {max} characters."),
        );
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        errors.add(field, "Control characters are not allowed.");
    }
}

/// Email addresses: blank is allowed (authentik's email is optional); otherwise one `@` with a
/// non-empty local part and a dotted or plain domain, no whitespace, at most 254 characters.
pub fn email(errors: &mut FieldErrors, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !ok {
        errors.add(field, "Enter a valid email address.");
    }
}

/// Slugs as Django's SlugField: letters, digits, `-` and `_`, 1..=50.
pub fn slug(errors: &mut FieldErrors, field: &str, value: &str) {
    if value.is_empty() {
        errors.add(field, "This field may not be blank.");
    } else if value.len() > SLUG_MAX {
        errors.add(
            field,
            format!("Ensure this field has no more than {SLUG_MAX} characters."),
        );
    } else if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.add(
            field,
            "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.",
        );
    }
}

/// A path as authentik's user path: `/`-separated segments, no leading/trailing slash, no
/// empty segment.
pub fn user_path(errors: &mut FieldErrors, field: &str, value: &str) {
    if value.is_empty()
        || value.starts_with('/')
        || value.ends_with('/')
        || value.split('/').any(str::is_empty)
        || value.len() > 200
        || value.chars().any(char::is_control)
    {
        errors.add(
            field,
            "Enter a valid path: segments separated by '/', no leading or trailing '/'.",
        );
    }
}

/// Optional URL: blank, or absolute http(s)/custom-scheme URL without whitespace.
pub fn url(errors: &mut FieldErrors, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let ok = value.len() <= 2000
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        });
    if !ok {
        errors.add(field, "Enter a valid URL.");
    }
}

/// `attributes` must be a JSON object, bounded in size.
pub fn attributes(errors: &mut FieldErrors, field: &str, value: &serde_json::Value) {
    if !value.is_object() {
        errors.add(field, "Expected a dictionary of items.");
    } else if serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > 256 * 1024
    {
        errors.add(field, "Attributes are too large (at most 256 KiB).");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: impl Fn(&mut FieldErrors)) -> bool {
        let mut e = FieldErrors::new();
        f(&mut e);
        e.is_empty()
    }

    #[test]
    fn emails() {
        assert!(check(|e| email(e, "email", "")));
        assert!(check(|e| email(e, "email", "a@b.c")));
        assert!(check(|e| email(e, "email", "root@localhost")));
        assert!(!check(|e| email(e, "email", "a b@c.d")));
        assert!(!check(|e| email(e, "email", "nope")));
        assert!(!check(|e| email(e, "email", "@x.y")));
        assert!(!check(|e| email(e, "email", "a@.y")));
    }

    #[test]
    fn usernames() {
        assert!(check(|e| username(e, "username", "akadmin")));
        assert!(!check(|e| username(e, "username", "")));
        assert!(!check(|e| username(e, "username", " x")));
        assert!(!check(|e| username(e, "username", "a\u{0}b")));
        assert!(!check(|e| username(e, "username", &"x".repeat(151))));
        assert!(!check(|e| username(e, "username", "admin\u{202E}")));
        assert!(!check(|e| username(e, "username", "ad\u{200B}min")));
        assert!(check(|e| username(
            e,
            "username",
            "jürgen.müller@example.com"
        )));
    }

    #[test]
    fn slugs_and_paths() {
        assert!(check(|e| slug(e, "slug", "my-app_1")));
        assert!(!check(|e| slug(e, "slug", "my app")));
        assert!(check(|e| user_path(e, "path", "users")));
        assert!(check(|e| user_path(
            e,
            "path",
            "goauthentik.io/service-accounts"
        )));
        assert!(!check(|e| user_path(e, "path", "/users")));
        assert!(!check(|e| user_path(e, "path", "a//b")));
    }

    #[test]
    fn urls() {
        assert!(check(|e| url(e, "u", "")));
        assert!(check(|e| url(e, "u", "https://example.com/x")));
        assert!(!check(|e| url(e, "u", "javascript alert")));
        assert!(!check(|e| url(e, "u", "https://exa mple.com")));
    }
}

/// Parses authentik's duration strings: `;`-separated `unit=amount` pairs with units `weeks`,
/// `days`, `hours`, `minutes`, `seconds`, `milliseconds`, `microseconds` (e.g. `hours=1;minutes=30`).
/// Amounts may be fractional and are at most 10^9 each; the total must fit in 100 years.
pub fn parse_timedelta(s: &str) -> Result<chrono::Duration, String> {
    const MAX_SECONDS: f64 = 100.0 * 366.0 * 86_400.0;
    let mut total = 0.0f64;
    let s = s.trim();
    if s.is_empty() {
        return Err("Empty duration.".into());
    }
    if s.len() > 256 {
        return Err("Duration is too long.".into());
    }
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (unit, amount) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not of the form unit=amount."))?;
        let amount: f64 = amount
            .trim()
            .parse()
            .map_err(|_| format!("{amount:?} is not a number."))?;
        if !amount.is_finite() || !(0.0..=1e9).contains(&amount) {
            return Err(format!("{amount} is out of range."));
        }
        let factor = match unit.trim() {
            "weeks" => 604_800.0,
            "days" => 86_400.0,
            "hours" => 3_600.0,
            "minutes" => 60.0,
            "seconds" => 1.0,
            "milliseconds" => 0.001,
            "microseconds" => 0.000_001,
            other => return Err(format!("Unknown unit {other:?}.")),
        };
        total += amount * factor;
    }
    if total > MAX_SECONDS {
        return Err("Duration is too long.".into());
    }
    // Whole microseconds: exact for every accepted input.
    Ok(chrono::Duration::microseconds((total * 1e6).round() as i64))
}

#[cfg(test)]
mod timedelta_tests {
    use super::parse_timedelta;

    #[test]
    fn parses_authentik_durations() {
        assert_eq!(parse_timedelta("hours=1"), Ok(chrono::Duration::hours(1)));
        assert_eq!(
            parse_timedelta("hours=1;minutes=30"),
            Ok(chrono::Duration::minutes(90))
        );
        assert_eq!(parse_timedelta("seconds=0"), Ok(chrono::Duration::zero()));
        assert_eq!(parse_timedelta("weeks=4"), Ok(chrono::Duration::weeks(4)));
        assert_eq!(parse_timedelta("days=0.5"), Ok(chrono::Duration::hours(12)));
        for bad in [
            "",
            "hours",
            "hours=x",
            "years=1",
            "hours=-1",
            "hours=nan",
            "days=1e12",
        ] {
            assert!(parse_timedelta(bad).is_err(), "{bad}");
        }
    }
}
