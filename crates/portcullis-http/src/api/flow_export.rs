//! One flow as a blueprint (`flows/instances/{slug}/export/`): the flow, its stages, its stage
//! bindings, and the policy bindings (with their policies) of the flow and of each stage
//! binding. Objects refer to each other with `!KeyOf` (groups and users bound directly with
//! `!Find` by name), so the file applies on another instance; applying it twice changes nothing.

use std::collections::BTreeMap;

use portcullis_core::{Flow, Policy, PolicyBinding};
use portcullis_store::{FlowBindingFilter, Store};
use serde_json::Value;
use serde_norway::Value as Y;
use serde_norway::value::{Tag, TaggedValue};
use uuid::Uuid;

use super::everything;
use crate::error::{ApiError, ApiResult};
use crate::export::{entry, json, key_of, mapping, s};

fn find(model: &str, field: &str, value: &str) -> Y {
    Y::Tagged(Box::new(TaggedValue {
        tag: Tag::new("Find"),
        value: Y::Sequence(vec![s(model), Y::Sequence(vec![s(field), s(value)])]),
    }))
}

/// A type's settings as attributes, with uuids of exported objects replaced by `!KeyOf`.
fn settings(config: &Value, ids: &BTreeMap<Uuid, String>) -> ApiResult<Vec<(String, Y)>> {
    let mut out = Vec::new();
    if let Value::Object(m) = config {
        for (k, v) in m {
            let y = match v {
                Value::String(u) => match u.parse::<Uuid>().ok().and_then(|u| ids.get(&u)) {
                    Some(id) => key_of(id),
                    None => json(v)?,
                },
                Value::Array(items) => Y::Sequence(
                    items
                        .iter()
                        .map(|i| match i.as_str().and_then(|u| u.parse::<Uuid>().ok()) {
                            Some(u) if ids.contains_key(&u) => {
                                Ok(key_of(ids.get(&u).map(String::as_str).unwrap_or_default()))
                            }
                            _ => json(i),
                        })
                        .collect::<Result<_, ApiError>>()?,
                ),
                other => json(other)?,
            };
            out.push((k.clone(), y));
        }
    }
    Ok(out)
}

fn with_settings(mut attrs: Vec<(&str, Y)>, extra: &[(String, Y)]) -> Vec<(String, Y)> {
    let mut out: Vec<(String, Y)> = attrs.drain(..).map(|(k, v)| (k.to_owned(), v)).collect();
    out.extend(extra.iter().cloned());
    out
}

fn owned_entry(
    model: &str,
    id: Option<String>,
    identifiers: Vec<(&str, Y)>,
    attrs: Vec<(String, Y)>,
) -> Y {
    let attrs: Vec<(&str, Y)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    entry(model, id, identifiers, attrs)
}

