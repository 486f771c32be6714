//! Hostile and broken blueprints: each is refused with the right error, and nothing panics.

use std::path::Path;

use portcullis_blueprint::{
    Blueprint, BlueprintError, ErrorKind, Evaluator, Limits, MAX_BYTES, parse,
};
use serde_json::{Map, Value, json};

use crate::common::FakeStore;

fn parse_err(text: &str) -> BlueprintError {
    match parse(text, "hostile.yaml") {
        Ok(_) => panic!("parsed, but should have been refused:\n{text:.200}"),
        Err(e) => e,
    }
}

/// Evaluates the attrs of the blueprint's first entry.
async fn eval_first(blueprint: &Blueprint, dir: Option<&Path>) -> Result<Value, BlueprintError> {
    eval_first_with(blueprint, dir, Limits::default()).await
}

async fn eval_first_with(
    blueprint: &Blueprint,
    dir: Option<&Path>,
    limits: Limits,
) -> Result<Value, BlueprintError> {
    let store = FakeStore::default();
    let env = |_: &str| None;
    let mut evaluator = Evaluator::new(blueprint, &Map::new(), &store, &env).with_limits(limits);
    if let Some(dir) = dir {
        evaluator = evaluator.with_blueprints_dir(dir);
    }
    let entry = &blueprint.entries[0];
    evaluator.evaluate(entry, &entry.attrs, "attrs").await
}

fn one_entry(attrs: &str) -> Blueprint {
    let text = format!(
        "version: 1\nentries:\n  - model: authentik_core.user\n    identifiers: {{username: x}}\n    attrs:\n      value: {attrs}\n"
    );
    parse(&text, "hostile.yaml").unwrap()
}

