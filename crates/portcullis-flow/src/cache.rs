//! An in-process cache of flow definitions (flows by slug, stages, policy bindings of a target),
//! which every step of every flow reads and which change rarely: authentik caches flow plans
//! for 300 s for the same reason.
//!
//! An entry is used while it is younger than [`TTL`] and no change has been made through this
//! process' store since it was read ([`portcullis_store::Store::changes`]), so an edit made here
//! is seen at once and one made by another process within [`TTL`].

pub use portcullis_store::ttl_map::{TTL, TtlMap};

/// The cached definitions.
#[derive(Default)]
pub struct DefinitionCache {
    pub flows: TtlMap<String, portcullis_core::Flow>,
    pub stages: TtlMap<uuid::Uuid, portcullis_core::Stage>,
    pub plans: TtlMap<uuid::Uuid, portcullis_store::PlannedBindings>,
    pub policy_bindings: TtlMap<
        uuid::Uuid,
        Vec<(
            portcullis_core::PolicyBinding,
            Option<portcullis_core::Policy>,
        )>,
    >,
    /// Every brand (one key): the pages and flows look the request's brand up on every request.
    pub brands: TtlMap<(), Vec<portcullis_core::Brand>>,
}

impl std::fmt::Debug for DefinitionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefinitionCache").finish_non_exhaustive()
    }
}
