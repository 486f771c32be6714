#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::request::PolicyUser;

fn login_failed() -> Value {
    json!({
        "action": "login_failed",
        "app": "authentik.events.signals",
        "client_ip": "192.0.2.10",
        "context": {
            "model": {"app": "authentik_core", "model_name": "user", "pk": 7, "name": "alice"}
        },
        "user": {"pk": 7, "username": "alice"}
    })
}

fn with_event(event: Value) -> PolicyRequest {
    let mut r = PolicyRequest::new(PolicyUser::anonymous());
    r.context.insert(CONTEXT_EVENT.into(), event);
    r
}

fn action(a: &str) -> EventMatcherPolicy {
    EventMatcherPolicy {
        action: Some(a.into()),
        ..Default::default()
    }
}

fn client_ip(ip: &str) -> EventMatcherPolicy {
    EventMatcherPolicy {
        client_ip: Some(ip.into()),
        ..Default::default()
    }
}

fn app(a: &str) -> EventMatcherPolicy {
    EventMatcherPolicy {
        app: Some(a.into()),
        ..Default::default()
    }
}

fn model(m: &str) -> EventMatcherPolicy {
    EventMatcherPolicy {
        model: Some(m.into()),
        ..Default::default()
    }
}

fn all_four() -> EventMatcherPolicy {
    EventMatcherPolicy {
        action: Some("login_failed".into()),
        client_ip: Some("192.0.2.10".into()),
        app: Some("authentik.events.signals".into()),
        model: Some("authentik_core.user".into()),
    }
}

#[test]
fn each_field_alone_matches_and_says_so() {
    let req = with_event(login_failed());
    for (policy, message, checker) in [
        (action("login_failed"), "Action matched.", "passes_action"),
        (
            client_ip("192.0.2.10"),
            "Client IP matched.",
            "passes_client_ip",
        ),
        (
            app("authentik.events.signals"),
            "App matched.",
            "passes_app",
        ),
        (
            model("authentik_core.user"),
            "Model matched.",
            "passes_model",
        ),
    ] {
        let r = policy.evaluate(&req);
        assert!(r.passing, "{policy:?}");
        assert_eq!(r.messages, vec![message.to_owned()]);
        assert_eq!(
            r.log,
            vec![format!(
                "debug: Event matcher check result checker={checker} result=true"
            )]
        );
    }
}

#[test]
fn each_field_alone_mismatches() {
    let req = with_event(login_failed());
    for policy in [
        action("login"),
        action("LOGIN_FAILED"),
        action(""),
        client_ip("192.0.2.1"),
        client_ip("192.0.2.10 "),
        app("authentik.core"),
        model("authentik_core.group"),
        model("authentik_flows.user"),
        model("authentik_core"),
        model("authentik_coreXuser"),
        model("authentik_core.user."),
        model(".authentik_core.user"),
    ] {
        let r = policy.evaluate(&req);
        assert!(!r.passing, "{policy:?}");
        assert!(r.messages.is_empty(), "{policy:?}: {:?}", r.messages);
        assert_eq!(r.log.len(), 1);
        assert!(r.log[0].ends_with("result=false"), "{:?}", r.log);
    }
}

#[test]
fn no_field_set_passes_any_event() {
    let p = EventMatcherPolicy::default();
    let r = p.evaluate(&with_event(login_failed()));
    assert!(r.passing);
    assert!(r.messages.is_empty() && r.log.is_empty());
    assert!(p.evaluate(&with_event(json!({}))).passing);
}

