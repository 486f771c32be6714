//! The models blueprints can write, under authentik's names, validated exactly as the API
//! validates them (they call the same functions as the API's handlers), and the one-transaction
//! apply around the engine of `portcullis-blueprint`.
//!
//! | model | found by |
//! |---|---|
//! | `authentik_core.user` | `pk`, `username`, `email`, `name`, `path`, `uuid` |
//! | `authentik_core.group` | `pk`, `name` |
//! | `authentik_core.application` | `slug`, `name`, `group` |
//! | `authentik_core.token` | `identifier`, `managed` |
//! | `authentik_crypto.certificatekeypair` | `pk`, `name` (authentik's self-signed name too), `managed` |
//! | `authentik_brands.brand` | `pk` / `brand_uuid`, `domain` |
//! | `authentik_providers_oauth2.oauth2provider` | `pk`, `name`, `client_id` |
//! | `authentik_providers_oauth2.scopemapping` | `managed`, `pk`, `name`, `scope_name` |

use portcullis_blueprint::{
    ApplyOptions, ApplyReport, Blueprint, BlueprintError, Found, ModelError, ModelHandler, Registry,
};
use portcullis_core::{Actor, CertificateKeyPair, NewCertificateKeyPair, NewToken, TokenIntent};
use portcullis_store::{ApplicationFilter, ListQuery, StoreError, UserFilter};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::AppState;
use crate::api::{applications, brands, certificates, groups, tokens, users};
use crate::error::ApiError;
use crate::serializers::{
    ApplicationRequest, ApplicationSerializer, BrandRequest, BrandSerializer,
    CertificateKeyPairSerializer, GroupIncludes, GroupRequest, TokenRequest, UserRequest,
    UserSerializer,
};

/// What the models work with: the state over one unit of work's store, and who applies.
pub struct Context {
    pub state: AppState,
    pub actor: Actor,
    /// How deep `metaapplyblueprint` entries have nested.
    pub depth: std::sync::atomic::AtomicUsize,
}

/// How deep blueprints may apply each other.
pub const MAX_META_DEPTH: usize = 8;

/// Every model blueprints know, under authentik's names.
pub fn registry() -> Registry<Context> {
    let mut r = Registry::default();
    r.register("authentik_core.user", UserModel)
        .register("authentik_core.group", GroupModel)
        .register("authentik_core.application", ApplicationModel)
        .register("authentik_core.token", TokenModel)
        .register(
            "authentik_crypto.certificatekeypair",
            CertificateKeyPairModel,
        )
        .register("authentik_brands.brand", BrandModel)
        .register(
            "authentik_blueprints.metaapplyblueprint",
            MetaApplyBlueprint,
        )
        .register("authentik_flows.flow", flow_models::FlowModel)
        .register(
            "authentik_flows.flowstagebinding",
            flow_models::FlowBindingModel,
        )
        .register("authentik_stages_prompt.prompt", flow_models::PromptModel)
        .register(
            "authentik_policies.policybinding",
            flow_models::PolicyBindingModel,
        )
        .register(
            "authentik_providers_oauth2.oauth2provider",
            provider_models::OAuth2ProviderModel,
        )
        .register(
            "authentik_providers_oauth2.scopemapping",
            provider_models::ScopeMappingModel,
        );
    for k in portcullis_flow::STAGE_KINDS {
        r.register(
            &format!("{}.{}", k.app, k.model),
            flow_models::StageModel(k),
        );
    }
    for k in portcullis_flow::POLICY_KINDS {
        r.register(
            &format!("{}.{}", k.app, k.model),
            flow_models::PolicyModel(k),
        );
    }
    r
}

mod flow_models;
mod provider_models;

/// Applies `bp` in one transaction: all of it or nothing.
pub async fn apply_blueprint(
    state: &AppState,
    bp: &Blueprint,
    options: &ApplyOptions<'_>,
) -> Result<ApplyReport, BlueprintError> {
    let store_error = |e: StoreError| {
        BlueprintError::new(
            portcullis_blueprint::Location {
                file: bp.source.clone(),
                ..Default::default()
            },
            portcullis_blueprint::ErrorKind::Store(e.to_string()),
        )
    };
    let registry = registry();
    portcullis_blueprint::check_models(bp, &registry)?;
    let unit = state.store.begin_unit().await.map_err(store_error)?;
    let ctx = Context {
        state: state.with_store(unit.store().clone()),
        actor: Actor::system(),
        depth: std::sync::atomic::AtomicUsize::new(0),
    };
    match portcullis_blueprint::apply(bp, &registry, &ctx, options).await {
        Ok(report) => {
            drop(ctx);
            unit.commit().await.map_err(store_error)?;
            Ok(report)
        }
        Err(e) => {
            drop(ctx);
            unit.rollback().await.map_err(store_error)?;
            Err(e)
        }
    }
}

