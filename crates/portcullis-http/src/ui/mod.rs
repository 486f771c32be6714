//! The web interface: `/if/flow/<slug>/` renders each challenge of the flow executor as a
//! server-rendered HTML page (forms work without JavaScript), branded from the brand; `/` sends a
//! visitor to the authentication flow (or to `/if/user/` when logged in); `/if/user/` is the
//! logged-in landing page. The pages are a rendering of the JSON challenges, never a second
//! implementation: a form post becomes the same JSON response the executor API takes.
//!
//! Forms carry the session's CSRF token; a post without it changes nothing.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::Environment;
use portcullis_core::{Brand, FlowDesignation};
use portcullis_flow::stages::iframe_logout;
use portcullis_flow::{Challenge, Executor, Reply, challenge};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::flows_executor::{MAX_RESPONSE_BYTES, flow_request};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    // Bounded rendering: a brand's CSS or a challenge can't make a page take forever.
    env.set_fuel(Some(200_000));
    env.add_filter("css_url", css_url);
    for (name, src) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("flow.html", include_str!("../../templates/flow.html")),
        ("user.html", include_str!("../../templates/user.html")),
        ("message.html", include_str!("../../templates/message.html")),
    ] {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

/// A URL for a quoted CSS `url("...")` inside a `<style>` element, where HTML escapes are not
/// decoded: the characters that could end the string, the function or the element are
/// percent-encoded instead (a URL means the same with them encoded).
fn css_url(url: &str) -> minijinja::Value {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' | '\'' | '(' | ')' | '\\' | '<' | '>' | ' ' => {
                out.push_str(&format!("%{:02X}", u32::from(c)));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    minijinja::Value::from_safe_string(out)
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(root))
        .route("/if/user/", get(user_page))
        .route(
            "/if/flow/{slug}/",
            get(flow_get)
                .post(flow_post)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_RESPONSE_BYTES)),
        )
        .route(
            "/flows/-/default/authentication/",
            get(default_authentication),
        )
        .route("/flows/-/default/invalidation/", get(default_invalidation))
        .route("/flows/-/cancel/", get(cancel))
        .route(
            "/static/dist/assets/icons/icon_left_brand.svg",
            get(|| svg(LOGO)),
        )
        .route("/static/dist/assets/icons/icon.png", get(|| svg(ICON)))
        .route("/static/dist/assets/icons/icon.svg", get(|| svg(ICON)))
        .route(
            "/static/dist/assets/images/flow_background.jpg",
            get(|| svg(BACKGROUND)),
        )
        .route(
            "/static/dist/assets/images/user_default.png",
            get(|| svg(USER)),
        )
}

// The default brand's assets, at authentik's paths (a brand may point elsewhere). SVG whatever
// the extension: authentik's defaults name `.png`/`.jpg` files, and browsers go by the type.
const LOGO: &str = include_str!("../../static/logo.svg");
const ICON: &str = include_str!("../../static/icon.svg");
const BACKGROUND: &str = include_str!("../../static/background.svg");
const USER: &str = include_str!("../../static/user.svg");

async fn svg(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

fn brand_json(b: &Brand) -> Value {
    // A `</style>` in the brand's CSS must not end the style element.
    let css = b.branding_custom_css.replace("</", "<\\/");
    json!({
        "title": b.branding_title,
        "logo": b.branding_logo.replace("%(theme)s", "light"),
        "favicon": b.branding_favicon,
        "custom_css": css,
    })
}

/// The Content-Security-Policy of the pages: nothing from elsewhere but images, scripts and
/// frames only as `script_src` and `frame_src` say (`'none'` on every page but one).
fn csp(script_src: &str, frame_src: &str) -> String {
    format!(
        "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; \
         script-src {script_src}; frame-src {frame_src}; frame-ancestors 'none'; base-uri 'none'"
    )
}

pub(crate) fn page(html: String, status: StatusCode) -> Response {
    static PAGE_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
        HeaderValue::from_str(&csp("'none'", "'none'"))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    });
    page_with_csp(html, status, PAGE_CSP.clone())
}

/// A page with its own Content-Security-Policy (the front-channel logout page frames other
/// sites and runs one inline script).
fn page_with_csp(html: String, status: StatusCode, csp: HeaderValue) -> Response {
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("content-security-policy", csp);
    r
}

