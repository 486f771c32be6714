#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use serde_json::json;

use super::*;

#[test]
fn every_code_serialises_to_its_registered_name() {
    let expected = [
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "invalid_token",
        "insufficient_scope",
        "unsupported_token_type",
        "authorization_pending",
        "slow_down",
        "expired_token",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];
    assert_eq!(ErrorCode::ALL.len(), expected.len());
    for (code, name) in ErrorCode::ALL.iter().zip(expected) {
        assert_eq!(code.as_str(), name);
        assert_eq!(code.to_string(), name);
        assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<ErrorCode>(json!(name)).unwrap(),
            *code
        );
        assert_eq!(name.parse::<ErrorCode>().unwrap(), *code);
    }
    let distinct: HashSet<_> = ErrorCode::ALL.iter().collect();
    assert_eq!(distinct.len(), ErrorCode::ALL.len());
}

#[test]
fn unknown_codes_do_not_parse() {
    for bad in [
        "",
        "INVALID_REQUEST",
        "Invalid_Request",
        "invalid-request",
        " invalid_request",
        "invalid_request\0",
        "invalid_requests",
        "ınvalid_request", // dotless i
    ] {
        assert_eq!(bad.parse::<ErrorCode>(), Err(UnknownErrorCode), "{bad:?}");
        assert!(serde_json::from_value::<ErrorCode>(json!(bad)).is_err());
    }
    assert_eq!(UnknownErrorCode.to_string(), "unknown OAuth error code");
}

#[test]
fn serialises_without_description() {
    let err = OAuthError::new(ErrorCode::InvalidGrant);
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"error": "invalid_grant"})
    );
    assert_eq!(err.description(), None);
    assert_eq!(err.code(), ErrorCode::InvalidGrant);
    assert_eq!(err.to_string(), "invalid_grant");
}

#[test]
fn serialises_with_description() {
    let err = OAuthError::described(ErrorCode::InvalidRequest, "missing redirect_uri");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"error": "invalid_request", "error_description": "missing redirect_uri"})
    );
    assert_eq!(err.to_string(), "invalid_request: missing redirect_uri");
    let as_error: &dyn std::error::Error = &err;
    assert!(as_error.source().is_none());
}

#[test]
fn from_code() {
    let err: OAuthError = ErrorCode::SlowDown.into();
    assert_eq!(err, OAuthError::new(ErrorCode::SlowDown));
}

#[test]
fn token_endpoint_statuses_follow_rfc_6749_section_5_2() {
    for code in ErrorCode::ALL {
        let status = OAuthError::new(code).token_endpoint_status();
        let expected = match code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        };
        assert_eq!(status, expected, "{code}");
    }
    assert_eq!(
        OAuthError::new(ErrorCode::InvalidGrant).token_endpoint_status(),
        400
    );
    assert_eq!(
        OAuthError::new(ErrorCode::AuthorizationPending).token_endpoint_status(),
        400
    );
}

#[test]
fn redirect_params_in_order() {
    let err = OAuthError::described(ErrorCode::AccessDenied, "the user said no");
    assert_eq!(
        err.redirect_params(Some("xyz")),
        vec![
            ("error", "access_denied".to_owned()),
            ("error_description", "the user said no".to_owned()),
            ("state", "xyz".to_owned()),
        ]
    );
    assert_eq!(
        err.redirect_params(None),
        vec![
            ("error", "access_denied".to_owned()),
            ("error_description", "the user said no".to_owned()),
        ]
    );
    let bare = OAuthError::new(ErrorCode::LoginRequired);
    assert_eq!(
        bare.redirect_params(Some("s")),
        vec![
            ("error", "login_required".to_owned()),
            ("state", "s".to_owned())
        ]
    );
    assert_eq!(
        bare.redirect_params(None),
        vec![("error", "login_required".to_owned())]
    );
}

#[test]
fn state_is_returned_exactly() {
    // RFC 6749 §4.1.2.1: "the exact value received from the client". Encoding is the caller's.
    let state = "a b&c=d\"é#";
    let params = OAuthError::new(ErrorCode::AccessDenied).redirect_params(Some(state));
    assert_eq!(params.last().unwrap(), &("state", state.to_owned()));
    // An empty state is still a state.
    let params = OAuthError::new(ErrorCode::AccessDenied).redirect_params(Some(""));
    assert_eq!(params.last().unwrap(), &("state", String::new()));
}

fn description_of(raw: &str) -> Option<String> {
    OAuthError::described(ErrorCode::InvalidRequest, raw)
        .description()
        .map(str::to_owned)
}

fn assert_allowed(description: &str) {
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "{description:?}"
    );
}

#[test]
fn allowed_characters_pass_unchanged() {
    let all_allowed: String = (0x20u8..=0x7e)
        .filter(|b| *b != b'"' && *b != b'\\')
        .map(char::from)
        .collect();
    // Trimming only removes the leading space.
    assert_eq!(
        description_of(&all_allowed).unwrap(),
        all_allowed.trim_start()
    );
}

#[test]
fn quotes_and_backslashes_are_replaced() {
    assert_eq!(
        description_of(r#"bad "scope" \ here"#).unwrap(),
        "bad 'scope' / here"
    );
}

#[test]
fn crlf_and_control_characters_are_replaced() {
    let d = description_of("line1\r\nSet-Cookie: a=b\0\x07\x1b[31m\x7f").unwrap();
    assert_eq!(d, "line1  Set-Cookie: a=b???[31m?");
    assert_allowed(&d);
    assert_eq!(description_of("a\tb").unwrap(), "a b");
}

#[test]
fn non_ascii_is_replaced() {
    let d = description_of("ünïcödé \u{202e}gnp.exe \u{0430}pp 😀 \u{00a0}x").unwrap();
    assert_eq!(d, "?n?c?d? ?gnp.exe ?pp ? ?x");
    assert_allowed(&d);
}

#[test]
fn empty_and_blank_descriptions_are_dropped() {
    assert_eq!(description_of(""), None);
    assert_eq!(description_of("   "), None);
    assert_eq!(description_of("\r\n\t"), None);
    let err = OAuthError::described(ErrorCode::InvalidScope, " \n ");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"error": "invalid_scope"})
    );
    assert_eq!(err.redirect_params(None).len(), 1);
}

#[test]
fn descriptions_are_trimmed() {
    assert_eq!(description_of("  padded  ").unwrap(), "padded");
}

#[test]
fn long_descriptions_are_cut() {
    let huge = "x".repeat(1 << 20);
    let d = description_of(&huge).unwrap();
    assert_eq!(d.len(), MAX_DESCRIPTION_LEN);

    // Multi-byte input is cut by output length, never inside a character.
    let huge = "é".repeat(1 << 20);
    let d = description_of(&huge).unwrap();
    assert_eq!(d.len(), MAX_DESCRIPTION_LEN);
    assert_allowed(&d);
}

#[test]
fn with_description_replaces_the_previous_one() {
    let err = OAuthError::described(ErrorCode::InvalidGrant, "first").with_description("second");
    assert_eq!(err.description(), Some("second"));
    let err = err.with_description("");
    assert_eq!(err.description(), None);
}

#[test]
fn serialised_json_never_needs_escapes() {
    // With `"` and `\` and controls gone, the JSON string is the description verbatim.
    let err = OAuthError::described(ErrorCode::InvalidRequest, "a\"b\\c\nd\u{2028}e");
    let body = serde_json::to_string(&err).unwrap();
    assert_eq!(
        body,
        r#"{"error":"invalid_request","error_description":"a'b/c d?e"}"#
    );
}
