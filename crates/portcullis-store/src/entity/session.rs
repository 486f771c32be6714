use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub user_id: Option<i32>,
    pub created: DateTimeUtc,
    pub expires: DateTimeUtc,
    pub last_used: DateTimeUtc,
    pub last_ip: String,
    pub last_user_agent: String,
    pub csrf_token: String,
    pub data: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
