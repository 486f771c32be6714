//! Applications. Invariant: slugs are unique; an application is found by its slug.

use portcullis_core::{
    Actor, Application, ApplicationPatch, EventAction, NewEvent, Page, PolicyEngineMode,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use uuid::Uuid;

use crate::entity::application;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationFilter {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub group: Option<String>,
    pub meta_publisher: Option<String>,
    /// The application of this provider (at most one: the column is unique).
    pub provider: Option<i32>,
}

fn to_domain(m: application::Model) -> Result<Application, StoreError> {
    Ok(Application {
        uuid: m.uuid,
        policy_engine_mode: PolicyEngineMode::parse(&m.policy_engine_mode)
            .ok_or_else(|| StoreError::Corrupt(format!("application {} mode", m.slug)))?,
        name: m.name,
        slug: m.slug,
        provider: m.provider_id,
        group: m.group,
        meta_launch_url: m.meta_launch_url,
        meta_description: m.meta_description,
        meta_publisher: m.meta_publisher,
        meta_icon: m.meta_icon,
        open_in_new_tab: m.open_in_new_tab,
        meta_hide: m.meta_hide,
    })
}

fn app_event(action: EventAction, m: &application::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_core",
        "application",
        &m.uuid.to_string(),
        &m.name,
    )
}

async fn find_model<C: sea_orm::ConnectionTrait>(
    db: &C,
    slug: &str,
) -> Result<application::Model, StoreError> {
    application::Entity::find()
        .filter(application::Column::Slug.eq(slug))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Store {
    pub async fn create_application(
        &self,
        a: Application,
        actor: &Actor,
    ) -> Result<Application, StoreError> {
        let txn = self.write.begin().await?;
        let m = application::ActiveModel {
            uuid: Set(if a.uuid.is_nil() {
                Uuid::new_v4()
            } else {
                a.uuid
            }),
            name: Set(a.name),
            slug: Set(a.slug),
            provider_id: Set(a.provider),
            group: Set(a.group),
            meta_launch_url: Set(a.meta_launch_url),
            meta_description: Set(a.meta_description),
            meta_publisher: Set(a.meta_publisher),
            meta_icon: Set(a.meta_icon),
            policy_engine_mode: Set(a.policy_engine_mode.as_str().to_owned()),
            open_in_new_tab: Set(a.open_in_new_tab),
            meta_hide: Set(a.meta_hide),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(&txn, self, actor, app_event(EventAction::ModelCreated, &m)).await?;
        txn.commit().await?;
        to_domain(m)
    }

    pub async fn find_application(&self, slug: &str) -> Result<Application, StoreError> {
        to_domain(find_model(&self.read, slug).await?)
    }

    /// The application a provider serves, if any (at most one: the column is unique).
    pub async fn find_application_of_provider(
        &self,
        provider: i32,
    ) -> Result<Option<Application>, StoreError> {
        application::Entity::find()
            .filter(application::Column::ProviderId.eq(provider))
            .one(&self.read)
            .await?
            .map(to_domain)
            .transpose()
    }

    pub async fn list_applications(
        &self,
        f: &ApplicationFilter,
        q: &ListQuery,
    ) -> Result<Page<Application>, StoreError> {
        let mut s = application::Entity::find();
        if let Some(v) = &f.name {
            s = s.filter(application::Column::Name.eq(v.as_str()));
        }
        if let Some(v) = &f.slug {
            s = s.filter(application::Column::Slug.eq(v.as_str()));
        }
        if let Some(v) = &f.group {
            s = s.filter(application::Column::Group.eq(v.as_str()));
        }
        if let Some(v) = &f.meta_publisher {
            s = s.filter(application::Column::MetaPublisher.eq(v.as_str()));
        }
        if let Some(v) = f.provider {
            s = s.filter(application::Column::ProviderId.eq(v));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(
                term,
                &[
                    application::Column::Name,
                    application::Column::Slug,
                    application::Column::MetaPublisher,
                    application::Column::MetaDescription,
                    application::Column::Group,
                ],
            ));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("name", application::Column::Name),
                ("slug", application::Column::Slug),
                ("group", application::Column::Group),
            ],
            (application::Column::Name, false),
            application::Column::Id,
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

    pub async fn update_application(
        &self,
        slug: &str,
        p: ApplicationPatch,
        actor: &Actor,
    ) -> Result<Application, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = find_model(&txn, slug).await?.into_active_model();
        if let Some(v) = p.name {
            am.name = Set(v);
        }
        if let Some(v) = p.slug {
            am.slug = Set(v);
        }
        if let Some(v) = p.provider {
            am.provider_id = Set(v);
        }
        if let Some(v) = p.group {
            am.group = Set(v);
        }
        if let Some(v) = p.meta_launch_url {
            am.meta_launch_url = Set(v);
        }
        if let Some(v) = p.meta_description {
            am.meta_description = Set(v);
        }
        if let Some(v) = p.meta_publisher {
            am.meta_publisher = Set(v);
        }
        if let Some(v) = p.policy_engine_mode {
            am.policy_engine_mode = Set(v.as_str().to_owned());
        }
        if let Some(v) = p.open_in_new_tab {
            am.open_in_new_tab = Set(v);
        }
        if let Some(v) = p.meta_hide {
            am.meta_hide = Set(v);
        }
        if let Some(v) = p.meta_icon {
            am.meta_icon = Set(v);
        }
        let m = am.update(&txn).await?;
        record(&txn, self, actor, app_event(EventAction::ModelUpdated, &m)).await?;
        txn.commit().await?;
        to_domain(m)
    }

    pub async fn delete_application(&self, slug: &str, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, slug).await?;
        crate::flows::delete_policy_bindings_of(&txn, vec![m.uuid]).await?;
        application::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(&txn, self, actor, app_event(EventAction::ModelDeleted, &m)).await?;
        txn.commit().await?;
        Ok(())
    }
}