/// The front-channel logout page's policy: the pages it frames (their origins only) and its
/// own script, by nonce.
fn iframe_logout_csp(c: &Challenge, nonce: &str) -> Option<HeaderValue> {
    let mut origins: Vec<String> = Vec::new();
    for u in c
        .fields
        .get("logout_urls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(url) = u.get("url").and_then(Value::as_str) else {
            continue;
        };
        let Ok(url) = url::Url::parse(url) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let origin = url.origin().ascii_serialization();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    let frames = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    HeaderValue::from_str(&csp(&format!("'nonce-{nonce}'"), &frames)).ok()
}

/// What a page that only tells the person something shows: a heading, an alert, paragraphs,
/// an error code, and (for `/device`) the code form.
#[derive(Debug, Default)]
pub(crate) struct Message<'a> {
    pub heading: &'a str,
    pub alert: Option<&'a str>,
    pub paragraphs: &'a [&'a str],
    pub code: Option<&'a str>,
    pub device_form: bool,
}

/// [`Message`] as a page, branded for the request's host.
pub(crate) async fn message_page(
    state: &AppState,
    parts: &axum::http::request::Parts,
    m: Message<'_>,
    status: StatusCode,
) -> ApiResult<Response> {
    let brand = crate::flows_executor::request_brand(state, parts).await?;
    let html = render(
        "message.html",
        json!({
            "brand": brand_json(&brand),
            "background": brand.branding_default_flow_background,
            "layout": "stacked",
            "heading": m.heading,
            "alert": m.alert,
            "paragraphs": m.paragraphs,
            "code": m.code,
            "device_form": m.device_form,
        }),
    )?;
    Ok(page(html, status))
}

fn render(name: &str, ctx: Value) -> ApiResult<String> {
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(template_value(&ctx)))
        .map_err(|e| ApiError::Internal(format!("template {name}: {e}")))
}

/// JSON to a template value, value by value. Not through serde: with serde_json's
/// `arbitrary_precision` (a dependency turns it on) a number serializes as a private map, and
/// a page would show `{"$serde_json::private::Number": "5"}` where it means 5.
fn template_value(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                minijinja::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                minijinja::Value::from(u)
            } else {
                minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(a) => a.iter().map(template_value).collect(),
        Value::Object(o) => {
            minijinja::Value::from_iter(o.iter().map(|(k, v)| (k.as_str(), template_value(v))))
        }
    }
}

fn redirect(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The slug of the flow with `designation` for the brand of this request's host: the flow the
/// brand names, else authentik's default slug, else any flow of that designation.
pub(crate) async fn default_flow(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    designation: FlowDesignation,
) -> ApiResult<Option<String>> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let brand = crate::api::brands::brand_for_host(state, host).await?;
    let named = match designation {
        FlowDesignation::Authentication => brand.flows.authentication,
        FlowDesignation::Invalidation => brand.flows.invalidation,
        FlowDesignation::Recovery => brand.flows.recovery,
        FlowDesignation::Unenrollment => brand.flows.unenrollment,
        FlowDesignation::StageConfiguration => brand.flows.user_settings,
        _ => None,
    };
    if let Some(uuid) = named
        && let Ok(f) = state.store.find_flow(uuid).await
    {
        return Ok(Some(f.slug));
    }
    let preferred = match designation {
        FlowDesignation::Authentication => "default-authentication-flow",
        FlowDesignation::Invalidation => "default-invalidation-flow",
        _ => "",
    };
    if !preferred.is_empty()
        && let Ok(f) = state.store.find_flow_by_slug(preferred).await
    {
        return Ok(Some(f.slug));
    }
    Ok(state
        .store
        .find_flow_by_designation(designation)
        .await?
        .map(|f| f.slug))
}

async fn root(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let session = crate::session::load(&state, &parts).await?;
    if session.user().is_some() {
        return Ok(crate::session::with_cookies(
            redirect("/if/user/"),
            &session,
            &parts,
        ));
    }
    let to = match default_flow(&state, &parts.headers, FlowDesignation::Authentication).await? {
        Some(slug) => format!("/if/flow/{slug}/"),
        None => return Err(ApiError::NotFound),
    };
    Ok(crate::session::with_cookies(
        redirect(&to),
        &session,
        &parts,
    ))
}

