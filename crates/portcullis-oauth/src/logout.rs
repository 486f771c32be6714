//! OpenID Connect Back-Channel and Front-Channel Logout 1.0: when a browser session ends, the
//! tokens that session led to are revoked, every provider that issued tokens to it and has a
//! back-channel `logout_uri` receives a signed logout token, and the person's browser loads the
//! `logout_uri` of every front-channel one (with `iss` and `sid`) in an iframe.
//!
//! The logout token (§2.4) carries `iss`, `aud`, `iat`, `exp`, `jti`, `sub`, `sid` and the
//! back-channel logout event, never a `nonce`; its header's `typ` is `logout+jwt`. Delivery is
//! a form POST (`logout_token=...`) with a short timeout, in the background: a slow or dead
//! application never delays the person's logout.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::error::OAuthError;
use crate::issue::{GrantData, OAuthServices, server_error, signer, subject};
use crate::provider::{KIND, LogoutMethod, OAuth2Config};

/// The event a logout token carries.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid.
const LOGOUT_TOKEN_TTL_SECONDS: i64 = 120;
/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `sid` claim of a browser session (the same value the ID tokens carry).
pub fn sid(session: Uuid) -> String {
    portcullis_crypto::sha256_hex(format!("sid-{session}").as_bytes())
}

/// One logout token to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub provider: String,
    pub uri: String,
    pub logout_token: String,
}

/// One page the browser loads in an iframe (Front-Channel Logout 1.0 §2): the client's
/// `logout_uri` with `iss` and `sid` added to its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontchannelLogout {
    pub provider: String,
    pub url: String,
}

/// What ending a session asks of the applications it signed into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// Logout tokens to POST, server to server.
    pub backchannel: Vec<LogoutDelivery>,
    /// Pages for the person's browser to load.
    pub frontchannel: Vec<FrontchannelLogout>,
}

/// `logout_uri` with the front-channel parameters: `iss` and `sid` (§2, as with
/// `frontchannel_logout_session_required`), after whatever query it has.
pub fn frontchannel_url(logout_uri: &str, iss: &str, sid: &str) -> Option<String> {
    let mut url = url::Url::parse(logout_uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_fragment(None);
    url.query_pairs_mut()
        .append_pair("iss", iss)
        .append_pair("sid", sid);
    Some(url.into())
}

/// Ends the OAuth side of a browser session: revokes every grant the session led to, builds
/// the logout tokens for the providers that asked for back-channel logout and the pages of
/// those that asked for front-channel logout, each naming the issuer the session's tokens
/// named.
pub async fn session_ended(svc: &OAuthServices, session: Uuid) -> Result<SessionEnd, OAuthError> {
    let grants = svc.store.list_oauth_grants_of_session(session).await?;
    // (provider, user, issuer) once each.
    let mut seen: Vec<(i32, i32, Option<String>)> = Vec::new();
    let mut families: Vec<Uuid> = Vec::new();
    for g in &grants {
        if !families.contains(&g.family) {
            families.push(g.family);
        }
        let Some(user) = g.user else {
            continue;
        };
        if !seen.iter().any(|(p, u, _)| *p == g.provider && *u == user) {
            seen.push((g.provider, user, GrantData::from_value(&g.data).issuer));
        }
    }
    for f in families {
        svc.store.revoke_oauth_family(f).await?;
    }
    let mut out = SessionEnd::default();
    for (provider_pk, user_pk, issuer) in seen {
        let Ok(provider) = svc.store.find_provider(provider_pk).await else {
            continue;
        };
        let config = OAuth2Config::from_value(&provider.config);
        if provider.kind != KIND || config.logout_uri.is_empty() {
            continue;
        }
        let Some(iss) = issuer else {
            continue;
        };
        if config.logout_method == LogoutMethod::Frontchannel {
            match frontchannel_url(&config.logout_uri, &iss, &sid(session)) {
                Some(url) => out.frontchannel.push(FrontchannelLogout {
                    provider: provider.name.clone(),
                    url,
                }),
                None => {
                    tracing::warn!(provider = %provider.name, "front-channel logout: the logout URI is not an http(s) URL")
                }
            }
            continue;
        }
        let Ok(user) = svc.store.find_user(user_pk).await else {
            continue;
        };
        let now = svc.clock.now().timestamp();
        let claims = json!({
            "iss": iss,
            "aud": provider.client_id.clone().unwrap_or_default(),
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL_SECONDS,
            "jti": Uuid::new_v4().to_string(),
            "sub": subject(svc, &config, &user),
            "sid": sid(session),
            "events": { BACKCHANNEL_EVENT: {} },
        });
        let signer = signer(svc, &provider, &config).await?;
        let logout_token = signer.sign(&claims, "logout+jwt").map_err(server_error)?;
        out.backchannel.push(LogoutDelivery {
            provider: provider.name.clone(),
            uri: config.logout_uri.clone(),
            logout_token,
        });
    }
    Ok(out)
}

/// Sends logout tokens (one HTTP client, reused).
#[derive(Debug, Clone, Default)]
pub struct Deliverer {
    client: reqwest::Client,
}

impl Deliverer {
    /// A client that follows no redirect (a logout URI answers, it does not send us elsewhere).
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { client }
    }

    /// Delivers logout tokens, each with its own timeout; failures are logged, never raised.
    pub async fn deliver(&self, deliveries: Vec<LogoutDelivery>) {
        deliver(&self.client, deliveries).await;
    }
}

async fn deliver(client: &reqwest::Client, deliveries: Vec<LogoutDelivery>) {
    for d in deliveries {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &d.logout_token)
            .finish();
        let sent = client
            .post(&d.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cache-control", "no-store")
            .timeout(DELIVERY_TIMEOUT)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(provider = %d.provider, "back-channel logout delivered");
            }
            Ok(r) => {
                tracing::warn!(provider = %d.provider, status = %r.status(), "back-channel logout refused");
            }
            Err(e) => {
                tracing::warn!(provider = %d.provider, error = %e, "back-channel logout failed");
            }
        }
    }
}
