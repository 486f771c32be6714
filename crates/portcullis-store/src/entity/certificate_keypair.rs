use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "certificate_keypairs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    pub certificate_data: String,
    /// The private key PEM encrypted at rest; `None` for certificate-only entries.
    pub key_data: Option<String>,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
    pub cert_expiry: DateTimeUtc,
    pub cert_subject: String,
    pub private_key_type: Option<String>,
    pub managed: Option<String>,
    pub created: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
