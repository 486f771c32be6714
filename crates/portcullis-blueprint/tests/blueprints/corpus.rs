//! The corpus under `tests/corpus/`, applied in order with the fake store; every tag and every
//! state appears in it, and each evaluated entry is compared whole.

use std::collections::BTreeSet;

use portcullis_blueprint::{EntryState, Node, Tag};
use serde_json::json;

use crate::common::{FakeStore, apply, load};

#[tokio::test]
async fn bootstrap_applies_like_authentik() {
    let blueprint = load("bootstrap.yaml");
    let metadata = blueprint.metadata.clone().unwrap();
    assert_eq!(metadata.name, "Portcullis bootstrap");
    assert_eq!(metadata.labels["int.goauthentik.io/bootstrap"], "true");

    let store = FakeStore::default();
    let applied = apply(&blueprint, &store, json!({})).await.unwrap();
    let states: Vec<_> = applied.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [
            EntryState::Created,
            EntryState::Created,
            EntryState::Present,
            EntryState::Present,
            EntryState::Absent
        ]
    );
    assert_eq!(
        applied[0].identifiers,
        Some(json!({"name": "Portcullis Admins"}))
    );
    assert_eq!(applied[0].attrs, Some(json!({"is_superuser": true})));
    assert_eq!(applied[1].identifiers, Some(json!({"username": "akadmin"})));
    assert_eq!(
        applied[1].attrs,
        Some(json!({
            "password": "hunter2",
            "name": "Default Admin",
            "email": "root@localhost",
            "groups": ["pk-0"],
        }))
    );
    assert_eq!(
        applied[2].attrs,
        Some(json!({"user_identifiers": {"username": "akadmin"}, "raw_password": "hunter2"}))
    );
    // No PORTCULLIS_BOOTSTRAP_TOKEN: the token entry's condition is false.
    assert_eq!(applied[3].attrs, None);
    assert_eq!(
        applied[4].identifiers,
        Some(json!({"metadata": {"labels": {"int.goauthentik.io/bootstrap": "true"}}}))
    );
}

#[tokio::test]
async fn caller_context_overrides_defaults() {
    let blueprint = load("bootstrap.yaml");
    let store = FakeStore::default();
    let applied = apply(&blueprint, &store, json!({"username": "root"}))
        .await
        .unwrap();
    assert_eq!(applied[1].identifiers, Some(json!({"username": "root"})));
}

#[tokio::test]
async fn login_flow_with_sections_finds_and_keys() {
    let blueprint = load("flow-login.yaml");
    // The dict of lists is flattened in order.
    let models: Vec<_> = blueprint.entries.iter().map(|e| e.model.as_str()).collect();
    assert_eq!(
        models,
        [
            "authentik_flows.flow",
            "authentik_stages_identification.identificationstage",
            "authentik_stages_authenticator_validate.authenticatorvalidatestage",
            "authentik_stages_user_login.userloginstage",
            "authentik_flows.flowstagebinding",
            "authentik_flows.flowstagebinding",
            "authentik_flows.flowstagebinding",
            "authentik_policies.policybinding",
            "authentik_flows.flow",
        ]
    );
    assert_eq!(blueprint.entries[1].state, EntryState::MustCreated);
    assert_eq!(blueprint.entries[8].state, EntryState::Absent);

    let store = FakeStore::with_objects(vec![
        (
            "authentik_stages_password.passwordstage",
            json!({"pk": "password-pk", "name": "default-authentication-password"}),
        ),
        (
            "authentik_stages_authenticator_validate.authenticatorvalidatestage",
            json!({
                "pk": "mfa-pk",
                "name": "default-authentication-mfa-validation",
                "device_classes": ["static", "totp", "webauthn"],
            }),
        ),
        (
            "authentik_policies_expression.expressionpolicy",
            json!({"pk": "policy-pk", "name": "default-authentication-flow-password-stage"}),
        ),
    ]);
    let applied = apply(&blueprint, &store, json!({"brand_name": "ACME"}))
        .await
        .unwrap();
    let expected = [
        (
            json!({"slug": "example-login"}),
            json!({
                "name": "Example login",
                "title": "Welcome to ACME!",
                "designation": "authentication",
                "authentication": "require_unauthenticated",
            }),
        ),
        (
            json!({"name": "example-login-identification"}),
            json!({
                "user_fields": ["email", "username"],
                "password_stage": "password-pk",
                "enrollment_flow": null,
            }),
        ),
        (
            json!({"name": "example-login-mfa"}),
            json!({
                "device_classes": ["static", "totp", "webauthn"],
                "not_configured_action": "skip",
            }),
        ),
        (json!({"name": "example-login-login"}), json!({})),
        (
            json!({"target": "pk-0", "stage": "pk-1", "order": 10}),
            json!({}),
        ),
        (
            json!({"target": "pk-0", "stage": "pk-2", "order": 30}),
            json!({"re_evaluate_policies": true}),
        ),
        (
            json!({"target": "pk-0", "stage": "pk-3", "order": 100}),
            json!({}),
        ),
        (
            // A policy binding's target is the flow's pbm_uuid, as in authentik.
            json!({"policy": "policy-pk", "target": "pbm-pk-0", "order": 0}),
            json!({}),
        ),
        (json!({"slug": "example-login-old"}), json!({})),
    ];
    assert_eq!(applied.len(), expected.len());
    for (got, (identifiers, attrs)) in applied.iter().zip(expected) {
        assert_eq!(
            got.identifiers.as_ref(),
            Some(&identifiers),
            "entry {}",
            got.index
        );
        assert_eq!(got.attrs.as_ref(), Some(&attrs), "entry {}", got.index);
    }
}

