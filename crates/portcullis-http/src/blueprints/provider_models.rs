//! Blueprint models for OAuth2 providers and scope mappings, under authentik's names
//! (`authentik_providers_oauth2.oauth2provider`, `authentik_providers_oauth2.scopemapping`).
//! Each goes through the API's own validation (`create_*`/`update_*` of the API modules).

use portcullis_blueprint::{Found, ModelError, ModelHandler};
use portcullis_oauth::provider::{KIND, SCOPE_MAPPING_KIND};
use portcullis_store::{PropertyMappingFilter, ProviderFilter};
use serde_json::{Map, Value};

use super::{
    Context, from_api, from_store, one_page, pk_i32, pk_uuid, request, text, to_json, unsupported,
    uuid_of,
};
use crate::api::{property_mappings, providers};

// ------------------------------------------------------------------------------ providers

pub(super) struct OAuth2ProviderModel;

async fn provider_found(ctx: &Context, p: &portcullis_core::Provider) -> Result<Found, ModelError> {
    let s = providers::oauth2_serializer(&ctx.state, p)
        .await
        .map_err(from_api)?;
    let mut object = to_json(&s)?;
    // A redirect URI's type defaults to `authorization`: left out, so a blueprint that does
    // not name it compares equal and applying it twice changes nothing.
    if let Some(uris) = object
        .get_mut("redirect_uris")
        .and_then(Value::as_array_mut)
    {
        for u in uris {
            if let Some(o) = u.as_object_mut()
                && o.get("redirect_uri_type").and_then(Value::as_str) == Some("authorization")
            {
                o.remove("redirect_uri_type");
            }
        }
    }
    Ok(Found {
        pk: Value::from(p.pk),
        object,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for OAuth2ProviderModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = ProviderFilter {
            kinds: vec![KIND.to_owned()],
            ..Default::default()
        };
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "name" => f.name = Some(text(k, v)?),
                "client_id" => f.client_id = Some(text(k, v)?),
                "pk" | "id" => {
                    by_pk = Some(
                        v.as_i64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| ModelError::field(k, "A valid integer is required."))?,
                    );
                }
                other => return Err(unsupported("oauth2provider", other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(pk) => providers::find_oauth2(store, pk).await.ok(),
            None => store
                .list_providers(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(p) => Ok(Some(provider_found(ctx, &p).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let p = providers::create_oauth2(&ctx.state, &ctx.actor, request(fields)?)
            .await
            .map_err(from_api)?;
        provider_found(ctx, &p).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let cur = providers::find_oauth2(&ctx.state.store, pk_i32(existing)?)
            .await
            .map_err(from_api)?;
        let p = providers::update_oauth2(&ctx.state, &ctx.actor, &cur, request(attrs)?, true)
            .await
            .map_err(from_api)?;
        provider_found(ctx, &p).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_provider(pk_i32(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ------------------------------------------------------------------------- scope mappings

pub(super) struct ScopeMappingModel;

fn mapping_found(m: &portcullis_core::PropertyMapping) -> Result<Found, ModelError> {
    Ok(Found {
        pk: Value::from(m.uuid.to_string()),
        object: to_json(&property_mappings::scope_mapping_serializer(m))?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for ScopeMappingModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let store = &ctx.state.store;
        let mut name = None;
        let mut scope_name = None;
        for (k, v) in query {
            match k.as_str() {
                "managed" => {
                    let managed = text(k, v)?;
                    return match store.find_property_mapping_by_managed(&managed).await {
                        Ok(m) if m.kind == SCOPE_MAPPING_KIND => Ok(Some(mapping_found(&m)?)),
                        Ok(_) | Err(portcullis_store::StoreError::NotFound) => Ok(None),
                        Err(e) => Err(from_store(e)),
                    };
                }
                "pk" | "pm_uuid" => {
                    let found = property_mappings::find_scope_mapping(store, uuid_of(k, v)?)
                        .await
                        .ok();
                    return found.as_ref().map(mapping_found).transpose();
                }
                "name" => name = Some(text(k, v)?),
                "scope_name" => scope_name = Some(text(k, v)?),
                other => return Err(unsupported("scopemapping", other)),
            }
        }
        let f = PropertyMappingFilter {
            name,
            kinds: vec![SCOPE_MAPPING_KIND.to_owned()],
            ..Default::default()
        };
        let all = crate::api::everything();
        let page = store
            .list_property_mappings(&f, &all)
            .await
            .map_err(from_store)?;
        page.items
            .iter()
            .find(|m| {
                scope_name
                    .as_deref()
                    .is_none_or(|s| m.config.get("scope_name").and_then(Value::as_str) == Some(s))
            })
            .map(mapping_found)
            .transpose()
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let m =
            property_mappings::create_scope_mapping(&ctx.state.store, &ctx.actor, request(fields)?)
                .await
                .map_err(from_api)?;
        mapping_found(&m)
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = property_mappings::find_scope_mapping(store, pk_uuid(existing)?)
            .await
            .map_err(from_api)?;
        let m =
            property_mappings::update_scope_mapping(store, &ctx.actor, &cur, request(attrs)?, true)
                .await
                .map_err(from_api)?;
        mapping_found(&m)
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_property_mapping(pk_uuid(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}