async fn default_authentication(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    match default_flow(&state, &headers, FlowDesignation::Authentication).await? {
        Some(slug) => Ok(redirect(&format!("/if/flow/{slug}/"))),
        None => Err(ApiError::NotFound),
    }
}

async fn default_invalidation(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    match default_flow(&state, &headers, FlowDesignation::Invalidation).await? {
        Some(slug) => Ok(redirect(&format!("/if/flow/{slug}/"))),
        None => Err(ApiError::NotFound),
    }
}

/// Drops every flow in progress of this session and starts over.
async fn cancel(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let mut session = crate::session::load(&state, &parts).await?;
    let slugs: Vec<String> = session
        .session()
        .and_then(|s| s.data.get("flows"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for slug in slugs {
        session.set_plan(&state.store, &slug, None).await?;
    }
    session.save(&state.store).await?;
    Ok(crate::session::with_cookies(
        redirect("/"),
        &session,
        &parts,
    ))
}

async fn user_page(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let session = crate::session::load(&state, &parts).await?;
    let Some(user) = session.user() else {
        let to = match default_flow(&state, &parts.headers, FlowDesignation::Authentication).await?
        {
            Some(slug) => format!("/if/flow/{slug}/?next=%2Fif%2Fuser%2F"),
            None => "/".to_owned(),
        };
        return Ok(crate::session::with_cookies(
            redirect(&to),
            &session,
            &parts,
        ));
    };
    let brand = crate::flows_executor::request_brand(&state, &parts).await?;
    let html = render(
        "user.html",
        json!({
            "brand": brand_json(&brand),
            "background": brand.branding_default_flow_background,
            "layout": "stacked",
            "user": {"username": user.user.username, "name": user.user.name, "email": user.user.email},
        }),
    )?;
    Ok(crate::session::with_cookies(
        page(html, StatusCode::OK),
        &session,
        &parts,
    ))
}

/// Renders a challenge as the flow page (redirect challenges become HTTP redirects).
pub(crate) fn render_challenge(
    c: &Challenge,
    slug: &str,
    query: &str,
    csrf: &str,
    brand: &Brand,
) -> ApiResult<Response> {
    if c.component == challenge::REDIRECT {
        let to = c.field_str("to").unwrap_or("/");
        return Ok(Redirect::to(to).into_response());
    }
    let action = if query.is_empty() {
        format!("/if/flow/{slug}/")
    } else {
        format!("/if/flow/{slug}/?{query}")
    };
    let info = c.flow_info.as_ref();
    // Denials and errors are answers too: 200, as authentik's executor gives them.
    let status = StatusCode::OK;
    let mut cj = c.to_json();
    if let Some(o) = cj.as_object_mut() {
        o.entry("response_errors").or_insert_with(|| json!({}));
    }
    // Only the front-channel logout page runs a script (it goes on once the iframes loaded).
    let csp = (c.component == iframe_logout::COMPONENT).then(|| {
        let nonce = portcullis_crypto::random_string(24);
        let csp = iframe_logout_csp(c, &nonce);
        (nonce, csp)
    });
    let html = render(
        "flow.html",
        json!({
            "script_nonce": csp.as_ref().map(|(n, _)| n.as_str()),
            "c": cj,
            "title": info.map(|i| i.title.as_str()).unwrap_or(""),
            "background": info.map(|i| i.background.as_str()).unwrap_or(""),
            "layout": info.map(|i| i.layout.as_str()).unwrap_or("stacked"),
            "brand": brand_json(brand),
            "action": action,
            "restart_url": format!("/if/flow/{slug}/"),
            "csrf_token": csrf,
        }),
    )?;
    Ok(match csp {
        Some((_, Some(csp))) => page_with_csp(html, status, csp),
        _ => page(html, status),
    })
}

async fn flow_get(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, _) = req.into_parts();
    let query: String = parts.uri.query().unwrap_or("").chars().take(4096).collect();
    let request = flow_request(&state, &parts, query.clone()).await?;
    let mut session = crate::session::load(&state, &parts).await?;
    let c = Executor::new(&state.flows, &mut session, &request)
        .get(&slug)
        .await?;
    let r = render_challenge(&c, &slug, &query, session.csrf_token(), &request.brand)?;
    Ok(crate::session::with_cookies(r, &session, &parts))
}

/// Turns a posted form into the JSON response the executor takes. Values are strings, except
/// the fields the form lists in `_bool` (checkboxes: present means true) and `remember_me`.
pub fn form_to_response(body: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut bools = Vec::new();
    for (k, v) in form_urlencoded::parse(body).take(256) {
        match k.as_ref() {
            "csrf_token" => {}
            "_bool" => bools.push(v.into_owned()),
            "remember_me" => {
                out.insert(k.into_owned(), Value::Bool(v == "true" || v == "on"));
            }
            _ => {
                out.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    for b in bools {
        let on = matches!(out.get(&b), Some(Value::String(v)) if v == "true" || v == "on");
        out.insert(b, Value::Bool(on));
    }
    out
}

fn form_csrf(body: &[u8]) -> String {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn flow_post(
    State(state): State<Arc<AppState>>,
    Path(slug): Path<String>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let query: String = parts.uri.query().unwrap_or("").chars().take(4096).collect();
    let here = if query.is_empty() {
        format!("/if/flow/{slug}/")
    } else {
        format!("/if/flow/{slug}/?{query}")
    };
    let mut session = crate::session::load(&state, &parts).await?;
    let expected = session.csrf_token().to_owned();
    let sent = form_csrf(&body);
    if expected.is_empty()
        || !portcullis_crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes())
    {
        // A stale or forged form: show the current step again, nothing changes.
        return Ok(crate::session::with_cookies(
            Redirect::to(&here).into_response(),
            &session,
            &parts,
        ));
    }
    let request = flow_request(&state, &parts, query.clone()).await?;
    let response = Value::Object(form_to_response(&body));
    let reply = Executor::new(&state.flows, &mut session, &request)
        .post(&slug, &response)
        .await?;
    let r = match reply {
        Reply::Advanced => Redirect::to(&here).into_response(),
        Reply::Challenge(c) => {
            render_challenge(&c, &slug, &query, session.csrf_token(), &request.brand)?
        }
    };
    Ok(crate::session::with_cookies(r, &session, &parts))
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_reaches_templates_as_values() {
        let env = minijinja::Environment::new();
        let ctx = json!({"n": 5, "u": u64::MAX, "f": 1.5, "s": "<b>", "b": true, "z": null,
                         "a": [1, "x"], "o": {"k": 2}});
        let out = env
            .render_str(
                "{{ n + 1 }}|{{ u }}|{{ f }}|{{ s }}|{{ b }}|{{ z is none }}|{{ a[0] }}{{ a[1] }}|{{ o.k }}",
                template_value(&ctx),
            )
            .unwrap();
        assert_eq!(out, format!("6|{}|1.5|<b>|True|True|1x|2", u64::MAX));
    }

    /// Every template compiles and every component renders with its fields escaped.
    #[test]
    fn every_component_renders() {
        let brand = Brand::fallback();
        let components = [
            Challenge::new("ak-stage-identification")
                .with("user_fields", json!(["email", "username"]))
                .with("primary_action", "Log in")
                .with("password_fields", true)
                .error("uid_field", "<b>bad</b>"),
            Challenge::new("ak-stage-password")
                .with("pending_user", "admin")
                .error("password", "Invalid password"),
            Challenge::new("ak-stage-prompt").with(
                "fields",
                json!([{"field_key": "username", "label": "Username", "type": "username", "required": true, "placeholder": "", "initial_value": "", "order": 0, "sub_text": ""},
                       {"field_key": "agree", "label": "Agree", "type": "checkbox", "required": false, "placeholder": "", "initial_value": "", "order": 1, "sub_text": ""},
                       {"field_key": "color", "label": "Color", "type": "dropdown", "required": true, "placeholder": "", "initial_value": "red", "order": 2, "sub_text": "", "choices": ["red", "blue"]}]),
            ),
            Challenge::new("ak-stage-consent")
                .with("header_text", "You're about to sign into App.")
                .with("permissions", json!([{"id": "openid", "name": "OpenID"}]))
                .with("token", "t"),
            Challenge::new("ak-stage-user-login"),
            Challenge::new("ak-stage-dummy").with("title", "Dummy"),
            Challenge::access_denied("Nope <script>"),
            Challenge::flow_error("Broken", None),
        ];
        for c in components {
            let r = render_challenge(&c, "f", "next=%2F", "csrf", &brand);
            let r = r.unwrap_or_else(|e| panic!("{}: {e:?}", c.component));
            assert_eq!(r.status(), StatusCode::OK, "{}", c.component);
        }
        let html = render(
            "flow.html",
            json!({"c": Challenge::new("ak-stage-identification").error("uid_field", "<b>x</b>").to_json(),
                   "brand": brand_json(&brand), "csrf_token": "tok", "title": "T"}),
        )
        .unwrap_or_default();
        assert!(
            html.contains("&lt;b&gt;x") && !html.contains("<b>x"),
            "{html}"
        );
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        // The flow background is a URL in CSS, not HTML-escaped (the browser would not decode
        // it there), and cannot leave its string or the style element.
        let html = render(
            "flow.html",
            json!({"c": {"component": "ak-stage-dummy", "response_errors": {}}, "brand": brand_json(&brand),
                   "csrf_token": "t", "title": "T", "background": "/static/bg.jpg?a=1&b=2"}),
        )
        .unwrap();
        assert!(html.contains("url(\"/static/bg.jpg?a=1&b=2\")"), "{html}");
        let html = render(
            "flow.html",
            json!({"c": {"component": "ak-stage-dummy", "response_errors": {}}, "brand": brand_json(&brand),
                   "csrf_token": "t", "title": "T", "background": "x\"); } </style><script>alert(1)</script>"}),
        )
        .unwrap();
        assert!(
            html.contains(
                "url(\"x%22%29;%20}%20%3C/style%3E%3Cscript%3Ealert%281%29%3C/script%3E\")"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>alert"));
        let html = render(
            "message.html",
            json!({"brand": brand_json(&brand), "heading": "Connect <a device>",
                   "alert": "bad <b>", "paragraphs": ["one & two"], "code": "invalid_request",
                   "device_form": true}),
        )
        .unwrap();
        assert!(html.contains("Connect &lt;a device&gt;") && html.contains("bad &lt;b&gt;"));
        assert!(html.contains("one &amp; two") && html.contains("<code>invalid_request</code>"));
        assert!(html.contains("action=\"&#x2f;device\"") || html.contains("action=\"/device\""));
        assert!(
            render(
                "user.html",
                json!({"brand": brand_json(&brand), "user": {"username": "a"}})
            )
            .is_ok()
        );
    }

    /// The front-channel logout page frames each application's logout URL (escaped), allows
    /// framing exactly their origins and runs only its own script.
    #[tokio::test]
    async fn iframe_logout_page_frames_only_the_logout_urls() {
        let c = Challenge::new(iframe_logout::COMPONENT).with(
            "logout_urls",
            json!([
                {"url": "https://a.example:8443/logout?iss=x&sid=\"><script>", "provider_name": "A <b>", "binding": "redirect"},
                {"url": "http://b.example/fc", "provider_name": "B", "binding": "redirect"},
            ]),
        );
        let r = render_challenge(&c, "f", "", "csrf", &Brand::fallback()).unwrap();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("frame-src https://a.example:8443 http://b.example;"),
            "{csp}"
        );
        let nonce = csp
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .unwrap()
            .to_owned();
        assert!(nonce.len() >= 16, "{csp}");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            html.contains(&format!("<script nonce=\"{nonce}\">")),
            "{html}"
        );
        assert!(
            html.contains(
                "src=\"https:&#x2f;&#x2f;a.example:8443&#x2f;logout?iss=x&amp;sid=&quot;&gt;&lt;script&gt;\""
            ),
            "{html}"
        );
        assert!(html.contains("A &lt;b&gt;") && !html.contains("A <b>"));
        assert_eq!(html.matches("<iframe").count(), 2);
        // Any other page keeps the policy without scripts or frames.
        let r = render_challenge(
            &Challenge::new("ak-stage-dummy"),
            "f",
            "",
            "csrf",
            &Brand::fallback(),
        )
        .unwrap();
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'none'") && csp.contains("frame-src 'none'"),
            "{csp}"
        );
    }

    #[test]
    fn forms_become_executor_responses() {
        let r = form_to_response(b"csrf_token=x&component=ak-stage-password&password=a%2Bb+c&_bool=agree&remember_me=true");
        assert_eq!(r.get("password"), Some(&json!("a+b c")));
        assert_eq!(r.get("agree"), Some(&json!(false)));
        assert_eq!(r.get("remember_me"), Some(&json!(true)));
        assert!(r.get("csrf_token").is_none());
    }
}
