use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    pub user: Json,
    /// The acting user's username, copied out of `user` so it can be filtered on.
    pub username: Option<String>,
    /// The acting user's pk (`None` for the system).
    pub user_pk: Option<i32>,
    pub action: String,
    pub app: String,
    pub context: Json,
    pub client_ip: Option<String>,
    pub created: DateTimeUtc,
    pub expires: DateTimeUtc,
    pub brand: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
