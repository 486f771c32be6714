//! The authorization endpoint's request (RFC 6749 §4.1.1, §4.2.1; OpenID Connect Core §3):
//! parsing, validation against the provider, and the response in its response mode.
//!
//! ```text
//!  query ──parse──> AuthorizeRequest ──validate(provider)──> Authorization ──(flow)──> response
//!          │                           │
//!          └─ malformed: error page    ├─ client or redirect_uri not known good: error page
//!                                      └─ anything else: error sent to the redirect_uri
//! ```
//! Until the client and its redirect URI are known good, errors are shown to the person and
//! never redirected (RFC 6749 §4.1.2.1): a crafted link cannot turn the server into an open
//! redirector. An [`Authorization`] is what the flow carries until it is fulfilled; it is
//! plain data (serde), so it can wait in the session.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, OAuthError};
use crate::pkce::PkceChallenge;
use crate::provider::{ClientType, OAuth2Config};
use crate::redirect_uri::{RedirectUriType, find_match};
use crate::response::{ResponseMode, ResponseType, effective_mode};
use crate::scope::Scopes;

/// The longest value of any one parameter (the scope has its own, smaller bound).
pub const MAX_PARAM_LEN: usize = 4096;
/// The most parameters one request may carry.
pub const MAX_PARAMS: usize = 64;

/// The parameters of an authorization request, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub claims: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

impl AuthorizeRequest {
    /// Parses a query string (or form body). A parameter given twice, an oversized value or
    /// too many parameters is `invalid_request` (RFC 6749 §3.1); unknown parameters are
    /// ignored, as the RFC requires.
    pub fn parse(query: &str) -> Result<Self, OAuthError> {
        let mut r = AuthorizeRequest::default();
        let mut seen: Vec<String> = Vec::new();
        for (count, (k, v)) in form_urlencoded::parse(query.as_bytes()).enumerate() {
            if count >= MAX_PARAMS {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    "too many parameters",
                ));
            }
            let limit = if k == "request" || k == "id_token_hint" {
                crate::request_object::MAX_REQUEST_OBJECT_LEN
            } else {
                MAX_PARAM_LEN
            };
            if v.len() > limit {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    format!("{k} is too long"),
                ));
            }
            let slot = match k.as_ref() {
                "client_id" => {
                    r.client_id = v.clone().into_owned();
                    None
                }
                "redirect_uri" => Some(&mut r.redirect_uri),
                "response_type" => Some(&mut r.response_type),
                "response_mode" => Some(&mut r.response_mode),
                "scope" => Some(&mut r.scope),
                "state" => Some(&mut r.state),
                "nonce" => Some(&mut r.nonce),
                "code_challenge" => Some(&mut r.code_challenge),
                "code_challenge_method" => Some(&mut r.code_challenge_method),
                "prompt" => Some(&mut r.prompt),
                "max_age" => Some(&mut r.max_age),
                "login_hint" => Some(&mut r.login_hint),
                "id_token_hint" => Some(&mut r.id_token_hint),
                "claims" => Some(&mut r.claims),
                "request" => Some(&mut r.request),
                "request_uri" => Some(&mut r.request_uri),
                _ => continue,
            };
            if seen.iter().any(|s| s == k.as_ref()) {
                return Err(OAuthError::described(
                    ErrorCode::InvalidRequest,
                    format!("{k} is given more than once"),
                ));
            }
            seen.push(k.clone().into_owned());
            if let Some(slot) = slot {
                *slot = Some(v.into_owned());
            }
        }
        if r.client_id.is_empty() {
            return Err(OAuthError::described(
                ErrorCode::InvalidRequest,
                "client_id is required",
            ));
        }
        Ok(r)
    }
}

/// The `prompt` values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    fn parse(s: Option<&str>) -> Result<Self, OAuthError> {
        let mut p = Prompt::default();
        for v in s.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                _ => {
                    return Err(OAuthError::described(
                        ErrorCode::InvalidRequest,
                        "prompt must be none, login, consent or select_account",
                    ));
                }
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err(OAuthError::described(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values",
            ));
        }
        Ok(p)
    }
}

/// A validated authorization request, waiting for the flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    pub provider: i32,
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    /// The granted scopes (requested ∩ the provider's), in request order.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub pkce: Option<PkceChallenge>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `claims` request parameter (OpenID Connect Core §5.5), as JSON.
    pub claims: Option<serde_json::Value>,
}

/// Where an error goes once the redirect URI is known good.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    pub error: OAuthError,
}

