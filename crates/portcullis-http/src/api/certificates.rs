//! `crypto/certificatekeypairs/`: superusers only. Private keys are encrypted at rest and
//! returned only by `view_private_key/`, which records `secret_view`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{CertificateFacts, FieldErrors, NewCertificateKeyPair, validate};
use portcullis_crypto::KeyAlgorithm;
use portcullis_store::CertificateKeyPairPatch;
use uuid::Uuid;

use super::{check, path_id, require};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, QueryParams};
use crate::pagination::{check_page, list_query};
use crate::serializers::{
    CertificateData, CertificateGenerationRequest, CertificateKeyPairRequest,
    CertificateKeyPairSerializer, PaginatedCertificateKeyPairList,
};

/// The longest validity `generate/` accepts (100 years).
pub const MAX_VALIDITY_DAYS: i64 = 36_500;

/// Parses and checks a certificate (and key), returning the facts to store.
pub fn inspect(cert_pem: &str, key_pem: Option<&str>) -> Result<CertificateFacts, FieldErrors> {
    let mut errors = FieldErrors::new();
    // The PEM is stored as given, and text around its block is ignored by the parser: a NUL
    // there would reach the database (which PostgreSQL refuses).
    if cert_pem.contains('\0') {
        errors.add("certificate_data", "Null characters are not allowed.");
        return Err(errors);
    }
    let info = match portcullis_crypto::parse_certificate(cert_pem) {
        Ok(i) => Some(i),
        Err(_) => {
            errors.add("certificate_data", "Unable to load certificate.");
            None
        }
    };
    if let Some(key) = key_pem.filter(|k| !k.is_empty()) {
        if portcullis_crypto::validate_private_key(key).is_err() {
            errors.add(
                "key_data",
                "Unable to load private key (possibly encrypted?).",
            );
        } else if info.is_some()
            && !portcullis_crypto::key_matches_certificate(cert_pem, key).unwrap_or(false)
        {
            errors.add("key_data", "Private key does not match the certificate.");
        }
    }
    match (info, errors.is_empty()) {
        (Some(i), true) => Ok(CertificateFacts {
            fingerprint_sha256: i.fingerprint_sha256,
            fingerprint_sha1: i.fingerprint_sha1,
            not_after: i.not_after,
            subject: i.subject,
            private_key_type: i.key_type,
        }),
        _ => Err(errors),
    }
}

#[utoipa::path(get, path = "/api/v3/crypto/certificatekeypairs/", tag = "crypto", operation_id = "crypto_certificatekeypairs_list",
    params(("name" = Option<String>, Query), ("has_key" = Option<bool>, Query), ("key_type" = Option<Vec<String>>, Query), ("managed" = Option<String>, Query), ("search" = Option<String>, Query),
        ("ordering" = Option<String>, Query), ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, body = PaginatedCertificateKeyPairList), (status = 403)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    q: QueryParams,
) -> ApiResult<Json<PaginatedCertificateKeyPairList>> {
    auth.require_superuser()?;
    let lq = list_query(&q)?;
    let filter = portcullis_store::CertificateFilter {
        has_key: q.bool("has_key")?,
        name: q.string("name"),
        key_types: q
            .get_all("key_type")
            .into_iter()
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        managed: q.string("managed"),
    };
    let page = state.store.list_certificate_keypairs(&filter, &lq).await?;
    check_page(&lq.page, page.count)?;
    let results = page
        .items
        .iter()
        .map(CertificateKeyPairSerializer::from)
        .collect();
    Ok(Json(PaginatedCertificateKeyPairList::new(
        &lq.page, page.count, results,
    )))
}

#[utoipa::path(post, path = "/api/v3/crypto/certificatekeypairs/", tag = "crypto", operation_id = "crypto_certificatekeypairs_create",
    request_body = CertificateKeyPairRequest, responses((status = 201, body = CertificateKeyPairSerializer), (status = 400)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<CertificateKeyPairRequest>,
) -> ApiResult<(StatusCode, Json<CertificateKeyPairSerializer>)> {
    auth.require_superuser()?;
    let mut errors = FieldErrors::new();
    require(
        &mut errors,
        &[
            ("name", r.name.is_some()),
            ("certificate_data", r.certificate_data.is_some()),
        ],
    );
    if let Some(n) = &r.name {
        validate::text(&mut errors, "name", n, validate::NAME_MAX, false);
    }
    check(errors)?;
    let cert = r.certificate_data.unwrap_or_default();
    let key = r.key_data.filter(|k| !k.trim().is_empty());
    let facts = inspect(&cert, key.as_deref()).map_err(ApiError::Validation)?;
    let enc = key.map(|k| state.secrets.encrypt_str(&k)).transpose()?;
    let kp = state
        .store
        .create_certificate_keypair(
            NewCertificateKeyPair {
                name: r.name.unwrap_or_default(),
                certificate_pem: cert,
                private_key_encrypted: enc,
                facts,
                managed: None,
            },
            &auth.actor(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CertificateKeyPairSerializer::from(&kp)),
    ))
}

