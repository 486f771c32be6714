use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "brands")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    #[sea_orm(unique)]
    pub domain: String,
    pub is_default: bool,
    pub branding_title: String,
    pub branding_logo: String,
    pub branding_favicon: String,
    pub branding_custom_css: String,
    pub branding_default_flow_background: String,
    pub web_certificate: Option<Uuid>,
    pub attributes: Json,
    pub flow_authentication: Option<Uuid>,
    pub flow_invalidation: Option<Uuid>,
    pub flow_recovery: Option<Uuid>,
    pub flow_unenrollment: Option<Uuid>,
    pub flow_user_settings: Option<Uuid>,
    pub flow_device_code: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
