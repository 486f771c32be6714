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
use crate::api::{applications, brands, certificates, events, groups, tokens, users};
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