/// The flow `flow` and everything bound to it, as blueprint YAML.
pub(crate) async fn export_flow(store: &Store, flow: &Flow) -> ApiResult<String> {
    let bindings = store
        .list_flow_bindings(
            &FlowBindingFilter {
                target: Some(flow.uuid),
                ..Default::default()
            },
            &everything(),
        )
        .await?
        .items;
    // Every object gets a blueprint id; references between them use it.
    let mut ids: BTreeMap<Uuid, String> = BTreeMap::new();
    ids.insert(flow.uuid, "flow".to_owned());
    let mut stages = Vec::new();
    for b in &bindings {
        if !ids.contains_key(&b.stage) {
            let stage = store.find_stage(b.stage).await?;
            ids.insert(stage.uuid, format!("stage-{}", stages.len() + 1));
            stages.push(stage);
        }
    }
    // Stages the bound stages name (an identification stage's inline password stage) come
    // first, so `!KeyOf` finds them.
    let mut named = Vec::new();
    for st in &stages {
        let values = st.config.as_object().into_iter().flat_map(|m| m.values());
        for v in values {
            let candidates: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for c in candidates {
                if let Some(u) = c.as_str().and_then(|u| u.parse::<Uuid>().ok())
                    && !ids.contains_key(&u)
                    && let Ok(dep) = store.find_stage(u).await
                {
                    ids.insert(
                        dep.uuid,
                        format!("stage-{}", stages.len() + named.len() + 1),
                    );
                    named.push(dep);
                }
            }
        }
    }
    named.append(&mut stages);
    let stages = named;
    for (i, b) in bindings.iter().enumerate() {
        ids.insert(b.uuid, format!("binding-{}", i + 1));
    }
    // The fields of prompt stages.
    let mut prompts = Vec::new();
    for st in stages.iter().filter(|st| st.kind == "promptstage") {
        let fields = st.config.get("fields").and_then(Value::as_array);
        for u in fields.into_iter().flatten() {
            if let Some(u) = u.as_str().and_then(|u| u.parse::<Uuid>().ok())
                && !ids.contains_key(&u)
                && let Ok(p) = store.find_prompt(u).await
            {
                ids.insert(p.uuid, format!("prompt-{}", prompts.len() + 1));
                prompts.push(p);
            }
        }
    }
    // Policy bindings of the flow and of each stage binding, with their policies.
    let mut policy_bindings: Vec<(String, PolicyBinding)> = Vec::new();
    let mut policies: Vec<Policy> = Vec::new();
    let targets = std::iter::once(("flow".to_owned(), flow.pbm_uuid)).chain(
        bindings
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("binding-{}", i + 1), b.pbm_uuid)),
    );
    for (target_id, pbm) in targets {
        for (pb, p) in store.policy_bindings_for(pbm).await? {
            if let Some(p) = p
                && !ids.contains_key(&p.uuid)
            {
                ids.insert(p.uuid, format!("policy-{}", policies.len() + 1));
                policies.push(p);
            }
            policy_bindings.push((target_id.clone(), pb));
        }
    }

    let mut entries = Vec::new();
    let mut flow_attrs = vec![
        ("name", s(flow.name.clone())),
        ("title", s(flow.title.clone())),
        ("designation", s(flow.designation.as_str())),
        ("authentication", s(flow.authentication.as_str())),
        ("policy_engine_mode", s(flow.policy_engine_mode.as_str())),
        ("denied_action", s(flow.denied_action.as_str())),
        ("layout", s(flow.layout.as_str())),
        ("compatibility_mode", Y::Bool(flow.compatibility_mode)),
    ];
    if !flow.background.is_empty() {
        flow_attrs.push(("background", s(flow.background.clone())));
    }
    entries.push(entry(
        "authentik_flows.flow",
        Some("flow".into()),
        vec![("slug", s(flow.slug.clone()))],
        flow_attrs,
    ));
    for p in &policies {
        let attrs = with_settings(
            vec![("execution_logging", Y::Bool(p.execution_logging))],
            &settings(&p.config, &ids)?,
        );
        entries.push(owned_entry(
            &super::policies::meta_model_name(&p.kind),
            ids.get(&p.uuid).cloned(),
            vec![("name", s(p.name.clone()))],
            attrs,
        ));
    }
    for p in &prompts {
        entries.push(owned_entry(
            "authentik_stages_prompt.prompt",
            ids.get(&p.uuid).cloned(),
            vec![("name", s(p.name.clone()))],
            settings(&p.config, &ids)?,
        ));
    }
    for st in &stages {
        entries.push(owned_entry(
            &super::stages::meta_model_name(&st.kind),
            ids.get(&st.uuid).cloned(),
            vec![("name", s(st.name.clone()))],
            settings(&st.config, &ids)?,
        ));
    }
    for b in &bindings {
        let stage_id = ids.get(&b.stage).cloned().unwrap_or_default();
        entries.push(entry(
            "authentik_flows.flowstagebinding",
            ids.get(&b.uuid).cloned(),
            vec![
                ("target", key_of("flow")),
                ("stage", key_of(&stage_id)),
                ("order", Y::Number(b.order.into())),
            ],
            vec![
                ("evaluate_on_plan", Y::Bool(b.evaluate_on_plan)),
                ("re_evaluate_policies", Y::Bool(b.re_evaluate_policies)),
                (
                    "invalid_response_action",
                    s(b.invalid_response_action.as_str()),
                ),
                ("policy_engine_mode", s(b.policy_engine_mode.as_str())),
            ],
        ));
    }
    for (target_id, pb) in &policy_bindings {
        let mut identifiers = vec![("target", key_of(target_id))];
        if let Some(p) = pb.policy {
            identifiers.push((
                "policy",
                key_of(ids.get(&p).map(String::as_str).unwrap_or("")),
            ));
        } else if let Some(g) = pb.group {
            let g = store.find_group(g).await?;
            identifiers.push(("group", find("authentik_core.group", "name", &g.group.name)));
        } else if let Some(u) = pb.user {
            let u = store.find_user(u).await?;
            identifiers.push((
                "user",
                find("authentik_core.user", "username", &u.user.username),
            ));
        }
        identifiers.push(("order", Y::Number(pb.order.into())));
        entries.push(entry(
            "authentik_policies.policybinding",
            None,
            identifiers,
            vec![
                ("negate", Y::Bool(pb.negate)),
                ("enabled", Y::Bool(pb.enabled)),
                ("timeout", Y::Number(pb.timeout.into())),
                ("failure_result", Y::Bool(pb.failure_result)),
            ],
        ));
    }
    let doc = mapping(vec![
        ("version", Y::Number(1.into())),
        (
            "metadata",
            mapping(vec![
                (
                    "name",
                    s(format!("Portcullis export of flow {}", flow.slug)),
                ),
                ("labels", mapping(vec![])),
            ]),
        ),
        ("entries", Y::Sequence(entries)),
    ]);
    serde_norway::to_string(&doc).map_err(|e| ApiError::Internal(e.to_string()))
}
