#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use super::*;

fn parse(param: &str) -> Scopes {
    Scopes::parse(param).unwrap()
}

fn list(scopes: &Scopes) -> Vec<&str> {
    scopes.iter().collect()
}

fn assert_invalid_scope(param: &str) -> OAuthError {
    let err = Scopes::parse(param).expect_err(&param[..param.len().min(80)]);
    assert_eq!(err.code(), ErrorCode::InvalidScope);
    err
}

#[test]
fn parses_space_delimited_scopes() {
    let scopes = parse("openid email profile");
    assert_eq!(list(&scopes), ["openid", "email", "profile"]);
    assert_eq!(scopes.len(), 3);
    assert!(!scopes.is_empty());
    assert!(scopes.contains("email"));
    assert!(!scopes.contains("Email"));
    assert!(!scopes.contains("emai"));
    assert!(!scopes.contains(""));
}

#[test]
fn authentik_scopes_with_odd_characters_are_valid_tokens() {
    let scopes = parse("goauthentik.io/api ak_proxy offline_access urn:x:y https://api/read");
    assert_eq!(
        list(&scopes),
        [
            "goauthentik.io/api",
            "ak_proxy",
            "offline_access",
            "urn:x:y",
            "https://api/read"
        ]
    );
}

#[test]
fn every_allowed_character_forms_a_token() {
    let all: String = (0x21u8..=0x7e)
        .filter(|b| *b != b'"' && *b != b'\\')
        .map(char::from)
        .collect();
    assert_eq!(list(&parse(&all)), [all.as_str()]);
}

#[test]
fn empty_and_blank_parameters_are_empty_sets() {
    assert!(parse("").is_empty());
    assert!(parse(" ").is_empty());
    assert!(parse("     ").is_empty());
    assert_eq!(parse("").to_string(), "");
}

#[test]
fn repeated_leading_and_trailing_spaces_are_skipped() {
    assert_eq!(list(&parse("  openid   email  ")), ["openid", "email"]);
}

#[test]
fn duplicates_keep_the_first_position() {
    let scopes = parse("email openid email profile openid");
    assert_eq!(list(&scopes), ["email", "openid", "profile"]);
    assert_eq!(scopes.to_string(), "email openid profile");
}

#[test]
fn display_joins_with_single_spaces_and_round_trips() {
    let scopes = parse("  b   a  c ");
    assert_eq!(scopes.to_string(), "b a c");
    assert_eq!(parse(&scopes.to_string()), scopes);
}

#[test]
fn scopes_are_case_sensitive() {
    assert_eq!(
        list(&parse("openid OpenID OPENID")),
        ["openid", "OpenID", "OPENID"]
    );
}

#[test]
fn forbidden_characters_are_invalid_scope() {
    for param in [
        "openid \"email\"",
        "openid\\email",
        "openid\temail",
        "openid\nemail",
        "openid\r\nemail",
        "openid\0",
        "\x7f",
        "open\x1bid",
        "openid\u{a0}email",
        "openid\u{3000}email",
        "\u{043e}penid", // Cyrillic o
        "openid\u{200b}",
        "ｏｐｅｎｉｄ",
        "émail",
    ] {
        let err = assert_invalid_scope(param);
        // The description never echoes the request.
        assert!(!err.description().unwrap().contains("openid"), "{param:?}");
    }
}

#[test]
fn length_bound() {
    let at_limit = "a".repeat(MAX_SCOPE_PARAM_LEN);
    assert_eq!(parse(&at_limit).len(), 1);
    let over = "a".repeat(MAX_SCOPE_PARAM_LEN + 1);
    let err = assert_invalid_scope(&over);
    assert!(err.description().unwrap().contains("2048"));
    // Spaces count too: the bound is on the raw parameter.
    let spaces = " ".repeat(MAX_SCOPE_PARAM_LEN + 1);
    assert_invalid_scope(&spaces);
}

#[test]
fn megabyte_input_is_refused_quickly() {
    let huge = "openid ".repeat(150_000);
    assert!(huge.len() > 1 << 20);
    let start = Instant::now();
    assert_invalid_scope(&huge);
    assert!(start.elapsed() < Duration::from_millis(100));
}

#[test]
fn count_bound_is_on_distinct_scopes() {
    let hundred: Vec<String> = (0..MAX_SCOPES).map(|i| format!("s{i}")).collect();
    let scopes = parse(&hundred.join(" "));
    assert_eq!(scopes.len(), MAX_SCOPES);

    let hundred_one: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
    let err = assert_invalid_scope(&hundred_one.join(" "));
    assert!(err.description().unwrap().contains("100"));

    // Hundreds of repetitions of a few scopes are fine: duplicates do not count.
    let repeated = "a b ".repeat(500);
    assert!(repeated.len() <= MAX_SCOPE_PARAM_LEN);
    assert_eq!(list(&parse(&repeated)), ["a", "b"]);
}

#[test]
fn intersect_keeps_allowed_scopes_in_request_order() {
    let requested = parse("profile openid unknown email");
    let allowed = ["openid", "email", "profile", "offline_access"];
    let granted = requested.intersect(&allowed);
    assert_eq!(list(&granted), ["profile", "openid", "email"]);

    let allowed_strings: Vec<String> = vec!["email".to_owned()];
    assert_eq!(list(&requested.intersect(&allowed_strings)), ["email"]);

    let none: [&str; 0] = [];
    assert!(requested.intersect(&none).is_empty());
    assert!(Scopes::new().intersect(&allowed).is_empty());
    // Case-sensitive, no prefix matching.
    assert!(parse("OPENID openid2 open").intersect(&allowed).is_empty());
}

#[test]
fn remove() {
    let mut scopes = parse("openid offline_access email");
    assert!(scopes.remove("offline_access"));
    assert!(!scopes.remove("offline_access"));
    assert!(!scopes.remove("missing"));
    assert_eq!(scopes.to_string(), "openid email");
}

#[test]
fn equality_ignores_order() {
    assert_eq!(parse("a b c"), parse("c a b"));
    assert_eq!(parse("a b c"), parse("a a b c c"));
    assert_ne!(parse("a b"), parse("a b c"));
    assert_ne!(parse("a b c"), parse("a b"));
    assert_ne!(parse("a b"), parse("a c"));
    assert_eq!(Scopes::new(), parse(""));
}

#[test]
fn into_iterator_for_reference() {
    let scopes = parse("x y");
    let mut seen = Vec::new();
    for scope in &scopes {
        seen.push(scope);
    }
    assert_eq!(seen, ["x", "y"]);
}
