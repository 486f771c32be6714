//! Row types: one SeaORM entity per table. They are the database's shape, kept apart from the
//! domain types in `portcullis-core`; the `into_domain` conversions live beside each entity.

pub mod application;
pub mod blueprint_instance;
pub mod brand;
pub mod certificate_keypair;
pub mod event;
pub mod flow;
pub mod flow_stage_binding;
pub mod group;
pub mod group_user;
pub mod oauth_grant;
pub mod policy;
pub mod policy_binding;
pub mod prompt;
pub mod property_mapping;
pub mod provider;
pub mod provider_property_mapping;
pub mod reputation;
pub mod session;
pub mod stage;
pub mod token;
pub mod user;
pub mod user_consent;
