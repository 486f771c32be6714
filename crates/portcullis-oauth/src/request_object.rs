//! Signed request objects (OpenID Connect Core §6.1, RFC 9101): the authorization request's
//! parameters in a JWT the client signed, passed by value in `request`.
//!
//! ```text
//!  request=<JWT> ─> header alg: HS256/384/512 (client secret) or the client's registered keys
//!      ─> signature, exp/nbf (30 s leeway) ─> iss = client_id, aud = this server (when present)
//!      ─> client_id, response_type = the query's (when present)
//!      ─> its parameters replace the query's (§6.1: the request object's win) ─> validate as usual
//! ```
//! Unsigned objects (`alg: none`) are refused: nothing in them could be told from a forged
//! link. `request_uri` (fetching the object from the client) is not supported: it would make
//! this server fetch URLs a browser hands it.

use serde_json::Value;

use crate::assertion::{Audiences, client_key};
use crate::authorize::{AuthorizeRequest, MAX_PARAM_LEN};
use crate::error::{ErrorCode, OAuthError};
use crate::issue::OAuthServices;
use crate::provider::OAuth2Config;

/// The largest request object read.
pub const MAX_REQUEST_OBJECT_LEN: usize = 16 * 1024;
/// The longest a request object may be valid, when it says (`exp` − now).
const MAX_LIFETIME_SECONDS: i64 = 3600;

fn invalid(why: &str) -> OAuthError {
    OAuthError::described(ErrorCode::InvalidRequestObject, why)
}

/// Verifies `req.request` for the client `config` describes, whose id is `client_id`, and
/// moves its parameters into `req`. `audiences` are the URLs an `aud` may name (the issuer).
pub fn apply(
    svc: &OAuthServices,
    client_id: &str,
    config: &OAuth2Config,
    audiences: &Audiences,
    req: &mut AuthorizeRequest,
) -> Result<(), OAuthError> {
    let Some(object) = req.request.take() else {
        return Ok(());
    };
    if req.request_uri.is_some() {
        return Err(OAuthError::described(
            ErrorCode::InvalidRequest,
            "request and request_uri cannot both be given",
        ));
    }
    if object.len() > MAX_REQUEST_OBJECT_LEN {
        return Err(invalid("the request object is too large"));
    }
    let header = jsonwebtoken::decode_header(&object)
        .map_err(|_| invalid("the request object is not a signed JWT"))?;
    let key = client_key(svc, config, &header).map_err(invalid)?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.validate_aud = false;
    v.validate_nbf = true;
    v.set_required_spec_claims::<&str>(&[]);
    v.leeway = 30;
    let claims = jsonwebtoken::decode::<Value>(&object, &key, &v)
        .map_err(|_| invalid("the request object's signature or lifetime is invalid"))?
        .claims;
    let Value::Object(claims) = claims else {
        return Err(invalid("the request object is not a JSON object"));
    };
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
        && exp > svc.clock.now().timestamp() + MAX_LIFETIME_SECONDS
    {
        return Err(invalid("the request object is valid for too long"));
    }
    if let Some(iss) = claims.get("iss")
        && iss.as_str() != Some(client_id)
    {
        return Err(invalid("the request object's iss is not the client"));
    }
    if let Some(aud) = claims.get("aud") {
        let ok = match aud {
            Value::String(a) => audiences.accepts(a),
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| audiences.accepts(a)),
            _ => false,
        };
        if !ok {
            return Err(invalid("the request object's aud is not this server"));
        }
    }
    if let Some(id) = claims.get("client_id")
        && id.as_str() != Some(client_id)
    {
        return Err(invalid(
            "the request object's client_id differs from the request's",
        ));
    }
    if let (Some(inner), Some(outer)) = (claims.get("response_type"), &req.response_type)
        && inner.as_str() != Some(outer.as_str())
    {
        return Err(invalid(
            "the request object's response_type differs from the request's",
        ));
    }
    for (name, value) in &claims {
        let slot = match name.as_str() {
            "redirect_uri" => &mut req.redirect_uri,
            "response_type" => &mut req.response_type,
            "response_mode" => &mut req.response_mode,
            "scope" => &mut req.scope,
            "state" => &mut req.state,
            "nonce" => &mut req.nonce,
            "code_challenge" => &mut req.code_challenge,
            "code_challenge_method" => &mut req.code_challenge_method,
            "prompt" => &mut req.prompt,
            "max_age" => &mut req.max_age,
            "login_hint" => &mut req.login_hint,
            "id_token_hint" => &mut req.id_token_hint,
            "claims" => &mut req.claims,
            // Claims of the JWT itself, the client (checked above), and nested objects.
            _ => continue,
        };
        let text = match (name.as_str(), value) {
            (_, Value::String(s)) => s.clone(),
            ("max_age", Value::Number(n)) => n.to_string(),
            ("claims", Value::Object(_)) => value.to_string(),
            _ => return Err(invalid(&format!("{name} has the wrong type"))),
        };
        if text.len() > MAX_PARAM_LEN && name != "id_token_hint" {
            return Err(invalid(&format!("{name} is too long")));
        }
        *slot = Some(text);
    }
    Ok(())
}