fn from_api(e: ApiError) -> ModelError {
    match e {
        ApiError::Validation(errors) => {
            let mut it = errors.0.into_iter();
            match it.next() {
                Some((field, messages)) => ModelError::field(field, messages.join(" ")),
                None => ModelError::new("invalid"),
            }
        }
        ApiError::NotFound => ModelError::new("object not found"),
        ApiError::BadRequest(m) => ModelError::new(m),
        other => ModelError::new(format!("{other:?}")),
    }
}

fn from_store(e: StoreError) -> ModelError {
    from_api(ApiError::from(e))
}

/// Reads attrs into an API request type, naming the field that does not fit.
fn request<T: DeserializeOwned>(fields: &Map<String, Value>) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(Value::Object(fields.clone())).map_err(|e| {
        let path = e.path().to_string();
        let field = path.split(['.', '[']).next().unwrap_or("").to_owned();
        ModelError::field(
            if field.is_empty() || field == "?" {
                "attrs".to_owned()
            } else {
                field
            },
            e.inner().to_string(),
        )
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ModelError> {
    serde_json::to_value(v).map_err(|e| ModelError::new(e.to_string()))
}

fn text(field: &str, v: &Value) -> Result<String, ModelError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ModelError::field(field, "expected a string")),
    }
}

fn uuid_of(field: &str, v: &Value) -> Result<Uuid, ModelError> {
    text(field, v)?
        .parse()
        .map_err(|_| ModelError::field(field, "expected a UUID"))
}

fn unsupported(model: &str, field: &str) -> ModelError {
    ModelError::field(field, format!("{model} cannot be looked up by {field}"))
}

fn one_page() -> ListQuery {
    ListQuery {
        page: portcullis_core::PageRequest {
            page: 1,
            page_size: 1,
        },
        ..Default::default()
    }
}

fn pk_i32(found: &Found) -> Result<i32, ModelError> {
    found
        .pk
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| ModelError::new("bad primary key"))
}

fn pk_uuid(found: &Found) -> Result<Uuid, ModelError> {
    uuid_of("pk", &found.pk)
}

// ------------------------------------------------------------------------------------ users

struct UserModel;

impl UserModel {
    fn found(ctx: &Context, u: &portcullis_store::UserWithGroups) -> Result<Found, ModelError> {
        Ok(Found {
            pk: Value::from(u.user.pk),
            object: to_json(&UserSerializer::new(&ctx.state, u, true, true))?,
        })
    }

    /// Sets the `password` attribute, which the API does not take inline (it has
    /// `set_password/`) but authentik's user blueprints do.
    async fn set_password(
        ctx: &Context,
        pk: i32,
        password: Option<&Value>,
    ) -> Result<(), ModelError> {
        let Some(p) = password else { return Ok(()) };
        let p = match p {
            Value::Null => return Ok(()),
            Value::String(s) if !s.is_empty() && s.len() <= users::MAX_PASSWORD_LEN => s.clone(),
            _ => {
                return Err(ModelError::field(
                    "password",
                    "expected a non-empty string of at most 1024 characters",
                ));
            }
        };
        let hash = ctx
            .state
            .hasher
            .hash(p)
            .await
            .map_err(|e| ModelError::new(e.to_string()))?;
        ctx.state
            .store
            .set_password(pk, Some(hash), &ctx.actor)
            .await
            .map_err(from_store)
    }
}

