#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::pkce::s256_challenge;
use crate::redirect_uri::RedirectUri;

fn config() -> OAuth2Config {
    OAuth2Config {
        redirect_uris: vec![RedirectUri::strict("https://app.example/cb")],
        ..OAuth2Config::default()
    }
}

fn scopes() -> Vec<String> {
    ["openid", "email", "profile", "offline_access"]
        .map(str::to_owned)
        .to_vec()
}

fn check(query: &str) -> Result<Authorization, Refusal> {
    let req = AuthorizeRequest::parse(query).map_err(Refusal::Page)?;
    validate(&req, 7, &config(), &scopes())
}

fn redirected(query: &str) -> ErrorRedirect {
    match check(query) {
        Err(Refusal::Redirect(r)) => r,
        other => panic!("{query}: expected a redirected error, got {other:?}"),
    }
}

fn page(query: &str) -> OAuthError {
    match check(query) {
        Err(Refusal::Page(e)) => e,
        other => panic!("{query}: expected an error page, got {other:?}"),
    }
}

const OK: &str = "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code";

#[test]
fn a_code_request_is_validated_with_its_defaults() {
    let a = check(&format!("{OK}&scope=openid%20email%20unknown&state=xyz")).unwrap();
    assert_eq!(a.provider, 7);
    assert_eq!(a.redirect_uri, "https://app.example/cb");
    assert_eq!(a.response_type, ResponseType::Code);
    assert_eq!(a.response_mode, ResponseMode::Query);
    // Unknown scopes are dropped, order kept.
    assert_eq!(a.scopes, ["openid", "email"]);
    assert_eq!(a.state.as_deref(), Some("xyz"));
    // No scope asked: every scope the provider offers.
    assert_eq!(check(OK).unwrap().scopes, scopes());
}

