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
use crate::api::{
    applications, blueprints, brands, certificates, events, flows, groups, policies, prompts,
    property_mappings, providers, stages, tokens, users,
};
use crate::extract::QueryParams;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis", description = "Portcullis' REST API v3, compatible with authentik's.", version = "3"),
    paths(crate::flows_executor::executor_get, crate::flows_executor::executor_post),
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
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(applications::check_access))
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
        .routes(routes!(flows::list, flows::create))
        .routes(routes!(
            flows::retrieve,
            flows::update,
            flows::partial_update,
            flows::destroy
        ))
        .routes(routes!(flows::export))
        .routes(routes!(flows::bindings_list, flows::bindings_create))
        .routes(routes!(
            flows::bindings_retrieve,
            flows::bindings_update,
            flows::bindings_partial_update,
            flows::bindings_destroy
        ))
        .routes(routes!(prompts::list, prompts::create))
        .routes(routes!(
            prompts::retrieve,
            prompts::update,
            prompts::partial_update,
            prompts::destroy
        ))
        .routes(routes!(providers::all_list))
        .routes(routes!(providers::all_types))
        .routes(routes!(providers::all_retrieve, providers::all_destroy))
        .routes(routes!(providers::oauth2_list, providers::oauth2_create))
        .routes(routes!(
            providers::oauth2_retrieve,
            providers::oauth2_update,
            providers::oauth2_partial_update,
            providers::oauth2_destroy
        ))
        .routes(routes!(property_mappings::list, property_mappings::create))
        .routes(routes!(
            property_mappings::retrieve,
            property_mappings::update,
            property_mappings::partial_update,
            property_mappings::destroy
        ));
    let router = stages::routes(router);
    policies::routes(router)
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
            "core_applications_check_access_retrieve",
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
            "flows_bindings_create",
            "flows_bindings_destroy",
            "flows_bindings_list",
            "flows_bindings_partial_update",
            "flows_bindings_retrieve",
            "flows_bindings_update",
            "flows_executor_get",
            "flows_executor_solve",
            "flows_instances_create",
            "flows_instances_destroy",
            "flows_instances_export_retrieve",
            "flows_instances_list",
            "flows_instances_partial_update",
            "flows_instances_retrieve",
            "flows_instances_update",
            "managed_blueprints_apply_create",
            "managed_blueprints_available_list",
            "managed_blueprints_create",
            "managed_blueprints_destroy",
            "managed_blueprints_export_retrieve",
            "managed_blueprints_list",
            "managed_blueprints_partial_update",
            "managed_blueprints_retrieve",
            "managed_blueprints_update",
            "policies_all_destroy",
            "policies_all_list",
            "policies_all_retrieve",
            "policies_all_test_create",
            "policies_all_types_list",
            "policies_bindings_create",
            "policies_bindings_destroy",
            "policies_bindings_list",
            "policies_bindings_partial_update",
            "policies_bindings_retrieve",
            "policies_bindings_update",
            "policies_dummy_create",
            "policies_dummy_destroy",
            "policies_dummy_list",
            "policies_dummy_partial_update",
            "policies_dummy_retrieve",
            "policies_dummy_update",
            "policies_event_matcher_create",
            "policies_event_matcher_destroy",
            "policies_event_matcher_list",
            "policies_event_matcher_partial_update",
            "policies_event_matcher_retrieve",
            "policies_event_matcher_update",
            "policies_expression_create",
            "policies_expression_destroy",
            "policies_expression_list",
            "policies_expression_partial_update",
            "policies_expression_retrieve",
            "policies_expression_update",
            "policies_password_create",
            "policies_password_destroy",
            "policies_password_expiry_create",
            "policies_password_expiry_destroy",
            "policies_password_expiry_list",
            "policies_password_expiry_partial_update",
            "policies_password_expiry_retrieve",
            "policies_password_expiry_update",
            "policies_password_list",
            "policies_password_partial_update",
            "policies_password_retrieve",
            "policies_password_update",
            "policies_reputation_create",
            "policies_reputation_destroy",
            "policies_reputation_list",
            "policies_reputation_partial_update",
            "policies_reputation_retrieve",
            "policies_reputation_update",
            "propertymappings_provider_scope_create",
            "propertymappings_provider_scope_destroy",
            "propertymappings_provider_scope_list",
            "propertymappings_provider_scope_partial_update",
            "propertymappings_provider_scope_retrieve",
            "propertymappings_provider_scope_update",
            "providers_all_destroy",
            "providers_all_list",
            "providers_all_retrieve",
            "providers_all_types_list",
            "providers_oauth2_create",
            "providers_oauth2_destroy",
            "providers_oauth2_list",
            "providers_oauth2_partial_update",
            "providers_oauth2_retrieve",
            "providers_oauth2_update",
            "stages_all_destroy",
            "stages_all_list",
            "stages_all_retrieve",
            "stages_all_types_list",
            "stages_consent_create",
            "stages_consent_destroy",
            "stages_consent_list",
            "stages_consent_partial_update",
            "stages_consent_retrieve",
            "stages_consent_update",
            "stages_deny_create",
            "stages_deny_destroy",
            "stages_deny_list",
            "stages_deny_partial_update",
            "stages_deny_retrieve",
            "stages_deny_update",
            "stages_dummy_create",
            "stages_dummy_destroy",
            "stages_dummy_list",
            "stages_dummy_partial_update",
            "stages_dummy_retrieve",
            "stages_dummy_update",
            "stages_identification_create",
            "stages_identification_destroy",
            "stages_identification_list",
            "stages_identification_partial_update",
            "stages_identification_retrieve",
            "stages_identification_update",
            "stages_password_create",
            "stages_password_destroy",
            "stages_password_list",
            "stages_password_partial_update",
            "stages_password_retrieve",
            "stages_password_update",
            "stages_prompt_prompts_create",
            "stages_prompt_prompts_destroy",
            "stages_prompt_prompts_list",
            "stages_prompt_prompts_partial_update",
            "stages_prompt_prompts_retrieve",
            "stages_prompt_prompts_update",
            "stages_prompt_stages_create",
            "stages_prompt_stages_destroy",
            "stages_prompt_stages_list",
            "stages_prompt_stages_partial_update",
            "stages_prompt_stages_retrieve",
            "stages_prompt_stages_update",
            "stages_redirect_create",
            "stages_redirect_destroy",
            "stages_redirect_list",
            "stages_redirect_partial_update",
            "stages_redirect_retrieve",
            "stages_redirect_update",
            "stages_user_login_create",
            "stages_user_login_destroy",
            "stages_user_login_list",
            "stages_user_login_partial_update",
            "stages_user_login_retrieve",
            "stages_user_login_update",
            "stages_user_logout_create",
            "stages_user_logout_destroy",
            "stages_user_logout_list",
            "stages_user_logout_partial_update",
            "stages_user_logout_retrieve",
            "stages_user_logout_update",
            "stages_user_write_create",
            "stages_user_write_destroy",
            "stages_user_write_list",
            "stages_user_write_partial_update",
            "stages_user_write_retrieve",
            "stages_user_write_update",
        ];
        assert_eq!(ids, expected);
    }
}