#[test]
fn combinations_need_every_set_field() {
    let req = with_event(login_failed());
    let r = all_four().evaluate(&req);
    assert!(r.passing);
    assert_eq!(
        r.messages,
        vec![
            "Action matched.".to_owned(),
            "Client IP matched.".to_owned(),
            "App matched.".to_owned(),
            "Model matched.".to_owned(),
        ]
    );
    assert_eq!(r.log.len(), 4);

    let two = EventMatcherPolicy {
        action: Some("login_failed".into()),
        client_ip: Some("192.0.2.10".into()),
        ..Default::default()
    };
    assert!(two.evaluate(&req).passing);

    // One mismatch anywhere fails, and the matched ones still say so.
    let wrong_ip = EventMatcherPolicy {
        client_ip: Some("198.51.100.1".into()),
        ..all_four()
    };
    let r = wrong_ip.evaluate(&req);
    assert!(!r.passing);
    assert_eq!(
        r.messages,
        vec![
            "Action matched.".to_owned(),
            "App matched.".to_owned(),
            "Model matched.".to_owned(),
        ]
    );
    assert_eq!(
        r.log[1],
        "debug: Event matcher check result checker=passes_client_ip result=false"
    );
    let wrong_model = EventMatcherPolicy {
        model: Some("authentik_core.group".into()),
        ..all_four()
    };
    assert!(!wrong_model.evaluate(&req).passing);
    let wrong_action_and_app = EventMatcherPolicy {
        action: Some("login".into()),
        app: Some("authentik.core".into()),
        ..Default::default()
    };
    let r = wrong_action_and_app.evaluate(&req);
    assert!(!r.passing);
    assert!(r.messages.is_empty());
}

#[test]
fn missing_event_fails() {
    let empty = PolicyRequest::new(PolicyUser::anonymous());
    for p in [
        EventMatcherPolicy::default(),
        action("login_failed"),
        all_four(),
    ] {
        let r = p.evaluate(&empty);
        assert!(!r.passing);
        assert!(r.messages.is_empty());
    }
    // Another key holding an event is not the event.
    let mut elsewhere = PolicyRequest::new(PolicyUser::anonymous());
    elsewhere.context.insert("events".into(), login_failed());
    assert!(!EventMatcherPolicy::default().evaluate(&elsewhere).passing);
}

#[test]
fn event_of_the_wrong_json_type_fails() {
    for event in [
        json!("login_failed"),
        json!(["login_failed", "192.0.2.10"]),
        json!([login_failed()]),
        json!(42),
        json!(true),
        Value::Null,
    ] {
        for p in [EventMatcherPolicy::default(), action("login_failed")] {
            let r = p.evaluate(&with_event(event.clone()));
            assert!(!r.passing, "{event}");
            assert!(r.messages.is_empty());
            assert_eq!(
                r.log,
                vec!["debug: Event in the context is not a JSON object".to_owned()]
            );
        }
    }
}

#[test]
fn fields_of_the_wrong_json_type_never_match() {
    let odd = with_event(json!({
        "action": ["login_failed"],
        "app": {"name": "authentik.core"},
        "client_ip": null,
        "context": {"model": "authentik_core.user"}
    }));
    for p in [
        action("login_failed"),
        action("[\"login_failed\"]"),
        app("authentik.core"),
        client_ip("null"),
        client_ip(""),
        model("authentik_core.user"),
    ] {
        assert!(!p.evaluate(&odd).passing, "{p:?}");
    }
    let numbers = with_event(json!({"action": 1, "client_ip": 3232235521_u64}));
    assert!(!action("1").evaluate(&numbers).passing);
    assert!(!client_ip("3232235521").evaluate(&numbers).passing);
    for context in [
        json!("x"),
        json!([]),
        json!(null),
        json!({"model": []}),
        json!({"model": {"app": "authentik_core"}}),
        json!({"model": {"model_name": "user"}}),
        json!({"model": {"app": 1, "model_name": "user"}}),
        json!({"model": {"app": null, "model_name": null}}),
    ] {
        let req = with_event(json!({"action": "model_created", "context": context}));
        assert!(!model("authentik_core.user").evaluate(&req).passing);
        // authentik would build "None.None" here; that string matches nothing either.
        assert!(!model("None.None").evaluate(&req).passing);
    }
}

