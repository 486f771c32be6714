//! OpenID Connect against an independent relying party: the `openidconnect` crate discovers the
//! provider, builds the authorization request, redeems the code with PKCE, verifies the ID
//! token against the published JWKS, calls userinfo and refreshes. A cookie-keeping client
//! plays the browser (logging in through the flow executor API). Then the negative cases:
//! each a correct OAuth error with nothing issued.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use portcullis_testkit::{Backend, TestApp, both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const REDIRECT: &str = "https://rp.example/callback";

/// The relying party's HTTP client: reqwest 0.13 behind the crate's `AsyncHttpClient`.
async fn rp_http(
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = req.into_parts();
    let mut rb = client.request(parts.method.clone(), parts.uri.to_string());
    for (k, v) in &parts.headers {
        rb = rb.header(k, v);
    }
    let r = rb.body(body).send().await?;
    let mut out = openidconnect::http::Response::builder().status(r.status());
    for (k, v) in r.headers() {
        out = out.header(k, v);
    }
    let bytes = r.bytes().await?;
    Ok(out.body(bytes.to_vec()).unwrap())
}

/// A browser: keeps cookies, follows no redirect by itself.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Resp {
    status: StatusCode,
    location: Option<String>,
    body: Value,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            base: app.url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> Resp {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let rb = if cookie.is_empty() {
            rb
        } else {
            rb.header("cookie", cookie)
        };
        let r = rb.send().await.unwrap();
        for sc in r.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let (k, v) = sc.split(';').next().unwrap().split_once('=').unwrap();
            if sc.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            location,
            body,
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        }
    }

    async fn get(&mut self, url: &str) -> Resp {
        let rb = self.http.get(self.absolute(url));
        self.send(rb).await
    }

    /// Runs the flow page `/if/flow/<slug>/?<query>` through the executor API, answering
    /// each challenge with `answer`, until it redirects; returns where to.
    async fn run_flow(&mut self, page: &str, answer: impl Fn(&Value) -> Option<Value>) -> String {
        let rest = page.strip_prefix("/if/flow/").unwrap();
        let (slug, query) = rest.split_once('/').unwrap();
        let query = query.strip_prefix('?').unwrap_or("");
        let url = format!(
            "/api/v3/flows/executor/{slug}/?query={}",
            form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        );
        let mut r = self.get(&url).await;
        for _ in 0..10 {
            let c = &r.body;
            if c["component"] == "xak-flow-redirect" {
                return c["to"].as_str().unwrap().to_owned();
            }
            let body = answer(c).unwrap_or_else(|| panic!("unexpected challenge {c}"));
            let rb = self.http.post(self.absolute(&url)).json(&body);
            r = self.send(rb).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        panic!("the flow did not finish: {:?}", r.body);
    }

    /// Follows redirects (running flows on the way) until one leaves the server.
    async fn authorize(&mut self, url: &str, answer: &impl Fn(&Value) -> Option<Value>) -> Resp {
        let mut to = url.to_owned();
        for _ in 0..10 {
            if to.starts_with("/if/flow/") {
                to = self.run_flow(&to, answer).await;
                continue;
            }
            if !to.starts_with('/') && !to.starts_with(&self.base) {
                return Resp {
                    status: StatusCode::FOUND,
                    location: Some(to),
                    body: Value::Null,
                };
            }
            let r = self.get(&to).await;
            match (&r.status, &r.location) {
                (&StatusCode::FOUND | &StatusCode::SEE_OTHER, Some(loc)) => to = loc.clone(),
                _ => return r,
            }
        }
        panic!("too many redirects");
    }
}

/// Answers the login and consent challenges as the admin.
fn admin_answers(c: &Value) -> Option<Value> {
    match c["component"].as_str()? {
        "ak-stage-identification" => {
            Some(json!({"component": "ak-stage-identification", "uid_field": "admin"}))
        }
        "ak-stage-password" => {
            Some(json!({"component": "ak-stage-password", "password": PASSWORD}))
        }
        "ak-stage-consent" => Some(json!({"component": "ak-stage-consent", "token": c["token"]})),
        _ => None,
    }
}

fn params(location: &str) -> BTreeMap<String, String> {
    let (_, rest) = location
        .split_once(['?', '#'])
        .unwrap_or_else(|| panic!("no parameters in {location}"));
    form_urlencoded::parse(rest.as_bytes())
        .into_owned()
        .collect()
}

struct Setup {
    app: TestApp,
    client_id: String,
    client_secret: String,
    provider: i64,
    issuer: String,
}

