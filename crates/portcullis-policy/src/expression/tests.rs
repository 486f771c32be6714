#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::error::Budget;
use crate::request::{GroupRef, HttpRequestInfo, PolicyUser, UserDirectory, UserFilter};

fn user(pk: i32, username: &str, groups: &[&str]) -> PolicyUser {
    PolicyUser {
        pk,
        uuid: Uuid::from_u128(pk as u128),
        username: username.into(),
        name: format!("{username} example"),
        email: format!("{username}@example.org"),
        is_active: true,
        is_superuser: false,
        has_usable_password: true,
        is_authenticated: true,
        attributes: json!({ "department": "ops", "tags": ["a", "b"] }),
        groups: groups
            .iter()
            .enumerate()
            .map(|(i, g)| GroupRef {
                pk: Uuid::from_u128(1000 + i as u128),
                name: (*g).into(),
            })
            .collect(),
        password_change_date: None,
    }
}

fn request() -> PolicyRequest {
    let mut req = PolicyRequest::new(user(1, "alice", &["admins", "staff"]));
    req.context.insert(
        "prompt_data".into(),
        json!({ "email": "new@example.net", "username": "new" }),
    );
    req.context
        .insert("pending_user_identifier".into(), json!("bob@bar.baz.com"));
    req.context.insert(
        "geoip".into(),
        json!({ "continent": "EU", "country": "DE" }),
    );
    req.pending_user = Some(user(2, "marie", &["staff"]));
    req.http_request = Some(HttpRequestInfo {
        path: "/if/flow/default-authentication-flow/".into(),
        method: "POST".into(),
        headers: vec![("user-agent".into(), "curl/8".into())],
        client_ip: Some("10.0.0.7".into()),
    });
    req
}

struct Directory(Vec<PolicyUser>);

impl UserDirectory for Directory {
    fn find_user(&self, f: &UserFilter) -> Result<Option<PolicyUser>, String> {
        Ok(self
            .0
            .iter()
            .find(|u| {
                f.username.as_ref().is_none_or(|x| *x == u.username)
                    && f.email.as_ref().is_none_or(|x| *x == u.email)
                    && f.pk.is_none_or(|x| x == u.pk)
                    && f.uuid.is_none_or(|x| x == u.uuid)
            })
            .cloned())
    }
}

fn policy(code: &str) -> ExpressionPolicy {
    ExpressionPolicy::new("test-policy", code).with_users(Arc::new(Directory(vec![user(
        7,
        "other_user",
        &["helpdesk"],
    )])))
}

fn run(code: &str) -> Result<PolicyResult, PolicyError> {
    policy(code).evaluate(&request())
}

fn passes(code: &str) -> bool {
    match run(code) {
        Ok(r) => r.passing,
        Err(e) => panic!("{code}\n=> {e}"),
    }
}

// --- authentik's documented examples, unchanged ---------------------------------------------

#[test]
fn doc_group_membership() {
    assert!(passes(
        r#"return ak_is_group_member(request.user, name="admins")"#
    ));
    assert!(!passes(
        r#"return ak_is_group_member(request.user, name="test_group")"#
    ));
}

#[test]
fn doc_regex_match() {
    assert!(!passes(
        r#"return regex_match(request.user.username, '.*admin.*')"#
    ));
    assert!(passes(
        r#"return regex_match(request.user.username, '^ali')"#
    ));
}

#[test]
fn doc_regex_replace() {
    let code = "user_email_local = regex_replace(request.user.email, '(.+)@.+', '')\n\
                return user_email_local == ''";
    assert!(passes(code));
    assert!(passes(
        r#"return regex_replace(request.user.email, '(.+)@(.+)', r'\2:\1') == "example.org:alice""#
    ));
}

#[test]
fn doc_message() {
    let r = run("ak_message(\"Access denied\")\nreturn False").unwrap();
    assert!(!r.passing);
    assert_eq!(r.messages, vec!["Access denied".to_owned()]);
}

#[test]
fn doc_pending_user() {
    let code = "if request.context[\"pending_user\"].username == \"marie\":\n    return True\nreturn False";
    assert!(passes(code));
}

