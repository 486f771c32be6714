//! Rust values into Starlark values: the request, users and the JSON context.

use serde_json::Value as Json;
use starlark::environment::Module;
use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, Value};

use crate::request::{HttpRequestInfo, PolicyRequest, PolicyUser};

/// JSON nested deeper than this becomes `None` (a context is never legitimately this deep).
const MAX_DEPTH: usize = 64;

/// authentik's flow-plan key that marks a flow started by an external source.
const PLAN_CONTEXT_SSO: &str = "is_sso";

pub(super) fn json<'v>(heap: Heap<'v>, value: &Json) -> Value<'v> {
    json_at(heap, value, 0)
}

fn json_at<'v>(heap: Heap<'v>, value: &Json, depth: usize) -> Value<'v> {
    if depth > MAX_DEPTH {
        return Value::new_none();
    }
    match value {
        Json::Null => Value::new_none(),
        Json::Bool(b) => Value::new_bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                heap.alloc(i)
            } else if let Some(f) = n.as_f64() {
                heap.alloc(f)
            } else {
                heap.alloc(n.to_string())
            }
        }
        Json::String(s) => heap.alloc_str(s).to_value(),
        Json::Array(items) => heap.alloc(AllocList(
            items
                .iter()
                .map(|v| json_at(heap, v, depth + 1))
                .collect::<Vec<_>>(),
        )),
        Json::Object(map) => heap.alloc(AllocDict(
            map.iter()
                .map(|(k, v)| (heap.alloc_str(k).to_value(), json_at(heap, v, depth + 1)))
                .collect::<Vec<_>>(),
        )),
    }
}

/// A user as a struct with authentik's attribute names.
pub(super) fn user<'v>(heap: Heap<'v>, user: &PolicyUser) -> Value<'v> {
    let group_names: Vec<Value<'v>> = user
        .groups
        .iter()
        .map(|g| heap.alloc_str(&g.name).to_value())
        .collect();
    heap.alloc(AllocStruct([
        ("pk", heap.alloc(user.pk)),
        ("uuid", heap.alloc(user.uuid.to_string())),
        ("username", heap.alloc_str(&user.username).to_value()),
        ("name", heap.alloc_str(&user.name).to_value()),
        ("email", heap.alloc_str(&user.email).to_value()),
        ("is_active", Value::new_bool(user.is_active)),
        ("is_superuser", Value::new_bool(user.is_superuser)),
        (
            "has_usable_password",
            Value::new_bool(user.has_usable_password),
        ),
        ("is_authenticated", Value::new_bool(user.is_authenticated)),
        ("is_anonymous", Value::new_bool(!user.is_authenticated)),
        ("attributes", json(heap, &user.attributes)),
        ("group_names", heap.alloc(AllocList(group_names))),
        ("ak_groups", ak_groups(heap, user)),
    ]))
}

/// Django's `user.ak_groups` as far as expressions use it: `.all()` gives the user's groups,
/// each with `name` and `pk` (authentik's default profile mapping reads
/// `[group.name for group in request.user.ak_groups.all()]`). `all` is the bound `values`
/// method of a dict of the groups by pk, so each call returns a fresh list in the groups' order.
fn ak_groups<'v>(heap: Heap<'v>, user: &PolicyUser) -> Value<'v> {
    let by_pk = heap.alloc(AllocDict(
        user.groups
            .iter()
            .map(|g| {
                let pk = heap.alloc_str(&g.pk.to_string()).to_value();
                let group = heap.alloc(AllocStruct([
                    ("name", heap.alloc_str(&g.name).to_value()),
                    ("pk", pk),
                ]));
                (pk, group)
            })
            .collect::<Vec<_>>(),
    ));
    let all = by_pk
        .get_attr("values", heap)
        .ok()
        .flatten()
        .unwrap_or_else(Value::new_none);
    heap.alloc(AllocStruct([("all", all)]))
}

fn http_request<'v>(heap: Heap<'v>, http: &HttpRequestInfo) -> Value<'v> {
    let headers = heap.alloc(AllocDict(
        http.headers
            .iter()
            .map(|(k, v)| (heap.alloc_str(k).to_value(), heap.alloc_str(v).to_value()))
            .collect::<Vec<_>>(),
    ));
    heap.alloc(AllocStruct([
        ("path", heap.alloc_str(&http.path).to_value()),
        ("method", heap.alloc_str(&http.method).to_value()),
        ("headers", headers),
    ]))
}

/// Binds `request`, `context`, `http_request`, `ak_client_ip` and `ak_is_sso_flow` as module
/// variables the wrapped function reads (authentik passes the same names as arguments).
pub(super) fn bind_request(module: &Module<'_>, req: &PolicyRequest) {
    let heap = module.heap();
    let mut entries: Vec<(Value<'_>, Value<'_>)> = req
        .context
        .iter()
        .map(|(k, v)| (heap.alloc_str(k).to_value(), json(heap, v)))
        .collect();
    if let Some(pending) = &req.pending_user {
        entries.push((
            heap.alloc_str("pending_user").to_value(),
            user(heap, pending),
        ));
    }
    let context = heap.alloc(AllocDict(entries));
    let http = req
        .http_request
        .as_ref()
        .map_or_else(Value::new_none, |h| http_request(heap, h));
    let request = heap.alloc(AllocStruct([
        ("user", user(heap, &req.user)),
        ("context", context),
        ("http_request", http),
        ("obj", Value::new_none()),
    ]));
    let is_sso = req.context.get(PLAN_CONTEXT_SSO).is_some_and(|v| match v {
        Json::Bool(b) => *b,
        Json::Null => false,
        _ => true,
    });
    // authentik's prompt expressions read `user`: the pending user, else the request's user.
    let prompt_user = req.pending_user.as_ref().unwrap_or(&req.user);
    module.set("user", user(heap, prompt_user));
    module.set("request", request);
    module.set("context", context);
    module.set("http_request", http);
    module.set("ak_client_ip", heap.alloc_str(req.client_ip()).to_value());
    module.set("ak_is_sso_flow", Value::new_bool(is_sso));
}
