//! The API's JSON types, named and shaped as authentik's serializers so authentik's clients
//! read them. Row and domain types never reach the wire directly: each response type is built
//! here from domain values.

use base64::Engine;
use chrono::{DateTime, Utc};
use portcullis_core::{Application, Brand, CertificateKeyPair, Event, Group, Token, User};
use portcullis_store::{GroupWithMembers, UserWithGroups};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// DRF's datetime format: UTC with microseconds and `Z`.
pub fn dt(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one not sent (`None`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An avatar as a data URI: the user's initials on a colour derived from the username, so no
/// request leaves the server (authentik's "initials" avatar mode).
pub fn avatar(u: &User) -> String {
    let initials: String = u
        .display_name()
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .filter(|c| c.is_alphanumeric())
        .collect();
    let hue = u
        .username
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\"><rect width=\"64\" height=\"64\" fill=\"hsl({hue},45%,45%)\"/><text x=\"50%\" y=\"50%\" dy=\".35em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"26\" fill=\"#fff\">{initials}</text></svg>"
    );
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartialGroup {
    pub pk: Uuid,
    pub num_pk: i32,
    pub name: String,
    pub is_superuser: bool,
    pub attributes: Value,
}

impl From<&Group> for PartialGroup {
    fn from(g: &Group) -> Self {
        Self {
            pk: g.uuid,
            num_pk: g.num_pk,
            name: g.name.clone(),
            is_superuser: g.is_superuser,
            attributes: g.attributes.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Role {
    pub pk: Uuid,
    pub name: String,
}

/// authentik's `User`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSerializer {
    pub pk: i32,
    pub username: String,
    pub name: String,
    pub is_active: bool,
    pub last_login: Option<String>,
    pub date_joined: String,
    pub is_superuser: bool,
    pub groups: Vec<Uuid>,
    pub groups_obj: Option<Vec<PartialGroup>>,
    pub roles: Vec<Uuid>,
    pub roles_obj: Option<Vec<Role>>,
    pub email: String,
    pub avatar: String,
    pub attributes: Value,
    pub uid: String,
    pub path: String,
    #[serde(rename = "type")]
    pub user_type: String,
    pub uuid: Uuid,
    pub password_change_date: String,
    pub last_updated: String,
}

impl UserSerializer {
    pub fn new(
        state: &AppState,
        u: &UserWithGroups,
        include_groups: bool,
        include_roles: bool,
    ) -> Self {
        let user = &u.user;
        Self {
            pk: user.pk,
            username: user.username.clone(),
            name: user.name.clone(),
            is_active: user.is_active,
            last_login: user.last_login.map(dt),
            date_joined: dt(user.date_joined),
            is_superuser: user.is_superuser,
            groups: u.groups.iter().map(|g| g.uuid).collect(),
            groups_obj: include_groups.then(|| u.groups.iter().map(PartialGroup::from).collect()),
            roles: Vec::new(),
            roles_obj: include_roles.then(Vec::new),
            email: user.email.clone(),
            avatar: avatar(user),
            attributes: user.attributes.clone(),
            uid: state.user_uid(user.pk),
            path: user.path.clone(),
            user_type: user.user_type.as_str().to_owned(),
            uuid: user.uuid,
            password_change_date: dt(user.password_change_date),
            last_updated: dt(user.last_updated),
        }
    }
}

/// Body of user create/update. Every field optional here; create and update check what they
/// require.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UserRequest {
    pub username: Option<String>,
    pub name: Option<String>,
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login: Option<Option<DateTime<Utc>>>,
    pub groups: Option<Vec<Uuid>>,
    pub roles: Option<Vec<Uuid>>,
    pub email: Option<String>,
    pub attributes: Option<Value>,
    pub path: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    pub user_type: Option<portcullis_core::UserType>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserSelfGroup {
    pub name: String,
    pub pk: String,
}

/// authentik's `UserSelf`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSelf {
    pub pk: i32,
    pub username: String,
    pub name: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_current: bool,
    pub groups: Vec<UserSelfGroup>,
    pub roles: Vec<UserSelfGroup>,
    pub email: String,
    pub avatar: String,
    pub uid: String,
    pub settings: Value,
    #[serde(rename = "type")]
    pub user_type: String,
    pub system_permissions: Vec<String>,
}

/// authentik's `SessionUser`, the answer of `core/users/me/`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionUser {
    pub user: UserSelf,
    pub users: Vec<UserSelf>,
}

impl UserSelf {
    pub fn new(state: &AppState, u: &UserWithGroups) -> Self {
        let user = &u.user;
        Self {
            pk: user.pk,
            username: user.username.clone(),
            name: user.name.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            is_current: true,
            groups: u
                .groups
                .iter()
                .map(|g| UserSelfGroup {
                    name: g.name.clone(),
                    pk: g.uuid.to_string(),
                })
                .collect(),
            roles: Vec::new(),
            email: user.email.clone(),
            avatar: avatar(user),
            uid: state.user_uid(user.pk),
            settings: user
                .attributes
                .get("settings")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| serde_json::json!({})),
            user_type: user.user_type.as_str().to_owned(),
            system_permissions: if user.is_superuser {
                vec![
                    "access_admin_interface".into(),
                    "view_system_info".into(),
                    "view_system_settings".into(),
                    "edit_system_settings".into(),
                ]
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserPasswordSetRequest {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserAccountRequest {
    pub pk: i32,
}

/// authentik's `PartialUser` (members of a group).
#[derive(Debug, Serialize, ToSchema)]
pub struct PartialUser {
    pub pk: i32,
    pub username: String,
    pub name: String,
    pub is_active: bool,
    pub last_login: Option<String>,
    pub email: String,
    pub attributes: Value,
    pub uid: String,
}

/// authentik's `RelatedGroup`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedGroup {
    pub pk: Uuid,
    pub name: String,
    pub is_superuser: bool,
    pub attributes: Value,
    pub group_uuid: Uuid,
}

/// authentik's `Group`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSerializer {
    pub pk: Uuid,
    pub num_pk: i32,
    pub name: String,
    pub is_superuser: bool,
    pub parents: Vec<Uuid>,
    pub parents_obj: Option<Vec<RelatedGroup>>,
    pub users: Vec<i32>,
    pub users_obj: Option<Vec<PartialUser>>,
    pub attributes: Value,
    pub roles: Vec<Uuid>,
    pub roles_obj: Vec<Role>,
    pub inherited_roles_obj: Option<Vec<Role>>,
    pub children: Vec<Uuid>,
    pub children_obj: Option<Vec<RelatedGroup>>,
}

/// Which optional parts of a group to include (authentik's `include_*` query flags).
#[derive(Debug, Clone, Copy)]
pub struct GroupIncludes {
    pub users: bool,
    pub parents: bool,
    pub children: bool,
    pub inherited_roles: bool,
}

impl GroupSerializer {
    pub fn new(
        state: &AppState,
        g: &GroupWithMembers,
        children: &[Group],
        inc: GroupIncludes,
    ) -> Self {
        let parent = g.group.parent.map(|p| RelatedGroup {
            pk: p,
            name: g.parent_name.clone().unwrap_or_default(),
            is_superuser: false,
            attributes: serde_json::json!({}),
            group_uuid: p,
        });
        Self {
            pk: g.group.uuid,
            num_pk: g.group.num_pk,
            name: g.group.name.clone(),
            is_superuser: g.group.is_superuser,
            parents: g.group.parent.into_iter().collect(),
            parents_obj: inc.parents.then(|| parent.into_iter().collect()),
            users: g.users.iter().map(|u| u.pk).collect(),
            users_obj: inc.users.then(|| {
                g.users
                    .iter()
                    .map(|u| PartialUser {
                        pk: u.pk,
                        username: u.username.clone(),
                        name: u.name.clone(),
                        is_active: u.is_active,
                        last_login: u.last_login.map(dt),
                        email: u.email.clone(),
                        attributes: u.attributes.clone(),
                        uid: state.user_uid(u.pk),
                    })
                    .collect()
            }),
            attributes: g.group.attributes.clone(),
            roles: Vec::new(),
            roles_obj: Vec::new(),
            inherited_roles_obj: inc.inherited_roles.then(Vec::new),
            children: children.iter().map(|c| c.uuid).collect(),
            children_obj: inc.children.then(|| {
                children
                    .iter()
                    .map(|c| RelatedGroup {
                        pk: c.uuid,
                        name: c.name.clone(),
                        is_superuser: c.is_superuser,
                        attributes: c.attributes.clone(),
                        group_uuid: c.uuid,
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct GroupRequest {
    pub name: Option<String>,
    pub is_superuser: Option<bool>,
    pub parents: Option<Vec<Uuid>>,
    pub users: Option<Vec<i32>>,
    pub attributes: Option<Value>,
    pub roles: Option<Vec<Uuid>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThemedUrls {
    pub light: String,
    pub dark: String,
}

/// authentik's `Application`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationSerializer {
    pub pk: Uuid,
    pub pbm_uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub provider: Option<i32>,
    pub provider_obj: Option<Value>,
    pub backchannel_providers: Vec<i32>,
    pub backchannel_providers_obj: Vec<Value>,
    pub launch_url: Option<String>,
    pub open_in_new_tab: bool,
    pub meta_launch_url: String,
    pub meta_icon: String,
    pub meta_icon_url: Option<String>,
    pub meta_icon_themed_urls: Option<ThemedUrls>,
    pub meta_description: String,
    pub meta_publisher: String,
    pub policy_engine_mode: String,
    pub group: String,
    pub meta_hide: bool,
}

impl From<&Application> for ApplicationSerializer {
    fn from(a: &Application) -> Self {
        let icon = a.meta_icon.clone().unwrap_or_default();
        Self {
            pk: a.uuid,
            pbm_uuid: a.uuid,
            name: a.name.clone(),
            slug: a.slug.clone(),
            provider: a.provider,
            provider_obj: None,
            backchannel_providers: Vec::new(),
            backchannel_providers_obj: Vec::new(),
            launch_url: (!a.meta_launch_url.is_empty()).then(|| a.meta_launch_url.clone()),
            open_in_new_tab: a.open_in_new_tab,
            meta_launch_url: a.meta_launch_url.clone(),
            meta_icon_url: (!icon.is_empty()).then(|| icon.clone()),
            meta_icon_themed_urls: (!icon.is_empty()).then(|| ThemedUrls {
                light: icon.replace("%(theme)s", "light"),
                dark: icon.replace("%(theme)s", "dark"),
            }),
            meta_icon: icon,
            meta_description: a.meta_description.clone(),
            meta_publisher: a.meta_publisher.clone(),
            policy_engine_mode: a.policy_engine_mode.as_str().to_owned(),
            group: a.group.clone(),
            meta_hide: a.meta_hide,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ApplicationRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub provider: Option<Option<i32>>,
    pub backchannel_providers: Option<Vec<i32>>,
    pub open_in_new_tab: Option<bool>,
    pub meta_launch_url: Option<String>,
    pub meta_icon: Option<String>,
    pub meta_description: Option<String>,
    pub meta_publisher: Option<String>,
    #[schema(value_type = Option<String>)]
    pub policy_engine_mode: Option<portcullis_core::PolicyEngineMode>,
    pub group: Option<String>,
    pub meta_hide: Option<bool>,
}

/// authentik's `Token`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSerializer {
    pub pk: Uuid,
    pub managed: Option<String>,
    pub identifier: String,
    pub intent: String,
    pub user: i32,
    pub user_obj: UserSerializer,
    pub description: String,
    pub expires: Option<String>,
    pub expiring: bool,
}

impl TokenSerializer {
    pub fn new(state: &AppState, t: &Token, owner: &UserWithGroups) -> Self {
        Self {
            pk: t.uuid,
            managed: t.managed.clone(),
            identifier: t.identifier.clone(),
            intent: t.intent.as_str().to_owned(),
            user: t.user_pk,
            user_obj: UserSerializer::new(state, owner, true, true),
            description: t.description.clone(),
            expires: t.expires.map(dt),
            expiring: t.expiring,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub managed: Option<Option<String>>,
    pub identifier: Option<String>,
    #[schema(value_type = Option<String>)]
    pub intent: Option<portcullis_core::TokenIntent>,
    pub user: Option<i32>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<Option<DateTime<Utc>>>,
    pub expiring: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub key: String,
}

/// authentik's `CertificateKeyPair`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateKeyPairSerializer {
    pub pk: Uuid,
    pub name: String,
    pub fingerprint_sha256: Option<String>,
    pub fingerprint_sha1: Option<String>,
    pub cert_expiry: Option<String>,
    pub cert_subject: Option<String>,
    pub private_key_available: bool,
    pub key_type: Option<String>,
    pub certificate_download_url: String,
    pub private_key_download_url: String,
    pub managed: Option<String>,
}

impl From<&CertificateKeyPair> for CertificateKeyPairSerializer {
    fn from(k: &CertificateKeyPair) -> Self {
        Self {
            pk: k.uuid,
            name: k.name.clone(),
            fingerprint_sha256: Some(k.fingerprint_sha256.clone()),
            fingerprint_sha1: Some(k.fingerprint_sha1.clone()),
            cert_expiry: Some(dt(k.not_after)),
            cert_subject: Some(k.subject.clone()),
            private_key_available: k.has_private_key,
            key_type: k.private_key_type.clone(),
            certificate_download_url: format!(
                "/api/v3/crypto/certificatekeypairs/{}/view_certificate/?download",
                k.uuid
            ),
            private_key_download_url: format!(
                "/api/v3/crypto/certificatekeypairs/{}/view_private_key/?download",
                k.uuid
            ),
            managed: k.managed.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CertificateKeyPairRequest {
    pub name: Option<String>,
    pub certificate_data: Option<String>,
    pub key_data: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CertificateGenerationRequest {
    pub common_name: String,
    #[serde(default)]
    pub subject_alt_name: Option<String>,
    pub validity_days: i64,
    #[serde(default)]
    pub alg: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateData {
    pub data: String,
}

/// authentik's `Brand`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrandSerializer {
    pub brand_uuid: Uuid,
    pub domain: String,
    pub default: bool,
    pub branding_title: String,
    pub branding_logo: String,
    pub branding_favicon: String,
    pub branding_custom_css: String,
    pub branding_default_flow_background: String,
    pub branding_map_tiles: String,
    pub flow_authentication: Option<Uuid>,
    pub flow_user_switch: Option<Uuid>,
    pub flow_invalidation: Option<Uuid>,
    pub flow_recovery: Option<Uuid>,
    pub flow_unenrollment: Option<Uuid>,
    pub flow_user_settings: Option<Uuid>,
    pub flow_device_code: Option<Uuid>,
    pub flow_lockdown: Option<Uuid>,
    pub flow_request: Option<Uuid>,
    pub default_application: Option<Uuid>,
    pub web_certificate: Option<Uuid>,
    pub client_certificates: Vec<Uuid>,
    pub attributes: Value,
}

impl From<&Brand> for BrandSerializer {
    fn from(b: &Brand) -> Self {
        Self {
            brand_uuid: b.uuid,
            domain: b.domain.clone(),
            default: b.default,
            branding_title: b.branding_title.clone(),
            branding_logo: b.branding_logo.clone(),
            branding_favicon: b.branding_favicon.clone(),
            branding_custom_css: b.branding_custom_css.clone(),
            branding_default_flow_background: b.branding_default_flow_background.clone(),
            branding_map_tiles: b
                .attributes
                .get("branding_map_tiles")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            flow_authentication: b.flows.authentication,
            flow_user_switch: None,
            flow_invalidation: b.flows.invalidation,
            flow_recovery: b.flows.recovery,
            flow_unenrollment: b.flows.unenrollment,
            flow_user_settings: b.flows.user_settings,
            flow_device_code: b.flows.device_code,
            flow_lockdown: None,
            flow_request: None,
            default_application: None,
            web_certificate: b.web_certificate,
            client_certificates: Vec::new(),
            attributes: b.attributes.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BrandRequest {
    pub domain: Option<String>,
    pub default: Option<bool>,
    pub branding_title: Option<String>,
    pub branding_logo: Option<String>,
    pub branding_favicon: Option<String>,
    pub branding_custom_css: Option<String>,
    pub branding_default_flow_background: Option<String>,
    pub branding_map_tiles: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_authentication: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_user_switch: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_invalidation: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_recovery: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_unenrollment: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_user_settings: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_device_code: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_lockdown: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub flow_request: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub default_application: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub web_certificate: Option<Option<Uuid>>,
    pub client_certificates: Option<Vec<Uuid>>,
    pub attributes: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FooterLink {
    pub name: String,
    pub href: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentBrandFlags {
    pub flows_continuous_login: bool,
    pub flows_refresh_others: bool,
}

/// authentik's `CurrentBrand`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentBrand {
    pub matched_domain: String,
    pub branding_title: String,
    pub branding_logo: String,
    pub branding_logo_themed_urls: Option<ThemedUrls>,
    pub branding_favicon: String,
    pub branding_favicon_themed_urls: Option<ThemedUrls>,
    pub branding_custom_css: String,
    pub branding_map_tiles: String,
    pub ui_footer_links: Vec<FooterLink>,
    pub ui_theme: String,
    pub default_locale: String,
    pub flags: CurrentBrandFlags,
    /// The slugs of the brand's flows (authentik leaves out the ones not set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_authentication: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_invalidation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_recovery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_unenrollment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_user_settings: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_device_code: Option<String>,
}

fn themed(url: &str) -> Option<ThemedUrls> {
    url.contains("%(theme)s").then(|| ThemedUrls {
        light: url.replace("%(theme)s", "light"),
        dark: url.replace("%(theme)s", "dark"),
    })
}

impl From<&Brand> for CurrentBrand {
    fn from(b: &Brand) -> Self {
        let attr_str = |k: &str| {
            b.attributes
                .pointer(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            matched_domain: b.domain.clone(),
            branding_title: b.branding_title.clone(),
            branding_logo: b.branding_logo.clone(),
            branding_logo_themed_urls: themed(&b.branding_logo),
            branding_favicon: b.branding_favicon.clone(),
            branding_favicon_themed_urls: themed(&b.branding_favicon),
            branding_custom_css: b.branding_custom_css.clone(),
            branding_map_tiles: attr_str("/branding_map_tiles").unwrap_or_default(),
            ui_footer_links: b
                .attributes
                .pointer("/settings/footerLinks")
                .and_then(Value::as_array)
                .map(|links| {
                    links
                        .iter()
                        .filter_map(|l| {
                            Some(FooterLink {
                                name: l.get("name")?.as_str()?.to_owned(),
                                href: l.get("href").and_then(Value::as_str).map(str::to_owned),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ui_theme: match attr_str("/settings/theme/base").as_deref() {
                Some("light") => "light".into(),
                Some("dark") => "dark".into(),
                _ => "automatic".into(),
            },
            default_locale: attr_str("/settings/locale").unwrap_or_default(),
            flags: CurrentBrandFlags {
                flows_continuous_login: false,
                flows_refresh_others: false,
            },
            flow_authentication: None,
            flow_invalidation: None,
            flow_recovery: None,
            flow_unenrollment: None,
            flow_user_settings: None,
            flow_device_code: None,
        }
    }
}

/// authentik's `Event`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSerializer {
    pub pk: Uuid,
    pub user: Value,
    pub action: String,
    pub app: String,
    pub context: Value,
    pub client_ip: Option<String>,
    pub created: String,
    pub expires: String,
    pub brand: Value,
}

impl From<&Event> for EventSerializer {
    fn from(e: &Event) -> Self {
        Self {
            pk: e.uuid,
            user: e.user.clone(),
            action: e.action.clone(),
            app: e.app.clone(),
            context: e.context.clone(),
            client_ip: e.client_ip.clone(),
            created: dt(e.created),
            expires: dt(e.expires),
            brand: e.brand.clone(),
        }
    }
}

crate::paginated!(PaginatedUserList, UserSerializer);
crate::paginated!(PaginatedGroupList, GroupSerializer);
crate::paginated!(PaginatedApplicationList, ApplicationSerializer);
crate::paginated!(PaginatedTokenList, TokenSerializer);
crate::paginated!(
    PaginatedCertificateKeyPairList,
    CertificateKeyPairSerializer
);
crate::paginated!(PaginatedBrandList, BrandSerializer);
crate::paginated!(PaginatedEventList, EventSerializer);

/// authentik's `BlueprintInstance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlueprintInstanceSerializer {
    pub pk: Uuid,
    pub name: String,
    pub path: String,
    pub context: Value,
    pub last_applied: String,
    pub last_applied_hash: String,
    pub status: String,
    pub enabled: bool,
    pub managed_models: Vec<String>,
    pub metadata: Value,
    pub content: String,
}

impl From<&portcullis_core::BlueprintInstance> for BlueprintInstanceSerializer {
    fn from(b: &portcullis_core::BlueprintInstance) -> Self {
        Self {
            pk: b.uuid,
            name: b.name.clone(),
            path: b.path.clone(),
            context: b.context.clone(),
            last_applied: dt(b.last_applied),
            last_applied_hash: b.last_applied_hash.clone(),
            status: b.status.as_str().to_owned(),
            enabled: b.enabled,
            managed_models: b.managed_models.clone(),
            metadata: b.metadata.clone(),
            content: b.content.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BlueprintInstanceRequest {
    pub name: Option<String>,
    pub path: Option<String>,
    pub context: Option<Value>,
    pub enabled: Option<bool>,
    pub content: Option<String>,
}

/// authentik's `BlueprintFile`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlueprintFile {
    pub path: String,
    pub last_m: String,
    pub hash: String,
    pub meta: BlueprintMetadata,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlueprintMetadata {
    pub name: String,
    pub labels: Value,
}

crate::paginated!(PaginatedBlueprintInstanceList, BlueprintInstanceSerializer);

// ------------------------------------------------------------- flows, stages, prompts, policies

/// The background authentik shows when a flow names none.
pub const DEFAULT_FLOW_BACKGROUND: &str = "/static/dist/assets/images/flow_background.jpg";

/// authentik's `Flow`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowSerializer {
    pub pk: Uuid,
    pub policybindingmodel_ptr_id: Uuid,
    pub name: String,
    pub slug: String,
    pub title: String,
    pub designation: String,
    pub background: String,
    pub background_url: String,
    pub background_themed_urls: Option<ThemedUrls>,
    /// The stages bound to the flow.
    pub stages: Vec<Uuid>,
    /// The policies bound to the flow.
    pub policies: Vec<Uuid>,
    pub cache_count: u64,
    pub policy_engine_mode: String,
    pub compatibility_mode: bool,
    pub export_url: String,
    pub layout: String,
    pub denied_action: String,
    pub authentication: String,
}

fn flow_background(f: &portcullis_core::Flow) -> String {
    if f.background.is_empty() {
        DEFAULT_FLOW_BACKGROUND.to_owned()
    } else {
        f.background.clone()
    }
}

fn flow_export_url(f: &portcullis_core::Flow) -> String {
    format!("/api/v3/flows/instances/{}/export/", f.slug)
}

impl FlowSerializer {
    pub fn new(f: &portcullis_core::Flow, stages: Vec<Uuid>, policies: Vec<Uuid>) -> Self {
        Self {
            pk: f.uuid,
            policybindingmodel_ptr_id: f.pbm_uuid,
            name: f.name.clone(),
            slug: f.slug.clone(),
            title: f.title.clone(),
            designation: f.designation.as_str().to_owned(),
            background: f.background.clone(),
            background_url: flow_background(f),
            background_themed_urls: themed(&f.background),
            stages,
            policies,
            cache_count: 0,
            policy_engine_mode: f.policy_engine_mode.as_str().to_owned(),
            compatibility_mode: f.compatibility_mode,
            export_url: flow_export_url(f),
            layout: f.layout.as_str().to_owned(),
            denied_action: f.denied_action.as_str().to_owned(),
            authentication: f.authentication.as_str().to_owned(),
        }
    }
}

/// authentik's `FlowSet`: a flow as listed under a stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowSetSerializer {
    pub pk: Uuid,
    pub policybindingmodel_ptr_id: Uuid,
    pub name: String,
    pub slug: String,
    pub title: String,
    pub designation: String,
    pub background: String,
    pub background_url: String,
    pub policy_engine_mode: String,
    pub compatibility_mode: bool,
    pub export_url: String,
    pub layout: String,
    pub denied_action: String,
}

impl From<&portcullis_core::Flow> for FlowSetSerializer {
    fn from(f: &portcullis_core::Flow) -> Self {
        Self {
            pk: f.uuid,
            policybindingmodel_ptr_id: f.pbm_uuid,
            name: f.name.clone(),
            slug: f.slug.clone(),
            title: f.title.clone(),
            designation: f.designation.as_str().to_owned(),
            background: f.background.clone(),
            background_url: flow_background(f),
            policy_engine_mode: f.policy_engine_mode.as_str().to_owned(),
            compatibility_mode: f.compatibility_mode,
            export_url: flow_export_url(f),
            layout: f.layout.as_str().to_owned(),
            denied_action: f.denied_action.as_str().to_owned(),
        }
    }
}

/// Body of flow create/update (choices are checked by the handler, with DRF's messages).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FlowRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub title: Option<String>,
    pub designation: Option<String>,
    pub background: Option<String>,
    pub policy_engine_mode: Option<String>,
    pub compatibility_mode: Option<bool>,
    pub layout: Option<String>,
    pub denied_action: Option<String>,
    pub authentication: Option<String>,
}

/// authentik's `Stage` (the common part of every stage type); the typed endpoints add the
/// type's own settings at the top level.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageSerializer {
    pub pk: Uuid,
    pub name: String,
    pub component: String,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
    pub flow_set: Vec<FlowSetSerializer>,
    /// The stage type's own settings (typed endpoints only).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, Value>,
}

/// Body of a stage create/update: `name` and the stage type's own settings at the top level.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StageRequest {
    pub name: String,
}

/// authentik's `FlowStageBinding`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowStageBindingSerializer {
    pub pk: Uuid,
    pub policybindingmodel_ptr_id: Uuid,
    pub target: Uuid,
    pub stage: Uuid,
    pub stage_obj: StageSerializer,
    pub evaluate_on_plan: bool,
    pub re_evaluate_policies: bool,
    pub order: i32,
    pub policy_engine_mode: String,
    pub invalid_response_action: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FlowStageBindingRequest {
    pub target: Option<Uuid>,
    pub stage: Option<Uuid>,
    pub evaluate_on_plan: Option<bool>,
    pub re_evaluate_policies: Option<bool>,
    pub order: Option<i32>,
    pub policy_engine_mode: Option<String>,
    pub invalid_response_action: Option<String>,
}

/// authentik's `Prompt` (a field of prompt stages).
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptSerializer {
    pub pk: Uuid,
    pub name: String,
    pub field_key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub prompt_type: String,
    pub required: bool,
    pub placeholder: String,
    pub initial_value: String,
    pub order: i64,
    pub promptstage_set: Vec<Uuid>,
    pub prompt_stages_obj: Vec<StageSerializer>,
    pub sub_text: String,
    pub placeholder_expression: bool,
    pub initial_value_expression: bool,
}

/// Body of a prompt create/update.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PromptRequest {
    pub name: Option<String>,
    pub field_key: Option<String>,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub prompt_type: Option<String>,
    pub required: Option<bool>,
    pub placeholder: Option<String>,
    pub initial_value: Option<String>,
    pub order: Option<i64>,
    pub sub_text: Option<String>,
    pub placeholder_expression: Option<bool>,
    pub initial_value_expression: Option<bool>,
}

/// authentik's `Policy` (the common part of every policy type); the typed endpoints add the
/// type's own settings at the top level.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicySerializer {
    pub pk: Uuid,
    pub name: String,
    pub execution_logging: bool,
    pub component: String,
    pub verbose_name: String,
    pub verbose_name_plural: String,
    pub meta_model_name: String,
    pub bound_to: u64,
    /// The policy type's own settings (typed endpoints only).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, Value>,
}

/// Body of a policy create/update: `name`, `execution_logging` and the type's settings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PolicyRequest {
    pub name: String,
    pub execution_logging: Option<bool>,
}

/// authentik's `PolicyBinding`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyBindingSerializer {
    pub pk: Uuid,
    pub policy: Option<Uuid>,
    pub group: Option<Uuid>,
    pub user: Option<i32>,
    pub policy_obj: Option<PolicySerializer>,
    pub group_obj: Option<PartialGroup>,
    pub user_obj: Option<PartialUser>,
    pub target: Uuid,
    pub negate: bool,
    pub enabled: bool,
    pub order: i32,
    pub timeout: i32,
    pub failure_result: bool,
    pub expires: Option<String>,
    pub expiring: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PolicyBindingRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub policy: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub group: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    pub user: Option<Option<i32>>,
    pub target: Option<Uuid>,
    pub negate: Option<bool>,
    pub enabled: Option<bool>,
    pub order: Option<i32>,
    pub timeout: Option<i32>,
    pub failure_result: Option<bool>,
}

/// authentik's `PolicyTestRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PolicyTestRequest {
    pub user: i32,
    #[serde(default)]
    pub context: Option<Value>,
}

/// authentik's `LogEvent`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEvent {
    pub timestamp: String,
    pub log_level: String,
    pub logger: String,
    pub event: String,
    pub attributes: Value,
}

/// authentik's `PolicyTestResult`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyTestResult {
    pub passing: bool,
    pub messages: Vec<String>,
    pub log_messages: Vec<LogEvent>,
}

/// authentik's `TypeCreate`: a type the admin may create (`stages/all/types/`, ...).
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeCreate {
    pub name: String,
    pub description: String,
    pub component: String,
    pub model_name: String,
    pub icon_url: Option<String>,
    pub requires_enterprise: bool,
    pub deprecated: bool,
}

crate::paginated!(PaginatedFlowList, FlowSerializer);
crate::paginated!(PaginatedFlowStageBindingList, FlowStageBindingSerializer);
crate::paginated!(PaginatedStageList, StageSerializer);
crate::paginated!(PaginatedPromptList, PromptSerializer);
crate::paginated!(PaginatedPolicyList, PolicySerializer);
crate::paginated!(PaginatedPolicyBindingList, PolicyBindingSerializer);
