#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;

use super::*;

/// RFC 7636 Appendix B.
const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[test]
fn rfc_7636_appendix_b_vector() {
    assert_eq!(s256_challenge(RFC_VERIFIER), RFC_CHALLENGE);
    assert!(verify(
        CodeChallengeMethod::S256,
        RFC_CHALLENGE,
        RFC_VERIFIER
    ));
}

#[test]
fn rfc_7636_appendix_b_octets() {
    // The appendix lists the verifier's 32 random octets and the SHA-256 octets.
    let octets: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    assert_eq!(URL_SAFE_NO_PAD.encode(octets), RFC_VERIFIER);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, RFC_VERIFIER.as_bytes());
    assert_eq!(
        digest.as_ref(),
        [
            19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120,
            173, 109, 241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195
        ]
    );
}

#[test]
fn s256_refuses_wrong_verifier_or_challenge() {
    let other_verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
    assert!(!verify(
        CodeChallengeMethod::S256,
        RFC_CHALLENGE,
        other_verifier
    ));
    let other_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN";
    assert!(!verify(
        CodeChallengeMethod::S256,
        other_challenge,
        RFC_VERIFIER
    ));
    // The challenge sent back as the verifier proves nothing.
    assert!(!verify(
        CodeChallengeMethod::S256,
        RFC_CHALLENGE,
        RFC_CHALLENGE
    ));
    // Padded base64 of the same digest is not the challenge (no padding, §4.2).
    let padded = format!("{RFC_CHALLENGE}=");
    assert!(!verify(CodeChallengeMethod::S256, &padded, RFC_VERIFIER));
    // Standard (non-URL) alphabet is not the challenge either.
    let plus_slash = RFC_CHALLENGE.replace('-', "+");
    assert!(!verify(
        CodeChallengeMethod::S256,
        &plus_slash,
        RFC_VERIFIER
    ));
    // Comparison is case-sensitive.
    assert!(!verify(
        CodeChallengeMethod::S256,
        &RFC_CHALLENGE.to_ascii_lowercase(),
        RFC_VERIFIER
    ));
}

#[test]
fn plain_is_equality() {
    assert!(verify(
        CodeChallengeMethod::Plain,
        RFC_VERIFIER,
        RFC_VERIFIER
    ));
    assert!(!verify(
        CodeChallengeMethod::Plain,
        RFC_CHALLENGE,
        RFC_VERIFIER
    ));
    assert!(!verify(
        CodeChallengeMethod::Plain,
        RFC_VERIFIER,
        &RFC_VERIFIER.to_ascii_uppercase()
    ));
    // A prefix is not equal.
    let longer = format!("{RFC_VERIFIER}a");
    assert!(!verify(CodeChallengeMethod::Plain, RFC_VERIFIER, &longer));
    assert!(!verify(CodeChallengeMethod::Plain, &longer, RFC_VERIFIER));
}

#[test]
fn well_formed_lengths_and_characters() {
    let min = "a".repeat(MIN_LEN);
    let max = "~".repeat(MAX_LEN);
    let every_char = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    for ok in [min.as_str(), max.as_str(), every_char, RFC_VERIFIER] {
        assert!(validate_challenge(ok).is_ok(), "{ok}");
        assert!(validate_verifier(ok).is_ok(), "{ok}");
        assert!(verify(CodeChallengeMethod::Plain, ok, ok), "{ok}");
        assert!(verify(CodeChallengeMethod::S256, &s256_challenge(ok), ok));
    }
}

/// Values that are never a challenge or a verifier.
fn malformed() -> Vec<String> {
    let base = "a".repeat(MIN_LEN);
    let mut bad = vec![
        String::new(),
        "a".repeat(MIN_LEN - 1),
        "a".repeat(MAX_LEN + 1),
        "a".repeat(1 << 20),
        RFC_CHALLENGE[..42].to_owned(),
    ];
    for c in [
        ' ', '+', '/', '=', '%', '!', '*', '\'', '"', '\\', '#', '&', '\0', '\r', '\n', '\t',
        '\x7f', 'é', '\u{0430}', '\u{ff41}', '\u{200b}', '\u{2010}', '\u{2024}', '\u{223c}',
    ] {
        bad.push(format!("{base}{c}"));
        bad.push(format!("{c}{base}"));
    }
    // Multi-byte characters: 43 of them are more than 43 bytes but could be 43 "characters".
    bad.push("é".repeat(MIN_LEN));
    bad.push("\u{0430}".repeat(MIN_LEN));
    bad
}

