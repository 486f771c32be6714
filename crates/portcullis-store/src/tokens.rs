//! Tokens. Invariants: identifiers are unique; the key is stored only encrypted (for
//! `view_key`) and as a SHA-256 hash (for lookup), never in the clear.

use portcullis_core::{
    Actor, EventAction, NewEvent, NewToken, Page, Token, TokenIntent, TokenPatch,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::token;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    /// Only tokens of this user (non-superusers see only their own).
    pub user_pk: Option<i32>,
    pub identifier: Option<String>,
    pub intent: Option<TokenIntent>,
    pub managed: Option<String>,
    pub description: Option<String>,
}

fn to_domain(m: token::Model) -> Result<Token, StoreError> {
    Ok(Token {
        uuid: m.uuid,
        intent: TokenIntent::parse(&m.intent)
            .ok_or_else(|| StoreError::Corrupt(format!("token {} intent", m.identifier)))?,
        identifier: m.identifier,
        user_pk: m.user_id,
        description: m.description,
        expires: m.expires,
        expiring: m.expiring,
        managed: m.managed,
    })
}

fn token_event(action: EventAction, m: &token::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_core",
        "token",
        &m.uuid.to_string(),
        &m.identifier,
    )
}

async fn find_model<C: ConnectionTrait>(
    db: &C,
    identifier: &str,
) -> Result<token::Model, StoreError> {
    token::Entity::find()
        .filter(token::Column::Identifier.eq(identifier))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Store {
    /// Creates a token; `key_hash` and `key_encrypted` are computed by the caller, which holds
    /// the secret box.
    pub async fn create_token(
        &self,
        new: NewToken,
        key_hash: String,
        key_encrypted: String,
        actor: &Actor,
    ) -> Result<Token, StoreError> {
        let txn = self.write.begin().await?;
        let m = self
            .insert_token(&txn, new, key_hash, key_encrypted)
            .await?;
        record(
            &txn,
            self,
            actor,
            token_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        to_domain(m)
    }

    async fn insert_token<C: ConnectionTrait>(
        &self,
        db: &C,
        new: NewToken,
        key_hash: String,
        key_encrypted: String,
    ) -> Result<token::Model, StoreError> {
        Ok(token::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            identifier: Set(new.identifier),
            key_hash: Set(key_hash),
            key_encrypted: Set(key_encrypted),
            intent: Set(new.intent.as_str().to_owned()),
            user_id: Set(new.user_pk),
            description: Set(new.description),
            expires: Set(new.expires),
            expiring: Set(new.expiring),
            managed: Set(new.managed),
            ..Default::default()
        }
        .insert(db)
        .await?)
    }

    pub async fn find_token(&self, identifier: &str) -> Result<Token, StoreError> {
        to_domain(find_model(&self.read, identifier).await?)
    }

    /// The token whose key hashes to `key_hash`, if any. The hash is an index lookup; the
    /// presented key itself is never compared byte by byte against stored secrets.
    pub async fn find_token_by_key_hash(&self, key_hash: &str) -> Result<Token, StoreError> {
        let m = token::Entity::find()
            .filter(token::Column::KeyHash.eq(key_hash))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        to_domain(m)
    }

    /// The encrypted key of a token, for `view_key`; records `secret_view`.
    pub async fn view_token_key(
        &self,
        identifier: &str,
        actor: &Actor,
    ) -> Result<String, StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, identifier).await?;
        record(
            &txn,
            self,
            actor,
            NewEvent {
                action: EventAction::SecretView,
                app: "authentik.core.api.tokens".to_owned(),
                context: serde_json::json!({"secret": {"app": "authentik_core", "model_name": "token", "pk": m.uuid.to_string(), "name": m.identifier}}),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(m.key_encrypted)
    }

    pub async fn list_tokens(
        &self,
        filter: &TokenFilter,
        q: &ListQuery,
    ) -> Result<Page<Token>, StoreError> {
        let mut s = token::Entity::find();
        if let Some(u) = filter.user_pk {
            s = s.filter(token::Column::UserId.eq(u));
        }
        if let Some(v) = &filter.identifier {
            s = s.filter(token::Column::Identifier.eq(v.as_str()));
        }
        if let Some(v) = filter.intent {
            s = s.filter(token::Column::Intent.eq(v.as_str()));
        }
        if let Some(v) = &filter.managed {
            s = s.filter(token::Column::Managed.eq(v.as_str()));
        }
        if let Some(v) = &filter.description {
            s = s.filter(token::Column::Description.eq(v.as_str()));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[
                    token::Column::Identifier,
                    token::Column::Description,
                    token::Column::Intent,
                ],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("identifier", token::Column::Identifier),
                ("expires", token::Column::Expires),
                ("intent", token::Column::Intent),
                ("description", token::Column::Description),
            ],
            (token::Column::Identifier, false),
            token::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(to_domain)
                .collect::<Result<_, _>>()?,
            count: page.count,
        })
    }

    pub async fn update_token(
        &self,
        identifier: &str,
        p: TokenPatch,
        actor: &Actor,
    ) -> Result<Token, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = find_model(&txn, identifier).await?.into_active_model();
        if let Some(v) = p.identifier {
            am.identifier = Set(v);
        }
        if let Some(v) = p.intent {
            am.intent = Set(v.as_str().to_owned());
        }
        if let Some(v) = p.user_pk {
            am.user_id = Set(v);
        }
        if let Some(v) = p.description {
            am.description = Set(v);
        }
        if let Some(v) = p.expires {
            am.expires = Set(v);
        }
        if let Some(v) = p.expiring {
            am.expiring = Set(v);
        }
        let m = am.update(&txn).await?;
        record(
            &txn,
            self,
            actor,
            token_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        to_domain(m)
    }

    pub async fn delete_token(&self, identifier: &str, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, identifier).await?;
        token::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            token_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