impl ErrorRedirect {
    /// The response that carries the error.
    #[must_use]
    pub fn response(&self, issuer: &str) -> AuthorizationResponse {
        let mut params: Vec<(String, String)> = self
            .error
            .redirect_params(self.state.as_deref())
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        params.push(("iss".to_owned(), issuer.to_owned()));
        AuthorizationResponse {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            params,
        }
    }
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Shown to the person: the client or the redirect URI cannot be trusted with it.
    Page(OAuthError),
    /// Sent to the client's redirect URI.
    Redirect(ErrorRedirect),
}

/// Validates `req` against the provider (`client_id` already matched to it) and the scope names
/// its mappings offer.
pub fn validate(
    req: &AuthorizeRequest,
    provider: i32,
    config: &OAuth2Config,
    provider_scopes: &[String],
) -> Result<Authorization, Refusal> {
    let Some(redirect_uri) = req.redirect_uri.as_deref().filter(|r| !r.is_empty()) else {
        return Err(Refusal::Page(OAuthError::described(
            ErrorCode::InvalidRequest,
            "redirect_uri is required",
        )));
    };
    let registered = config.redirect_uris_of(RedirectUriType::Authorization);
    if find_match(&registered, redirect_uri).is_none() {
        return Err(Refusal::Page(OAuthError::described(
            ErrorCode::InvalidRequest,
            "redirect_uri is not registered for this client",
        )));
    }
    // From here on the client is known and the redirect URI is its own.
    let response_type_param = req.response_type.as_deref().unwrap_or("");
    let fallback_mode = ResponseType::parse(response_type_param)
        .map(ResponseType::default_response_mode)
        .unwrap_or(ResponseMode::Query);
    let requested_mode = match req.response_mode.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match m.parse::<ResponseMode>() {
            Ok(m) => Some(m),
            Err(e) => {
                return Err(redirect(redirect_uri, fallback_mode, req, e));
            }
        },
    };
    let refuse = |mode: ResponseMode, e: OAuthError| Err(redirect(redirect_uri, mode, req, e));
    let response_type = match ResponseType::parse(response_type_param) {
        Ok(t) => t,
        Err(e) => return refuse(requested_mode.unwrap_or(fallback_mode), e),
    };
    let mode = match effective_mode(response_type, requested_mode) {
        Ok(m) => m,
        Err(e) => return refuse(fallback_mode, e),
    };
    let grant = if !response_type.returns_code() {
        "implicit"
    } else if response_type.returns_id_token() || response_type.returns_access_token() {
        "hybrid"
    } else {
        "authorization_code"
    };
    if !config.allows_grant(grant) {
        return refuse(
            mode,
            OAuthError::described(
                ErrorCode::UnauthorizedClient,
                format!("this client may not use the {grant} grant"),
            ),
        );
    }
    if req.request.is_some() {
        return refuse(mode, OAuthError::new(ErrorCode::RequestNotSupported));
    }
    if req.request_uri.is_some() {
        return refuse(mode, OAuthError::new(ErrorCode::RequestUriNotSupported));
    }
    let requested = match Scopes::parse(req.scope.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return refuse(mode, e),
    };
    // Unknown scopes are dropped; none requested means all the provider offers (authentik).
    let granted = if requested.is_empty() {
        provider_scopes.to_vec()
    } else {
        requested
            .intersect(provider_scopes)
            .iter()
            .map(str::to_owned)
            .collect()
    };
    if response_type.returns_id_token() && !granted.iter().any(|s| s == "openid") {
        return refuse(
            mode,
            OAuthError::described(
                ErrorCode::InvalidScope,
                "an id_token needs the openid scope",
            ),
        );
    }
    let nonce = req.nonce.clone().filter(|n| !n.is_empty());
    if response_type.requires_nonce() && nonce.is_none() {
        return refuse(
            mode,
            OAuthError::described(
                ErrorCode::InvalidRequest,
                "nonce is required when an id_token is returned from the authorization endpoint",
            ),
        );
    }
    let pkce = match PkceChallenge::from_authorize_params(
        req.code_challenge.as_deref(),
        req.code_challenge_method.as_deref(),
    ) {
        Ok(p) => p,
        Err(e) => return refuse(mode, e),
    };
    if response_type.returns_code() && config.client_type == ClientType::Public && pkce.is_none() {
        return refuse(
            mode,
            OAuthError::described(
                ErrorCode::InvalidRequest,
                "code_challenge is required for public clients (PKCE)",
            ),
        );
    }
    let prompt = match Prompt::parse(req.prompt.as_deref()) {
        Ok(p) => p,
        Err(e) => return refuse(mode, e),
    };
    let max_age = match req.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return refuse(
                    mode,
                    OAuthError::described(
                        ErrorCode::InvalidRequest,
                        "max_age must be a non-negative integer",
                    ),
                );
            }
        },
    };
    let claims = match req.claims.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match serde_json::from_str::<serde_json::Value>(c) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            _ => {
                return refuse(
                    mode,
                    OAuthError::described(
                        ErrorCode::InvalidRequest,
                        "claims must be a JSON object",
                    ),
                );
            }
        },
    };
    Ok(Authorization {
        provider,
        client_id: req.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        response_type,
        response_mode: mode,
        scopes: granted,
        state: req.state.clone(),
        nonce,
        pkce,
        prompt,
        max_age,
        login_hint: req.login_hint.clone(),
        claims,
    })
}