#[test]
fn model_is_app_dot_model_name() {
    let event = |app: &str, name: &str| {
        with_event(json!({"context": {"model": {"app": app, "model_name": name}}}))
    };
    assert!(model("a.b").evaluate(&event("a", "b")).passing);
    // A dot inside either part is just part of the joined string, as in authentik.
    assert!(model("a.b.c").evaluate(&event("a.b", "c")).passing);
    assert!(model("a.b.c").evaluate(&event("a", "b.c")).passing);
    assert!(model("é.ü").evaluate(&event("é", "ü")).passing);
    assert!(!model("é.ü").evaluate(&event("e", "ü")).passing);
    assert!(model(".").evaluate(&event("", "")).passing);
    assert!(!model("").evaluate(&event("", "")).passing);
}

#[test]
fn hostile_values_never_panic() {
    let huge = "x".repeat(1 << 20);
    let mut almost = huge.clone();
    almost.pop();
    almost.push('y');
    let multibyte = "é".repeat(1 << 18);
    let req = with_event(json!({
        "action": huge,
        "app": multibyte,
        "client_ip": huge,
        "context": {"model": {"app": huge, "model_name": multibyte}}
    }));
    let exact = EventMatcherPolicy {
        action: Some(huge.clone()),
        client_ip: Some(huge.clone()),
        app: Some(multibyte.clone()),
        model: Some(format!("{huge}.{multibyte}")),
    };
    let r = exact.evaluate(&req);
    assert!(r.passing);
    // Log lines name the check, never the (possibly huge) value.
    assert!(r.log.iter().all(|l| l.len() < 100), "{}", r.log[0].len());
    for p in [
        action(&almost),
        client_ip(&almost),
        app(&huge),
        app(&multibyte[..multibyte.len() - 2]),
        model(&huge),
        model(&format!("{huge}.{almost}")),
        model(&format!("{almost}.{multibyte}")),
        // One multi-byte character short.
        model(&format!("{huge}.{}", &multibyte[..multibyte.len() - 2])),
    ] {
        assert!(!p.evaluate(&req).passing);
    }
    // Control characters, NULs and a deeply nested context are just data.
    let nested = (0..100).fold(json!("leaf"), |inner, _| json!({ "model": inner }));
    let weird = with_event(json!({
        "action": "login\u{0}failed",
        "client_ip": "\u{202e}01.2.0.291",
        "context": nested
    }));
    for p in [
        action("login"),
        action("login\u{0}failed"),
        client_ip("192.0.2.10"),
        model("leaf"),
    ] {
        let _ = p.evaluate(&weird);
    }
    assert!(action("login\u{0}failed").evaluate(&weird).passing);
    assert!(!model("leaf").evaluate(&weird).passing);
}

#[test]
fn matches_a_stored_event() {
    let at = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    let stored = portcullis_core::NewEvent::model(
        portcullis_core::EventAction::ModelCreated,
        "authentik_core",
        "group",
        "1",
        "admins",
    );
    let event = portcullis_core::Event {
        uuid: Uuid::from_u128(1),
        user_pk: None,
        user: json!({}),
        action: stored.action.as_str().to_owned(),
        app: stored.app,
        context: stored.context,
        client_ip: None,
        created: at,
        expires: at,
        brand: json!({}),
    };
    let req = with_event(serde_json::to_value(&event).unwrap());
    let p = EventMatcherPolicy {
        action: Some("model_created".into()),
        app: Some("authentik.events.signals".into()),
        model: Some("authentik_core.group".into()),
        ..Default::default()
    };
    assert!(p.evaluate(&req).passing);
    // A stored event without an IP matches no IP.
    assert!(!client_ip("255.255.255.255").evaluate(&req).passing);
}

#[tokio::test]
async fn runs_as_a_policy() {
    let p = all_four();
    assert_eq!(p.kind(), "eventmatcherpolicy");
    assert!(p.passes(&with_event(login_failed())).await.unwrap().passing);
    let empty = PolicyRequest::new(PolicyUser::anonymous());
    assert!(!p.passes(&empty).await.unwrap().passing);
}
