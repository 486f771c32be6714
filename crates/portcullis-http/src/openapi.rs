//! The OpenAPI 3 document, generated from the handlers' annotations, served at
//! `/api/v3/schema/` (YAML; `?format=json` for JSON).

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::{applications, blueprints, brands, certificates, events, groups, tokens, users};
use crate::extract::QueryParams;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "Portcullis' REST API v3, compatible with authentik's.", version = "3"),
    modifiers(&BearerAuth),
    security(("authentik" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "authentik",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every API route, with its documentation.
pub fn api_router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::me))
        .routes(routes!(
            users::retrieve,
            users::update,
            users::partial_update,
            users::destroy
        ))
        .routes(routes!(users::set_password))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(
            groups::retrieve,
            groups::update,
            groups::partial_update,
            groups::destroy
        ))
        .routes(routes!(groups::add_user))
        .routes(routes!(groups::remove_user))
        .routes(routes!(applications::list, applications::create))
        .routes(routes!(
            applications::retrieve,
            applications::update,
            applications::partial_update,
            applications::destroy
        ))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(
            tokens::retrieve,
            tokens::update,
            tokens::partial_update,
            tokens::destroy
        ))
        .routes(routes!(tokens::view_key))
        .routes(routes!(certificates::list, certificates::create))
        .routes(routes!(certificates::generate))
        .routes(routes!(
            certificates::retrieve,
            certificates::update,
            certificates::partial_update,
            certificates::destroy
        ))
        .routes(routes!(certificates::view_certificate))
        .routes(routes!(certificates::view_private_key))
        .routes(routes!(brands::list, brands::create))
        .routes(routes!(brands::current))
        .routes(routes!(
            brands::retrieve,
            brands::update,
            brands::partial_update,
            brands::destroy
        ))
        .routes(routes!(events::list))
        .routes(routes!(events::retrieve))
        .routes(routes!(blueprints::list, blueprints::create))
        .routes(routes!(blueprints::available))
        .routes(routes!(blueprints::export))
        .routes(routes!(
            blueprints::retrieve,
            blueprints::update,
            blueprints::partial_update,
            blueprints::destroy
        ))
        .routes(routes!(blueprints::apply))
}

/// The document itself.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    doc
}

pub fn schema_router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v3/schema/", get(schema))
}

async fn schema(q: QueryParams) -> Response {
    let doc = document();
    if q.get("format") == Some("json") {
        axum::Json(doc).into_response()
    } else {
        match doc.to_yaml() {
            Ok(yaml) => (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oai.openapi; charset=utf-8",
                )],
                yaml,
            )
                .into_response(),
            Err(e) => crate::error::ApiError::Internal(e.to_string()).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    /// The committed schema is what the handlers generate: a change to the API shows up in
    /// review as a change to `snapshots/`, and CI fails when they drift.
    #[test]
    fn schema_snapshot() {
        let yaml = document().to_yaml().unwrap();
        insta::assert_snapshot!("openapi", yaml);
    }

    #[test]
    fn operation_ids_are_authentiks() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut ids: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| {
                item.as_object()
                    .unwrap()
                    .values()
                    .filter_map(|op| op.get("operationId")?.as_str().map(str::to_owned))
            })
            .collect();
        ids.sort();
        let expected = [
            "core_applications_create",
            "core_applications_destroy",
            "core_applications_list",
            "core_applications_partial_update",
            "core_applications_retrieve",
            "core_applications_update",
            "core_brands_create",
            "core_brands_current_retrieve",
            "core_brands_destroy",
            "core_brands_list",
            "core_brands_partial_update",
            "core_brands_retrieve",
            "core_brands_update",
            "core_groups_add_user_create",
            "core_groups_create",
            "core_groups_destroy",
            "core_groups_list",
            "core_groups_partial_update",
            "core_groups_remove_user_create",
            "core_groups_retrieve",
            "core_groups_update",
            "core_tokens_create",
            "core_tokens_destroy",
            "core_tokens_list",
            "core_tokens_partial_update",
            "core_tokens_retrieve",
            "core_tokens_update",
            "core_tokens_view_key_retrieve",
            "core_users_create",
            "core_users_destroy",
            "core_users_list",
            "core_users_me_retrieve",
            "core_users_partial_update",
            "core_users_retrieve",
            "core_users_set_password_create",
            "core_users_update",
            "crypto_certificatekeypairs_create",
            "crypto_certificatekeypairs_destroy",
            "crypto_certificatekeypairs_generate_create",
            "crypto_certificatekeypairs_list",
            "crypto_certificatekeypairs_partial_update",
            "crypto_certificatekeypairs_retrieve",
            "crypto_certificatekeypairs_update",
            "crypto_certificatekeypairs_view_certificate_retrieve",
            "crypto_certificatekeypairs_view_private_key_retrieve",
            "events_events_list",
            "events_events_retrieve",
            "managed_blueprints_apply_create",
            "managed_blueprints_available_list",
            "managed_blueprints_create",
            "managed_blueprints_destroy",
            "managed_blueprints_export_retrieve",
            "managed_blueprints_list",
            "managed_blueprints_partial_update",
            "managed_blueprints_retrieve",
            "managed_blueprints_update",
        ];
        assert_eq!(ids, expected);
    }
}
