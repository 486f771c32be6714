//! Export: the current configuration as a blueprint that applies cleanly to an empty instance.
//!
//! Objects are written in dependency order (keypairs, groups parents first, users, tokens,
//! applications, brands) and refer to each other with `!KeyOf`, never by primary key, so the
//! file means the same on another instance. Exporting, applying to an empty instance and
//! exporting again gives the same file.
//!
//! Left out: objects a Portcullis instance makes itself (`managed` keypairs and tokens, which
//! every instance has its own of), token keys and password hashes, and private keys unless
//! asked for (`include_secrets`).

use std::collections::BTreeMap;

use portcullis_core::PageRequest;
use portcullis_store::{
    ApplicationFilter, CertificateFilter, GroupFilter, ListQuery, Store, TokenFilter, UserFilter,
};
use serde_norway::Value as Y;
use serde_norway::value::{Tag, TaggedValue};

use crate::AppState;
use crate::error::ApiError;

const PAGE: u64 = 1000;

fn page(n: u64) -> ListQuery {
    ListQuery {
        page: PageRequest {
            page: n,
            page_size: PAGE,
        },
        ..Default::default()
    }
}

pub(crate) fn s(v: impl Into<String>) -> Y {
    Y::String(v.into())
}

pub(crate) fn key_of(id: &str) -> Y {
    Y::Tagged(Box::new(TaggedValue {
        tag: Tag::new("KeyOf"),
        value: s(id),
    }))
}

/// JSON to YAML, value by value. Not through serde: with serde_json's `arbitrary_precision`
/// (which a dependency turns on) numbers serialize as a private map in other formats.
pub(crate) fn json(v: &serde_json::Value) -> Result<Y, ApiError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Y::Null,
        J::Bool(b) => Y::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Y::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Y::Number(u.into())
            } else {
                Y::Number(n.as_f64().filter(|f| f.is_finite()).unwrap_or(0.0).into())
            }
        }
        J::String(s) => Y::String(s.clone()),
        J::Array(items) => Y::Sequence(items.iter().map(json).collect::<Result<_, _>>()?),
        J::Object(map) => {
            let mut m = serde_norway::Mapping::new();
            for (k, v) in map {
                m.insert(Y::String(k.clone()), json(v)?);
            }
            Y::Mapping(m)
        }
    })
}

pub(crate) fn mapping(pairs: Vec<(&str, Y)>) -> Y {
    let mut m = serde_norway::Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Y::Mapping(m)
}

pub(crate) fn entry(
    model: &str,
    id: Option<String>,
    identifiers: Vec<(&str, Y)>,
    attrs: Vec<(&str, Y)>,
) -> Y {
    let mut pairs = vec![("model", s(model))];
    if let Some(id) = id {
        pairs.push(("id", s(id)));
    }
    pairs.push(("identifiers", mapping(identifiers)));
    pairs.push(("attrs", mapping(attrs)));
    mapping(pairs)
}

/// Every page of a list.
macro_rules! all {
    ($call:expr) => {{
        let mut out = Vec::new();
        let mut n = 1;
        loop {
            let p = $call(page(n)).await?;
            let done = n * PAGE >= p.count;
            out.extend(p.items);
            if done {
                break;
            }
            n += 1;
        }
        out
    }};
}

