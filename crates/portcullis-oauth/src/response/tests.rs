#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;

use super::*;

use ResponseType as RT;

#[test]
fn parses_every_supported_combination_in_any_order() {
    let cases: [(&[&str], ResponseType); 8] = [
        (&["code"], RT::Code),
        (&["token"], RT::Token),
        (&["id_token"], RT::IdToken),
        (&["id_token token", "token id_token"], RT::IdTokenToken),
        (&["code id_token", "id_token code"], RT::CodeIdToken),
        (&["code token", "token code"], RT::CodeToken),
        (
            &[
                "code id_token token",
                "code token id_token",
                "id_token code token",
                "id_token token code",
                "token code id_token",
                "token id_token code",
            ],
            RT::CodeIdTokenToken,
        ),
        (&["none"], RT::None),
    ];
    for (spellings, expected) in cases {
        for spelling in spellings {
            assert_eq!(RT::parse(spelling).unwrap(), expected, "{spelling}");
            assert_eq!(spelling.parse::<ResponseType>().unwrap(), expected);
        }
        assert_eq!(RT::parse(expected.as_str()).unwrap(), expected);
    }
}

#[test]
fn canonical_spellings() {
    let spelled: Vec<&str> = RT::ALL.iter().map(|rt| rt.as_str()).collect();
    assert_eq!(
        spelled,
        [
            "code",
            "token",
            "id_token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token",
            "none"
        ]
    );
    assert_eq!(RT::CodeIdTokenToken.to_string(), "code id_token token");
}

#[test]
fn tolerates_extra_spaces() {
    assert_eq!(RT::parse("  code   id_token ").unwrap(), RT::CodeIdToken);
}

#[test]
fn refuses_everything_else() {
    let long = "code ".repeat(1 << 18);
    for bad in [
        "",
        " ",
        "   ",
        "Code",
        "CODE",
        "code,id_token",
        "code+id_token",
        "code\tid_token",
        "code\nid_token",
        "code\0",
        "code code",
        "token token",
        "id_token id_token token",
        "code id_token token code",
        "none code",
        "code none",
        "none none",
        "none token",
        "id-token",
        "idtoken",
        "codes",
        "cod",
        "device_code",
        "code\u{a0}token",
        "c\u{043e}de", // Cyrillic o
        "ｃｏｄｅ",
        long.as_str(),
    ] {
        let err = RT::parse(bad).expect_err(&bad[..bad.len().min(40)]);
        assert_eq!(err.code(), ErrorCode::UnsupportedResponseType, "{bad:?}");
    }
}

#[test]
fn what_each_type_returns() {
    // (type, code, access token, id token, default mode)
    let table = [
        (RT::Code, true, false, false, ResponseMode::Query),
        (RT::Token, false, true, false, ResponseMode::Fragment),
        (RT::IdToken, false, false, true, ResponseMode::Fragment),
        (RT::IdTokenToken, false, true, true, ResponseMode::Fragment),
        (RT::CodeIdToken, true, false, true, ResponseMode::Fragment),
        (RT::CodeToken, true, true, false, ResponseMode::Fragment),
        (
            RT::CodeIdTokenToken,
            true,
            true,
            true,
            ResponseMode::Fragment,
        ),
        (RT::None, false, false, false, ResponseMode::Query),
    ];
    assert_eq!(table.len(), RT::ALL.len());
    for (rt, code, access, id, mode) in table {
        assert_eq!(rt.returns_code(), code, "{rt}");
        assert_eq!(rt.returns_access_token(), access, "{rt}");
        assert_eq!(rt.returns_id_token(), id, "{rt}");
        assert_eq!(rt.requires_nonce(), id, "{rt}");
        assert_eq!(rt.default_response_mode(), mode, "{rt}");
    }
}

#[test]
fn response_type_serde_uses_the_canonical_spelling() {
    for rt in RT::ALL {
        let value = serde_json::to_value(rt).unwrap();
        assert_eq!(value, json!(rt.as_str()));
        assert_eq!(serde_json::from_value::<ResponseType>(value).unwrap(), rt);
    }
    assert_eq!(
        serde_json::from_value::<ResponseType>(json!("token code")).unwrap(),
        RT::CodeToken
    );
    assert!(serde_json::from_value::<ResponseType>(json!("code code")).is_err());
    assert!(serde_json::from_value::<ResponseType>(json!(1)).is_err());
}

#[test]
fn response_modes() {
    for (name, mode) in [
        ("query", ResponseMode::Query),
        ("fragment", ResponseMode::Fragment),
        ("form_post", ResponseMode::FormPost),
    ] {
        assert_eq!(name.parse::<ResponseMode>().unwrap(), mode);
        assert_eq!(mode.as_str(), name);
        assert_eq!(mode.to_string(), name);
        assert_eq!(serde_json::to_value(mode).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<ResponseMode>(json!(name)).unwrap(),
            mode
        );
    }
    for bad in [
        "",
        "Query",
        "QUERY",
        "form-post",
        "formpost",
        "form_post ",
        "query.jwt",
        "jwt",
        "fragment.jwt",
        "web_message",
        "query\0",
    ] {
        let err = bad.parse::<ResponseMode>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{bad:?}");
    }
}

#[test]
fn effective_mode_defaults() {
    for rt in RT::ALL {
        assert_eq!(
            effective_mode(rt, None).unwrap(),
            rt.default_response_mode()
        );
    }
}

#[test]
fn effective_mode_never_puts_tokens_in_the_query() {
    for rt in RT::ALL {
        let carries_token = rt.returns_access_token() || rt.returns_id_token();
        let query = effective_mode(rt, Some(ResponseMode::Query));
        if carries_token {
            assert_eq!(query.unwrap_err().code(), ErrorCode::InvalidRequest, "{rt}");
        } else {
            assert_eq!(query.unwrap(), ResponseMode::Query, "{rt}");
        }
        // Fragment and form_post are always acceptable.
        assert_eq!(
            effective_mode(rt, Some(ResponseMode::Fragment)).unwrap(),
            ResponseMode::Fragment
        );
        assert_eq!(
            effective_mode(rt, Some(ResponseMode::FormPost)).unwrap(),
            ResponseMode::FormPost
        );
    }
}