#[tokio::test]
async fn conditions_can_skip_entries() {
    let blueprint = load("flow-login.yaml");
    let store = FakeStore::with_objects(vec![(
        "authentik_stages_authenticator_validate.authenticatorvalidatestage",
        json!({"pk": "mfa-pk", "name": "default-authentication-mfa-validation", "device_classes": []}),
    )]);
    let applied = apply(&blueprint, &store, json!({"mfa": false}))
        .await
        .unwrap();
    assert_eq!(applied[2].attrs, None);
    assert_eq!(applied[5].attrs, None);
    assert!(applied[6].attrs.is_some());
}

#[tokio::test]
async fn every_tag_evaluates_like_authentik() {
    let blueprint = load("tags.yaml");
    let store = FakeStore::default();
    let applied = apply(&blueprint, &store, json!({"bar": "baz"}))
        .await
        .unwrap();
    assert_eq!(
        applied[0].identifiers,
        Some(json!({"name": "foo-bar-baz-qux"}))
    );
    assert_eq!(applied[0].attrs, Some(json!({"expression": "return True"})));
    assert_eq!(applied[1].identifiers, Some(json!({"name": "test"})));
    let expected = json!({
        "policy_pk1": "pk-0-suffix",
        "policy_pk2": "pk-0-suffix",
        "bool_and": true,
        "bool_nand": false,
        "bool_or": true,
        "bool_nor": false,
        "bool_xor": true,
        "bool_xnor": false,
        "bool_complex": true,
        "if_true_complex": {
            "dictionary": {"with": {"keys": "and_values"}, "and_nested_custom_tags": "foo-bar"}
        },
        "if_false_complex": ["list", "with", "items", "foo-bar"],
        "if_true_simple": true,
        "if_short": true,
        "if_short_false": false,
        "if_false_simple": 2,
        "enumerate_mapping_to_mapping": {
            "prefix-key1": "other-prefix-value",
            "prefix-key2": "other-prefix-2",
        },
        "enumerate_mapping_to_sequence": ["prefixed-pair-key1-value", "prefixed-pair-key2-2"],
        "enumerate_sequence_to_sequence": ["prefixed-items-0-foo", "prefixed-items-1-bar"],
        "enumerate_sequence_to_mapping": {"index: 0": "foo", "index: 1": "bar"},
        "enumerate_merging_mappings": {"all": ["foo", "bar"], "last": "bar"},
        "nested_complex_enumeration": {
            "0": {
                "key1": [
                    ["prefixed-f", "prefixed-o", "prefixed-o"],
                    {"outer_value": "foo", "outer_index": 0, "middle_value": "value", "middle_index": "key1"},
                ],
                "key2": [
                    ["prefixed-f", "prefixed-o", "prefixed-o"],
                    {"outer_value": "foo", "outer_index": 0, "middle_value": 2, "middle_index": "key2"},
                ],
            },
            "1": {
                "key1": [
                    ["prefixed-b", "prefixed-a", "prefixed-r"],
                    {"outer_value": "bar", "outer_index": 1, "middle_value": "value", "middle_index": "key1"},
                ],
                "key2": [
                    ["prefixed-b", "prefixed-a", "prefixed-r"],
                    {"outer_value": "bar", "outer_index": 1, "middle_value": 2, "middle_index": "key2"},
                ],
            },
        },
        "nested_context": "context-nested-value",
        "context_default": "the-default",
        "context_from_env": "env-default",
        "env_set": "set-value",
        "env_empty_uses_default": "fallback",
        "env_unset": null,
        "at_index_list": "bar",
        "at_index_negative": "bar",
        "at_index_map": 2,
        "at_index_default": "no-key3",
        "at_index_out_of_range_default": null,
        "parse_json": {"a": [1, 2], "b": null},
        "parse_json_scalar": "text",
        "file": "secret-content",
        "file_in_subdir": "secret-content",
        "file_missing_default": "file-default",
        "file_missing": null,
        "format_numbers": "00042|3.14|ff|1.0|'x'|%",
        "format_values": "None ['a', 1, True] {'k': 'v'}",
    });
    assert_eq!(applied[1].attrs, Some(json!({"attributes": expected})));
}