/// Generates a self-signed keypair (off the async runtime: RSA key generation takes a while).
pub async fn generate_keypair(
    state: &AppState,
    cn: &str,
    sans: Vec<String>,
    days: u32,
    alg: KeyAlgorithm,
    actor: &portcullis_core::Actor,
) -> ApiResult<portcullis_core::CertificateKeyPair> {
    let now = state.clock.now();
    let cn_owned = cn.to_owned();
    let generated = tokio::task::spawn_blocking(move || {
        portcullis_crypto::generate_self_signed_with(alg, &cn_owned, &sans, days, now)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let facts = inspect(&generated.certificate_pem, Some(&generated.private_key_pem))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let enc = state.secrets.encrypt_str(&generated.private_key_pem)?;
    Ok(state
        .store
        .create_certificate_keypair(
            NewCertificateKeyPair {
                name: cn.to_owned(),
                certificate_pem: generated.certificate_pem,
                private_key_encrypted: Some(enc),
                facts,
                managed: None,
            },
            actor,
        )
        .await?)
}

#[utoipa::path(post, path = "/api/v3/crypto/certificatekeypairs/generate/", tag = "crypto", operation_id = "crypto_certificatekeypairs_generate_create",
    request_body = CertificateGenerationRequest, responses((status = 200, body = CertificateKeyPairSerializer), (status = 400)))]
pub async fn generate(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    ApiJson(r): ApiJson<CertificateGenerationRequest>,
) -> ApiResult<Json<CertificateKeyPairSerializer>> {
    auth.require_superuser()?;
    let mut errors = FieldErrors::new();
    validate::text(&mut errors, "common_name", &r.common_name, 64, false);
    if !(1..=MAX_VALIDITY_DAYS).contains(&r.validity_days) {
        errors.add(
            "validity_days",
            format!("Ensure this value is between 1 and {MAX_VALIDITY_DAYS}."),
        );
    }
    let alg = match r.alg.as_deref() {
        None | Some("rsa") => Some(KeyAlgorithm::Rsa2048),
        Some("ecdsa") => Some(KeyAlgorithm::EcdsaP256),
        Some("ed25519") => Some(KeyAlgorithm::Ed25519),
        Some(other) => {
            errors.add(
                "alg",
                format!("\"{other}\" is not a supported algorithm (rsa, ecdsa, ed25519)."),
            );
            None
        }
    };
    let sans: Vec<String> = r
        .subject_alt_name
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if sans.len() > 100 || sans.iter().any(|s| s.len() > 253) {
        errors.add(
            "subject_alt_name",
            "Too many or too long alternative names.",
        );
    } else if sans
        .iter()
        .any(|s| !s.chars().all(|c| c.is_ascii_graphic()))
    {
        // DNS names in certificates are IA5 (ASCII) strings; IDNs go in as punycode.
        errors.add(
            "subject_alt_name",
            "Alternative names must be ASCII host names or IP addresses (punycode for IDNs).",
        );
    }
    check(errors)?;
    let alg = alg.unwrap_or_default();
    let days = u32::try_from(r.validity_days).unwrap_or(365);
    let kp = generate_keypair(&state, &r.common_name, sans, days, alg, &auth.actor())
        .await
        .map_err(|e| match e {
            // The keypair is named after the common name: a taken name is that field's error.
            ApiError::Validation(mut errors) => {
                if let Some(m) = errors.0.remove("name") {
                    errors.0.insert("common_name".to_owned(), m);
                }
                ApiError::Validation(errors)
            }
            other => other,
        })?;
    Ok(Json(CertificateKeyPairSerializer::from(&kp)))
}

#[utoipa::path(get, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/", tag = "crypto", operation_id = "crypto_certificatekeypairs_retrieve",
    params(("kp_uuid" = Uuid, Path)), responses((status = 200, body = CertificateKeyPairSerializer), (status = 404)))]
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CertificateKeyPairSerializer>> {
    auth.require_superuser()?;
    Ok(Json(CertificateKeyPairSerializer::from(
        &state
            .store
            .find_certificate_keypair(path_id::<Uuid>(&id)?)
            .await?,
    )))
}

