//! The session cookie: loading the request's session for the flow engine, and writing back the
//! cookie change the engine asks for. The cookie is `authentik_session` (authentik's name, so
//! proxies and scripts written for it keep working): HttpOnly, SameSite=Lax, Path=/, and Secure
//! whenever the request came over HTTPS (directly or, per `X-Forwarded-Proto`, through a proxy).

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use portcullis_flow::{CookieChange, SessionState};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "authentik_session";
/// The cookie that tells the page's scripts the CSRF token (readable by scripts, on purpose: the
/// double-submit check compares it, sent back as a header, with the session's).
pub const CSRF_COOKIE: &str = "authentik_csrf";
/// The header unsafe API requests authenticated by the session must carry (authentik's name).
pub const CSRF_HEADER: &str = "x-authentik-csrf";

/// The value of cookie `name`, if the request carries it once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the request came over HTTPS.
pub fn is_https(parts: &Parts) -> bool {
    let direct = parts
        .extensions
        .get::<ConnectInfo<crate::tls::Peer>>()
        .is_some_and(|ConnectInfo(crate::tls::Peer(_, tls))| *tls);
    direct
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Loads the session the request's cookie names.
pub async fn load(state: &AppState, parts: &Parts) -> Result<SessionState, ApiError> {
    let ip = crate::extract::client_ip(parts).unwrap_or_default();
    let ua = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(SessionState::load(
        &state.store,
        cookie(&parts.headers, SESSION_COOKIE),
        &ip,
        ua,
    )
    .await?)
}

/// The `Set-Cookie` header for what the engine decided, if anything changed.
pub fn set_cookie(change: &CookieChange, secure: bool) -> Option<HeaderValue> {
    let flags = if secure {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    };
    let v = match change {
        CookieChange::None => return None,
        CookieChange::Set { key, max_age } => match max_age {
            Some(age) => format!("{SESSION_COOKIE}={key}{flags}; Max-Age={age}"),
            None => format!("{SESSION_COOKIE}={key}{flags}"),
        },
        CookieChange::Clear => format!("{SESSION_COOKIE}=; Max-Age=0{flags}"),
    };
    HeaderValue::from_str(&v).ok()
}

/// `response` with the `Set-Cookie` headers the session's changes need.
pub fn with_cookies(
    mut response: axum::response::Response,
    session: &SessionState,
    parts: &Parts,
) -> axum::response::Response {
    for v in set_cookies(session, is_https(parts)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Every `Set-Cookie` header the response needs: the session cookie when it changed, and the
/// CSRF cookie alongside it.
pub fn set_cookies(session: &SessionState, secure: bool) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    let change = session.cookie_change();
    if let Some(v) = set_cookie(change, secure) {
        out.push(v);
    }
    let secure_flag = if secure { "; Secure" } else { "" };
    let csrf = match change {
        CookieChange::None => None,
        CookieChange::Set { .. } => Some(format!(
            "{CSRF_COOKIE}={}; Path=/; SameSite=Lax{secure_flag}",
            session.csrf_token()
        )),
        CookieChange::Clear => Some(format!(
            "{CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Lax{secure_flag}"
        )),
    };
    if let Some(v) = csrf.and_then(|c| HeaderValue::from_str(&c).ok()) {
        out.push(v);
    }
    out
}