#[test]
fn doc_geoip_context() {
    assert!(passes(r#"return context["geoip"]["continent"] == "EU""#));
}

#[test]
fn doc_whitelist_email_enrollment() {
    let code = r#"allowed_domains = ["example.org", "example.net", "example.com"]

current_domain = request.context["prompt_data"]["email"].split("@")[1] if request.context.get("prompt_data", {}).get("email") else None
if current_domain in allowed_domains:
    email = request.context["prompt_data"]["email"]
    request.context["prompt_data"]["username"] = email
    return ak_is_sso_flow
else:
    ak_message("Enrollment denied for this email domain")
    return False
"#;
    // Allowed domain, but not an SSO flow: fails without a message.
    let r = run(code).unwrap();
    assert!(!r.passing && r.messages.is_empty());
    let mut req = request();
    req.context.insert("is_sso".into(), json!(true));
    assert!(policy(code).evaluate(&req).unwrap().passing);
    req.context
        .insert("prompt_data".into(), json!({ "email": "x@evil.test" }));
    let r = policy(code).evaluate(&req).unwrap();
    assert_eq!(
        r.messages,
        vec!["Enrollment denied for this email domain".to_owned()]
    );
}

#[test]
fn doc_whitelist_email_authentication() {
    let code = r#"allowed_domains = ["example.org", "example.net", "example.com"]

current_domain = request.user.email.split("@")[1] if hasattr(request.user, 'email') and request.user.email else None
if current_domain in allowed_domains:
    return ak_is_sso_flow
else:
    ak_message("Authentication denied for this email domain")
    return False
"#;
    let mut req = request();
    req.context.insert("is_sso".into(), json!(true));
    assert!(policy(code).evaluate(&req).unwrap().passing);
}

#[test]
fn doc_source_switch() {
    let code = r#"# Map email domains to source slugs.
source_email_map = {
    "foo.bar.com": "entra-foo",
    "bar.baz.com": "entra-bar",
}

user_email = request.context["pending_user_identifier"]

_username, _, domain = user_email.partition("@")
source = source_email_map.get(domain)
if not source:
    return True

plan = request.context.get("flow_plan")
if not plan:
    return False

# For OIDC
# plan.redirect(f"/source/oauth/login/{source}/")
# For SAML
plan.redirect(f"/source/saml/{source}")
return False
"#;
    assert!(!passes(code)); // mapped domain, no flow plan
    let mut req = request();
    req.context
        .insert("pending_user_identifier".into(), json!("x@elsewhere.org"));
    assert!(policy(code).evaluate(&req).unwrap().passing);
}

#[test]
fn doc_user_by_and_logger() {
    let code = r#"other_user = ak_user_by(username="other_user")
ak_logger.info("looked up", user=other_user.username)
ak_logger.warning("done")
return other_user != None and ak_is_group_member(other_user, name="helpdesk")"#;
    let r = run(code).unwrap();
    assert!(r.passing);
    assert_eq!(
        r.log,
        vec![
            "info: looked up user=\"other_user\"".to_owned(),
            "warning: done".to_owned()
        ]
    );
    assert!(passes(r#"return ak_user_by(username="nobody") == None"#));
    assert!(passes(r#"return ak_user_by(is_staff=True) == None"#));
    assert!(passes(
        r#"return ak_user_by(pk=7).email == "other_user@example.org""#
    ));
}

#[test]
fn request_and_helpers_shapes() {
    assert!(passes(
        r#"return request.user.attributes["department"] == "ops""#
    ));
    assert!(passes(
        r#"return request.user.is_authenticated and not request.user.is_superuser"#
    ));
    assert!(passes(r#"return "staff" in request.user.group_names"#));
    // authentik's own profile mapping reads the groups through Django's manager.
    assert!(passes(
        r#"return "staff" in [group.name for group in request.user.ak_groups.all()]"#
    ));
    assert!(passes(
        r#"
groups = request.user.ak_groups.all()
groups.append("mutated")
return len(request.user.ak_groups.all()) == len(groups) - 1"#
    ));
    assert!(passes(
        r#"return request.http_request.method == "POST" and http_request.headers["user-agent"] == "curl/8""#
    ));
    assert!(passes(r#"return ak_client_ip == "10.0.0.7""#));
    assert!(passes(
        r#"return ak_is_group_member(request.user, name__iexact="ADMINS")"#
    ));
    assert!(passes(
        r#"return list_flatten(["foo"]) == "foo" and list_flatten([]) == None and list_flatten(3) == 3"#
    ));
    assert!(passes(
        "def helper(x):\n    return x * 2\nreturn helper(21) == 42 and (lambda y: y)(1) == 1"
    ));
    assert!(passes(
        "name = request.user.username\nreturn f\"{name}\" == \"alice\""
    ));
    assert!(passes(
        "s = 0\nfor i in range(100):\n    s += i\nreturn s == 4950"
    ));
    assert!(passes(
        "return \"ab\" * 3 == \"ababab\" and [1] * 2 == [1, 1] and 3 * 4 == 12"
    ));
    let anonymous = PolicyRequest::new(PolicyUser::anonymous());
    let r = policy("return request.user.is_anonymous and ak_client_ip == \"255.255.255.255\" and http_request == None")
        .evaluate(&anonymous)
        .unwrap();
    assert!(r.passing);
}

#[test]
fn none_and_missing_return_fail() {
    assert!(!passes("return None"));
    assert!(!passes("x = 1"));
    assert!(!passes(""));
    assert!(!passes("# just a comment"));
    assert!(passes("return 1"));
    assert!(!passes("return []"));
}

// --- errors -----------------------------------------------------------------------------------

#[test]
fn syntax_error_reports_the_line() {
    let err = run("x = 1\ny = (\nreturn True").unwrap_err();
    let PolicyError::Syntax { line, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(line, Some(2 | 3)), "{err}");
    assert!(err.to_string().contains("line"), "{err}");
    let err = run("from ipaddress import ip_network\nreturn True").unwrap_err();
    assert!(
        matches!(err, PolicyError::Syntax { line: Some(1), .. }),
        "{err}"
    );
    assert!(policy("return (").validate().is_err());
    assert!(policy("return True").validate().is_ok());
}

#[test]
fn runtime_error_reports_the_line() {
    let err = run("x = 1\ny = 2\nreturn request.context[\"missing\"]").unwrap_err();
    assert!(
        matches!(err, PolicyError::Runtime { line: Some(3), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = run("return regex_match(request.user.username, '(')").unwrap_err();
    assert!(err.to_string().contains("invalid regex"), "{err}");
    let err = run("return ak_is_group_member(request.user, colour=\"red\")").unwrap_err();
    assert!(matches!(err, PolicyError::Runtime { .. }), "{err:?}");
    let err = run("fail(\"nope\")").unwrap_err();
    assert!(
        matches!(err, PolicyError::Runtime { line: Some(1), .. }),
        "{err:?}"
    );
}

#[test]
fn huge_loop_stops_quickly_on_the_tick_budget() {
    let start = Instant::now();
    let err = run("for i in range(100000000):\n    pass\nreturn True").unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            err,
            PolicyError::BudgetExceeded {
                budget: Budget::Ticks,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_budget_exceeded());
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn loop_over_a_list_stops_on_ticks() {
    let code =
        "n = 0\nfor i in range(1000):\n    for j in range(1000):\n        n += 1\nreturn True";
    let start = Instant::now();
    let err = run(code).unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::BudgetExceeded {
                budget: Budget::Ticks,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn native_consumers_of_a_huge_range_are_refused() {
    for code in [
        "return max(range(2000000000)) > 0",
        "return len(list(range(1000000000))) > 0",
    ] {
        let start = Instant::now();
        let err = run(code).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::BudgetExceeded {
                    budget: Budget::Ticks,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn deep_recursion_is_stopped() {
    let code = "def f(n):\n    return f(n + 1)\nreturn f(0)";
    let start = Instant::now();
    let err = run(code).unwrap_err();
    assert!(
        err.is_budget_exceeded() || matches!(err, PolicyError::Runtime { .. }),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn memory_blowups_are_stopped() {
    for code in [
        "x = \"a\" * 1000000000\nreturn True",
        "x = [0] * 1000000000\nreturn True",
        "x = 1000000000 * \"ab\"\nreturn True",
        "x = [1]\nfor i in range(64):\n    x = x + x\nreturn True",
        "x = \"ab\"\nfor i in range(64):\n    x += x\nreturn True",
        "x = []\nfor i in range(64):\n    x.extend(x or [1])\nreturn True",
    ] {
        let start = Instant::now();
        let err = run(code).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::BudgetExceeded {
                    budget: Budget::Memory,
                    ..
                }
            ),
            "{code}\n=> {err:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{code}: {:?}",
            start.elapsed()
        );
    }
    let err = run("x = \"a\"\nx *= 10\nreturn True").unwrap_err();
    assert!(
        matches!(err, PolicyError::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}

#[test]
fn wall_clock_limit_applies() {
    let limits = ExpressionLimits {
        max_ticks: u64::MAX / 2,
        wall_clock: Duration::from_millis(50),
        ..ExpressionLimits::default()
    };
    let code =
        "n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1\nreturn True";
    let start = Instant::now();
    let err = policy(code)
        .with_limits(limits)
        .evaluate(&request())
        .unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::BudgetExceeded {
                budget: Budget::WallClock,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn messages_and_logs_are_capped() {
    let r = run("for i in range(1000):\n    ak_message(\"m\")\n    ak_logger.debug(\"x\" * 10000)\nreturn True").unwrap();
    assert_eq!(r.messages.len(), 256);
    assert_eq!(r.log.len(), 256);
    assert!(r.log.iter().all(|l| l.len() <= 4096 + '…'.len_utf8()));
}

#[test]
fn oversized_source_is_refused() {
    let code = format!("return True\n#{}", "x".repeat(70 * 1024));
    assert!(matches!(run(&code), Err(PolicyError::Syntax { .. })));
}

#[test]
fn python_replacement_syntax() {
    use super::globals::python_replacement;
    assert_eq!(python_replacement(r"\1-\2"), "${1}-${2}");
    assert_eq!(python_replacement(r"\g<name>$"), "${name}$$");
    assert_eq!(python_replacement(r"a\\b\n"), "a\\b\n");
}

#[test]
fn measured_tick_throughput() {
    // Not an assertion about speed beyond the budget test: prints how long the default budget
    // takes, which is the CPU bound of an expression.
    let start = Instant::now();
    let _ = run("for i in range(100000):\n    pass\nreturn True");
    eprintln!(
        "default tick budget (100k) ran out after {:?}",
        start.elapsed()
    );
}

#[test]
fn set_context_hands_values_to_the_flow() {
    let r = run("ak_set_context(\"pending_user\", request.user.pk)\nak_set_context(\"x\", {\"a\": [1, \"b\"]})\nreturn True").unwrap();
    assert!(r.passing);
    assert_eq!(
        r.context.get("pending_user"),
        Some(&serde_json::json!(request().user.pk))
    );
    assert_eq!(
        r.context.get("x"),
        Some(&serde_json::json!({"a": [1, "b"]}))
    );
    // Bounded: empty keys and oversized values are errors, not silent truncation.
    assert!(run("ak_set_context(\"\", 1)\nreturn True").is_err());
    assert!(run("ak_set_context(\"k\", \"x\" * 70000)\nreturn True").is_err());
    assert!(passes("return request.user.has_usable_password"));
}

#[test]
fn expressions_can_return_values_for_prompts() {
    // `user` is the pending user when there is one (as in authentik's prompt expressions)...
    let req = request();
    let pending = req.pending_user.clone().unwrap();
    let v = policy("return user.username").evaluate_value(&req).unwrap();
    assert_eq!(v, serde_json::json!(pending.username));
    // ...else the request's user.
    let mut req = request();
    req.pending_user = None;
    let v = policy("return user.username").evaluate_value(&req).unwrap();
    assert_eq!(v, serde_json::json!(req.user.username));
    let v = policy("return [\"red\", \"green\"]")
        .evaluate_value(&request())
        .unwrap();
    assert_eq!(v, serde_json::json!(["red", "green"]));
    assert_eq!(
        policy("pass").evaluate_value(&request()).unwrap(),
        serde_json::Value::Null
    );
    // A function is no JSON value; a runaway loop still stops at its budget.
    assert!(policy("return len").evaluate_value(&request()).is_err());
    assert!(
        policy("for i in range(100000000):\n    pass\nreturn 1")
            .evaluate_value(&request())
            .is_err()
    );
}
