use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub identifier: String,
    /// SHA-256 of the key, hex: what a presented key is looked up by.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// The key encrypted at rest, for `view_key`.
    pub key_encrypted: String,
    pub intent: String,
    pub user_id: i32,
    pub description: String,
    pub expires: Option<DateTimeUtc>,
    pub expiring: bool,
    pub managed: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