#[test]
fn malformed_values_are_refused_everywhere() {
    for bad in malformed() {
        let err = validate_challenge(&bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let err = validate_verifier(&bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidGrant);
        // Even identical malformed values do not verify with plain.
        assert!(!verify(CodeChallengeMethod::Plain, &bad, &bad), "{bad:?}");
        assert!(!verify(
            CodeChallengeMethod::S256,
            &s256_challenge(&bad),
            &bad
        ));
        assert!(!verify(CodeChallengeMethod::S256, &bad, RFC_VERIFIER));
    }
}

#[test]
fn method_names_are_exact() {
    assert_eq!(
        "plain".parse::<CodeChallengeMethod>().unwrap(),
        CodeChallengeMethod::Plain
    );
    assert_eq!(
        "S256".parse::<CodeChallengeMethod>().unwrap(),
        CodeChallengeMethod::S256
    );
    for bad in [
        "", "s256", "S-256", "sha256", "SHA256", "PLAIN", "Plain", " S256", "S256 ", "S256\0",
        "S２56",
    ] {
        let err = bad.parse::<CodeChallengeMethod>().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{bad:?}");
    }
    assert_eq!(CodeChallengeMethod::S256.to_string(), "S256");
    assert_eq!(CodeChallengeMethod::Plain.as_str(), "plain");
}

#[test]
fn absent_method_is_plain() {
    assert_eq!(
        CodeChallengeMethod::from_param(None).unwrap(),
        CodeChallengeMethod::Plain
    );
    assert_eq!(
        CodeChallengeMethod::from_param(Some("S256")).unwrap(),
        CodeChallengeMethod::S256
    );
    assert!(CodeChallengeMethod::from_param(Some("")).is_err());
}

#[test]
fn method_serde() {
    assert_eq!(
        serde_json::to_value(CodeChallengeMethod::S256).unwrap(),
        json!("S256")
    );
    assert_eq!(
        serde_json::to_value(CodeChallengeMethod::Plain).unwrap(),
        json!("plain")
    );
    assert!(serde_json::from_value::<CodeChallengeMethod>(json!("s256")).is_err());
    let stored = PkceChallenge {
        method: CodeChallengeMethod::S256,
        challenge: RFC_CHALLENGE.to_owned(),
    };
    let value = serde_json::to_value(&stored).unwrap();
    assert_eq!(value, json!({"method": "S256", "challenge": RFC_CHALLENGE}));
    assert_eq!(
        serde_json::from_value::<PkceChallenge>(value).unwrap(),
        stored
    );
}

#[test]
fn authorize_params() {
    let with_s256 =
        PkceChallenge::from_authorize_params(Some(RFC_CHALLENGE), Some("S256")).unwrap();
    assert_eq!(
        with_s256,
        Some(PkceChallenge {
            method: CodeChallengeMethod::S256,
            challenge: RFC_CHALLENGE.to_owned()
        })
    );
    let default_plain = PkceChallenge::from_authorize_params(Some(RFC_VERIFIER), None)
        .unwrap()
        .unwrap();
    assert_eq!(default_plain.method, CodeChallengeMethod::Plain);
    assert!(default_plain.is_verified_by(RFC_VERIFIER));

    // No challenge: no PKCE, whatever the method says (authentik ignores it too).
    assert_eq!(
        PkceChallenge::from_authorize_params(None, None).unwrap(),
        None
    );
    assert_eq!(
        PkceChallenge::from_authorize_params(None, Some("S256")).unwrap(),
        None
    );
    assert_eq!(
        PkceChallenge::from_authorize_params(Some(""), Some("bogus")).unwrap(),
        None
    );

    // A challenge with a bad method or a bad shape.
    let err = PkceChallenge::from_authorize_params(Some(RFC_CHALLENGE), Some("s256")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    let err = PkceChallenge::from_authorize_params(Some(RFC_CHALLENGE), Some("")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    for bad in malformed().into_iter().filter(|b| !b.is_empty()) {
        let err = PkceChallenge::from_authorize_params(Some(&bad), Some("S256")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{bad:?}");
        // The description never echoes the hostile value.
        assert!(
            err.description().unwrap().len() < 100,
            "{:?}",
            err.description()
        );
    }
}

#[test]
fn token_request_rules() {
    let s256 = PkceChallenge {
        method: CodeChallengeMethod::S256,
        challenge: RFC_CHALLENGE.to_owned(),
    };
    let plain = PkceChallenge {
        method: CodeChallengeMethod::Plain,
        challenge: RFC_VERIFIER.to_owned(),
    };

    assert_eq!(check_token_request(None, None), Ok(()));
    assert_eq!(check_token_request(None, Some("")), Ok(()));
    assert_eq!(check_token_request(Some(&s256), Some(RFC_VERIFIER)), Ok(()));
    assert_eq!(
        check_token_request(Some(&plain), Some(RFC_VERIFIER)),
        Ok(())
    );

    let invalid_grant = |result: Result<(), OAuthError>| {
        assert_eq!(result.unwrap_err().code(), ErrorCode::InvalidGrant);
    };
    // Downgrade: a verifier for a code issued without a challenge.
    invalid_grant(check_token_request(None, Some(RFC_VERIFIER)));
    // A challenge but no verifier.
    invalid_grant(check_token_request(Some(&s256), None));
    invalid_grant(check_token_request(Some(&s256), Some("")));
    // Mismatch, and an S256 challenge replayed as the verifier.
    invalid_grant(check_token_request(
        Some(&s256),
        Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"),
    ));
    invalid_grant(check_token_request(Some(&s256), Some(RFC_CHALLENGE)));
    invalid_grant(check_token_request(Some(&plain), Some(RFC_CHALLENGE)));
    // Malformed verifiers.
    for bad in malformed().into_iter().filter(|b| !b.is_empty()) {
        invalid_grant(check_token_request(Some(&s256), Some(&bad)));
        invalid_grant(check_token_request(Some(&plain), Some(&bad)));
    }
}

#[test]
fn stored_challenge_that_is_malformed_never_verifies() {
    // A challenge stored without validation (say, imported) cannot be satisfied by a short or
    // odd verifier equal to it.
    let stored = PkceChallenge {
        method: CodeChallengeMethod::Plain,
        challenge: "short".to_owned(),
    };
    assert!(!stored.is_verified_by("short"));
    assert!(check_token_request(Some(&stored), Some("short")).is_err());
}