/// The configuration as blueprint YAML.
pub async fn export(state: &AppState, include_secrets: bool) -> Result<String, ApiError> {
    let store: &Store = &state.store;
    let mut entries: Vec<Y> = Vec::new();

    let mut keypairs = all!(|q: ListQuery| async move {
        store
            .list_certificate_keypairs(&CertificateFilter::default(), &q)
            .await
    });
    keypairs.retain(|k| k.managed.is_none());
    let kp_ids: BTreeMap<uuid::Uuid, String> = keypairs
        .iter()
        .map(|k| (k.uuid, format!("keypair/{}", k.name)))
        .collect();
    for k in &keypairs {
        let mut attrs = vec![("certificate_data", s(k.certificate_pem.trim_end()))];
        if include_secrets
            && k.has_private_key
            && let Some(enc) = store
                .view_private_key(k.uuid, &portcullis_core::Actor::system())
                .await?
        {
            attrs.push(("key_data", s(state.secrets.decrypt_str(&enc)?.trim_end())));
        }
        entries.push(entry(
            "authentik_crypto.certificatekeypair",
            kp_ids.get(&k.uuid).cloned(),
            vec![("name", s(k.name.clone()))],
            attrs,
        ));
    }

    let groups =
        all!(|q: ListQuery| async move { store.list_groups(&GroupFilter::default(), &q).await });
    let by_uuid: BTreeMap<uuid::Uuid, &portcullis_store::GroupWithMembers> =
        groups.iter().map(|g| (g.group.uuid, g)).collect();
    let depth = |g: &portcullis_store::GroupWithMembers| {
        let mut d = 0;
        let mut cur = g.group.parent;
        while let Some(p) = cur {
            d += 1;
            cur = by_uuid
                .get(&p)
                .and_then(|g| g.group.parent)
                .filter(|_| d < 64);
        }
        d
    };
    let mut ordered: Vec<&portcullis_store::GroupWithMembers> = groups.iter().collect();
    ordered.sort_by(|a, b| {
        depth(a)
            .cmp(&depth(b))
            .then_with(|| a.group.name.cmp(&b.group.name))
    });
    let group_id = |u: &uuid::Uuid| by_uuid.get(u).map(|g| format!("group/{}", g.group.name));
    for g in ordered {
        let mut attrs = vec![
            ("is_superuser", Y::Bool(g.group.is_superuser)),
            ("attributes", json(&g.group.attributes)?),
        ];
        if let Some(parent) = g.group.parent.and_then(|p| group_id(&p)) {
            attrs.push(("parents", Y::Sequence(vec![key_of(&parent)])));
        }
        entries.push(entry(
            "authentik_core.group",
            group_id(&g.group.uuid),
            vec![("name", s(g.group.name.clone()))],
            attrs,
        ));
    }

    let users =
        all!(|q: ListQuery| async move { store.list_users(&UserFilter::default(), &q).await });
    let user_ids: BTreeMap<i32, String> = users
        .iter()
        .map(|u| (u.user.pk, format!("user/{}", u.user.username)))
        .collect();
    for u in &users {
        let mut member_of: Vec<String> =
            u.groups.iter().filter_map(|g| group_id(&g.uuid)).collect();
        member_of.sort();
        let user = &u.user;
        entries.push(entry(
            "authentik_core.user",
            user_ids.get(&user.pk).cloned(),
            vec![("username", s(user.username.clone()))],
            vec![
                ("name", s(user.name.clone())),
                ("email", s(user.email.clone())),
                ("is_active", Y::Bool(user.is_active)),
                ("path", s(user.path.clone())),
                ("type", s(user.user_type.as_str())),
                ("attributes", json(&user.attributes)?),
                (
                    "groups",
                    Y::Sequence(member_of.iter().map(|g| key_of(g)).collect()),
                ),
            ],
        ));
    }

    let mut tokens =
        all!(|q: ListQuery| async move { store.list_tokens(&TokenFilter::default(), &q).await });
    tokens.retain(|t| t.managed.is_none());
    for t in &tokens {
        let Some(owner) = user_ids.get(&t.user_pk) else {
            continue;
        };
        let mut attrs = vec![
            ("user", key_of(owner)),
            ("intent", s(t.intent.as_str())),
            ("description", s(t.description.clone())),
            ("expiring", Y::Bool(t.expiring)),
        ];
        if let Some(e) = t.expires {
            attrs.push(("expires", s(crate::serializers::dt(e))));
        }
        entries.push(entry(
            "authentik_core.token",
            None,
            vec![("identifier", s(t.identifier.clone()))],
            attrs,
        ));
    }

    let apps = all!(|q: ListQuery| async move {
        store
            .list_applications(&ApplicationFilter::default(), &q)
            .await
    });
    for a in &apps {
        entries.push(entry(
            "authentik_core.application",
            None,
            vec![("slug", s(a.slug.clone()))],
            vec![
                ("name", s(a.name.clone())),
                ("group", s(a.group.clone())),
                ("meta_launch_url", s(a.meta_launch_url.clone())),
                ("meta_description", s(a.meta_description.clone())),
                ("meta_publisher", s(a.meta_publisher.clone())),
                ("meta_icon", s(a.meta_icon.clone().unwrap_or_default())),
                ("policy_engine_mode", s(a.policy_engine_mode.as_str())),
                ("open_in_new_tab", Y::Bool(a.open_in_new_tab)),
                ("meta_hide", Y::Bool(a.meta_hide)),
            ],
        ));
    }

    let mut brands = store.all_brands().await?;
    brands.sort_by(|a, b| a.domain.cmp(&b.domain));
    for b in &brands {
        let mut attrs = vec![
            ("default", Y::Bool(b.default)),
            ("branding_title", s(b.branding_title.clone())),
            ("branding_logo", s(b.branding_logo.clone())),
            ("branding_favicon", s(b.branding_favicon.clone())),
            ("branding_custom_css", s(b.branding_custom_css.clone())),
            (
                "branding_default_flow_background",
                s(b.branding_default_flow_background.clone()),
            ),
            ("attributes", json(&b.attributes)?),
        ];
        if let Some(kp) = b.web_certificate.and_then(|k| kp_ids.get(&k)) {
            attrs.push(("web_certificate", key_of(kp)));
        }
        entries.push(entry(
            "authentik_brands.brand",
            None,
            vec![("domain", s(b.domain.clone()))],
            attrs,
        ));
    }

    let doc = mapping(vec![
        ("version", Y::Number(1.into())),
        (
            "metadata",
            mapping(vec![
                ("name", s("Portcullis export")),
                ("labels", mapping(vec![])),
            ]),
        ),
        ("entries", Y::Sequence(entries)),
    ]);
    serde_norway::to_string(&doc).map_err(|e| ApiError::Internal(e.to_string()))
}