impl Setup {
    /// GET `path` of the API as the admin; the JSON answer.
    async fn get_json(&self, path: &str) -> Value {
        self.app
            .request(reqwest::Method::GET, path, Some(&self.app.admin_token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `login` events recorded with `method` (`token`, `jwt`, ...), newest first.
    async fn logins_by(&self, method: &str) -> Vec<Value> {
        let events = self
            .get_json("/api/v3/events/events/?action=login&page_size=100")
            .await;
        events["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["context"]["method"] == method)
            .cloned()
            .collect()
    }

    /// PATCHes this provider's settings as the admin; the status.
    async fn patch_provider(&self, body: Value) -> StatusCode {
        self.app
            .request(
                reqwest::Method::PATCH,
                &format!("/api/v3/providers/oauth2/{}/", self.provider),
                Some(&self.app.admin_token),
            )
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Another confidential client `name` (implicit consent, redirect URI [`REDIRECT`], no
    /// scope mappings) with `extra` settings, and its application `slug`; the provider as the
    /// API answers it.
    async fn add_client(&self, name: &str, slug: &str, extra: Value) -> Value {
        let api = |m: reqwest::Method, p: &str| self.app.request(m, p, Some(&self.app.admin_token));
        let flow = |slug: &str| {
            let req = api(
                reqwest::Method::GET,
                &format!("/api/v3/flows/instances/{slug}/"),
            );
            async move { req.send().await.unwrap().json::<Value>().await.unwrap()["pk"].clone() }
        };
        let mut body = json!({
            "name": name,
            "authorization_flow": flow("default-provider-authorization-implicit-consent").await,
            "invalidation_flow": flow("default-provider-invalidation-flow").await,
            "redirect_uris": [{"matching_mode": "strict", "url": REDIRECT}],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = api(reqwest::Method::POST, "/api/v3/providers/oauth2/")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let provider: Value = r.json().await.unwrap();
        let r = api(reqwest::Method::POST, "/api/v3/core/applications/")
            .json(&json!({"name": name, "slug": slug, "provider": provider["pk"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        provider
    }
}

/// The built-ins, the admin's password and email, an ECDSA key, a provider with the default
/// scopes and `flow` as its authorization flow, and an application for it.
async fn setup(b: Backend, flow: &str) -> Setup {
    setup_with_clock(b, flow, std::sync::Arc::new(portcullis_core::SystemClock)).await
}

async fn setup_with_clock(
    b: Backend,
    flow: &str,
    clock: std::sync::Arc<dyn portcullis_core::Clock>,
) -> Setup {
    let app = TestApp::spawn_with_clock(b, clock).await;
    app.apply_builtins().await;
    let hash = app.state.hasher.hash(PASSWORD.to_owned()).await.unwrap();
    let system = portcullis_core::Actor::system();
    app.state
        .store
        .set_password(app.admin_pk, Some(hash), &system)
        .await
        .unwrap();
    let api = |m: reqwest::Method, p: &str| app.request(m, p, Some(&app.admin_token));
    let r: Value = api(
        reqwest::Method::PATCH,
        &format!("/api/v3/core/users/{}/", app.admin_pk),
    )
    .json(&json!({"email": "admin@example.com", "name": "Ada Admin"}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(r["email"], "admin@example.com");
    let key: Value = api(
        reqwest::Method::POST,
        "/api/v3/crypto/certificatekeypairs/generate/",
    )
    .json(&json!({"common_name": "oidc", "validity_days": 30, "alg": "ecdsa"}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let flow_pk = |slug: &str| {
        let req = api(
            reqwest::Method::GET,
            &format!("/api/v3/flows/instances/{slug}/"),
        );
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["pk"].clone() }
    };
    let scopes: Value = api(
        reqwest::Method::GET,
        "/api/v3/propertymappings/provider/scope/?managed__isnull=false",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mappings: Vec<Value> = scopes["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pk"].clone())
        .collect();
    let provider: Value = api(reqwest::Method::POST, "/api/v3/providers/oauth2/")
        .json(&json!({
            "name": "RP",
            "authorization_flow": flow_pk(flow).await,
            "invalidation_flow": flow_pk("default-provider-invalidation-flow").await,
            "redirect_uris": [{"matching_mode": "strict", "url": REDIRECT}],
            "signing_key": key["pk"],
            "property_mappings": mappings,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = api(reqwest::Method::POST, "/api/v3/core/applications/")
        .json(&json!({"name": "RP", "slug": "rp", "provider": provider["pk"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let issuer = format!("{}/application/o/rp/", app.url);
    Setup {
        client_id: provider["client_id"].as_str().unwrap().to_owned(),
        client_secret: provider["client_secret"].as_str().unwrap().to_owned(),
        provider: provider["pk"].as_i64().unwrap(),
        issuer,
        app,
    }
}

async fn rp(
    s: &Setup,
) -> (
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    CoreProviderMetadata,
) {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.issuer.clone()).unwrap(), &rp_http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(s.client_id.clone()),
        Some(ClientSecret::new(s.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    (client, metadata)
}

async fn code_flow_with_pkce_refresh_and_userinfo(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let (client, metadata) = rp(&s).await;
    assert_eq!(metadata.issuer().as_str(), s.issuer);

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new(&s.app);
    let r = browser.authorize(url.as_str(), &admin_answers).await;
    let location = r
        .location
        .unwrap_or_else(|| panic!("no redirect: {:?}", r.body));
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let p = params(&location);
    assert_eq!(p["state"], *state.secret());
    assert_eq!(p["iss"], s.issuer);
    let code = p["code"].clone();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await
        .unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("admin@example.com")
    );
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("admin")
    );
    assert_eq!(claims.issuer().as_str(), s.issuer);
    assert!(claims.auth_time().is_some());
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(amr, ["pwd"], "a password login");
    // at_hash binds the access token to the ID token.
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    let scopes: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(scopes.contains(&"offline_access".to_owned()), "{scopes:?}");

    // userinfo, as the RP calls it.
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&rp_http)
        .await
        .unwrap();
    assert_eq!(info.email().map(|e| e.as_str()), Some("admin@example.com"));
    assert_eq!(info.subject(), claims.subject());

    // The code is single use: a second redemption fails and revokes what the first issued.
    let again = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&rp_http)
        .await;
    assert!(again.is_err());
    let revoked = reqwest::Client::new()
        .get(format!("{}/application/o/userinfo/", s.app.url))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let refresh = tokens.refresh_token().unwrap().clone();
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .unwrap()
            .request_async(&rp_http)
            .await
            .is_err(),
        "the refresh token of a replayed code's family still works"
    );
    let events = s
        .app
        .state
        .store
        .list_events(
            &portcullis_store::EventFilter {
                action: Some("suspicious_request".into()),
                ..Default::default()
            },
            &portcullis_store::ListQuery {
                page: portcullis_core::PageRequest {
                    page: 1,
                    page_size: 10,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.count, 1);
    // Each authorization is in the audit log: the user, the application, the client's address.
    let authorized = s
        .get_json("/api/v3/events/events/?action=authorize_application")
        .await;
    let first = &authorized["results"][0];
    assert_eq!(first["user"]["username"], "admin", "{authorized}");
    assert_eq!(first["client_ip"], "127.0.0.1", "{authorized}");
    assert_eq!(
        first["context"]["authorized_application"]["name"], "RP",
        "{authorized}"
    );

    // A fresh authorization: refresh rotates, and a rotated token replayed revokes its family.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    // Logged in already: straight through to the client.
    let r = browser.authorize(url.as_str(), &|_| None).await;
    let code = params(&r.location.unwrap())["code"].clone();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await
        .unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(
            &client
                .id_token_verifier()
                .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]),
            &nonce,
        )
        .unwrap();
    let first = tokens.refresh_token().unwrap().clone();
    let refreshed = client
        .exchange_refresh_token(&first)
        .unwrap()
        .request_async(&rp_http)
        .await
        .unwrap();
    let second = refreshed.refresh_token().unwrap().clone();
    assert_ne!(first.secret(), second.secret());
    assert!(refreshed.id_token().is_some());
    // A refresh may narrow the scope; the next refresh still has the grant's whole scope.
    let narrowed = client
        .exchange_refresh_token(&second)
        .unwrap()
        .add_scope(Scope::new("openid".into()))
        .request_async(&rp_http)
        .await
        .unwrap();
    let scopes = |t: &openidconnect::core::CoreTokenResponse| -> Vec<String> {
        t.scopes().unwrap().iter().map(|s| s.to_string()).collect()
    };
    assert_eq!(scopes(&narrowed), ["openid"]);
    let third = narrowed
        .refresh_token()
        .expect("narrowing keeps the refresh token")
        .clone();
    let widened = client
        .exchange_refresh_token(&third)
        .unwrap()
        .request_async(&rp_http)
        .await
        .unwrap();
    assert!(scopes(&widened).contains(&"offline_access".to_owned()));
    let fourth = widened.refresh_token().unwrap().clone();
    // Asking for more than was granted: invalid_scope.
    assert!(
        client
            .exchange_refresh_token(&fourth)
            .unwrap()
            .add_scope(Scope::new("email".into()))
            .request_async(&rp_http)
            .await
            .is_err()
    );
    // Replaying the rotated token: refused, and the newest one dies with it.
    for t in [&first, &fourth] {
        assert!(
            client
                .exchange_refresh_token(t)
                .unwrap()
                .request_async(&rp_http)
                .await
                .is_err()
        );
    }
    let _ = RefreshToken::new(String::new());
}

/// POSTs a token request by hand and returns (status, body).
async fn token_request(
    s: &Setup,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut rb = reqwest::Client::new()
        .post(format!("{}/application/o/token/", s.app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
    if let Some((u, p)) = basic {
        rb = rb.basic_auth(u, Some(p));
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, read without checking it (the tests that check signatures do so with
/// the RP or jsonwebtoken).
fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap()
}

/// The admin's new token with this intent, made over the API; its key.
async fn new_token(s: &Setup, identifier: &str, intent: &str) -> String {
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let r = api(reqwest::Method::POST, "/api/v3/core/tokens/")
        .json(&json!({"identifier": identifier, "intent": intent, "expiring": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    api(
        reqwest::Method::GET,
        &format!("/api/v3/core/tokens/{identifier}/view_key/"),
    )
    .send()
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Redeems `code` (issued for [`REDIRECT`]) as the setup's client: the status and the answer.
async fn redeem_code(s: &Setup, code: &str) -> (StatusCode, Value) {
    token_request(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        Some((&s.client_id, &s.client_secret)),
    )
    .await
}

/// Redeems the code an authorization response carried; the token response.
async fn redeem(s: &Setup, r: Resp) -> Value {
    let code = params(&r.location.unwrap())["code"].clone();
    let (status, v) = redeem_code(s, &code).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// One code through the browser, for the negative cases.
async fn fresh_code(s: &Setup, browser: &mut Browser, extra: &str) -> String {
    let url = format!(
        "{}/application/o/authorize/?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=st{extra}",
        s.app.url,
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = browser.authorize(&url, &admin_answers).await;
    params(&r.location.unwrap())["code"].clone()
}

async fn refusals_issue_nothing(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let mut browser = Browser::new(&s.app);
    let redirect = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let authorize = |q: &str| format!("{}/application/o/authorize/?{q}", s.app.url);

    // Logged out with prompt=none: login_required, sent to the client.
    let r = browser
        .get(&authorize(&format!(
            "client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&prompt=none&state=z",
            s.client_id
        )))
        .await;
    let p = params(r.location.as_deref().unwrap());
    assert_eq!(p["error"], "login_required");
    assert_eq!(p["state"], "z");

    // Logged out with login_hint: the login page is told, and its identification stage fills
    // the name in.
    let r = browser
        .get(&authorize(&format!(
            "client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&login_hint=ada%40example.com&state=z",
            s.client_id
        )))
        .await;
    let to = r.location.unwrap();
    let (path, query) = to.split_once('?').unwrap();
    let slug = path.trim_start_matches("/if/flow/").trim_end_matches('/');
    let page = form_urlencoded::parse(query.as_bytes()).collect::<BTreeMap<_, _>>();
    assert_eq!(page["login_hint"], "ada@example.com", "{to}");
    let c = browser
        .get(&format!(
            "/api/v3/flows/executor/{slug}/?query={}",
            form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        c.body["component"], "ak-stage-identification",
        "{:?}",
        c.body
    );
    assert_eq!(c.body["pending_user_identifier"], "ada@example.com");

    // An unregistered redirect URI or unknown client: an error page, never a redirect.
    for q in [
        format!(
            "client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code",
            s.client_id
        ),
        format!("client_id=nobody&redirect_uri={redirect}&response_type=code"),
        format!(
            "client_id={}&redirect_uri={redirect}&response_type=code&state={}",
            s.client_id,
            "x".repeat(5000)
        ),
    ] {
        let r = browser.get(&authorize(&q)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.location.is_none(), "{q}");
    }

    let code = fresh_code(&s, &mut browser, "").await;
    let id = s.client_id.as_str();
    let secret = s.client_secret.as_str();
    // Wrong secret; another client's credentials; no client at all.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((id, "wrong")),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        None,
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // A verifier for a code issued without a challenge (a downgrade), and a different
    // redirect_uri: invalid_grant, and the code still unused.
    for form in [
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "a-verifier-that-is-long-enough-to-satisfy-rfc-7636-rules",
            ),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://rp.example/other"),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", REDIRECT),
        ],
        vec![
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", PASSWORD),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code", code.as_str()),
        ],
    ] {
        let (st, body) = token_request(&s, &form, Some((id, secret))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert!(
            ["invalid_grant", "unsupported_grant_type", "invalid_request"]
                .contains(&body["error"].as_str().unwrap()),
            "{form:?}: {body}"
        );
        assert!(body.get("access_token").is_none());
    }
    // The code still works once, then never again.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((id, secret)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body["id_token"].is_string());
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let (st, _) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((id, secret)),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A tampered access token, and one signed with alg none.
    let at = body["access_token"].as_str().unwrap().to_owned();
    let mut parts: Vec<&str> = at.split('.').collect();
    let forged = base64_url(br#"{"alg":"none","typ":"at+jwt"}"#);
    parts[0] = &forged;
    let none_token = format!("{}.{}.", parts[0], parts[1]);
    for bad in [format!("{at}x"), none_token, "garbage".to_owned()] {
        let r = reqwest::Client::new()
            .get(format!("{}/application/o/userinfo/", s.app.url))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(r.headers().get("www-authenticate").is_some());
    }

    // prompt=none while logged in, with a flow that asks nothing: straight to a code.
    let r = browser
        .authorize(
            &authorize(&format!(
                "client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&prompt=none&state=pn",
                s.client_id
            )),
            &|_| None,
        )
        .await;
    let p = params(r.location.as_deref().unwrap());
    assert!(p.contains_key("code"), "{p:?}");
    assert_eq!(p["state"], "pn");

    // PKCE: a code issued with a challenge needs the right verifier; a missing or wrong one is
    // invalid_grant and does not burn the code.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let code = fresh_code(
        &s,
        &mut browser,
        &format!(
            "p&code_challenge={}&code_challenge_method=S256",
            challenge.as_str()
        ),
    )
    .await;
    let wrong = PkceCodeVerifier::new("w".repeat(43));
    for v in [None, Some(wrong.secret().as_str()), Some("short")] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = v {
            form.push(("code_verifier", v));
        }
        let (st, body) = token_request(&s, &form, Some((id, secret))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v:?}: {body}");
        assert!(
            ["invalid_grant", "invalid_request"].contains(&body["error"].as_str().unwrap()),
            "{v:?}: {body}"
        );
        assert!(body.get("access_token").is_none());
    }
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.secret()),
        ],
        Some((id, secret)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // The code's lifetime is the provider's access_code_validity (a minute).
    let code = fresh_code(&s, &mut browser, "2").await;
    let hash = portcullis_crypto::sha256_hex(code.as_bytes());
    let grant = s
        .app
        .state
        .store
        .find_oauth_grant(portcullis_core::OAuthGrantKind::Code, &hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.expires - grant.created, chrono::Duration::minutes(1));
    assert_eq!(i64::from(grant.provider), s.provider);
    assert!(!grant.used);
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Explicit consent: the consent stage asks once, and the code arrives after it.
async fn explicit_consent_asks_then_remembers(b: Backend) {
    let s = setup(b, "default-provider-authorization-explicit-consent").await;
    let mut browser = Browser::new(&s.app);
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let answers = |c: &Value| {
        if c["component"] == "ak-stage-consent" {
            asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let perms: Vec<&str> = c["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap())
                .collect();
            assert!(perms.contains(&"email"), "{c}");
        }
        admin_answers(c)
    };
    let url = format!(
        "{}/application/o/authorize/?client_id={}&redirect_uri={}&response_type=code&scope=openid%20email&state=s",
        s.app.url,
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = browser.authorize(&url, &answers).await;
    assert!(params(&r.location.unwrap()).contains_key("code"));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The fulfil URL cannot be replayed.
    let r = browser
        .get("/application/o/authorize/fulfil/?id=guess")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // prompt=none while the flow would ask for consent: consent_required, at the client.
    let r = browser.get(&format!("{url}&prompt=none")).await;
    let p = params(r.location.as_deref().unwrap());
    assert_eq!(p["error"], "consent_required");
    assert_eq!(p["state"], "s");
    assert!(!p.contains_key("code"));
}

/// The hidden inputs of a form_post page.
fn form_post_fields(html: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for input in html.split("<input ").skip(1) {
        let attr = |name: &str| {
            let start = input.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let end = start + input[start..].find('"').unwrap();
            input[start..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#x27;", "'")
                .replace("&amp;", "&")
        };
        out.insert(attr("name"), attr("value"));
    }
    out
}

/// Implicit (`id_token token`, fragment) and hybrid (`code id_token`, form_post), verified by
/// the relying party: signature, nonce, at_hash and c_hash.
async fn implicit_and_hybrid_with_form_post(b: Backend) {
    use openidconnect::core::{CoreIdToken, CoreResponseType};
    use openidconnect::{AccessToken, AuthorizationCodeHash};
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let (client, _) = rp(&s).await;
    let verifier = || {
        client
            .id_token_verifier()
            .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256])
    };
    let mut browser = Browser::new(&s.app);

    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::Implicit(true),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let r = browser.authorize(url.as_str(), &admin_answers).await;
    let location = r.location.unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}#")), "{location}");
    let p = params(&location);
    assert_eq!(p["state"], *state.secret());
    assert_eq!(p["token_type"], "Bearer");
    let id: CoreIdToken = p["id_token"].parse().unwrap();
    let claims = id.claims(&verifier(), &nonce).unwrap();
    let at = AccessToken::new(p["access_token"].clone());
    let expected = AccessTokenHash::from_token(
        &at,
        id.signing_alg().unwrap(),
        id.signing_key(&verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    assert!(!p.contains_key("code"));

    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::Hybrid(vec![CoreResponseType::Code, CoreResponseType::IdToken]),
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_extra_param("response_mode", "form_post")
        .url();
    let r = browser.authorize(url.as_str(), &|_| None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let html = r.body.as_str().unwrap().to_owned();
    assert!(html.contains(&format!("action=\"{REDIRECT}\"")), "{html}");
    let f = form_post_fields(&html);
    assert_eq!(f["state"], *state.secret());
    let id: CoreIdToken = f["id_token"].parse().unwrap();
    let claims = id.claims(&verifier(), &nonce).unwrap();
    let code = AuthorizationCode::new(f["code"].clone());
    let c_hash = AuthorizationCodeHash::from_code(
        &code,
        id.signing_alg().unwrap(),
        id.signing_key(&verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.code_hash(), Some(&c_hash));
    // The hybrid code redeems at the token endpoint.
    let tokens = client
        .exchange_code(code)
        .unwrap()
        .request_async(&rp_http)
        .await
        .unwrap();
    assert!(tokens.id_token().is_some());
    // Implicit without a nonce: refused, at the client's redirect URI.
    let q = format!(
        "/application/o/authorize/?client_id={}&redirect_uri={}&response_type=id_token&scope=openid&state=q",
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = browser.get(&q).await;
    let p = params(r.location.as_deref().unwrap());
    assert_eq!(p["error"], "invalid_request");
}

/// client_credentials through the RP, then introspection and revocation (RFC 7662, 7009).
async fn client_credentials_introspection_and_revocation(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let (client, _) = rp(&s).await;
    let tokens = client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .request_async(&rp_http)
        .await
        .unwrap();
    assert!(tokens.refresh_token().is_none());
    let at = tokens.access_token().secret().clone();
    let form = |pairs: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let call = |path: &str, body: String, creds: (&str, &str)| {
        reqwest::Client::new()
            .post(format!("{}/application/o/{path}/", s.app.url))
            .basic_auth(creds.0, Some(creds.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let me = (s.client_id.as_str(), s.client_secret.as_str());
    let r: Value = call("introspect", form(&[("token", &at)]), me)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true, "{r}");
    assert_eq!(r["username"], "ak-RP-client_credentials");
    assert_eq!(r["client_id"], s.client_id.as_str());
    assert_eq!(r["token_type"], "access_token");
    // The service account exists once, whatever the number of grants.
    client
        .exchange_client_credentials()
        .unwrap()
        .request_async(&rp_http)
        .await
        .unwrap();
    let u = s
        .app
        .state
        .store
        .find_user_by_username("ak-RP-client_credentials")
        .await
        .unwrap();
    assert_eq!(
        u.user.user_type,
        portcullis_core::UserType::InternalServiceAccount
    );
    // Wrong credentials: 401; garbage tokens: inactive.
    let r = call("introspect", form(&[("token", &at)]), (me.0, "nope"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for junk in ["", "x", "a.b.c"] {
        let r = call("introspect", form(&[("token", junk)]), me)
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        if junk.is_empty() {
            assert_eq!(status, StatusCode::BAD_REQUEST);
        } else {
            assert_eq!(v, json!({"active": false}), "{junk}");
        }
    }
    // Revocation: 200, then inactive and refused at userinfo; revoking again is still 200.
    for _ in 0..2 {
        let r = call("revoke", form(&[("token", &at)]), me).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r: Value = call("introspect", form(&[("token", &at)]), me)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"active": false}));
    let r = reqwest::Client::new()
        .get(format!("{}/application/o/userinfo/", s.app.url))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Clients and service accounts are cached per process; an admin's change counts at once.
    let grant = |secret: &str| {
        call(
            "token",
            form(&[("grant_type", "client_credentials"), ("scope", "profile")]),
            (me.0, secret),
        )
    };
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    assert_eq!(
        s.patch_provider(json!({"client_secret": "rotated-secret-0123456789"}))
            .await,
        StatusCode::OK
    );
    let r = grant(&s.client_secret).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old secret is refused"
    );
    let r = grant("rotated-secret-0123456789").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(
        reqwest::Method::PATCH,
        &format!("/api/v3/core/users/{}/", u.user.pk),
    )
    .json(&json!({"is_active": false}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = grant("rotated-secret-0123456789").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a deactivated account is refused"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client", "{v}");
}

/// The password grant (and client_credentials naming a user) takes a user's app password, never
/// their password, checks the application's policies for that user, and gives that user's
/// tokens; anything else is invalid_grant and issues nothing.
async fn password_grant_with_app_passwords(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let app_password = new_token(&s, "grafana", "app_password").await;
    let api_key = new_token(&s, "not-an-app-password", "api").await;
    // An expired app password (made in the store: the API refuses dates in the past).
    let expired_key = "expired-app-password-0123456789abcdef".to_owned();
    s.app
        .state
        .store
        .create_token(
            portcullis_core::NewToken {
                identifier: "expired".into(),
                intent: portcullis_core::TokenIntent::AppPassword,
                user_pk: s.app.admin_pk,
                description: String::new(),
                expires: Some(
                    portcullis_core::Clock::now(&portcullis_core::SystemClock)
                        - chrono::Duration::hours(1),
                ),
                expiring: true,
                managed: None,
                key: expired_key.clone(),
            },
            portcullis_crypto::sha256_hex(expired_key.as_bytes()),
            s.app.state.secrets.encrypt_str(&expired_key).unwrap(),
            &portcullis_core::Actor::system(),
        )
        .await
        .unwrap();
    let token = |pairs: Vec<(&str, &str)>| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        reqwest::Client::new()
            .post(format!("{}/application/o/token/", s.app.url))
            .basic_auth(&s.client_id, Some(&s.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let grants_before = s
        .app
        .state
        .store
        .list_oauth_grants_of_provider(s.provider as i32)
        .await
        .unwrap()
        .len();
    for (grant_type, username, password, error) in [
        ("password", "admin", "wrong", "invalid_grant"),
        ("password", "admin", PASSWORD, "invalid_grant"),
        ("password", "admin", api_key.as_str(), "invalid_grant"),
        ("password", "admin", expired_key.as_str(), "invalid_grant"),
        (
            "password",
            "someone-else",
            app_password.as_str(),
            "invalid_grant",
        ),
        (
            "client_credentials",
            "someone-else",
            app_password.as_str(),
            "invalid_grant",
        ),
    ] {
        let r = token(vec![
            ("grant_type", grant_type),
            ("username", username),
            ("password", password),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{username}/{password}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], error, "{username}/{password}: {v}");
    }
    let r = token(vec![
        ("grant_type", "password"),
        ("password", &app_password),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    assert_eq!(
        s.app
            .state
            .store
            .list_oauth_grants_of_provider(s.provider as i32)
            .await
            .unwrap()
            .len(),
        grants_before,
        "nothing issued"
    );

    // Both spellings give the user's own tokens.
    for grant_type in ["password", "client_credentials"] {
        let r = token(vec![
            ("grant_type", grant_type),
            ("username", "admin"),
            ("password", &app_password),
            ("scope", "openid profile"),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{grant_type}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["id_token"].is_string() && v.get("refresh_token").is_none(),
            "{v}"
        );
        let info: Value = reqwest::Client::new()
            .get(format!("{}/application/o/userinfo/", s.app.url))
            .bearer_auth(v["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["preferred_username"], "admin", "{info}");
    }
    let by_token = s.logins_by("token").await;
    assert_eq!(by_token.len(), 2, "{by_token:?}");
    assert_eq!(
        by_token[0]["context"]["method_args"]["identifier"],
        "grafana"
    );
    let logins = s.get_json("/api/v3/events/events/?action=login").await;
    assert!(!logins.to_string().contains(&app_password));

    // The application's policies apply to the user.
    let policy: Value = api(reqwest::Method::POST, "/api/v3/policies/expression/")
        .json(&json!({"name": "nobody", "expression": "return False"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app: Value = s.get_json("/api/v3/core/applications/rp/").await;
    let r = api(reqwest::Method::POST, "/api/v3/policies/bindings/")
        .json(&json!({"policy": policy["pk"], "target": app["pk"], "order": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = token(vec![
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", &app_password),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

/// JWT federation between providers: an access token of a provider listed in the client's
/// `jwt_federation_providers`, as the client_assertion (or the client_secret) of a
/// client_credentials request, gets this client's tokens for the same user, within the
/// application's policies; anything else is refused and issues nothing.
async fn jwt_federation_between_providers(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let upstream = s.add_client("Upstream", "upstream", json!({})).await;
    let up = (
        upstream["client_id"].as_str().unwrap().to_owned(),
        upstream["client_secret"].as_str().unwrap().to_owned(),
    );
    let upstream_token = || async {
        let (st, body) = token_request(
            &s,
            &[("grant_type", "client_credentials")],
            Some((&up.0, &up.1)),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };
    let input = upstream_token().await;
    let federated = |jwt: String, grant: &'static str| {
        let s = &s;
        async move {
            token_request(
                s,
                &[
                    ("grant_type", grant),
                    ("client_id", &s.client_id),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                    ("scope", "openid profile"),
                ],
                None,
            )
            .await
        }
    };
    let issued = || async {
        s.app
            .state
            .store
            .list_oauth_grants_of_provider(s.provider as i32)
            .await
            .unwrap()
            .len()
    };
    // Not federated yet: the token is no credential of this client.
    let (st, body) = federated(input.clone(), "client_credentials").await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(issued().await, 0);

    assert_eq!(
        s.patch_provider(json!({"jwt_federation_providers": [upstream["pk"]]}))
            .await,
        StatusCode::OK
    );
    let (st, body) = federated(input.clone(), "client_credentials").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["iss"], s.issuer.as_str());
    assert_eq!(
        claims["preferred_username"],
        "ak-Upstream-client_credentials"
    );
    assert!(body.get("refresh_token").is_none());
    // The same token as the client_secret (for clients that cannot send an assertion).
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &s.client_id),
            ("client_secret", &input),
        ],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let by_jwt = s.logins_by("jwt").await;
    assert_eq!(by_jwt.len(), 2, "{by_jwt:?}");
    assert_eq!(
        by_jwt[0]["context"]["method_args"]["provider"]["name"],
        "Upstream"
    );
    let before = issued().await;

    // Refused, nothing issued: a tampered token, this client's own token (not a federated
    // provider's), the federated token for another grant.
    let tampered = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (head, sig) = input.rsplit_once('.').unwrap();
        let mut sig = b64.decode(sig).unwrap();
        sig[10] ^= 0x40;
        format!("{head}.{}", b64.encode(sig))
    };
    assert_eq!(jwt_claims(&input)["azp"], up.0.as_str());
    let (st, mine) = token_request(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{mine}");
    let before = before + 1;
    for (jwt, grant) in [
        (tampered, "client_credentials"),
        (
            mine["access_token"].as_str().unwrap().to_owned(),
            "client_credentials",
        ),
        (input.clone(), "authorization_code"),
        ("a.b.c".to_owned(), "client_credentials"),
    ] {
        let (st, body) = federated(jwt, grant).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{grant}: {body}"
        );
    }
    assert_eq!(issued().await, before);

    // The application's policies apply to the token's user, and see the input token's claims
    // as `request.context["oauth_jwt"]` (authentik's name) and the client's address.
    let policy: Value = api(reqwest::Method::POST, "/api/v3/policies/expression/")
        .json(&json!({"name": "from upstream", "expression": format!(
            "return request.context.get('oauth_jwt', {{}}).get('azp') == '{}' and ak_client_ip == '127.0.0.1'", up.0)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app: Value = s.get_json("/api/v3/core/applications/rp/").await;
    let binding: Value = api(reqwest::Method::POST, "/api/v3/policies/bindings/")
        .json(&json!({"policy": policy["pk"], "target": app["pk"], "order": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (st, body) = federated(input.clone(), "client_credentials").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let before = before + 1;
    let r = api(
        reqwest::Method::PATCH,
        &format!(
            "/api/v3/policies/expression/{}/",
            policy["pk"].as_str().unwrap()
        ),
    )
    .json(&json!({"expression": "return False"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, body) = federated(input.clone(), "client_credentials").await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
    let r = api(
        reqwest::Method::DELETE,
        &format!(
            "/api/v3/policies/bindings/{}/",
            binding["pk"].as_str().unwrap()
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A revoked input token is no credential any more.
    let r = reqwest::Client::new()
        .post(format!("{}/application/o/revoke/", s.app.url))
        .basic_auth(&up.0, Some(&up.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &input)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, body) = federated(input, "client_credentials").await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(issued().await, before);
    // A fresh one works again, also sent as authentik allows: the assertion type with the JWT
    // in client_secret.
    let (st, body) = federated(upstream_token().await, "client_credentials").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &s.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_secret", &upstream_token().await),
        ],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // A provider that is not listed: its tokens are no credential.
    let stranger = s.add_client("Stranger", "stranger", json!({})).await;
    let (st, body) = token_request(
        &s,
        &[("grant_type", "client_credentials")],
        Some((
            stranger["client_id"].as_str().unwrap(),
            stranger["client_secret"].as_str().unwrap(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = federated(
        body["access_token"].as_str().unwrap().to_owned(),
        "client_credentials",
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );

    // An expired input token is no credential, not even re-signed with a later `exp` by
    // someone who knows Upstream's secret (it signs with HS256): its stored expiry counts.
    let r = api(
        reqwest::Method::PATCH,
        &format!("/api/v3/providers/oauth2/{}/", upstream["pk"]),
    )
    .json(&json!({"access_token_validity": "seconds=1"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let brief = upstream_token().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut claims = jwt_claims(&brief);
    claims["exp"] =
        json!(portcullis_core::Clock::now(&portcullis_core::SystemClock).timestamp() + 3600);
    let resigned = jsonwebtoken::encode(
        &jsonwebtoken::decode_header(&brief).unwrap(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(up.1.as_bytes()).unwrap(),
    )
    .unwrap();
    for jwt in [brief, resigned] {
        let (st, body) = federated(jwt, "client_credentials").await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{body}"
        );
    }
}

/// Pairwise subjects: the same user has one `sub` per sector (the redirect URIs' host, or a
/// sector_identifier_uri), stable across tokens; a provider without a sector is refused.
async fn pairwise_subjects_per_sector(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let provider: Value = s
        .get_json(&format!("/api/v3/providers/oauth2/{}/", s.provider))
        .await;
    let app_password = new_token(&s, "pw", "app_password").await;
    // A provider and application per case; the admin's `sub` through each.
    let mut n = 0;
    let mut sub_of = async |extra: Value| -> (u16, Value, Option<String>) {
        n += 1;
        let mut body = json!({
            "name": format!("P{n}"),
            "authorization_flow": provider["authorization_flow"],
            "invalidation_flow": provider["invalidation_flow"],
            "property_mappings": provider["property_mappings"],
            "sub_mode": "pairwise",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = api(reqwest::Method::POST, "/api/v3/providers/oauth2/")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let p: Value = r.json().await.unwrap();
        if status != 201 {
            return (status, p, None);
        }
        let slug = format!("p{n}");
        let r = api(reqwest::Method::POST, "/api/v3/core/applications/")
            .json(&json!({"name": slug, "slug": slug, "provider": p["pk"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let mut subs = Vec::new();
        for _ in 0..2 {
            let v: Value = reqwest::Client::new()
                .post(format!("{}/application/o/token/", s.app.url))
                .basic_auth(
                    p["client_id"].as_str().unwrap(),
                    p["client_secret"].as_str(),
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs([
                            ("grant_type", "password"),
                            ("username", "admin"),
                            ("password", app_password.as_str()),
                            ("scope", "openid"),
                        ])
                        .finish(),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let claims = jwt_claims(v["id_token"].as_str().unwrap());
            subs.push(claims["sub"].as_str().unwrap().to_owned());
        }
        assert_eq!(subs[0], subs[1], "stable");
        let discovery: Value = reqwest::get(format!(
            "{}/application/o/{slug}/.well-known/openid-configuration",
            s.app.url
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(discovery["subject_types_supported"], json!(["pairwise"]));
        (status, p, subs.pop())
    };
    let uris = |urls: &[&str]| {
        Value::Array(
            urls.iter()
                .map(|u| json!({"matching_mode": "strict", "url": u}))
                .collect(),
        )
    };
    let (_, _, a) = sub_of(
        json!({"redirect_uris": uris(&["https://a.example/cb", "https://A.example/other"])}),
    )
    .await;
    let (_, _, b) = sub_of(json!({"redirect_uris": uris(&["https://b.example/cb"])})).await;
    let (_, p, a2) = sub_of(json!({
        "redirect_uris": uris(&["https://b.example/cb", "https://c.example/cb"]),
        "sector_identifier_uri": "https://a.example/sector.json",
    }))
    .await;
    assert_eq!(p["sector_identifier_uri"], "https://a.example/sector.json");
    let (a, b, a2) = (a.unwrap(), b.unwrap(), a2.unwrap());
    assert_ne!(a, b, "two sectors, two subjects");
    assert_eq!(a, a2, "one sector, one subject");
    let hashed = portcullis_crypto::sha256_hex(
        format!("{}-{}", s.app.admin_pk, s.app.state.install_id).as_bytes(),
    );
    assert!(a != hashed && b != hashed, "not the public hashed id");

    // No sector: several hosts, or a regex entry, without a sector_identifier_uri.
    for extra in [
        json!({"redirect_uris": uris(&["https://a.example/cb", "https://b.example/cb"])}),
        json!({"redirect_uris": [{"matching_mode": "regex", "url": "https://a\\.example/.*"}]}),
        json!({"redirect_uris": []}),
        json!({"redirect_uris": [], "sector_identifier_uri": "not a url"}),
    ] {
        let (status, body, _) = sub_of(extra.clone()).await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert!(
            body.get("sub_mode").is_some() || body.get("sector_identifier_uri").is_some(),
            "{body}"
        );
    }
}

/// The `claims` request parameter (OIDC Core 5.5) asks for claims of granted scopes in the ID
/// token when the provider keeps them out of it; a claim of a scope not granted stays out.
async fn claims_parameter_selects_id_token_claims(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    assert_eq!(
        s.patch_provider(json!({"include_claims_in_id_token": false}))
            .await,
        StatusCode::OK
    );
    let mut browser = Browser::new(&s.app);
    let redirect = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let mut id_token_of = async |claims: Option<Value>| -> Value {
        let extra = claims.map_or_else(String::new, |c| {
            format!(
                "&claims={}",
                form_urlencoded::byte_serialize(c.to_string().as_bytes()).collect::<String>()
            )
        });
        let url = format!(
            "{}/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid%20email&state=st{extra}",
            s.app.url, s.client_id
        );
        let r = browser.authorize(&url, &admin_answers).await;
        jwt_claims(redeem(&s, r).await["id_token"].as_str().unwrap())
    };
    let plain = id_token_of(None).await;
    assert!(plain.get("email").is_none(), "{plain}");
    let asked = id_token_of(Some(json!({
        "id_token": {"email": {"essential": true}, "preferred_username": null},
        "userinfo": {"name": null},
    })))
    .await;
    assert_eq!(asked["email"], "admin@example.com", "{asked}");
    assert!(
        asked.get("preferred_username").is_none() && asked.get("name").is_none(),
        "the profile scope was not granted: {asked}"
    );
    // The user named by `sub`, and an essential acr the login has: tokens as usual.
    let sub = plain["sub"].as_str().unwrap().to_owned();
    let acr = plain["acr"].as_str().unwrap().to_owned();
    let named = id_token_of(Some(json!({
        "id_token": {"sub": {"value": sub}, "acr": {"essential": true, "values": ["mfa", acr]}},
    })))
    .await;
    assert_eq!(named["sub"], sub.as_str());
    // Another user, or an essential acr the login lacks: access_denied at the client, no code.
    for claims in [
        json!({"id_token": {"sub": {"value": "someone-else"}}}),
        json!({"id_token": {"acr": {"essential": true, "value": "mfa"}}}),
    ] {
        let url = format!(
            "{}/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=cl&claims={}",
            s.app.url,
            s.client_id,
            form_urlencoded::byte_serialize(claims.to_string().as_bytes()).collect::<String>()
        );
        let r = browser.authorize(&url, &admin_answers).await;
        let p = params(r.location.as_deref().unwrap());
        assert_eq!(p["error"], "access_denied", "{claims}");
        assert_eq!(p["state"], "cl");
        assert!(!p.contains_key("code"));
    }
}

/// id_token_hint (OIDC Core §3.1.2.1): a hint naming the logged-in user lets prompt=none
/// through; one naming another user is login_required with prompt=none, else a new login, after
/// which only that user gets tokens; a tampered hint or an access token is invalid_request.
async fn id_token_hint_names_the_user(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let bob: Value = api(reqwest::Method::POST, "/api/v3/core/users/")
        .json(&json!({"username": "bob", "name": "Bob"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = api(
        reqwest::Method::POST,
        &format!("/api/v3/core/users/{}/set_password/", bob["pk"]),
    )
    .json(&json!({"password": "bob-password-123"}))
    .send()
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let bob_answers = |c: &Value| match c["component"].as_str()? {
        "ak-stage-identification" => {
            Some(json!({"component": "ak-stage-identification", "uid_field": "bob"}))
        }
        "ak-stage-password" => {
            Some(json!({"component": "ak-stage-password", "password": "bob-password-123"}))
        }
        _ => None,
    };
    let redirect = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let url = |extra: &str| {
        format!(
            "/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=h{extra}",
            s.client_id
        )
    };
    let hint = |t: &str| format!("&id_token_hint={t}");
    // Each user's ID token, from their own browser; the admin's expires after a second (a hint
    // may have expired).
    assert_eq!(
        s.patch_provider(json!({"access_token_validity": "seconds=1"}))
            .await,
        StatusCode::OK
    );
    let mut admin = Browser::new(&s.app);
    let admin_tokens = redeem(&s, admin.authorize(&url(""), &admin_answers).await).await;
    let admin_id = admin_tokens["id_token"].as_str().unwrap().to_owned();
    let mut other = Browser::new(&s.app);
    let bob_id = redeem(&s, other.authorize(&url(""), &bob_answers).await).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_sub = jwt_claims(&bob_id)["sub"].as_str().unwrap().to_owned();

    assert_eq!(
        s.patch_provider(json!({"access_token_validity": "hours=1"}))
            .await,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // The admin's own (expired) hint: prompt=none goes through.
    let r = admin
        .authorize(&url(&format!("&prompt=none{}", hint(&admin_id))), &|_| None)
        .await;
    assert!(params(r.location.as_deref().unwrap()).contains_key("code"));
    // Bob's hint in the admin's browser: login_required with prompt=none.
    let r = admin
        .authorize(&url(&format!("&prompt=none{}", hint(&bob_id))), &|_| None)
        .await;
    assert_eq!(
        params(r.location.as_deref().unwrap())["error"],
        "login_required"
    );
    // Without prompt=none: a new login; as the admin again, no tokens; as Bob, Bob's.
    let r = admin.authorize(&url(&hint(&bob_id)), &admin_answers).await;
    assert_eq!(
        params(r.location.as_deref().unwrap())["error"],
        "access_denied"
    );
    let r = admin.authorize(&url(&hint(&bob_id)), &bob_answers).await;
    let tokens = redeem(&s, r).await;
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["sub"],
        bob_sub.as_str()
    );
    // No session and Bob's hint: one login; as the admin, no tokens.
    let mut fresh = Browser::new(&s.app);
    let logins = std::cell::Cell::new(0);
    let r = fresh
        .authorize(&url(&hint(&bob_id)), &|c: &Value| {
            if c["component"] == "ak-stage-identification" {
                logins.set(logins.get() + 1);
            }
            admin_answers(c)
        })
        .await;
    assert_eq!(logins.get(), 1);
    assert_eq!(
        params(r.location.as_deref().unwrap())["error"],
        "access_denied"
    );
    // Another client's ID token (same signing key, another issuer and audience).
    let provider = s
        .get_json(&format!("/api/v3/providers/oauth2/{}/", s.provider))
        .await;
    let other = s
        .add_client(
            "Other",
            "other",
            json!({"signing_key": provider["signing_key"], "property_mappings": provider["property_mappings"]}),
        )
        .await;
    let (st, other_tokens) = token_request(
        &s,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
        Some((
            other["client_id"].as_str().unwrap(),
            other["client_secret"].as_str().unwrap(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{other_tokens}");
    // Not an ID token of this client: invalid_request, said to the client.
    let (head, _) = bob_id.rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", base64_url(&[7u8; 64]));
    for bad in [
        tampered,
        admin_tokens["access_token"].as_str().unwrap().to_owned(),
        other_tokens["id_token"].as_str().unwrap().to_owned(),
        "garbage".to_owned(),
        format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none","typ":"JWT"}"#),
            base64_url(b"{}")
        ),
    ] {
        let r = admin.get(&url(&hint(&bad))).await;
        assert_eq!(
            params(r.location.as_deref().unwrap())["error"],
            "invalid_request"
        );
    }
    // Oversized: refused before anything else, on the error page.
    let r = admin.get(&url(&hint(&"a".repeat(20_000)))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location.is_none());
}

/// prompt=login and prompt=select_account ask for a new login once (then the code comes), also
/// when the prompt is inside a signed request object; max_age asks when the login is older.
async fn prompt_login_select_account_and_max_age_ask_to_log_in(b: Backend) {
    let clock = portcullis_core::FixedClock::new(portcullis_core::Clock::now(
        &portcullis_core::SystemClock,
    ));
    let s = setup_with_clock(
        b,
        "default-provider-authorization-implicit-consent",
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let mut browser = Browser::new(&s.app);
    let redirect = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let logins = std::cell::Cell::new(0);
    let counting = |c: &Value| {
        if c["component"] == "ak-stage-identification" {
            logins.set(logins.get() + 1);
        }
        admin_answers(c)
    };
    let object = |prompt: &str| {
        let t = portcullis_core::Clock::now(&clock).timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"iss": s.client_id, "aud": s.issuer, "exp": t + 300, "prompt": prompt}),
            &jsonwebtoken::EncodingKey::from_secret(s.client_secret.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    for (extra, expected) in [
        (String::new(), 1),
        (String::new(), 0),
        ("&prompt=login".to_owned(), 1),
        // The same request again asks again: a login satisfies one request once.
        ("&prompt=login".to_owned(), 1),
        (String::new(), 0),
        ("&max_age=0".to_owned(), 1),
        // Too long for the login page's `next`: the request waits in the session meanwhile.
        (format!("&prompt=login&nonce={}", "n".repeat(2100)), 1),
        ("&prompt=select_account".to_owned(), 1),
        ("&max_age=600".to_owned(), 0),
        (format!("&request={}", object("login")), 1),
        (format!("&request={}", object("consent")), 0),
    ] {
        logins.set(0);
        let url = format!(
            "/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=st{extra}",
            s.client_id
        );
        let r = browser.authorize(&url, &counting).await;
        assert_eq!(logins.get(), expected, "{extra}");
        assert!(redeem(&s, r).await["access_token"].is_string(), "{extra}");
    }
    // A resumed request the session does not hold (expired, or another browser's): a page.
    let r = browser
        .get("/application/o/authorize/?resume=unknown")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location.is_none());
    // Ten minutes on, a login older than max_age=300 is asked for again; max_age=3600 is not.
    clock.advance(chrono::Duration::seconds(600));
    for (extra, expected) in [("&max_age=300", 1), ("&max_age=3600", 0)] {
        logins.set(0);
        let url = format!(
            "/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=ma{extra}",
            s.client_id
        );
        let r = browser.authorize(&url, &counting).await;
        assert_eq!(logins.get(), expected, "{extra}");
        let tokens = redeem(&s, r).await;
        let auth_time = jwt_claims(tokens["id_token"].as_str().unwrap())["auth_time"]
            .as_i64()
            .unwrap();
        assert_eq!(
            auth_time,
            portcullis_core::Clock::now(&clock).timestamp(),
            "{extra}"
        );
    }
}

/// prompt=consent asks even through a flow that never would (authentik's in-memory consent
/// stage), every time, and remembers nothing.
async fn prompt_consent_always_asks(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let mut browser = Browser::new(&s.app);
    let redirect = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>();
    let asked = std::cell::Cell::new(0);
    let counting = |c: &Value| {
        if c["component"] == "ak-stage-consent" {
            asked.set(asked.get() + 1);
            assert!(c["permissions"].to_string().contains("email"), "{c}");
        }
        admin_answers(c)
    };
    for (prompt, consents) in [
        ("", 0),
        ("&prompt=consent", 1),
        ("&prompt=consent", 1),
        ("", 0),
    ] {
        asked.set(0);
        let url = format!(
            "/application/o/authorize/?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid%20email&state=st{prompt}",
            s.client_id
        );
        let r = browser.authorize(&url, &counting).await;
        assert_eq!(asked.get(), consents, "{prompt}");
        assert!(redeem(&s, r).await["access_token"].is_string());
    }
}

/// RP-initiated logout: only to a registered logout URI, with the state, after the
/// invalidation flow.
async fn end_session_returns_to_registered_uris_only(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    assert_eq!(s.patch_provider(json!({"redirect_uris": [
            {"matching_mode": "strict", "url": REDIRECT},
            {"matching_mode": "strict", "url": "https://rp.example/bye", "redirect_uri_type": "logout"},
        ]})).await, StatusCode::OK);
    let mut browser = Browser::new(&s.app);
    fresh_code(&s, &mut browser, "").await;
    let end = "/application/o/rp/end-session/";
    // Not registered (the authorization redirect URI is not a logout URI): an error page.
    for uri in ["https://evil.example/", REDIRECT] {
        let r = browser
            .get(&format!(
                "{end}?post_logout_redirect_uri={}",
                form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.location.is_none());
    }
    let r = browser
        .authorize(
            &format!("{end}?post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=s9"),
            &|_| None,
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("https://rp.example/bye?state=s9")
    );
}

/// A public client must use PKCE and authenticates with its client_id alone.
async fn public_clients_need_pkce(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    assert_eq!(
        s.patch_provider(json!({"client_type": "public"})).await,
        StatusCode::OK
    );
    let mut browser = Browser::new(&s.app);
    let base = format!(
        "/application/o/authorize/?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=p",
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    // Without PKCE: refused before any login.
    let r = browser.get(&base).await;
    assert_eq!(
        params(r.location.as_deref().unwrap())["error"],
        "invalid_request"
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let r = browser
        .authorize(
            &format!(
                "{base}&code_challenge={}&code_challenge_method=S256",
                challenge.as_str()
            ),
            &admin_answers,
        )
        .await;
    let code = params(&r.location.unwrap())["code"].clone();
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &s.client_id),
            ("code_verifier", verifier.secret()),
        ],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // Public clients may not use client_credentials.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &s.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

/// A test receiver of back-channel logout tokens: answers 200 and keeps each body.
async fn logout_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/logout",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Logging out of Portcullis sends the application a signed logout token (OIDC Back-Channel
/// Logout) that verifies against the provider's JWKS, and revokes what the session led to.
async fn backchannel_logout_token_reaches_the_application(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let (receiver, got) = logout_receiver().await;
    assert_eq!(
        s.patch_provider(json!({"logout_uri": receiver, "logout_method": "backchannel"}))
            .await,
        StatusCode::OK
    );
    let (client, _) = rp(&s).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new(&s.app);
    let r = browser.authorize(url.as_str(), &admin_answers).await;
    let code = params(&r.location.unwrap())["code"].clone();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await
        .unwrap();
    let id_claims = tokens
        .id_token()
        .unwrap()
        .claims(
            &client
                .id_token_verifier()
                .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]),
            &nonce,
        )
        .unwrap()
        .clone();
    let raw_id = jwt_claims(&tokens.id_token().unwrap().to_string());
    assert!(got.lock().unwrap().is_empty());

    // The person logs out of Portcullis.
    let r = browser.get("/flows/-/default/invalidation/").await;
    let to = browser
        .run_flow(r.location.as_deref().unwrap(), |_| None)
        .await;
    assert!(!to.is_empty());
    let mut body = None;
    for _ in 0..100 {
        if let Some(b) = got.lock().unwrap().first().cloned() {
            body = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = body.expect("no logout token arrived");
    let token: String = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // Verified independently: the provider's published JWKS, ES256, audience and issuer.
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}jwks/", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[s.client_id.as_str()]);
    validation.set_issuer(&[s.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], id_claims.subject().as_str());
    assert_eq!(claims["sid"], raw_id["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].is_string());

    // What the session led to is revoked.
    let r = reqwest::Client::new()
        .get(format!("{}/application/o/userinfo/", s.app.url))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&rp_http)
            .await
            .is_err()
    );
}

/// Front-channel logout (OIDC Front-Channel Logout 1.0): logging out of Portcullis shows the
/// application's logout URI, with `iss` and `sid` (the ID token's), for the browser to load in
/// an iframe, then the flow ends; a session that signed into nothing shows no such page, and
/// RP-initiated logout through the provider's invalidation flow (which ends only the
/// application's session, as authentik's default) shows none either.
async fn frontchannel_logout_pages_in_the_logout_flow(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    assert_eq!(s.patch_provider(json!({
            "logout_uri": "https://rp.example/fc?tenant=1",
            "logout_method": "frontchannel",
            "redirect_uris": [
                {"matching_mode": "strict", "url": REDIRECT},
                {"matching_mode": "strict", "url": "https://rp.example/bye", "redirect_uri_type": "logout"},
            ],
        })).await, StatusCode::OK);
    let meta: Value = reqwest::get(format!("{}.well-known/openid-configuration", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["frontchannel_logout_supported"], true);
    assert_eq!(meta["frontchannel_logout_session_supported"], true);

    let mut browser = Browser::new(&s.app);
    let code = fresh_code(&s, &mut browser, "").await;
    let (status, tokens) = redeem_code(&s, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // RP-initiated logout with authentik's default provider invalidation flow: back to the
    // application, the Portcullis session (and its front-channel clients) untouched.
    let end = "/application/o/rp/end-session/?post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=s1";
    let r = browser.authorize(end, &|_| None).await;
    assert_eq!(
        r.location.as_deref(),
        Some("https://rp.example/bye?state=s1")
    );

    // Logging out of Portcullis: the iframe page, then the end of the flow.
    let shown = std::sync::Mutex::new(Vec::new());
    let iframes = |c: &Value| {
        (c["component"] == "ak-provider-iframe-logout").then(|| {
            shown.lock().unwrap().push(c["logout_urls"].clone());
            json!({"component": "ak-provider-iframe-logout"})
        })
    };
    let r = browser.get("/flows/-/default/invalidation/").await;
    let to = browser
        .run_flow(r.location.as_deref().unwrap(), iframes)
        .await;
    assert!(!to.is_empty());
    let expected = format!(
        "https://rp.example/fc?tenant=1&iss={}&sid={sid}",
        form_urlencoded::byte_serialize(s.issuer.as_bytes()).collect::<String>()
    );
    assert_eq!(
        *shown.lock().unwrap(),
        vec![json!([{"url": expected, "provider_name": "RP", "binding": "redirect"}])]
    );
    // What the session led to is revoked.
    let r = reqwest::Client::new()
        .get(format!("{}/application/o/userinfo/", s.app.url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Logged in again without signing into the application: logging out shows no iframes.
    let r = browser.get("/flows/-/default/authentication/").await;
    browser
        .run_flow(r.location.as_deref().unwrap(), admin_answers)
        .await;
    let r = browser.get("/flows/-/default/invalidation/").await;
    browser
        .run_flow(r.location.as_deref().unwrap(), |_| None)
        .await;
    assert_eq!(shown.lock().unwrap().len(), 1);
}

/// The device authorization grant (RFC 8628) through the RP: pending until the person types
/// the code, logs in and consents; then tokens, once.
async fn device_code_flow(b: Backend) {
    use openidconnect::DeviceAuthorizationUrl;
    use openidconnect::core::CoreDeviceAuthorizationResponse;
    let s = setup(b, "default-provider-authorization-explicit-consent").await;
    let (client, _) = rp(&s).await;
    let client = client.set_device_authorization_url(
        DeviceAuthorizationUrl::new(format!("{}/application/o/device/", s.app.url)).unwrap(),
    );
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .request_async(&rp_http)
        .await
        .unwrap();
    let shown = details.user_code().secret().clone();
    assert_eq!(shown.len(), 9, "{shown}");
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", s.app.url)
    );
    // Polling before anyone approved: authorization_pending.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", details.device_code().secret()),
        ],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );

    // A wrong code is refused on the page; the right one (typed in lower case) leads through
    // login and consent.
    let mut browser = Browser::new(&s.app);
    let r = browser
        .authorize("/device?code=BBBB-BBBB", &admin_answers)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let complete = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .to_lowercase()
        .replace(&s.app.url.to_lowercase(), &s.app.url);
    let r = browser.authorize(&complete, &admin_answers).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.as_str().unwrap().contains("connected"));
    // The user code is spent.
    let r = browser.get(&format!("/device?code={shown}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let tokens = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(&rp_http, tokio::time::sleep, None)
        .await
        .unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256])
        .require_issuer_match(true);
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("admin@example.com")
    );
    // Once only.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", details.device_code().secret()),
        ],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // The application's policies apply: a person they refuse is told so, and the device
    // keeps waiting.
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let policy: Value = api(reqwest::Method::POST, "/api/v3/policies/expression/")
        .json(
            &json!({"name": "nobody", "expression": "ak_message('Not on devices.')\nreturn False"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = s.get_json("/api/v3/core/applications/rp/").await;
    let binding: Value = api(reqwest::Method::POST, "/api/v3/policies/bindings/")
        .json(&json!({"policy": policy["pk"], "target": app["pk"], "order": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .request_async(&rp_http)
        .await
        .unwrap();
    let r = browser
        .get(&format!("/device?code={}", refused.user_code().secret()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.as_str().unwrap().contains("Not on devices."));
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", refused.device_code().secret()),
        ],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(body["error"], "authorization_pending", "{st} {body}");
    let r = api(
        reqwest::Method::DELETE,
        &format!(
            "/api/v3/policies/bindings/{}/",
            binding["pk"].as_str().unwrap()
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Guessing: after ten wrong codes (two above) the page stops looking codes up for this
    // user for a while, even a right one.
    let next: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .request_async(&rp_http)
        .await
        .unwrap();
    for _ in 0..8 {
        let r = browser.get("/device?code=BBBB-BBBB").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = browser
        .get(&format!("/device?code={}", next.user_code().secret()))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A client assertion (RFC 7523) signed by the test with `jsonwebtoken`, independently of
/// the server's own signing code.
fn assertion(
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: Option<&str>,
    client_id: &str,
    aud: &str,
    exp_in: i64,
) -> String {
    let now = portcullis_core::Clock::now(&portcullis_core::SystemClock).timestamp();
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in,
                "jti": uuid::Uuid::new_v4().to_string()}),
        key,
    )
    .unwrap()
}

/// With an `encryption_key` (an RSA certificate), ID tokens are JWEs (RSA-OAEP-256,
/// A256CBC-HS512) whose header names the key published in the JWKS with `use: enc`; access
/// tokens stay signed JWTs; a non-RSA key is refused. (Decryption by an independent JOSE
/// library is checked in tests/ui/oidc.test.mjs.)
async fn encrypted_id_tokens(b: Backend) {
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let api = |m: reqwest::Method, p: &str| s.app.request(m, p, Some(&s.app.admin_token));
    let generate = |alg: &'static str| {
        let req = api(
            reqwest::Method::POST,
            "/api/v3/crypto/certificatekeypairs/generate/",
        )
        .json(&json!({"common_name": format!("enc-{alg}"), "validity_days": 30, "alg": alg}));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let ec = generate("ecdsa").await;
    let patch = |body: Value| {
        api(
            reqwest::Method::PATCH,
            &format!("/api/v3/providers/oauth2/{}/", s.provider),
        )
        .json(&body)
        .send()
    };
    let r = patch(json!({"encryption_key": ec["pk"]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["encryption_key"].is_array(), "{body}");
    let rsa = generate("rsa").await;
    let r = patch(json!({"encryption_key": rsa["pk"]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let jwks: Value = reqwest::get(format!("{}jwks/", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    let enc = keys.iter().find(|k| k["use"] == "enc").unwrap();
    assert_eq!(enc["kty"], "RSA");
    assert_eq!(enc["alg"], "RSA-OAEP-256");
    assert!(enc["x5c"].is_array());
    let meta: Value = reqwest::get(format!("{}.well-known/openid-configuration", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["id_token_encryption_enc_values_supported"],
        json!(["A256CBC-HS512"])
    );

    let (st, tokens) = token_request(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid profile"),
        ],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let id = tokens["id_token"].as_str().unwrap();
    assert_eq!(id.split('.').count(), 5, "{id}");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header,
        json!({"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512", "kid": enc["kid"], "cty": "JWT"})
    );
    // Nothing of the claims is readable in any part.
    for part in id.split('.') {
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
            .unwrap();
        assert!(
            !raw.windows(8).any(|w| w == b"ak-RP-cl"),
            "plaintext in {part}"
        );
    }
    // The access token is still a signed JWT the resource server can read.
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(at.split('.').count(), 3);
    assert_eq!(jwt_claims(at)["iss"], s.issuer.as_str());

    // The key pair deleted under the provider: a code redemption fails without using the code
    // up, and the JWKS still serves the signing key.
    let mut browser = Browser::new(&s.app);
    let code = fresh_code(&s, &mut browser, "").await;
    let r = api(
        reqwest::Method::DELETE,
        &format!(
            "/api/v3/crypto/certificatekeypairs/{}/",
            rsa["pk"].as_str().unwrap()
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (st, body) = redeem_code(&s, &code).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("server_error")),
        "{body}"
    );
    let jwks: Value = reqwest::get(format!("{}jwks/", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    assert_eq!(jwks["keys"][0]["use"], "sig");

    // No key, no encryption; the code still works.
    let r = patch(json!({"encryption_key": null})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, body) = redeem_code(&s, &code).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);
    let (_, tokens) = token_request(
        &s,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(tokens["id_token"].as_str().unwrap().split('.').count(), 3);
}

/// Signed request objects (OIDC Core §6.1): the parameters in a JWT the client signed with its
/// registered key or its secret replace the query's; an object that does not verify, or that
/// names another client, server or response type, is refused on the error page, issuing nothing.
async fn signed_request_objects(b: Backend) {
    use base64::Engine;
    use jsonwebtoken::{Algorithm, EncodingKey};
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let now = portcullis_core::Clock::now(&portcullis_core::SystemClock);
    let key_pair = |cn: &str| {
        let kp = portcullis_crypto::cert::generate_self_signed_with(
            portcullis_crypto::cert::KeyAlgorithm::EcdsaP256,
            cn,
            &[],
            30,
            now,
        )
        .unwrap();
        EncodingKey::from_ec_pem(kp.private_key_pem.as_bytes()).unwrap()
    };
    let key = key_pair("rp");
    let other_key = key_pair("mallory");
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("rp-req".into());
    assert_eq!(
        s.patch_provider(json!({"jwks": {"keys": [jwk]}})).await,
        StatusCode::OK
    );
    let meta: Value = reqwest::get(format!("{}.well-known/openid-configuration", s.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["request_parameter_supported"], true);
    assert_eq!(meta["request_uri_parameter_supported"], false);

    let t = now.timestamp();
    let base_claims = json!({
        "iss": s.client_id, "aud": s.issuer, "exp": t + 300, "iat": t,
        "client_id": s.client_id, "response_type": "code", "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": "from-object", "nonce": "n-obj",
    });
    let with = |changes: Value| {
        let mut c = base_claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let es256 = |claims: &Value, k: &EncodingKey| {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.kid = Some("rp-req".into());
        jsonwebtoken::encode(&h, claims, k).unwrap()
    };
    let url = |object: &str, extra: &str| {
        format!(
            "/application/o/authorize/?client_id={}&response_type=code&scope=openid{extra}&request={object}",
            s.client_id
        )
    };
    let mut browser = Browser::new(&s.app);

    // By the registered key: the object's redirect, state and nonce are used.
    let r = browser
        .authorize(&url(&es256(&base_claims, &key), ""), &admin_answers)
        .await;
    let loc = r.location.unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let p = params(&loc);
    assert_eq!(p["state"], "from-object");
    let tokens = redeem(
        &s,
        Resp {
            status: StatusCode::FOUND,
            location: Some(loc),
            body: Value::Null,
        },
    )
    .await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-obj");
    assert!(
        tokens["scope"].as_str().unwrap().contains("profile"),
        "{tokens}"
    );
    // The object wins over the query; HS256 with the client secret works too.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &with(json!({"state": "hs"})),
        &EncodingKey::from_secret(s.client_secret.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = browser
        .authorize(&url(&hs, "&state=query"), &|_| None)
        .await;
    assert_eq!(params(&r.location.unwrap())["state"], "hs");

    // Refused on the error page, nothing issued.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(base_claims.to_string())
    );
    let mut tampered = es256(&base_claims, &key);
    let (head, _) = tampered.rsplit_once('.').unwrap();
    tampered = format!("{head}.{}", b64.encode(vec![7u8; 64]));
    let grants_before = s
        .app
        .state
        .store
        .list_oauth_grants_of_provider(s.provider as i32)
        .await
        .unwrap()
        .len();
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned, ""),
        ("tampered", tampered, ""),
        ("another key", es256(&base_claims, &other_key), ""),
        (
            "another iss",
            es256(&with(json!({"iss": "someone"})), &key),
            "",
        ),
        (
            "another aud",
            es256(&with(json!({"aud": "https://elsewhere.example/"})), &key),
            "",
        ),
        ("expired", es256(&with(json!({"exp": t - 600})), &key), ""),
        (
            "valid for days",
            es256(&with(json!({"exp": t + 86400 * 3})), &key),
            "",
        ),
        (
            "another client_id",
            es256(&with(json!({"client_id": "other"})), &key),
            "",
        ),
        (
            "another response_type",
            es256(&with(json!({"response_type": "id_token"})), &key),
            "",
        ),
        (
            "a number for state",
            es256(&with(json!({"state": 5})), &key),
            "",
        ),
        (
            "unregistered redirect",
            es256(
                &with(json!({"redirect_uri": "https://evil.example/cb"})),
                &key,
            ),
            "",
        ),
        (
            "with request_uri",
            es256(&base_claims, &key),
            "&request_uri=https%3A%2F%2Frp.example%2Fr",
        ),
        ("garbage", "a.b.c".to_owned(), ""),
        ("oversized", "x".repeat(20_000), ""),
    ];
    for (what, object, extra) in cases {
        let r = browser.get(&url(&object, extra)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        assert!(
            r.location.is_none(),
            "{what}: redirected to {:?}",
            r.location
        );
    }
    assert_eq!(
        s.app
            .state
            .store
            .list_oauth_grants_of_provider(s.provider as i32)
            .await
            .unwrap()
            .len(),
        grants_before
    );
    // request_uri alone stays unsupported, said to the (registered) redirect URI.
    let r = browser
        .get(&format!(
            "/application/o/authorize/?client_id={}&response_type=code&scope=openid&redirect_uri={}&request_uri=https%3A%2F%2Frp.example%2Fr",
            s.client_id,
            form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        params(r.location.as_deref().unwrap())["error"],
        "request_uri_not_supported"
    );
}

/// private_key_jwt with the client's registered JWKS (the RP redeems its code with an
/// assertion instead of a secret), client_secret_jwt, and assertions that must fail: replayed,
/// `alg: none`, another key, another audience, expired, valid too long.
async fn private_key_jwt_and_client_secret_jwt(b: Backend) {
    use jsonwebtoken::{Algorithm, EncodingKey};
    use openidconnect::AuthType;
    const TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let s = setup(b, "default-provider-authorization-implicit-consent").await;
    let now = portcullis_core::Clock::now(&portcullis_core::SystemClock);
    let kp = portcullis_crypto::cert::generate_self_signed_with(
        portcullis_crypto::cert::KeyAlgorithm::EcdsaP256,
        "rp",
        &[],
        30,
        now,
    )
    .unwrap();
    let key = EncodingKey::from_ec_pem(kp.private_key_pem.as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("rp-key-1".into());
    let patch = |body: Value| {
        s.app
            .request(
                reqwest::Method::PATCH,
                &format!("/api/v3/providers/oauth2/{}/", s.provider),
                Some(&s.app.admin_token),
            )
            .json(&body)
            .send()
    };
    // A private key is refused (the server must not hold the client's secret).
    let mut private = serde_json::to_value(&jwk).unwrap();
    private["d"] = json!("c2VjcmV0");
    let r = patch(json!({"jwks": {"keys": [private]}})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = patch(json!({"jwks": {"keys": [jwk]}})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // The RP holds no secret: its code is redeemed with a signed assertion.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.issuer.clone()).unwrap(), &rp_http)
            .await
            .unwrap();
    let methods: Vec<String> = metadata
        .token_endpoint_auth_methods_supported()
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::to_value(m)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        methods.contains(&"private_key_jwt".to_owned()),
        "{methods:?}"
    );
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(s.client_id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap())
            .set_auth_type(AuthType::RequestBody);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new(&s.app);
    let r = browser.authorize(url.as_str(), &admin_answers).await;
    let code = params(&r.location.unwrap())["code"].clone();
    let token_url = format!("{}/application/o/token/", s.app.url);
    let signed = assertion(
        &key,
        Algorithm::ES256,
        Some("rp-key-1"),
        &s.client_id,
        &token_url,
        60,
    );
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .add_extra_param("client_assertion_type", TYPE)
        .add_extra_param("client_assertion", signed.clone())
        .request_async(&rp_http)
        .await
        .unwrap();
    tokens
        .id_token()
        .unwrap()
        .claims(
            &client
                .id_token_verifier()
                .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]),
            &nonce,
        )
        .unwrap();

    let cc = |a: String| {
        let s = &s;
        async move {
            token_request(
                s,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", TYPE),
                    ("client_assertion", &a),
                ],
                None,
            )
            .await
        }
    };
    // A fresh assertion works (client_id read from its sub); the same one again is a replay.
    let fresh = assertion(
        &key,
        Algorithm::ES256,
        Some("rp-key-1"),
        &s.client_id,
        &s.issuer,
        60,
    );
    assert_eq!(cc(fresh.clone()).await.0, StatusCode::OK);
    let (st, body) = cc(fresh).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (st, _) = cc(signed).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the assertion of the code exchange replayed"
    );

    // client_secret_jwt: HS256 with the client secret.
    let hs = EncodingKey::from_secret(s.client_secret.as_bytes()).unwrap();
    let (st, body) = cc(assertion(
        &hs,
        Algorithm::HS256,
        None,
        &s.client_id,
        &token_url,
        60,
    ))
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // What must fail: alg none, another key, another audience, expired, valid too long,
    // another client's name.
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = portcullis_core::Clock::now(&portcullis_core::SystemClock).timestamp();
    let none = format!(
        "{}.{}.",
        e.encode(r#"{"alg":"none","typ":"JWT"}"#),
        e.encode(
            json!({"iss": s.client_id, "sub": s.client_id, "aud": token_url, "exp": now + 60,
                   "jti": "none-1"})
            .to_string()
        )
    );
    let other = portcullis_crypto::cert::generate_self_signed_with(
        portcullis_crypto::cert::KeyAlgorithm::EcdsaP256,
        "other",
        &[],
        30,
        portcullis_core::Clock::now(&portcullis_core::SystemClock),
    )
    .unwrap();
    let other = EncodingKey::from_ec_pem(other.private_key_pem.as_bytes()).unwrap();
    for (what, a) in [
        ("alg none", none),
        (
            "another key",
            assertion(
                &other,
                Algorithm::ES256,
                Some("rp-key-1"),
                &s.client_id,
                &token_url,
                60,
            ),
        ),
        (
            "another audience",
            assertion(
                &key,
                Algorithm::ES256,
                Some("rp-key-1"),
                &s.client_id,
                "https://evil.example/token",
                60,
            ),
        ),
        (
            "expired",
            assertion(
                &key,
                Algorithm::ES256,
                Some("rp-key-1"),
                &s.client_id,
                &token_url,
                -120,
            ),
        ),
        (
            "valid for a day",
            assertion(
                &key,
                Algorithm::ES256,
                Some("rp-key-1"),
                &s.client_id,
                &token_url,
                86_400,
            ),
        ),
        (
            "wrong secret",
            assertion(
                &EncodingKey::from_secret(b"guess").unwrap(),
                Algorithm::HS256,
                None,
                &s.client_id,
                &token_url,
                60,
            ),
        ),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let (st, body) = cc(a).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{what}: {body}"
        );
    }
    // An assertion and a secret at once: invalid_request.
    let (st, body) = token_request(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", TYPE),
            (
                "client_assertion",
                &assertion(
                    &key,
                    Algorithm::ES256,
                    Some("rp-key-1"),
                    &s.client_id,
                    &token_url,
                    60,
                ),
            ),
            ("client_secret", &s.client_secret),
            ("client_id", &s.client_id),
        ],
        None,
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

/// `refresh_token_threshold`: a refresh keeps a refresh token that is valid for longer than the
/// threshold (the response carries it again, and it keeps working); once it is valid for less,
/// the refresh rotates it, and the old one reused then revokes the family.
async fn refresh_token_threshold_rotates_only_near_expiry(b: Backend) {
    let clock = portcullis_core::FixedClock::new(portcullis_core::Clock::now(
        &portcullis_core::SystemClock,
    ));
    let s = setup_with_clock(
        b,
        "default-provider-authorization-implicit-consent",
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    assert_eq!(
        s.patch_provider(
            json!({"refresh_token_validity": "days=30", "refresh_token_threshold": "days=7"})
        )
        .await,
        StatusCode::OK
    );
    let mut browser = Browser::new(&s.app);
    let url = format!(
        "{}/application/o/authorize/?client_id={}&redirect_uri={}&response_type=code&scope=openid%20offline_access&state=t",
        s.app.url,
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = browser.authorize(&url, &admin_answers).await;
    let code = params(&r.location.unwrap())["code"].clone();
    let (st, tokens) = redeem_code(&s, &code).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let s = &s;
        async move {
            token_request(
                s,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                Some((&s.client_id, &s.client_secret)),
            )
            .await
        }
    };
    // 30 days left, more than 7: the same refresh token, new access tokens, twice.
    let mut access = vec![tokens["access_token"].clone()];
    for _ in 0..2 {
        let (st, body) = refresh(first.clone()).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["refresh_token"], first.as_str());
        assert!(!access.contains(&body["access_token"]));
        access.push(body["access_token"].clone());
    }
    // 6 days left: rotated.
    clock.advance(chrono::Duration::days(24));
    let (st, body) = refresh(first.clone()).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    // The new one has 30 days again: kept on the next refresh.
    let (st, body) = refresh(second.clone()).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["refresh_token"], second.as_str());
    // The rotated one back: the family is revoked, the new one with it.
    let (st, body) = refresh(first).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (st, body) = refresh(second).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
}

/// Codes and refresh tokens are bound to their client, and codes expire with the provider's
/// access_code_validity: each refusal is invalid_grant and issues nothing.
async fn codes_and_tokens_are_bound_to_their_client_and_expire(b: Backend) {
    let clock = portcullis_core::FixedClock::new(portcullis_core::Clock::now(
        &portcullis_core::SystemClock,
    ));
    let s = setup_with_clock(
        b,
        "default-provider-authorization-implicit-consent",
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    // A second client on the same server.
    let other = s.add_client("Other RP", "other", json!({})).await;
    let other_creds = (
        other["client_id"].as_str().unwrap().to_owned(),
        other["client_secret"].as_str().unwrap().to_owned(),
    );
    let mut browser = Browser::new(&s.app);
    let url = format!(
        "{}/application/o/authorize/?client_id={}&redirect_uri={}&response_type=code&scope=openid%20offline_access&state=b",
        s.app.url,
        s.client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = browser.authorize(&url, &admin_answers).await;
    let code = params(&r.location.unwrap())["code"].clone();
    let redeem = |code: String, creds: (String, String)| {
        let s = &s;
        async move {
            token_request(
                s,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                ],
                Some((&creds.0, &creds.1)),
            )
            .await
        }
    };
    let mine = (s.client_id.clone(), s.client_secret.clone());
    // Another client presenting my code: refused, and my code still works.
    let (st, body) = redeem(code.clone(), other_creds.clone()).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (st, tokens) = redeem(code, mine.clone()).await;
    assert_eq!(st, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Another client presenting my refresh token: refused, nothing revoked.
    let refresh_with = |creds: (String, String)| {
        let s = &s;
        let refresh = refresh.clone();
        async move {
            token_request(
                s,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                Some((&creds.0, &creds.1)),
            )
            .await
        }
    };
    let (st, body) = refresh_with(other_creds).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // A code past its minute: invalid_grant.
    let url2 = url.replace("state=b", "state=c");
    let r = browser.authorize(&url2, &|_| None).await;
    let late = params(&r.location.unwrap())["code"].clone();
    clock.advance(chrono::Duration::seconds(61));
    let (st, body) = redeem(late, mine).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
    // The refresh token (30 days) still works for its own client.
    let (st, body) = refresh_with((s.client_id.clone(), s.client_secret.clone())).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    // And past its 30 days, it does not.
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    clock.advance(chrono::Duration::days(31));
    let (st, body) = token_request(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &next)],
        Some((&s.client_id, &s.client_secret)),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

both_backends!(
    prompt_consent_always_asks,
    claims_parameter_selects_id_token_claims,
    pairwise_subjects_per_sector,
    password_grant_with_app_passwords,
    codes_and_tokens_are_bound_to_their_client_and_expire,
    private_key_jwt_and_client_secret_jwt,
    device_code_flow,
    backchannel_logout_token_reaches_the_application,
    frontchannel_logout_pages_in_the_logout_flow,
    refresh_token_threshold_rotates_only_near_expiry,
    jwt_federation_between_providers,
    signed_request_objects,
    encrypted_id_tokens,
    prompt_login_select_account_and_max_age_ask_to_log_in,
    id_token_hint_names_the_user,
    implicit_and_hybrid_with_form_post,
    client_credentials_introspection_and_revocation,
    end_session_returns_to_registered_uris_only,
    public_clients_need_pkce,
    code_flow_with_pkce_refresh_and_userinfo,
    refusals_issue_nothing,
    explicit_consent_asks_then_remembers,
);
