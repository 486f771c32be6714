//! Blueprint models for flows, stage bindings, stages, prompts, policies and policy bindings,
//! under authentik's names. Each goes through the same validation as the API (the API modules'
//! shared `create_*`/`update_*` functions), so a blueprint can't store what the API would refuse.

use portcullis_blueprint::{Found, ModelError, ModelHandler};
use portcullis_flow::{PolicyKind, StageKind};
use portcullis_store::{
    FlowBindingFilter, FlowFilter, PolicyBindingFilter, PolicyFilter, StageFilter,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Context, from_api, from_store, one_page, request, text, to_json, unsupported};
use crate::api::{flows, policies, prompts, stages};

fn uuid_of(field: &str, v: &Value) -> Result<Uuid, ModelError> {
    v.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ModelError::field(field, "Must be a valid UUID."))
}

fn int_of(field: &str, v: &Value) -> Result<i32, ModelError> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| ModelError::field(field, "A valid integer is required."))
}

fn pk(existing: &Found) -> Result<Uuid, ModelError> {
    uuid_of("pk", &existing.pk)
}

// ---------------------------------------------------------------------------------- flows

pub(super) struct FlowModel;

async fn flow_found(ctx: &Context, f: &portcullis_core::Flow) -> Result<Found, ModelError> {
    let s = flows::flow_serializer(&ctx.state.store, f)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(f.uuid.to_string()),
        object: to_json(&s)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for FlowModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = FlowFilter::default();
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "slug" => f.slug = Some(text(k, v)?),
                "name" => f.name = Some(text(k, v)?),
                "pk" | "flow_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported("flow", other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(u) => match store.find_flow(u).await {
                Ok(fl) => Some(fl),
                Err(portcullis_store::StoreError::NotFound) => None,
                Err(e) => return Err(from_store(e)),
            },
            None => store
                .list_flows(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(fl) => Ok(Some(flow_found(ctx, &fl).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let f = flows::create_flow(&ctx.state.store, &ctx.actor, request(fields)?)
            .await
            .map_err(from_api)?;
        flow_found(ctx, &f).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store.find_flow(pk(existing)?).await.map_err(from_store)?;
        let f = flows::update_flow(store, &ctx.actor, cur, request(attrs)?, true)
            .await
            .map_err(from_api)?;
        flow_found(ctx, &f).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_flow(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ----------------------------------------------------------------------- flow stage bindings

pub(super) struct FlowBindingModel;

async fn binding_found(
    ctx: &Context,
    b: &portcullis_core::FlowStageBinding,
) -> Result<Found, ModelError> {
    let s = flows::binding_serializer(&ctx.state.store, b)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(b.uuid.to_string()),
        object: to_json(&s)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for FlowBindingModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = FlowBindingFilter::default();
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "target" => f.target = Some(uuid_of(k, v)?),
                "stage" => f.stage = Some(uuid_of(k, v)?),
                "order" => f.order = Some(int_of(k, v)?),
                "pk" | "fsb_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported("flowstagebinding", other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(u) => store.find_flow_binding(u).await.ok(),
            None => store
                .list_flow_bindings(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(b) => Ok(Some(binding_found(ctx, &b).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let b = flows::create_binding(&ctx.state.store, &ctx.actor, request(fields)?)
            .await
            .map_err(from_api)?;
        binding_found(ctx, &b).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store
            .find_flow_binding(pk(existing)?)
            .await
            .map_err(from_store)?;
        let b = flows::update_binding(store, &ctx.actor, cur, request(attrs)?, true)
            .await
            .map_err(from_api)?;
        binding_found(ctx, &b).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_flow_binding(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ---------------------------------------------------------------------------------- stages

pub(super) struct StageModel(pub &'static StageKind);

async fn stage_found(ctx: &Context, s: &portcullis_core::Stage) -> Result<Found, ModelError> {
    let ser = stages::stage_serializer(&ctx.state.store, s, true)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(s.uuid.to_string()),
        object: to_json(&ser)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for StageModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = StageFilter {
            kinds: vec![self.0.model.to_owned()],
            ..Default::default()
        };
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "name" => f.name = Some(text(k, v)?),
                "pk" | "stage_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported(self.0.model, other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(u) => store
                .find_stage(u)
                .await
                .ok()
                .filter(|s| s.kind == self.0.model),
            None => store
                .list_stages(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(s) => Ok(Some(stage_found(ctx, &s).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let s = stages::create_stage(&ctx.state.store, &ctx.actor, self.0, fields.clone())
            .await
            .map_err(from_api)?;
        stage_found(ctx, &s).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store.find_stage(pk(existing)?).await.map_err(from_store)?;
        let s = stages::update_stage(store, &ctx.actor, &cur, attrs.clone(), true)
            .await
            .map_err(from_api)?;
        stage_found(ctx, &s).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_stage(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// --------------------------------------------------------------------------------- prompts

pub(super) struct PromptModel;

async fn prompt_found(ctx: &Context, p: &portcullis_core::Prompt) -> Result<Found, ModelError> {
    let ser = prompts::prompt_serializer(&ctx.state.store, p)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(p.uuid.to_string()),
        object: to_json(&ser)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for PromptModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut name = None;
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "name" => name = Some(text(k, v)?),
                "pk" | "prompt_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported("prompt", other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(u) => store.find_prompt(u).await.ok(),
            None => store
                .list_prompts(name.as_deref(), &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(p) => Ok(Some(prompt_found(ctx, &p).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let p = prompts::create_prompt(&ctx.state.store, &ctx.actor, request(fields)?)
            .await
            .map_err(from_api)?;
        prompt_found(ctx, &p).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store.find_prompt(pk(existing)?).await.map_err(from_store)?;
        let p = prompts::update_prompt(store, &ctx.actor, &cur, request(attrs)?, true)
            .await
            .map_err(from_api)?;
        prompt_found(ctx, &p).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_prompt(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// -------------------------------------------------------------------------------- policies

pub(super) struct PolicyModel(pub &'static PolicyKind);

async fn policy_found(ctx: &Context, p: &portcullis_core::Policy) -> Result<Found, ModelError> {
    let ser = policies::policy_serializer(&ctx.state.store, p, true)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(p.uuid.to_string()),
        object: to_json(&ser)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for PolicyModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = PolicyFilter {
            kinds: vec![self.0.model.to_owned()],
            ..Default::default()
        };
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                "name" => f.name = Some(text(k, v)?),
                "pk" | "policy_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported(self.0.model, other)),
            }
        }
        let store = &ctx.state.store;
        let found = match by_pk {
            Some(u) => store
                .find_policy(u)
                .await
                .ok()
                .filter(|p| p.kind == self.0.model),
            None => store
                .list_policies(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(p) => Ok(Some(policy_found(ctx, &p).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let p = policies::create_policy(&ctx.state.store, &ctx.actor, self.0, fields.clone())
            .await
            .map_err(from_api)?;
        policy_found(ctx, &p).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store.find_policy(pk(existing)?).await.map_err(from_store)?;
        let p = policies::update_policy(store, &ctx.actor, &cur, attrs.clone(), true)
            .await
            .map_err(from_api)?;
        policy_found(ctx, &p).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_policy(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ------------------------------------------------------------------------- policy bindings

pub(super) struct PolicyBindingModel;

async fn pb_found(ctx: &Context, b: &portcullis_core::PolicyBinding) -> Result<Found, ModelError> {
    let ser = policies::binding_serializer(&ctx.state, b)
        .await
        .map_err(from_api)?;
    Ok(Found {
        pk: Value::from(b.uuid.to_string()),
        object: to_json(&ser)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for PolicyBindingModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let store = &ctx.state.store;
        let mut f = PolicyBindingFilter::default();
        let mut by_pk = None;
        for (k, v) in query {
            match k.as_str() {
                // A flow's or stage binding's uuid stands for its policy binding model.
                "target" => {
                    f.target = Some(
                        policies::resolve_target(store, uuid_of(k, v)?)
                            .await
                            .map_err(from_api)?,
                    )
                }
                "policy" => f.policy = Some(uuid_of(k, v)?),
                "group" => f.group = Some(uuid_of(k, v)?),
                "user" => f.user = Some(int_of(k, v)?),
                "order" => f.order = Some(int_of(k, v)?),
                "pk" | "policy_binding_uuid" => by_pk = Some(uuid_of(k, v)?),
                other => return Err(unsupported("policybinding", other)),
            }
        }
        let found = match by_pk {
            Some(u) => store.find_policy_binding(u).await.ok(),
            None => store
                .list_policy_bindings(&f, &one_page())
                .await
                .map_err(from_store)?
                .items
                .into_iter()
                .next(),
        };
        match found {
            Some(b) => Ok(Some(pb_found(ctx, &b).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let b = policies::create_binding(&ctx.state.store, &ctx.actor, request(fields)?)
            .await
            .map_err(from_api)?;
        pb_found(ctx, &b).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let store = &ctx.state.store;
        let cur = store
            .find_policy_binding(pk(existing)?)
            .await
            .map_err(from_store)?;
        let b = policies::update_binding(store, &ctx.actor, cur, request(attrs)?, true)
            .await
            .map_err(from_api)?;
        pb_found(ctx, &b).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_policy_binding(pk(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}
