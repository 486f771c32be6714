use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_bindings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    pub target: Uuid,
    pub policy: Option<Uuid>,
    pub group: Option<Uuid>,
    pub user_id: Option<i32>,
    pub negate: bool,
    pub enabled: bool,
    pub order: i32,
    pub timeout: i32,
    pub failure_result: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
