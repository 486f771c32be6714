use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_grants")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub kind: String,
    pub key_hash: String,
    pub provider_id: i32,
    pub user_id: Option<i32>,
    pub family: Uuid,
    pub session_uuid: Option<Uuid>,
    pub scope: String,
    pub data: Json,
    pub created: DateTimeUtc,
    pub expires: DateTimeUtc,
    pub used: bool,
    pub revoked: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