#[test]
fn billion_laughs_is_refused() {
    let text = r#"
version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
entries: []
"#;
    let err = parse_err(text);
    assert!(
        matches!(err.kind, ErrorKind::AliasExpansion { .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("hostile.yaml: "), "{err}");
}

#[test]
fn wide_alias_expansion_is_refused() {
    // Few aliases per anchor (so the parser's own repetition limit does not trigger), but a
    // big anchored list repeated: our node count stops it.
    let mut text = String::from("version: 1\nbig: &big [");
    text.push_str(&vec!["x"; 2000].join(","));
    text.push_str("]\nentries: []\ncopies: [");
    text.push_str(&vec!["*big"; 1000].join(","));
    text.push_str("]\n");
    let err = parse_err(&text);
    assert_eq!(
        err.kind,
        ErrorKind::AliasExpansion { limit: 1_000_000 },
        "{err}"
    );
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!(
        "version: 1\nentries: []\ndeep: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let err = parse_err(&text);
    assert_eq!(err.kind, ErrorKind::TooDeep { limit: 64 }, "{err}");

    let mut text = String::from("version: 1\nentries: []\ndeep:\n");
    for depth in 0..100 {
        text.push_str(&" ".repeat(depth * 2 + 2));
        text.push_str("a:\n");
    }
    let err = parse_err(&text);
    assert_eq!(err.kind, ErrorKind::TooDeep { limit: 64 }, "{err}");

    // 60 levels are fine.
    let text = format!(
        "version: 1\nentries: []\ndeep: {}{}\n",
        "[".repeat(60),
        "]".repeat(60)
    );
    parse(&text, "ok.yaml").unwrap();
}

#[test]
fn huge_file_is_refused() {
    let text = format!(
        "version: 1\nentries: []\n#{}\n",
        "x".repeat(5 * 1024 * 1024)
    );
    let err = parse_err(&text);
    assert!(
        matches!(err.kind, ErrorKind::TooLarge { limit, .. } if limit == MAX_BYTES),
        "{err}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let mut text = String::from("version: 1\nentries:\n");
    for _ in 0..10_001 {
        text.push_str("- {model: a.b}\n");
    }
    let err = parse_err(&text);
    assert_eq!(
        err.kind,
        ErrorKind::TooManyEntries {
            count: 10_001,
            limit: 10_000
        }
    );
}

#[test]
fn version_and_entries_are_checked() {
    let err = parse_err("version: 2\nentries: []\n");
    assert_eq!(err.kind, ErrorKind::UnsupportedVersion("2".into()));
    assert_eq!(
        err.to_string(),
        "hostile.yaml: version: unsupported blueprint version 2, only version 1 is supported"
    );
    let err = parse_err("version: 1\nmetadata: {name: x}\n");
    assert_eq!(err.kind, ErrorKind::MissingEntries);
    assert_eq!(err.to_string(), "hostile.yaml: missing `entries`");
    // Missing version defaults to 1, as in authentik.
    parse("entries: []\n", "ok.yaml").unwrap();
    let err = parse_err("- a\n- b\n");
    assert!(matches!(err.kind, ErrorKind::Invalid(_)), "{err}");
    let err = parse_err("version: 1\nentries: []\n---\nversion: 1\nentries: []\n");
    assert!(matches!(err.kind, ErrorKind::Yaml(_)), "{err}");
}

#[test]
fn unknown_tag_names_entry_and_field() {
    let text = "version: 1\nentries:\n  - model: authentik_core.group\n    identifiers: {name: a}\n  - model: authentik_core.user\n    identifiers: {username: x}\n    attrs:\n      groups:\n        - !Foo bar\n";
    let err = parse_err(text);
    assert_eq!(err.kind, ErrorKind::UnknownTag("Foo".into()));
    assert_eq!(
        err.to_string(),
        "hostile.yaml: entry 1 (authentik_core.user) attrs.groups[0]: unknown tag !Foo"
    );
}

#[test]
fn malformed_tags_are_refused_at_parse() {
    for (attrs, tag) in [
        ("!Format []", "Format"),
        ("!If [a, b]", "If"),
        ("!Enumerate [[1], SEQ]", "Enumerate"),
        ("!Enumerate [!Value 0, SEQ, x]", "Enumerate"),
        ("!AtIndex [[1]]", "AtIndex"),
        ("!Find [a.b, c]", "Find"),
        ("!Value -1", "Value"),
        ("!Index x", "Index"),
        ("!KeyOf [a]", "KeyOf"),
        ("!ParseJSON [a]", "ParseJSON"),
        ("!Context {a: b}", "Context"),
    ] {
        let text = format!("version: 1\nentries:\n  - model: a.b\n    attrs:\n      v: {attrs}\n");
        let err = parse_err(&text);
        assert!(
            matches!(&err.kind, ErrorKind::TagSyntax { tag: t, .. } if *t == tag),
            "{attrs}: {err}"
        );
        assert_eq!(err.location.entry, Some(0));
        assert_eq!(err.location.path, "attrs.v");
    }
}

#[test]
fn bad_entries_are_refused() {
    let err = parse_err("version: 1\nentries:\n  - attrs: {}\n");
    assert_eq!(err.to_string(), "hostile.yaml: entry 0 model: required");
    let err = parse_err("version: 1\nentries:\n  - model: a.b\n    state: gone\n");
    assert_eq!(
        err.to_string(),
        "hostile.yaml: entry 0 (a.b) state: `gone` is not one of present, created, must_created, absent"
    );
    let err = parse_err("version: 1\nentries:\n  - model: !Format ['%s', a.b]\n");
    assert!(
        err.to_string()
            .contains("entry 0 model: must be a plain string"),
        "{err}"
    );
}

#[tokio::test]
async fn file_outside_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("blueprints");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
    std::fs::write(inside.join("ok.txt"), "fine\n").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), inside.join("link.txt"))
            .unwrap();
        std::os::unix::fs::symlink("/etc", inside.join("etc")).unwrap();
    }
    let ok = eval_first(&one_entry("!File ok.txt"), Some(&inside))
        .await
        .unwrap();
    assert_eq!(ok, json!({"value": "fine"}));

    let mut cases = vec![
        "!File ../../etc/passwd",
        "!File /etc/passwd",
        "!File ../outside.txt",
        "!File [../outside.txt, default]",
        "!File ../missing-outside.txt",
    ];
    if cfg!(unix) {
        cases.extend(["!File link.txt", "!File etc/passwd"]);
    }
    for attrs in cases {
        let err = eval_first(&one_entry(attrs), Some(&inside))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::FileRefused(_)),
            "{attrs}: {err}"
        );
        assert_eq!(err.location.entry, Some(0));
        assert_eq!(err.location.path, "attrs.value");
    }
    // Without a blueprints directory, !File is refused outright.
    let err = eval_first(&one_entry("!File ok.txt"), None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::FileRefused(_)), "{err}");
}

#[tokio::test]
async fn large_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), vec![b'a'; 1024 * 1024 + 1]).unwrap();
    let err = eval_first(&one_entry("!File big.txt"), Some(dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::FileRefused(ref m) if m.contains("larger")),
        "{err}"
    );
}

#[tokio::test]
async fn self_referential_context_is_refused() {
    let text = "version: 1\ncontext:\n  a: !Context b\n  b: !Context a\n  c: !Context c\nentries:\n  - model: a.b\n    attrs:\n      x: !Context a\n";
    let blueprint = parse(text, "hostile.yaml").unwrap();
    let err = eval_first(&blueprint, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "hostile.yaml: entry 0 (a.b) attrs.x: !Context: context refers to itself: a -> b -> a"
    );
}