async fn update_inner(
    state: &AppState,
    auth: &Auth,
    id: &str,
    r: CertificateKeyPairRequest,
    partial: bool,
) -> ApiResult<Json<CertificateKeyPairSerializer>> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(id)?;
    let existing = state.store.find_certificate_keypair(uuid).await?;
    let mut errors = FieldErrors::new();
    if !partial {
        require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("certificate_data", r.certificate_data.is_some()),
            ],
        );
    }
    if let Some(n) = &r.name {
        validate::text(&mut errors, "name", n, validate::NAME_MAX, false);
    }
    check(errors)?;
    let key = r.key_data.filter(|k| !k.trim().is_empty());
    let certificate = match (&r.certificate_data, &key) {
        (None, None) => None,
        (cert, key) => {
            let cert = cert
                .clone()
                .unwrap_or_else(|| existing.certificate_pem.clone());
            let facts = inspect(&cert, key.as_deref()).map_err(ApiError::Validation)?;
            // A new certificate alone must still match the private key it will be kept with.
            if key.is_none()
                && existing.has_private_key
                && let Some(enc) = state.store.find_private_key_for_use(uuid).await?
            {
                let stored = state.secrets.decrypt_str(&enc)?;
                if !portcullis_crypto::key_matches_certificate(&cert, &stored).unwrap_or(false) {
                    return Err(ApiError::field(
                        "certificate_data",
                        "Certificate does not match the stored private key; send key_data with it.",
                    ));
                }
            }
            Some((cert, facts))
        }
    };
    let patch = CertificateKeyPairPatch {
        name: r.name,
        certificate,
        private_key_encrypted: key
            .map(|k| state.secrets.encrypt_str(&k))
            .transpose()?
            .map(Some),
    };
    let kp = state
        .store
        .update_certificate_keypair(uuid, patch, &auth.actor())
        .await?;
    Ok(Json(CertificateKeyPairSerializer::from(&kp)))
}

#[utoipa::path(put, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/", tag = "crypto", operation_id = "crypto_certificatekeypairs_update",
    params(("kp_uuid" = Uuid, Path)), request_body = CertificateKeyPairRequest, responses((status = 200, body = CertificateKeyPairSerializer), (status = 400), (status = 404)))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<CertificateKeyPairRequest>,
) -> ApiResult<Json<CertificateKeyPairSerializer>> {
    update_inner(&state, &auth, &id, r, false).await
}

#[utoipa::path(patch, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/", tag = "crypto", operation_id = "crypto_certificatekeypairs_partial_update",
    params(("kp_uuid" = Uuid, Path)), request_body = CertificateKeyPairRequest, responses((status = 200, body = CertificateKeyPairSerializer), (status = 400), (status = 404)))]
pub async fn partial_update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<CertificateKeyPairRequest>,
) -> ApiResult<Json<CertificateKeyPairSerializer>> {
    update_inner(&state, &auth, &id, r, true).await
}

#[utoipa::path(delete, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/", tag = "crypto", operation_id = "crypto_certificatekeypairs_destroy",
    params(("kp_uuid" = Uuid, Path)), responses((status = 204), (status = 404)))]
pub async fn destroy(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_superuser()?;
    state
        .store
        .delete_certificate_keypair(path_id::<Uuid>(&id)?, &auth.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `name` made safe for a quoted `Content-Disposition` file name: printable ASCII only (no
/// line breaks to end the header, no bytes a header cannot carry), no quotes or slashes.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '/' | '\\') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn data_response(
    data: String,
    q: &QueryParams,
    filename: &str,
    content_type: &'static str,
) -> Response {
    if q.has("download") {
        let disposition = format!("attachment; filename=\"{}\"", file_name(filename));
        (
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            data,
        )
            .into_response()
    } else {
        Json(CertificateData { data }).into_response()
    }
}

#[utoipa::path(get, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/view_certificate/", tag = "crypto", operation_id = "crypto_certificatekeypairs_view_certificate_retrieve",
    params(("kp_uuid" = Uuid, Path), ("download" = Option<bool>, Query)), responses((status = 200, body = CertificateData), (status = 404)))]
pub async fn view_certificate(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Response> {
    auth.require_superuser()?;
    let kp = state
        .store
        .find_certificate_keypair(path_id::<Uuid>(&id)?)
        .await?;
    Ok(data_response(
        kp.certificate_pem,
        &q,
        &format!("{}_certificate.pem", kp.name),
        "application/x-pem-file",
    ))
}

#[utoipa::path(get, path = "/api/v3/crypto/certificatekeypairs/{kp_uuid}/view_private_key/", tag = "crypto", operation_id = "crypto_certificatekeypairs_view_private_key_retrieve",
    params(("kp_uuid" = Uuid, Path), ("download" = Option<bool>, Query)), responses((status = 200, body = CertificateData), (status = 404)))]
pub async fn view_private_key(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Response> {
    auth.require_superuser()?;
    let uuid = path_id::<Uuid>(&id)?;
    let kp = state.store.find_certificate_keypair(uuid).await?;
    let enc = state.store.view_private_key(uuid, &auth.actor()).await?;
    let key = match enc {
        Some(e) => state.secrets.decrypt_str(&e)?,
        None => String::new(),
    };
    Ok(data_response(
        key,
        &q,
        &format!("{}_private_key.pem", kp.name),
        "application/x-pem-file",
    ))
}
