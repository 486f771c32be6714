//! A fake apply step: an in-memory store that plays the database for `!Find`/`!FindObject`
//! and remembers the pk of each applied entry for `!KeyOf`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use portcullis_blueprint::{Blueprint, BlueprintError, EntryState, Evaluator, Resolver, parse};
use serde_json::{Map, Value, json};

#[derive(Default)]
pub struct FakeStore {
    /// (model, object with a "pk" field)
    pub objects: Mutex<Vec<(String, Value)>>,
    /// entry id -> (model, pk)
    pub ids: Mutex<HashMap<String, (String, Value)>>,
}

impl FakeStore {
    pub fn with_objects(objects: Vec<(&str, Value)>) -> Self {
        let store = Self::default();
        *store.objects.lock().unwrap() = objects
            .into_iter()
            .map(|(m, o)| (m.to_owned(), o))
            .collect();
        store
    }

    fn matching(&self, model: &str, query: &[(String, Value)]) -> Result<Option<Value>, String> {
        if !model.contains('.') {
            return Err(format!("unknown model `{model}`"));
        }
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|(m, _)| m.eq_ignore_ascii_case(model))
            .map(|(_, o)| o)
            .find(|o| query.iter().all(|(k, v)| o.get(k) == Some(v)))
            .cloned())
    }
}

impl Resolver for FakeStore {
    async fn key_of(&self, id: &str, for_model: &str) -> Option<Value> {
        let ids = self.ids.lock().unwrap();
        let (model, pk) = ids.get(id)?;
        if for_model == "authentik_policies.policybinding" && model == "authentik_flows.flow" {
            return Some(json!(format!("pbm-{}", pk.as_str()?)));
        }
        Some(pk.clone())
    }

    async fn find(&self, model: &str, query: &[(String, Value)]) -> Result<Option<Value>, String> {
        Ok(self
            .matching(model, query)?
            .and_then(|o| o.get("pk").cloned()))
    }

    async fn find_object(
        &self,
        model: &str,
        query: &[(String, Value)],
    ) -> Result<Option<Value>, String> {
        self.matching(model, query)
    }
}

pub fn env(name: &str) -> Option<String> {
    match name {
        "PORTCULLIS_BOOTSTRAP_PASSWORD" => Some("hunter2".into()),
        "PORTCULLIS_TEST_SET" => Some("set-value".into()),
        "PORTCULLIS_TEST_EMPTY" => Some(String::new()),
        _ => None,
    }
}

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

pub fn load(name: &str) -> Blueprint {
    let path = corpus_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    parse(&text, &format!("corpus/{name}")).unwrap()
}

/// What the fake apply did with one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub index: usize,
    pub model: String,
    pub state: EntryState,
    /// `None` when the entry's conditions did not hold.
    pub identifiers: Option<Value>,
    pub attrs: Option<Value>,
}

/// Applies the blueprint in entry order as the real apply will: conditions, then identifiers
/// and attrs, then the object is "saved" (pk `pk-<index>`) so later entries can find it.
pub async fn apply(
    blueprint: &Blueprint,
    store: &FakeStore,
    context: Value,
) -> Result<Vec<Applied>, BlueprintError> {
    let context: Map<String, Value> = match context {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let env_fn = env;
    let evaluator =
        Evaluator::new(blueprint, &context, store, &env_fn).with_blueprints_dir(corpus_dir());
    let mut out = Vec::new();
    for entry in &blueprint.entries {
        if !evaluator.entry_applies(entry).await? {
            out.push(Applied {
                index: entry.index,
                model: entry.model.clone(),
                state: entry.state,
                identifiers: None,
                attrs: None,
            });
            continue;
        }
        let evaluated = evaluator.evaluate_entry(entry).await?;
        if entry.state != EntryState::Absent {
            let pk = json!(format!("pk-{}", entry.index));
            let mut object = Map::new();
            if let Value::Object(ids) = &evaluated.identifiers {
                object.extend(ids.clone());
            }
            if let Value::Object(attrs) = &evaluated.attrs {
                object.extend(attrs.clone());
            }
            object.insert("pk".into(), pk.clone());
            store
                .objects
                .lock()
                .unwrap()
                .push((entry.model.clone(), Value::Object(object)));
            if let Some(id) = &entry.id {
                store
                    .ids
                    .lock()
                    .unwrap()
                    .insert(id.clone(), (entry.model.clone(), pk));
            }
        }
        out.push(Applied {
            index: entry.index,
            model: entry.model.clone(),
            state: entry.state,
            identifiers: Some(evaluated.identifiers),
            attrs: Some(evaluated.attrs),
        });
    }
    Ok(out)
}