#[async_trait::async_trait]
impl ModelHandler<Context> for UserModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = UserFilter::default();
        for (k, v) in query {
            match k.as_str() {
                "pk" | "id" => {
                    f.pk = Some(
                        v.as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| ModelError::field(k, "expected an integer"))?,
                    )
                }
                "uuid" => f.uuid = Some(uuid_of(k, v)?),
                "username" => f.username = Some(text(k, v)?),
                "email" => f.email = Some(text(k, v)?),
                "name" => f.name = Some(text(k, v)?),
                "path" => f.path = Some(text(k, v)?),
                other => return Err(unsupported("user", other)),
            }
        }
        let page = ctx
            .state
            .store
            .list_users(&f, &one_page())
            .await
            .map_err(from_store)?;
        page.items.first().map(|u| Self::found(ctx, u)).transpose()
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let mut fields = fields.clone();
        let password = fields.remove("password");
        let u = users::create_user(
            &ctx.state.store,
            &ctx.actor,
            request::<UserRequest>(&fields)?,
        )
        .await
        .map_err(from_api)?;
        Self::set_password(ctx, u.user.pk, password.as_ref()).await?;
        Self::found(
            ctx,
            &ctx.state
                .store
                .find_user(u.user.pk)
                .await
                .map_err(from_store)?,
        )
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let pk = pk_i32(existing)?;
        let mut attrs = attrs.clone();
        let password = attrs.remove("password");
        if !attrs.is_empty() {
            users::update_user(
                &ctx.state.store,
                &ctx.actor,
                pk,
                request::<UserRequest>(&attrs)?,
                true,
            )
            .await
            .map_err(from_api)?;
        }
        if password.is_some() && !password_matches(ctx, pk, password.as_ref()).await {
            Self::set_password(ctx, pk, password.as_ref()).await?;
        }
        Self::found(
            ctx,
            &ctx.state.store.find_user(pk).await.map_err(from_store)?,
        )
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_user(pk_i32(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }

    async fn is_unchanged(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> bool {
        let password = attrs.get("password");
        portcullis_blueprint::attrs_match(&existing.object, attrs, &["password"])
            && (password.is_none()
                || password_matches(ctx, pk_i32(existing).unwrap_or(-1), password).await)
    }
}

/// Whether the user's password already is `password` (so that applying twice writes nothing).
async fn password_matches(ctx: &Context, pk: i32, password: Option<&Value>) -> bool {
    match password {
        None | Some(Value::Null) => true,
        Some(Value::String(p)) => crate::credentials::verify_user_password(&ctx.state, Some(pk), p)
            .await
            .unwrap_or(false),
        Some(_) => false,
    }
}

// ----------------------------------------------------------------------------------- groups

struct GroupModel;

const GROUP_INCLUDES: GroupIncludes = GroupIncludes {
    users: true,
    parents: false,
    children: false,
    inherited_roles: false,
};

impl GroupModel {
    async fn found(
        ctx: &Context,
        g: &portcullis_store::GroupWithMembers,
    ) -> Result<Found, ModelError> {
        let s = groups::serialize(&ctx.state, g, GROUP_INCLUDES)
            .await
            .map_err(from_api)?;
        Ok(Found {
            pk: Value::from(g.group.uuid.to_string()),
            object: to_json(&s)?,
        })
    }

    /// authentik's older single `parent` attribute is the first of `parents`.
    fn normalize(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut fields = fields.clone();
        if let Some(parent) = fields.remove("parent") {
            fields.insert(
                "parents".into(),
                if parent.is_null() {
                    Value::Array(vec![])
                } else {
                    Value::Array(vec![parent])
                },
            );
        }
        fields
    }
}

#[async_trait::async_trait]
impl ModelHandler<Context> for GroupModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut found: Option<portcullis_store::GroupWithMembers> = None;
        for (k, v) in query {
            let g = match k.as_str() {
                "pk" | "group_uuid" => ctx.state.store.find_group(uuid_of(k, v)?).await,
                "name" => ctx.state.store.find_group_by_name(&text(k, v)?).await,
                other => return Err(unsupported("group", other)),
            };
            match g {
                Ok(g) if found.as_ref().is_none_or(|f| f.group.uuid == g.group.uuid) => {
                    found = Some(g)
                }
                Ok(_) | Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(from_store(e)),
            }
        }
        match found {
            Some(g) => Ok(Some(Self::found(ctx, &g).await?)),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let r = request::<GroupRequest>(&Self::normalize(fields))?;
        let g = groups::create_group(&ctx.state.store, &ctx.actor, r)
            .await
            .map_err(from_api)?;
        Self::found(ctx, &g).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let r = request::<GroupRequest>(&Self::normalize(attrs))?;
        let g = groups::update_group(&ctx.state.store, &ctx.actor, pk_uuid(existing)?, r, true)
            .await
            .map_err(from_api)?;
        Self::found(ctx, &g).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_group(pk_uuid(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }

    async fn is_unchanged(
        &self,
        _ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> bool {
        portcullis_blueprint::attrs_match(&existing.object, &Self::normalize(attrs), &[])
    }
}

// ----------------------------------------------------------------------------- applications

struct ApplicationModel;

fn app_found(a: &portcullis_core::Application) -> Result<Found, ModelError> {
    Ok(Found {
        pk: Value::from(a.uuid.to_string()),
        object: to_json(&ApplicationSerializer::from(a))?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for ApplicationModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut f = ApplicationFilter::default();
        for (k, v) in query {
            match k.as_str() {
                "slug" => f.slug = Some(text(k, v)?),
                "name" => f.name = Some(text(k, v)?),
                "group" => f.group = Some(text(k, v)?),
                other => return Err(unsupported("application", other)),
            }
        }
        let page = ctx
            .state
            .store
            .list_applications(&f, &one_page())
            .await
            .map_err(from_store)?;
        page.items.first().map(app_found).transpose()
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let a = applications::create_application(
            &ctx.state.store,
            &ctx.actor,
            request::<ApplicationRequest>(fields)?,
        )
        .await
        .map_err(from_api)?;
        app_found(&a)
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let slug = existing
            .object
            .get("slug")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let a = applications::update_application(
            &ctx.state.store,
            &ctx.actor,
            &slug,
            request::<ApplicationRequest>(attrs)?,
            true,
        )
        .await
        .map_err(from_api)?;
        app_found(&a)
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        let slug = existing
            .object
            .get("slug")
            .and_then(Value::as_str)
            .unwrap_or_default();
        ctx.state
            .store
            .delete_application(slug, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ----------------------------------------------------------------------------------- brands

struct BrandModel;

fn brand_found(b: &portcullis_core::Brand) -> Result<Found, ModelError> {
    Ok(Found {
        pk: Value::from(b.uuid.to_string()),
        object: to_json(&BrandSerializer::from(b))?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for BrandModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let brands = ctx.state.store.all_brands().await.map_err(from_store)?;
        let mut matches: Vec<&portcullis_core::Brand> = brands.iter().collect();
        for (k, v) in query {
            match k.as_str() {
                "pk" | "brand_uuid" => {
                    let u = uuid_of(k, v)?;
                    matches.retain(|b| b.uuid == u);
                }
                "domain" => {
                    let d = text(k, v)?;
                    matches.retain(|b| b.domain == d);
                }
                "default" => {
                    let d = v
                        .as_bool()
                        .ok_or_else(|| ModelError::field(k, "expected a boolean"))?;
                    matches.retain(|b| b.default == d);
                }
                other => return Err(unsupported("brand", other)),
            }
        }
        matches.first().map(|b| brand_found(b)).transpose()
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        brand_found(
            &brands::create_brand(
                &ctx.state.store,
                &ctx.actor,
                request::<BrandRequest>(fields)?,
            )
            .await
            .map_err(from_api)?,
        )
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let b = brands::update_brand(
            &ctx.state.store,
            &ctx.actor,
            pk_uuid(existing)?,
            request::<BrandRequest>(attrs)?,
            true,
        )
        .await
        .map_err(from_api)?;
        brand_found(&b)
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_brand(pk_uuid(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }
}

// ----------------------------------------------------------------------------------- tokens

struct TokenModel;

async fn token_found(ctx: &Context, t: &portcullis_core::Token) -> Result<Found, ModelError> {
    let s = tokens::serialize(&ctx.state, t).await.map_err(from_api)?;
    Ok(Found {
        pk: Value::from(t.uuid.to_string()),
        object: to_json(&s)?,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for TokenModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut identifier = None;
        for (k, v) in query {
            match k.as_str() {
                "identifier" => identifier = Some(text(k, v)?),
                "managed" => {
                    let filter = portcullis_store::TokenFilter {
                        managed: Some(text(k, v)?),
                        ..Default::default()
                    };
                    let page = ctx
                        .state
                        .store
                        .list_tokens(&filter, &one_page())
                        .await
                        .map_err(from_store)?;
                    match page.items.first() {
                        Some(t) if identifier.as_ref().is_none_or(|i| *i == t.identifier) => {
                            identifier = Some(t.identifier.clone())
                        }
                        _ => return Ok(None),
                    }
                }
                other => return Err(unsupported("token", other)),
            }
        }
        let Some(identifier) = identifier else {
            return Ok(None);
        };
        match ctx.state.store.find_token(&identifier).await {
            Ok(t) => Ok(Some(token_found(ctx, &t).await?)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(from_store(e)),
        }
    }

    /// Blueprints may give the key itself (authentik's bootstrap does: `key: !Env ...`).
    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let mut fields = fields.clone();
        let key = match fields.remove("key") {
            None | Some(Value::Null) => portcullis_crypto::random_string(tokens::TOKEN_KEY_LEN),
            Some(Value::String(k)) if (8..=512).contains(&k.len()) => k,
            Some(_) => {
                return Err(ModelError::field(
                    "key",
                    "expected a string of 8 to 512 characters",
                ));
            }
        };
        let r = request::<TokenRequest>(&fields)?;
        let mut errors = portcullis_core::FieldErrors::new();
        crate::api::require(
            &mut errors,
            &[
                ("identifier", r.identifier.is_some()),
                ("user", r.user.is_some()),
            ],
        );
        tokens::validate_request(&r, &mut errors);
        crate::api::check(errors).map_err(from_api)?;
        let user_pk = r.user.unwrap_or_default();
        if let Err(StoreError::NotFound) = ctx.state.store.find_user(user_pk).await {
            return Err(ModelError::field(
                "user",
                "Invalid pk - object does not exist.",
            ));
        }
        let expiring = r.expiring.unwrap_or(true);
        let expires = match r.expires {
            Some(e) => e,
            None if expiring => Some(
                ctx.state.clock.now()
                    + chrono::Duration::minutes(tokens::DEFAULT_TOKEN_DURATION_MINUTES),
            ),
            None => None,
        };
        let hash = portcullis_crypto::sha256_hex(key.as_bytes());
        let enc = ctx
            .state
            .secrets
            .encrypt_str(&key)
            .map_err(|e| ModelError::new(e.to_string()))?;
        let new = NewToken {
            identifier: r.identifier.unwrap_or_default(),
            intent: r.intent.unwrap_or(TokenIntent::Api),
            user_pk,
            description: r.description.unwrap_or_default(),
            expires,
            expiring,
            managed: r.managed.flatten(),
            key,
        };
        let t = ctx
            .state
            .store
            .create_token(new, hash, enc, &ctx.actor)
            .await
            .map_err(from_store)?;
        token_found(ctx, &t).await
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let mut attrs = attrs.clone();
        attrs.remove("key");
        let r = request::<TokenRequest>(&attrs)?;
        let mut errors = portcullis_core::FieldErrors::new();
        tokens::validate_request(&r, &mut errors);
        crate::api::check(errors).map_err(from_api)?;
        let identifier = existing
            .object
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let patch = portcullis_core::TokenPatch {
            identifier: r.identifier,
            intent: r.intent,
            user_pk: r.user,
            description: r.description,
            expires: r.expires,
            expiring: r.expiring,
        };
        let t = ctx
            .state
            .store
            .update_token(&identifier, patch, &ctx.actor)
            .await
            .map_err(from_store)?;
        token_found(ctx, &t).await
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        let identifier = existing
            .object
            .get("identifier")
            .and_then(Value::as_str)
            .unwrap_or_default();
        ctx.state
            .store
            .delete_token(identifier, &ctx.actor)
            .await
            .map_err(from_store)
    }

    /// The key is never shown, so it cannot be compared: a token's key is set when it is
    /// created and left alone after.
    async fn is_unchanged(
        &self,
        _ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> bool {
        portcullis_blueprint::attrs_match(&existing.object, attrs, &["key"])
    }
}

// ------------------------------------------------------------------------ certificate keypairs

/// authentik's names for the objects every instance makes, mapped to Portcullis' own, so
/// authentik blueprints that refer to them (`!Find [authentik_crypto.certificatekeypair,
/// [name, authentik Self-signed Certificate]]`) find ours.
fn alias_name(name: &str) -> &str {
    match name {
        "authentik Self-signed Certificate" => "Portcullis Self-signed Certificate",
        other => other,
    }
}

struct CertificateKeyPairModel;

fn kp_found(k: &CertificateKeyPair) -> Result<Found, ModelError> {
    let mut object = to_json(&CertificateKeyPairSerializer::from(k))?;
    // Comparable with what blueprints write (the API never shows the key).
    if let Some(o) = object.as_object_mut() {
        o.insert(
            "certificate_data".into(),
            Value::from(k.certificate_pem.clone()),
        );
    }
    Ok(Found {
        pk: Value::from(k.uuid.to_string()),
        object,
    })
}

#[async_trait::async_trait]
impl ModelHandler<Context> for CertificateKeyPairModel {
    async fn find(
        &self,
        ctx: &Context,
        query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        let mut found: Option<CertificateKeyPair> = None;
        for (k, v) in query {
            let kp = match k.as_str() {
                "pk" | "kp_uuid" => {
                    ctx.state
                        .store
                        .find_certificate_keypair(uuid_of(k, v)?)
                        .await
                }
                "name" => {
                    let name = text(k, v)?;
                    ctx.state
                        .store
                        .find_certificate_keypair_by_name(alias_name(&name))
                        .await
                }
                "managed" => {
                    let filter = portcullis_store::CertificateFilter {
                        managed: Some(text(k, v)?),
                        ..Default::default()
                    };
                    match ctx
                        .state
                        .store
                        .list_certificate_keypairs(&filter, &one_page())
                        .await
                    {
                        Ok(p) => p.items.into_iter().next().ok_or(StoreError::NotFound),
                        Err(e) => Err(e),
                    }
                }
                other => return Err(unsupported("certificate keypair", other)),
            };
            match kp {
                Ok(kp) if found.as_ref().is_none_or(|f| f.uuid == kp.uuid) => found = Some(kp),
                Ok(_) | Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(from_store(e)),
            }
        }
        found.as_ref().map(kp_found).transpose()
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let r = request::<crate::serializers::CertificateKeyPairRequest>(fields)?;
        let mut errors = portcullis_core::FieldErrors::new();
        crate::api::require(
            &mut errors,
            &[
                ("name", r.name.is_some()),
                ("certificate_data", r.certificate_data.is_some()),
            ],
        );
        crate::api::check(errors).map_err(from_api)?;
        let cert = r.certificate_data.unwrap_or_default();
        let key = r.key_data.filter(|k| !k.trim().is_empty());
        let facts = certificates::inspect(&cert, key.as_deref())
            .map_err(|e| from_api(ApiError::Validation(e)))?;
        let enc = key
            .map(|k| ctx.state.secrets.encrypt_str(&k))
            .transpose()
            .map_err(|e| ModelError::new(e.to_string()))?;
        let new = NewCertificateKeyPair {
            name: r.name.unwrap_or_default(),
            certificate_pem: cert,
            private_key_encrypted: enc,
            facts,
            managed: fields
                .get("managed")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        kp_found(
            &ctx.state
                .store
                .create_certificate_keypair(new, &ctx.actor)
                .await
                .map_err(from_store)?,
        )
    }

    async fn update(
        &self,
        ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        let r = request::<crate::serializers::CertificateKeyPairRequest>(attrs)?;
        let uuid = pk_uuid(existing)?;
        let current = ctx
            .state
            .store
            .find_certificate_keypair(uuid)
            .await
            .map_err(from_store)?;
        let key = r.key_data.filter(|k| !k.trim().is_empty());
        let certificate = match (&r.certificate_data, &key) {
            (None, None) => None,
            (cert, key) => {
                let cert = cert.clone().unwrap_or(current.certificate_pem);
                let facts = certificates::inspect(&cert, key.as_deref())
                    .map_err(|e| from_api(ApiError::Validation(e)))?;
                Some((cert, facts))
            }
        };
        let patch = portcullis_store::CertificateKeyPairPatch {
            name: r.name,
            certificate,
            private_key_encrypted: key
                .map(|k| ctx.state.secrets.encrypt_str(&k))
                .transpose()
                .map_err(|e| ModelError::new(e.to_string()))?
                .map(Some),
        };
        kp_found(
            &ctx.state
                .store
                .update_certificate_keypair(uuid, patch, &ctx.actor)
                .await
                .map_err(from_store)?,
        )
    }

    async fn delete(&self, ctx: &Context, existing: &Found) -> Result<(), ModelError> {
        ctx.state
            .store
            .delete_certificate_keypair(pk_uuid(existing)?, &ctx.actor)
            .await
            .map_err(from_store)
    }

    /// The private key cannot be read back for comparison without a `secret_view`; a keypair
    /// whose certificate and name match is taken as unchanged.
    async fn is_unchanged(
        &self,
        _ctx: &Context,
        existing: &Found,
        attrs: &Map<String, Value>,
    ) -> bool {
        attrs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "key_data" | "managed"))
            .all(|(k, v)| {
                existing.object.get(k).is_some_and(|cur| match (cur, v) {
                    (Value::String(a), Value::String(b)) if k == "certificate_data" => {
                        a.trim() == b.trim()
                    }
                    _ => portcullis_blueprint::same(cur, v),
                })
            })
    }
}

// -------------------------------------------------------------------- metaapplyblueprint

/// authentik's `authentik_blueprints.metaapplyblueprint`: an entry that applies another
/// blueprint (`identifiers: {path: ...}` or `{name: ...}` of an instance; `required`, default
/// true) inside the same transaction, so the two stand or fall together.
struct MetaApplyBlueprint;

#[async_trait::async_trait]
impl ModelHandler<Context> for MetaApplyBlueprint {
    async fn find(
        &self,
        _ctx: &Context,
        _query: &[(String, Value)],
    ) -> Result<Option<Found>, ModelError> {
        Ok(None)
    }

    async fn create(
        &self,
        ctx: &Context,
        fields: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        use std::sync::atomic::Ordering;
        let required = match fields.get("required") {
            None => true,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| ModelError::field("required", "expected a boolean"))?,
        };
        let ids = fields
            .get("identifiers")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                ModelError::field("identifiers", "expected a mapping with path or name")
            })?;
        let inst = match (ids.get("path"), ids.get("name")) {
            (Some(p), _) => {
                let path = text("identifiers.path", p)?;
                match ctx.state.store.find_blueprint_instance_by_path(&path).await {
                    Ok(i) => Some(i),
                    Err(StoreError::NotFound) => Some(portcullis_core::BlueprintInstance {
                        uuid: Uuid::nil(),
                        name: path.clone(),
                        path,
                        context: json_obj(),
                        last_applied: ctx.state.clock.now(),
                        last_applied_hash: String::new(),
                        status: portcullis_core::BlueprintStatus::Unknown,
                        enabled: true,
                        managed_models: vec![],
                        metadata: json_obj(),
                        content: None,
                        last_error: None,
                    }),
                    Err(e) => return Err(from_store(e)),
                }
            }
            (None, Some(n)) => {
                let name = text("identifiers.name", n)?;
                let page = ctx
                    .state
                    .store
                    .list_blueprint_instances(Some(&name), None, &one_page())
                    .await
                    .map_err(from_store)?;
                page.items.into_iter().next()
            }
            (None, None) => return Err(ModelError::field("identifiers", "expected path or name")),
        };
        let content = inst.as_ref().map(|i| (i, instance_content(&ctx.state, i)));
        let (inst, text) = match content {
            Some((i, Ok(t))) => (i, t),
            Some((_, Err(e))) if required => return Err(ModelError::field("identifiers", e)),
            None if required => return Err(ModelError::field("identifiers", "no such blueprint")),
            _ => {
                return Ok(Found {
                    pk: Value::Null,
                    object: json_obj(),
                });
            }
        };
        if ctx.depth.fetch_add(1, Ordering::SeqCst) >= MAX_META_DEPTH {
            ctx.depth.fetch_sub(1, Ordering::SeqCst);
            return Err(ModelError::field(
                "identifiers",
                format!("blueprints apply each other more than {MAX_META_DEPTH} levels deep"),
            ));
        }
        let source = if inst.path.is_empty() {
            inst.name.clone()
        } else {
            inst.path.clone()
        };
        let result = async {
            let bp = portcullis_blueprint::parse(&text, &source)
                .map_err(|e| ModelError::field("identifiers", e.to_string()))?;
            let env = |name: &str| env_lookup_for(&ctx.state, inst, name);
            let options = ApplyOptions {
                context: inst.context.as_object().cloned().unwrap_or_default(),
                env: &env,
                blueprints_dir: if inst.path.starts_with("builtin/") {
                    None
                } else {
                    ctx.state.blueprints_dir.clone()
                },
            };
            portcullis_blueprint::apply(&bp, &registry(), ctx, &options)
                .await
                .map_err(|e| ModelError::field("identifiers", e.to_string()))
        }
        .await;
        ctx.depth.fetch_sub(1, Ordering::SeqCst);
        result?;
        Ok(Found {
            pk: Value::Null,
            object: json_obj(),
        })
    }

    async fn update(
        &self,
        _ctx: &Context,
        existing: &Found,
        _attrs: &Map<String, Value>,
    ) -> Result<Found, ModelError> {
        Ok(existing.clone())
    }

    async fn delete(&self, _ctx: &Context, _existing: &Found) -> Result<(), ModelError> {
        Ok(())
    }

    fn needs_identifiers(&self) -> bool {
        false
    }
}

// ------------------------------------------------------------------------------- instances

/// Blueprints embedded in the binary, applied at every start in this order, before the files
/// of the blueprints directory.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "builtin/system/bootstrap.yaml",
        include_str!("../blueprints/system/bootstrap.yaml"),
    ),
    (
        "builtin/system/providers-oauth2.yaml",
        include_str!("../blueprints/system/providers-oauth2.yaml"),
    ),
    (
        "builtin/default/flow-default-authentication-flow.yaml",
        include_str!("../blueprints/default/flow-default-authentication-flow.yaml"),
    ),
    (
        "builtin/default/flow-default-invalidation-flow.yaml",
        include_str!("../blueprints/default/flow-default-invalidation-flow.yaml"),
    ),
    (
        "builtin/default/flow-oobe.yaml",
        include_str!("../blueprints/default/flow-oobe.yaml"),
    ),
    (
        "builtin/default/flow-default-user-settings-flow.yaml",
        include_str!("../blueprints/default/flow-default-user-settings-flow.yaml"),
    ),
    (
        "builtin/default/flow-password-change.yaml",
        include_str!("../blueprints/default/flow-password-change.yaml"),
    ),
    (
        "builtin/default/flow-default-provider-authorization.yaml",
        include_str!("../blueprints/default/flow-default-provider-authorization.yaml"),
    ),
];

/// The largest blueprint file read.
const MAX_FILE: u64 = portcullis_blueprint::MAX_BYTES as u64;

/// The text of an instance's blueprint: embedded, stored in the database, or a file inside the
/// blueprints directory (never outside it).
pub fn instance_content(
    state: &AppState,
    inst: &portcullis_core::BlueprintInstance,
) -> Result<String, String> {
    if let Some(c) = &inst.content
        && inst.path.is_empty()
    {
        return Ok(c.clone());
    }
    if let Some((_, text)) = BUILTINS.iter().find(|(p, _)| *p == inst.path) {
        return Ok((*text).to_owned());
    }
    let dir = state
        .blueprints_dir
        .as_ref()
        .ok_or("no blueprints directory is configured")?;
    let file = resolve_in(dir, &inst.path)?;
    let meta = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", inst.path))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{}: larger than {MAX_FILE} bytes", inst.path));
    }
    std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", inst.path))
}

/// `rel` inside `dir`, refusing anything that leaves it (`..`, absolute paths, symlinks out).
fn resolve_in(dir: &std::path::Path, rel: &str) -> Result<std::path::PathBuf, String> {
    let rel_path = std::path::Path::new(rel);
    if rel_path.is_absolute()
        || rel_path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("{rel}: path leaves the blueprints directory"));
    }
    let root = std::fs::canonicalize(dir).map_err(|e| format!("blueprints directory: {e}"))?;
    let file = std::fs::canonicalize(root.join(rel_path)).map_err(|e| format!("{rel}: {e}"))?;
    if !file.starts_with(&root) {
        return Err(format!("{rel}: path leaves the blueprints directory"));
    }
    Ok(file)
}

/// What an apply is judged by: the text and the context together.
fn content_hash(text: &str, context: &Value) -> String {
    portcullis_crypto::sha256_hex(format!("{text}\n{context}").as_bytes())
}

fn env_lookup(state: &AppState, name: &str) -> Option<String> {
    state
        .blueprint_env
        .get(name)
        .cloned()
        .or_else(|| std::env::var(name).ok())
}

/// `!Env` for a blueprint whose text came through the API (stored in the database): the
/// server's own settings (`PORTCULLIS_*`: the secret key, the database URL, bootstrap
/// credentials) are not readable, so an API token cannot turn into the key that protects the
/// data at rest. Files and built-ins, which only the machine's administrator can place, see
/// the whole environment.
fn env_lookup_for(
    state: &AppState,
    inst: &portcullis_core::BlueprintInstance,
    name: &str,
) -> Option<String> {
    let stored = inst.path.is_empty();
    if stored && name.to_ascii_uppercase().starts_with("PORTCULLIS_") {
        return None;
    }
    env_lookup(state, name)
}

/// Applies one instance now and records how it went.
pub async fn apply_instance(
    state: &AppState,
    inst: &portcullis_core::BlueprintInstance,
) -> Result<portcullis_core::BlueprintInstance, StoreError> {
    use portcullis_core::BlueprintStatus;
    let outcome =
        |status, hash: String, models: Vec<String>, metadata: Value, error: Option<String>| {
            portcullis_store::ApplyOutcome {
                status,
                hash,
                managed_models: models,
                metadata,
                error,
            }
        };
    let text = match instance_content(state, inst) {
        Ok(t) => t,
        Err(e) => {
            return state
                .store
                .record_blueprint_outcome(
                    inst.uuid,
                    outcome(
                        BlueprintStatus::Error,
                        String::new(),
                        vec![],
                        json_obj(),
                        Some(e),
                    ),
                )
                .await;
        }
    };
    let hash = content_hash(&text, &inst.context);
    let source = if inst.path.is_empty() {
        inst.name.clone()
    } else {
        inst.path.clone()
    };
    let bp = match portcullis_blueprint::parse(&text, &source) {
        Ok(bp) => bp,
        Err(e) => {
            return state
                .store
                .record_blueprint_outcome(
                    inst.uuid,
                    outcome(
                        BlueprintStatus::Error,
                        hash,
                        vec![],
                        json_obj(),
                        Some(e.to_string()),
                    ),
                )
                .await;
        }
    };
    let mut models: Vec<String> = bp.entries.iter().map(|e| e.model.clone()).collect();
    models.sort();
    models.dedup();
    let metadata = match &bp.metadata {
        Some(m) => serde_json::json!({"name": m.name, "labels": m.labels}),
        None => json_obj(),
    };
    let env = |name: &str| env_lookup_for(state, inst, name);
    let options = ApplyOptions {
        context: inst.context.as_object().cloned().unwrap_or_default(),
        env: &env,
        blueprints_dir: if inst.path.starts_with("builtin/") {
            None
        } else {
            state.blueprints_dir.clone()
        },
    };
    match apply_blueprint(state, &bp, &options).await {
        Ok(_) => {
            state
                .store
                .record_blueprint_outcome(
                    inst.uuid,
                    outcome(BlueprintStatus::Successful, hash, models, metadata, None),
                )
                .await
        }
        Err(e) => {
            tracing::error!(blueprint = %source, error = %e, "blueprint not applied");
            state
                .store
                .record_blueprint_outcome(
                    inst.uuid,
                    outcome(
                        BlueprintStatus::Error,
                        hash,
                        models,
                        metadata,
                        Some(e.to_string()),
                    ),
                )
                .await
        }
    }
}

fn json_obj() -> Value {
    Value::Object(Map::new())
}

/// Files of the blueprints directory, relative to it, in path order.
pub fn available_files(state: &AppState) -> Vec<String> {
    let Some(dir) = &state.blueprints_dir else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect(dir, dir, &mut out, 0);
    out.sort();
    out
}

fn collect(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth < 8 {
            collect(root, &path, out, depth + 1);
        } else if kind.is_file()
            && path.extension().is_some_and(|x| x == "yaml" || x == "yml")
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// The instance for `path`, added when missing (another process may add it at the same time).
async fn instance_for(
    state: &AppState,
    path: &str,
) -> Result<portcullis_core::BlueprintInstance, StoreError> {
    match state.store.find_blueprint_instance_by_path(path).await {
        Ok(i) => return Ok(i),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e),
    }
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml")
        .to_owned();
    let new = portcullis_store::NewBlueprintInstance {
        name,
        path: path.to_owned(),
        context: json_obj(),
        enabled: true,
        content: None,
    };
    match state.store.create_blueprint_instance(new, None).await {
        Ok(i) => Ok(i),
        Err(StoreError::Conflict { .. }) => state.store.find_blueprint_instance_by_path(path).await,
        Err(e) => Err(e),
    }
}

/// Applies the built-in blueprints, then every file of the blueprints directory, each when it
/// is new, changed, or failed last time; marks instances whose file is gone as orphaned.
/// Returns the instances that failed.
pub async fn discover(
    state: &AppState,
) -> Result<Vec<portcullis_core::BlueprintInstance>, StoreError> {
    use portcullis_core::BlueprintStatus;
    let files = available_files(state);
    let paths: Vec<String> = BUILTINS
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .chain(files.iter().cloned())
        .collect();
    let mut failed = Vec::new();
    for path in &paths {
        let inst = instance_for(state, path).await?;
        if !inst.enabled {
            continue;
        }
        let current = instance_content(state, &inst).map(|t| content_hash(&t, &inst.context));
        if inst.status == BlueprintStatus::Successful
            && current.as_ref().is_ok_and(|h| *h == inst.last_applied_hash)
        {
            continue;
        }
        let done = apply_instance(state, &inst).await?;
        if done.status == BlueprintStatus::Error {
            failed.push(done);
        }
    }
    for inst in state.store.all_blueprint_instances().await? {
        if !inst.path.is_empty()
            && !paths.contains(&inst.path)
            && inst.status != BlueprintStatus::Orphaned
        {
            state.store.mark_blueprint_orphaned(inst.uuid).await?;
        }
    }
    Ok(failed)
}