#[test]
fn unknown_clients_bad_redirect_uris_and_malformed_requests_are_shown_never_redirected() {
    for q in [
        "client_id=c&response_type=code",
        "client_id=c&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code",
        "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2Fextra&response_type=code",
        "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code",
        "redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code",
    ] {
        assert_eq!(page(q).code(), ErrorCode::InvalidRequest, "{q}");
    }
    let long = format!("{OK}&state={}", "a".repeat(MAX_PARAM_LEN + 1));
    assert_eq!(page(&long).code(), ErrorCode::InvalidRequest);
    let many: String = (0..100).map(|i| format!("&x{i}=1")).collect();
    assert_eq!(
        page(&format!("{OK}{many}")).code(),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn errors_after_the_redirect_uri_is_known_go_to_the_client_with_the_state() {
    let r = redirected(
        "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=magic&state=s1",
    );
    assert_eq!(r.error.code(), ErrorCode::UnsupportedResponseType);
    assert_eq!(r.state.as_deref(), Some("s1"));
    assert_eq!(
        redirected(&format!("{OK}&scope=a%22b")).error.code(),
        ErrorCode::InvalidScope
    );
    assert_eq!(
        redirected(&format!("{OK}&prompt=none%20login"))
            .error
            .code(),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirected(&format!("{OK}&max_age=-1")).error.code(),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirected(&format!("{OK}&claims=%5B%5D")).error.code(),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirected(&format!("{OK}&request=eyJ")).error.code(),
        ErrorCode::RequestNotSupported
    );
    assert_eq!(
        redirected(&format!("{OK}&code_challenge=short"))
            .error
            .code(),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirected(&format!("{OK}&response_mode=jwt")).error.code(),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn implicit_and_hybrid_need_a_nonce_and_openid_and_default_to_the_fragment() {
    let base = "client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb";
    let r = redirected(&format!("{base}&response_type=id_token&scope=openid"));
    assert_eq!(r.error.code(), ErrorCode::InvalidRequest);
    assert_eq!(r.mode, ResponseMode::Fragment);
    let r = redirected(&format!(
        "{base}&response_type=id_token&scope=email&nonce=n"
    ));
    assert_eq!(r.error.code(), ErrorCode::InvalidScope);
    let a = check(&format!(
        "{base}&response_type=code%20id_token&scope=openid&nonce=n"
    ))
    .unwrap();
    assert_eq!(a.response_mode, ResponseMode::Fragment);
    assert_eq!(a.nonce.as_deref(), Some("n"));
    let a = check(&format!(
        "{base}&response_type=id_token%20token&scope=openid&nonce=n&response_mode=form_post"
    ))
    .unwrap();
    assert_eq!(a.response_mode, ResponseMode::FormPost);
    // A token never travels in the query.
    let r = redirected(&format!(
        "{base}&response_type=id_token%20token&scope=openid&nonce=n&response_mode=query"
    ));
    assert_eq!(r.error.code(), ErrorCode::InvalidRequest);
}

#[test]
fn public_clients_must_use_pkce_and_grants_can_be_withheld() {
    let mut c = config();
    c.client_type = ClientType::Public;
    let req = AuthorizeRequest::parse(OK).unwrap();
    match validate(&req, 1, &c, &scopes()) {
        Err(Refusal::Redirect(r)) => assert_eq!(r.error.code(), ErrorCode::InvalidRequest),
        other => panic!("{other:?}"),
    }
    let challenge = s256_challenge("a-verifier-that-is-long-enough-to-satisfy-rfc-7636-rules");
    let req = AuthorizeRequest::parse(&format!(
        "{OK}&code_challenge={challenge}&code_challenge_method=S256"
    ))
    .unwrap();
    assert!(validate(&req, 1, &c, &scopes()).unwrap().pkce.is_some());
    c.grant_types = vec!["implicit".into()];
    match validate(&req, 1, &c, &scopes()) {
        Err(Refusal::Redirect(r)) => assert_eq!(r.error.code(), ErrorCode::UnauthorizedClient),
        other => panic!("{other:?}"),
    }
}

#[test]
fn responses_encode_in_their_mode() {
    let resp = AuthorizationResponse {
        redirect_uri: "https://app.example/cb?x=1".into(),
        mode: ResponseMode::Query,
        params: vec![
            ("code".into(), "a b&c".into()),
            ("state".into(), "s".into()),
        ],
    };
    assert_eq!(
        resp.location().unwrap(),
        "https://app.example/cb?x=1&code=a+b%26c&state=s"
    );
    let frag = AuthorizationResponse {
        mode: ResponseMode::Fragment,
        redirect_uri: "https://app.example/cb".into(),
        ..resp.clone()
    };
    assert_eq!(
        frag.location().unwrap(),
        "https://app.example/cb#code=a+b%26c&state=s"
    );
    let post = AuthorizationResponse {
        mode: ResponseMode::FormPost,
        params: vec![("state".into(), "\"><script>alert(1)</script>".into())],
        ..resp
    };
    assert!(post.location().is_none());
    let html = post.form_post_html("n0nce");
    assert!(html.contains("<script nonce=\"n0nce\">"));
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;script&gt;"));
    assert!(html.contains("action=\"https://app.example/cb?x=1\""));
}

#[test]
fn error_redirects_carry_the_issuer() {
    let r = redirected(&format!("{OK}&prompt=bogus&state=s"));
    let resp = r.response("https://idp/application/o/app/");
    let loc = resp.location().unwrap();
    assert!(
        loc.starts_with("https://app.example/cb?error=invalid_request"),
        "{loc}"
    );
    assert!(loc.contains("state=s"));
    assert!(loc.contains("iss=https%3A%2F%2Fidp%2Fapplication%2Fo%2Fapp%2F"));
}

/// A `claims` request naming another user, or an essential acr the login does not have, is
/// refused; voluntary requests and matching values pass.
#[test]
fn unmet_claims_refuse_other_users_and_unmet_essential_acr() {
    use serde_json::json;
    let acr = "goauthentik.io/providers/oauth2/default";
    let check = |c: serde_json::Value| unmet_claims(Some(&c), "sub-1", acr).map(|e| e.code());
    assert_eq!(unmet_claims(None, "sub-1", acr), None);
    assert_eq!(
        check(json!({"id_token": {"sub": {"value": "sub-1"}}})),
        None
    );
    assert_eq!(
        check(json!({"id_token": {"sub": {"value": "sub-2"}}})),
        Some(ErrorCode::AccessDenied)
    );
    assert_eq!(
        check(json!({"userinfo": {"sub": {"value": 7}}})),
        Some(ErrorCode::AccessDenied)
    );
    assert_eq!(
        check(json!({"id_token": {"acr": {"values": ["mfa"]}}})),
        None
    );
    assert_eq!(
        check(json!({"id_token": {"acr": {"essential": true, "values": ["mfa", acr]}}})),
        None
    );
    assert_eq!(
        check(json!({"id_token": {"acr": {"essential": true, "value": "mfa"}}})),
        Some(ErrorCode::AccessDenied)
    );
    assert_eq!(
        check(json!({"id_token": {"acr": {"essential": true}}})),
        None
    );
    assert_eq!(
        check(json!({"id_token": {"email": null, "acr": null}})),
        None
    );
}