#[tokio::test]
async fn huge_enumerations_are_refused() {
    // An iterable longer than the limit.
    let items = vec!["1"; 10_001].join(",");
    let text = format!(
        "version: 1\ncontext:\n  big: [{items}]\nentries:\n  - model: a.b\n    attrs:\n      x: !Enumerate [!Context big, SEQ, !Value 0]\n"
    );
    let err = eval_first(&parse(&text, "hostile.yaml").unwrap(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Evaluation { tag: "Enumerate", message } if message.contains("10001 items")),
        "{err}"
    );

    // Nested enumerations multiply: 1000^3 iterations stop on the step budget.
    let items = vec!["1"; 1000].join(",");
    let text = format!(
        "version: 1\ncontext:\n  s: [{items}]\nentries:\n  - model: a.b\n    attrs:\n      x: !Enumerate [!Context s, SEQ, !Enumerate [!Context s, SEQ, !Enumerate [!Context s, SEQ, !Index 0]]]\n"
    );
    let err = eval_first(&parse(&text, "hostile.yaml").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::StepBudget { limit: 1_000_000 },
        "{err}"
    );

    // Few steps but big copies: each item copies a 100 KB string.
    let text = format!(
        "version: 1\ncontext:\n  s: [{items}]\n  big: {}\nentries:\n  - model: a.b\n    attrs:\n      x: !Enumerate [!Context s, SEQ, !Context big]\n",
        "y".repeat(100_000)
    );
    let err = eval_first(&parse(&text, "hostile.yaml").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::OutputBudget { limit: 1_000_000 },
        "{err}"
    );

    // A string iterable counts its characters.
    let text = format!(
        "version: 1\ncontext:\n  long: {}\nentries:\n  - model: a.b\n    attrs:\n      x: !Enumerate [!Context long, SEQ, !Value 0]\n",
        "z".repeat(20_000)
    );
    let err = eval_first(&parse(&text, "hostile.yaml").unwrap(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::Evaluation {
                tag: "Enumerate",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn limits_are_configurable() {
    let blueprint = one_entry("[1, 2, 3, 4, 5]");
    let limits = Limits {
        max_steps: 3,
        ..Limits::default()
    };
    let err = eval_first_with(&blueprint, None, limits).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::StepBudget { limit: 3 });
}

#[tokio::test]
async fn evaluation_errors_name_tag_entry_and_field() {
    let cases = [
        (
            "!KeyOf nowhere",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !KeyOf: no earlier entry with `id` `nowhere` has made an object (is the entry defined before this one, and did it apply?)",
        ),
        (
            "!Format ['%s-%s', a]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Format: not enough arguments for format string",
        ),
        (
            "!Format ['%d', a]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Format: %d format: a real number is required, not str",
        ),
        (
            "!Condition [AND]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Condition: at least one value is required after the mode",
        ),
        (
            "!Condition [MAYBE, true]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Condition: unknown mode `MAYBE` (expected AND, NAND, OR, NOR, XOR or XNOR)",
        ),
        (
            "!Value 0",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Value: only usable inside an !Enumerate",
        ),
        (
            "!Enumerate [[a], SEQ, !Index 3]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value[0]: !Index: invalid depth 3: 1 enclosing !Enumerate",
        ),
        (
            "!Enumerate [5, SEQ, x]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Enumerate: the iterable must be a sequence or a mapping, found 5",
        ),
        (
            "!Enumerate [[a], MAP, x]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Enumerate: invalid item for MAP: x (expected [key, value] or a mapping)",
        ),
        (
            "!AtIndex [[a], 3]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !AtIndex: index out of range: 3",
        ),
        (
            "!AtIndex [{a: 1}, b]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !AtIndex: key does not exist: b",
        ),
        (
            "!AtIndex [[a], x]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !AtIndex: invalid index for list: x",
        ),
        (
            "!ParseJSON '{nope'",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !ParseJSON: key must be a string at line 1 column 2",
        ),
        (
            "!Find [nomodel, [a, b]]",
            "hostile.yaml: entry 0 (authentik_core.user) attrs.value: !Find: unknown model `nomodel`",
        ),
    ];
    for (attrs, want) in cases {
        let err = eval_first(&one_entry(attrs), None).await.unwrap_err();
        assert_eq!(err.to_string(), want, "{attrs}");
    }
}

#[tokio::test]
async fn long_context_chains_stop_without_overflowing_the_stack() {
    let mut text = String::from("version: 1\ncontext:\n");
    for i in 0..500 {
        text.push_str(&format!("  k{i}: !Format ['%s', !Context k{}]\n", i + 1));
    }
    text.push_str(
        "entries:\n  - model: a.b\n    attrs:\n      x: [[[[[[[[[[!Context k0]]]]]]]]]]\n",
    );
    let blueprint = parse(&text, "hostile.yaml").unwrap();
    let err = eval_first(&blueprint, None).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::EvaluationTooDeep { limit: 128 },
        "{err}"
    );
}
