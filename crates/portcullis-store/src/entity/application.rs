use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub provider_id: Option<i32>,
    pub group: String,
    pub meta_launch_url: String,
    pub meta_description: String,
    pub meta_publisher: String,
    pub meta_icon: Option<String>,
    pub policy_engine_mode: String,
    pub open_in_new_tab: bool,
    pub meta_hide: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