fn redirect(uri: &str, mode: ResponseMode, req: &AuthorizeRequest, error: OAuthError) -> Refusal {
    Refusal::Redirect(ErrorRedirect {
        redirect_uri: uri.to_owned(),
        mode,
        state: req.state.clone(),
        error,
    })
}

impl Authorization {
    /// Where an error about this authorization goes.
    #[must_use]
    pub fn error(&self, error: OAuthError) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.response_mode,
            state: self.state.clone(),
            error,
        }
    }
}

/// An authorization response: parameters for the client's redirect URI, in a response mode.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    /// The URL to redirect to, for the query and fragment modes (`None` for form_post).
    #[must_use]
    pub fn location(&self) -> Option<String> {
        let encoded = {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.params {
                s.append_pair(k, v);
            }
            s.finish()
        };
        match self.mode {
            ResponseMode::Query => {
                let sep = if self.redirect_uri.contains('?') {
                    '&'
                } else {
                    '?'
                };
                Some(format!("{}{sep}{encoded}", self.redirect_uri))
            }
            ResponseMode::Fragment => Some(format!("{}#{encoded}", self.redirect_uri)),
            ResponseMode::FormPost => None,
        }
    }

    /// The page that posts the parameters to the redirect URI (OAuth 2.0 Form Post Response
    /// Mode): a form submitted by a script allowed by `script_nonce` (the page's CSP nonce),
    /// with a button for browsers without script.
    #[must_use]
    pub fn form_post_html(&self, script_nonce: &str) -> String {
        let mut inputs = String::new();
        for (k, v) in &self.params {
            inputs.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            ));
        }
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Submitting…</title></head>\
             <body><form method=\"post\" action=\"{}\">{inputs}\
             <noscript><button type=\"submit\">Continue</button></noscript></form>\
             <script nonce=\"{}\">document.forms[0].submit();</script></body></html>",
            html_escape(&self.redirect_uri),
            html_escape(script_nonce)
        )
    }
}

/// Escapes text for an HTML attribute or text node.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// OpenID Connect Core §5.5.1: a `claims` request may name the user the tokens must be for
/// (`"sub": {"value": ...}`) or demand an authentication context (`"acr": {"essential": true,
/// "value(s)": ...}`). When the logged-in user is another, or the login's `acr` is none of the
/// essential values, the request fails with `access_denied` (the spec forbids tokens for a
/// different user; a voluntary `acr` or `acr_values` is only a wish, answered with the `acr`
/// the login has).
pub fn unmet_claims(
    claims: Option<&serde_json::Value>,
    sub: &str,
    acr: &str,
) -> Option<OAuthError> {
    use serde_json::Value;
    let claims = claims?;
    for member in ["id_token", "userinfo"] {
        let Some(asked) = claims.get(member).and_then(Value::as_object) else {
            continue;
        };
        if let Some(want) = asked.get("sub").and_then(|r| r.get("value"))
            && want.as_str() != Some(sub)
        {
            return Some(OAuthError::described(
                ErrorCode::AccessDenied,
                "the request is for another user than the one logged in",
            ));
        }
        if let Some(req) = asked.get("acr")
            && req.get("essential").and_then(Value::as_bool) == Some(true)
        {
            let mut accepted: Vec<&str> = Vec::new();
            if let Some(v) = req.get("value").and_then(Value::as_str) {
                accepted.push(v);
            }
            if let Some(list) = req.get("values").and_then(Value::as_array) {
                accepted.extend(list.iter().filter_map(Value::as_str));
            }
            if !accepted.is_empty() && !accepted.contains(&acr) {
                return Some(OAuthError::described(
                    ErrorCode::AccessDenied,
                    "the requested authentication context cannot be met",
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