#[tokio::test]
async fn anchors_and_merge_keys() {
    let blueprint = load("merged-anchors.yaml");
    let applied = apply(&blueprint, &FakeStore::default(), json!({}))
        .await
        .unwrap();
    assert_eq!(applied[0].identifiers, Some(json!({"name": "anchored"})));
    assert_eq!(
        applied[1].identifiers,
        Some(json!({"name": "anchored", "parent": null}))
    );
    assert_eq!(
        applied[1].attrs,
        Some(json!({"is_superuser": true, "attributes": {"team": "blue"}}))
    );
}

/// The corpus as a whole uses every tag and every state.
#[test]
fn corpus_covers_every_tag_and_state() {
    fn walk(node: &Node, tags: &mut BTreeSet<&'static str>) {
        match node {
            Node::Seq(items) => items.iter().for_each(|n| walk(n, tags)),
            Node::Map(entries) => entries.iter().for_each(|(_, n)| walk(n, tags)),
            Node::Tag(tag) => {
                tags.insert(tag.name());
                let children: Vec<&Node> = match tag.as_ref() {
                    Tag::KeyOf(_) | Tag::Value(_) | Tag::Index(_) | Tag::ParseJson(_) => vec![],
                    Tag::Find { model, query } | Tag::FindObject { model, query } => {
                        let mut v = vec![model];
                        for (k, val) in query {
                            v.push(k);
                            v.push(val);
                        }
                        v
                    }
                    Tag::Context { key, default } => {
                        std::iter::once(key).chain(default.as_ref()).collect()
                    }
                    Tag::Env { name, default } => {
                        std::iter::once(name).chain(default.as_ref()).collect()
                    }
                    Tag::File { path, default } => {
                        std::iter::once(path).chain(default.as_ref()).collect()
                    }
                    Tag::Format { format, args } => std::iter::once(format).chain(args).collect(),
                    Tag::Condition { mode, args } => std::iter::once(mode).chain(args).collect(),
                    Tag::If {
                        condition,
                        when_true,
                        when_false,
                    } => {
                        vec![condition, when_true, when_false]
                    }
                    Tag::Enumerate {
                        iterable,
                        output,
                        body,
                    } => vec![iterable, output, body],
                    Tag::AtIndex {
                        target,
                        index,
                        default,
                    } => [target, index]
                        .into_iter()
                        .chain(default.as_ref())
                        .collect(),
                };
                children.into_iter().for_each(|n| walk(n, tags));
            }
            _ => {}
        }
    }
    let mut tags = BTreeSet::new();
    let mut states = BTreeSet::new();
    for name in [
        "bootstrap.yaml",
        "flow-login.yaml",
        "tags.yaml",
        "merged-anchors.yaml",
    ] {
        let blueprint = load(name);
        for node in blueprint.context.values() {
            walk(node, &mut tags);
        }
        for entry in &blueprint.entries {
            states.insert(entry.state.as_str());
            for node in [&entry.identifiers, &entry.attrs]
                .into_iter()
                .chain(&entry.conditions)
                .chain(&entry.permissions)
            {
                walk(node, &mut tags);
            }
        }
    }
    let all_tags: BTreeSet<_> = [
        "KeyOf",
        "Find",
        "FindObject",
        "Context",
        "Format",
        "Condition",
        "If",
        "Env",
        "File",
        "Enumerate",
        "Value",
        "Index",
        "AtIndex",
        "ParseJSON",
    ]
    .into_iter()
    .collect();
    assert_eq!(tags, all_tags);
    let all_states: BTreeSet<_> = ["present", "created", "must_created", "absent"]
        .into_iter()
        .collect();
    assert_eq!(states, all_states);
}

/// The apply step runs inside request handlers and spawned tasks: evaluation futures are Send.
#[tokio::test]
async fn evaluation_can_run_on_a_spawned_task() {
    let blueprint = load("tags.yaml");
    let handle = tokio::spawn(async move {
        let store = FakeStore::default();
        apply(&blueprint, &store, json!({"bar": "baz"}))
            .await
            .map(|a| a.len())
    });
    assert_eq!(handle.await.unwrap().unwrap(), 2);
}
