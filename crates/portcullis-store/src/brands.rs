//! Brands. Invariants: domains are unique; at most one brand is the default (setting a new
//! default clears the old one in the same transaction; a unique index backs this, and a writer
//! that loses a race for it is retried).

use portcullis_core::{Actor, Brand, BrandFlows, EventAction, NewEvent, Page};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::brand;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

fn to_domain(m: brand::Model) -> Brand {
    Brand {
        uuid: m.uuid,
        domain: m.domain,
        default: m.is_default,
        branding_title: m.branding_title,
        branding_logo: m.branding_logo,
        branding_favicon: m.branding_favicon,
        branding_custom_css: m.branding_custom_css,
        branding_default_flow_background: m.branding_default_flow_background,
        web_certificate: m.web_certificate,
        attributes: m.attributes,
        flows: BrandFlows {
            authentication: m.flow_authentication,
            invalidation: m.flow_invalidation,
            recovery: m.flow_recovery,
            unenrollment: m.flow_unenrollment,
            user_settings: m.flow_user_settings,
            device_code: m.flow_device_code,
        },
    }
}

fn brand_event(action: EventAction, m: &brand::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_brands",
        "brand",
        &m.uuid.to_string(),
        &m.domain,
    )
}

async fn find_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<brand::Model, StoreError> {
    brand::Entity::find()
        .filter(brand::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn clear_default<C: ConnectionTrait>(db: &C, except: Uuid) -> Result<(), StoreError> {
    brand::Entity::update_many()
        .col_expr(
            brand::Column::IsDefault,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(brand::Column::Uuid.ne(except))
        .exec(db)
        .await?;
    Ok(())
}

/// How often a write that sets the default brand is retried after losing a race to another
/// one (each retry sees the winner committed, so clears it).
const DEFAULT_RACE_RETRIES: usize = 16;

/// Whether `e` is the one-default index refusing a second default.
fn lost_default_race(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict { field } if field == "is_default")
}

impl Store {
    pub async fn create_brand(&self, b: Brand, actor: &Actor) -> Result<Brand, StoreError> {
        let mut tries = 0;
        loop {
            match self.create_brand_once(b.clone(), actor).await {
                Err(e) if lost_default_race(&e) && tries < DEFAULT_RACE_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    async fn create_brand_once(&self, b: Brand, actor: &Actor) -> Result<Brand, StoreError> {
        let txn = self.write.begin().await?;
        let uuid = if b.uuid.is_nil() {
            Uuid::new_v4()
        } else {
            b.uuid
        };
        if b.default {
            clear_default(&txn, uuid).await?;
        }
        let m = brand::ActiveModel {
            uuid: Set(uuid),
            domain: Set(b.domain),
            is_default: Set(b.default),
            branding_title: Set(b.branding_title),
            branding_logo: Set(b.branding_logo),
            branding_favicon: Set(b.branding_favicon),
            branding_custom_css: Set(b.branding_custom_css),
            branding_default_flow_background: Set(b.branding_default_flow_background),
            web_certificate: Set(b.web_certificate),
            attributes: Set(b.attributes),
            flow_authentication: Set(b.flows.authentication),
            flow_invalidation: Set(b.flows.invalidation),
            flow_recovery: Set(b.flows.recovery),
            flow_unenrollment: Set(b.flows.unenrollment),
            flow_user_settings: Set(b.flows.user_settings),
            flow_device_code: Set(b.flows.device_code),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(
            &txn,
            self,
            actor,
            brand_event(EventAction::ModelCreated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn find_brand(&self, uuid: Uuid) -> Result<Brand, StoreError> {
        Ok(to_domain(find_model(&self.read, uuid).await?))
    }

    /// All brands, for matching a request's host (there are few).
    pub async fn all_brands(&self) -> Result<Vec<Brand>, StoreError> {
        Ok(brand::Entity::find()
            .all(&self.read)
            .await?
            .into_iter()
            .map(to_domain)
            .collect())
    }

    pub async fn list_brands(
        &self,
        domain: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Brand>, StoreError> {
        let mut s = brand::Entity::find();
        if let Some(d) = domain {
            s = s.filter(brand::Column::Domain.eq(d));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[brand::Column::Domain, brand::Column::BrandingTitle],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("domain", brand::Column::Domain),
                ("default", brand::Column::IsDefault),
            ],
            (brand::Column::Domain, false),
            brand::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(to_domain).collect(),
            count: page.count,
        })
    }

    /// Replaces a brand's fields with `b`'s (the uuid stays).
    pub async fn update_brand(
        &self,
        uuid: Uuid,
        b: Brand,
        actor: &Actor,
    ) -> Result<Brand, StoreError> {
        let mut tries = 0;
        loop {
            match self.update_brand_once(uuid, b.clone(), actor).await {
                Err(e) if lost_default_race(&e) && tries < DEFAULT_RACE_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    async fn update_brand_once(
        &self,
        uuid: Uuid,
        b: Brand,
        actor: &Actor,
    ) -> Result<Brand, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = find_model(&txn, uuid).await?.into_active_model();
        if b.default {
            clear_default(&txn, uuid).await?;
        }
        am.domain = Set(b.domain);
        am.is_default = Set(b.default);
        am.branding_title = Set(b.branding_title);
        am.branding_logo = Set(b.branding_logo);
        am.branding_favicon = Set(b.branding_favicon);
        am.branding_custom_css = Set(b.branding_custom_css);
        am.branding_default_flow_background = Set(b.branding_default_flow_background);
        am.web_certificate = Set(b.web_certificate);
        am.attributes = Set(b.attributes);
        am.flow_authentication = Set(b.flows.authentication);
        am.flow_invalidation = Set(b.flows.invalidation);
        am.flow_recovery = Set(b.flows.recovery);
        am.flow_unenrollment = Set(b.flows.unenrollment);
        am.flow_user_settings = Set(b.flows.user_settings);
        am.flow_device_code = Set(b.flows.device_code);
        let m = am.update(&txn).await?;
        record(
            &txn,
            self,
            actor,
            brand_event(EventAction::ModelUpdated, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn delete_brand(&self, uuid: Uuid, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        brand::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(
            &txn,
            self,
            actor,
            brand_event(EventAction::ModelDeleted, &m),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
}
