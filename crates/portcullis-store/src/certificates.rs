//! Certificate keypairs. Invariants: names are unique; the private key is stored only
//! encrypted; fingerprints, expiry and subject are computed from the certificate when it is
//! stored, by the caller that parses it.

use portcullis_core::{
    Actor, CertificateKeyPair, EventAction, NewCertificateKeyPair, NewEvent, Page,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

use crate::entity::certificate_keypair as kp;
use crate::events::record;
use crate::query::{ordered, paged, search_condition};
use crate::{ListQuery, Store, StoreError};

fn to_domain(m: kp::Model) -> CertificateKeyPair {
    CertificateKeyPair {
        uuid: m.uuid,
        name: m.name,
        certificate_pem: m.certificate_data,
        has_private_key: m.key_data.is_some(),
        fingerprint_sha256: m.fingerprint_sha256,
        fingerprint_sha1: m.fingerprint_sha1,
        not_after: m.cert_expiry,
        subject: m.cert_subject,
        private_key_type: m.private_key_type,
        managed: m.managed,
        created: m.created,
    }
}

fn kp_event(action: EventAction, m: &kp::Model) -> NewEvent {
    NewEvent::model(
        action,
        "authentik_crypto",
        "certificatekeypair",
        &m.uuid.to_string(),
        &m.name,
    )
}

async fn find_model<C: ConnectionTrait>(db: &C, uuid: Uuid) -> Result<kp::Model, StoreError> {
    kp::Entity::find()
        .filter(kp::Column::Uuid.eq(uuid))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Filters of the keypair list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    pub has_key: Option<bool>,
    pub name: Option<String>,
    /// `rsa`, `ec`, `ed25519`, ...: the certificate's key type.
    pub key_types: Vec<String>,
    pub managed: Option<String>,
}

/// A replacement of a keypair's data; `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertificateKeyPairPatch {
    pub name: Option<String>,
    pub certificate: Option<(String, portcullis_core::CertificateFacts)>,
    /// `Some(None)` removes the private key.
    pub private_key_encrypted: Option<Option<String>>,
}

impl Store {
    pub async fn create_certificate_keypair(
        &self,
        new: NewCertificateKeyPair,
        actor: &Actor,
    ) -> Result<CertificateKeyPair, StoreError> {
        let txn = self.write.begin().await?;
        let m = kp::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name: Set(new.name),
            certificate_data: Set(new.certificate_pem),
            key_data: Set(new.private_key_encrypted),
            fingerprint_sha256: Set(new.facts.fingerprint_sha256),
            fingerprint_sha1: Set(new.facts.fingerprint_sha1),
            cert_expiry: Set(new.facts.not_after),
            cert_subject: Set(new.facts.subject),
            private_key_type: Set(new.facts.private_key_type),
            managed: Set(new.managed),
            created: Set(self.clock.now()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        record(&txn, self, actor, kp_event(EventAction::ModelCreated, &m)).await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn find_certificate_keypair(
        &self,
        uuid: Uuid,
    ) -> Result<CertificateKeyPair, StoreError> {
        Ok(to_domain(find_model(&self.read, uuid).await?))
    }

    pub async fn find_certificate_keypair_by_name(
        &self,
        name: &str,
    ) -> Result<CertificateKeyPair, StoreError> {
        let m = kp::Entity::find()
            .filter(kp::Column::Name.eq(name))
            .one(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(to_domain(m))
    }

    /// The encrypted private key, for `view_private_key`; records `secret_view`.
    pub async fn view_private_key(
        &self,
        uuid: Uuid,
        actor: &Actor,
    ) -> Result<Option<String>, StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        record(
            &txn,
            self,
            actor,
            NewEvent {
                action: EventAction::SecretView,
                app: "authentik.crypto.api".to_owned(),
                context: serde_json::json!({"secret": {"app": "authentik_crypto", "model_name": "certificatekeypair", "pk": m.uuid.to_string(), "name": m.name}}),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(m.key_data)
    }

    /// The encrypted private key without an audit event, for the server's own use (signing).
    pub async fn find_private_key_for_use(&self, uuid: Uuid) -> Result<Option<String>, StoreError> {
        Ok(find_model(&self.read, uuid).await?.key_data)
    }

    pub async fn list_certificate_keypairs(
        &self,
        f: &CertificateFilter,
        q: &ListQuery,
    ) -> Result<Page<CertificateKeyPair>, StoreError> {
        let mut s = kp::Entity::find();
        if !f.key_types.is_empty() {
            s = s.filter(kp::Column::PrivateKeyType.is_in(f.key_types.iter().map(String::as_str)));
        }
        if let Some(m) = &f.managed {
            s = s.filter(kp::Column::Managed.eq(m.as_str()));
        }
        let name = f.name.as_deref();
        match f.has_key {
            Some(true) => s = s.filter(kp::Column::KeyData.is_not_null()),
            Some(false) => s = s.filter(kp::Column::KeyData.is_null()),
            None => {}
        }
        if let Some(n) = name {
            s = s.filter(kp::Column::Name.eq(n));
        }
        if let Some(term) = q.search.as_deref().filter(|t| !t.is_empty()) {
            s = s.filter(search_condition(term, &[kp::Column::Name]));
        }
        let s = ordered(
            s,
            &q.ordering,
            &[
                ("name", kp::Column::Name),
                ("expiry", kp::Column::CertExpiry),
            ],
            (kp::Column::Name, false),
            kp::Column::Id,
        );
        let page = paged(&self.read, s, &q.page).await?;
        Ok(Page {
            items: page.items.into_iter().map(to_domain).collect(),
            count: page.count,
        })
    }

    pub async fn update_certificate_keypair(
        &self,
        uuid: Uuid,
        p: CertificateKeyPairPatch,
        actor: &Actor,
    ) -> Result<CertificateKeyPair, StoreError> {
        let txn = self.write.begin().await?;
        let mut am = find_model(&txn, uuid).await?.into_active_model();
        if let Some(v) = p.name {
            am.name = Set(v);
        }
        if let Some((pem, facts)) = p.certificate {
            am.certificate_data = Set(pem);
            am.fingerprint_sha256 = Set(facts.fingerprint_sha256);
            am.fingerprint_sha1 = Set(facts.fingerprint_sha1);
            am.cert_expiry = Set(facts.not_after);
            am.cert_subject = Set(facts.subject);
            am.private_key_type = Set(facts.private_key_type);
        }
        if let Some(v) = p.private_key_encrypted {
            am.key_data = Set(v);
        }
        let m = am.update(&txn).await?;
        record(&txn, self, actor, kp_event(EventAction::ModelUpdated, &m)).await?;
        txn.commit().await?;
        Ok(to_domain(m))
    }

    pub async fn delete_certificate_keypair(
        &self,
        uuid: Uuid,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let m = find_model(&txn, uuid).await?;
        kp::Entity::delete_by_id(m.id).exec(&txn).await?;
        record(&txn, self, actor, kp_event(EventAction::ModelDeleted, &m)).await?;
        txn.commit().await?;
        Ok(())
    }
}
