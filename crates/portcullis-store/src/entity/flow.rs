use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "flows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub pbm_uuid: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub title: String,
    pub designation: String,
    pub authentication: String,
    pub policy_engine_mode: String,
    pub denied_action: String,
    pub layout: String,
    pub background: String,
    pub compatibility_mode: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
