//! The planner and the executor: one challenge and one response per step, the same for the JSON
//! executor API and the HTML pages.
//!
//! ```text
//!  GET  ─> plan in session? ─no─> plan: authentication requirement, flow policies,
//!            │                       bindings (evaluate_on_plan policies now)
//!            v
//!          current stage ─> re-evaluate its binding's policies (skip it when they fail)
//!            ─> StageView::challenge ─> Challenge ─> (store plan) ─> reply
//!                                   └─> Next ─> advance, loop      (stages that ask nothing)
//!          no stage left ─> xak-flow-redirect to the plan's redirect / ?next= / "/"
//!  POST ─> current challenge's component must match ─> StageView::respond
//!            Next ─> advance, store ─> Advanced: the JSON API goes on as a GET in the same
//!                                      request; a form page redirects to itself
//!            Invalid ─> same challenge with response_errors (retry, or restart the plan)
//!            Deny / Redirect ─> plan dropped ─> access denied / xak-flow-redirect
//! ```
//! A stage that fails (broken configuration, database error) ends the flow with
//! `ak-stage-flow-error` and a `flow_execution` event; the person never sees a 500.

use std::sync::Arc;

use portcullis_core::{
    Actor, Brand, Clock, EventAction, Flow, FlowAuthentication, InvalidResponseAction, NewEvent,
};
use portcullis_crypto::PasswordHasher;
use portcullis_policy::{HttpRequestInfo, PolicyCache};
use portcullis_store::{Store, StoreError};
use serde_json::{Map, Value};

use crate::challenge::{Challenge, FlowInfo};
use crate::context;
use crate::error::FlowError;
use crate::plan::{FlowPlan, PlannedStage};
use crate::policies::{PolicyServices, evaluate_target};
use crate::session::SessionState;
use crate::stages::{self, StageCx, Step};

/// Most stages one request may pass through (a loop guard; real flows have a handful).
const MAX_STEPS: usize = 64;

/// Told when a browser session ends by logging out, so the protocols that issued something to
/// it can end their side (OpenID Connect back- and front-channel logout, later SAML single
/// logout).
#[async_trait::async_trait]
pub trait SessionEndHook: Send + Sync {
    /// `session` is the uuid of the session that ended, `user` the pk of its user. Answers the
    /// pages the browser should load to end the applications' own sessions (front-channel
    /// logout): the flow shows them next, in iframes.
    async fn session_ended(
        &self,
        session: uuid::Uuid,
        user: i32,
    ) -> Vec<crate::stages::iframe_logout::LogoutUrl>;
}

/// What the executor needs from the server.
#[derive(Clone)]
pub struct FlowServices {
    pub store: Store,
    pub hasher: PasswordHasher,
    pub clock: Arc<dyn Clock>,
    pub policies: PolicyServices,
    /// Run after a logout (none: nothing else to tell).
    pub session_end: Option<Arc<dyn SessionEndHook>>,
}

impl std::fmt::Debug for FlowServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowServices").finish_non_exhaustive()
    }
}

/// The request a flow runs for.
#[derive(Debug, Clone)]
pub struct FlowRequest {
    pub http: HttpRequestInfo,
    /// The query string of the page that runs the flow (authentik's `?query=`): carries `next`.
    pub query: String,
    pub brand: Brand,
}

/// The answer to a POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Show this challenge (errors, a denial, the final redirect).
    Challenge(Challenge),
    /// The stage accepted the response: the next challenge comes from a GET
    /// ([`Executor::solve`] runs it at once).
    Advanced,
}

/// A relative URL that stays on this site, from `next` or a stage; anything else is refused so
/// a crafted link cannot send a person elsewhere after logging in.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// The longest `login_hint` kept (a username or email is at most 150 / 254 characters).
const MAX_LOGIN_HINT: usize = 254;

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub struct Executor<'a> {
    svc: &'a FlowServices,
    session: &'a mut SessionState,
    request: &'a FlowRequest,
    cache: PolicyCache,
    users: stages::UserMemo,
    /// In-memory stages the next plan gets after the flow's own ([`Executor::start_with`]).
    appended: Vec<portcullis_core::Stage>,
}

impl<'a> Executor<'a> {
    pub fn new(
        svc: &'a FlowServices,
        session: &'a mut SessionState,
        request: &'a FlowRequest,
    ) -> Self {
        Self {
            svc,
            session,
            request,
            cache: PolicyCache::new(),
            users: stages::UserMemo::default(),
            appended: Vec::new(),
        }
    }

    fn flow_info(&self, flow: &Flow) -> FlowInfo {
        FlowInfo {
            title: flow.title.clone(),
            background: if flow.background.is_empty() {
                self.request.brand.branding_default_flow_background.clone()
            } else {
                flow.background.clone()
            },
            cancel_url: "/flows/-/cancel/".to_owned(),
            layout: flow.layout.as_str().to_owned(),
        }
    }

    async fn load_flow(&self, slug: &str) -> Result<Flow, FlowError> {
        let generation = self.svc.store.changes();
        if let Some(f) = self
            .svc
            .policies
            .cache
            .flows
            .get(&slug.to_owned(), generation)
        {
            return Ok(f);
        }
        match self.svc.store.find_flow_by_slug(slug).await {
            Ok(f) => {
                self.svc
                    .policies
                    .cache
                    .flows
                    .put(slug.to_owned(), generation, f.clone());
                Ok(f)
            }
            Err(StoreError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The stage a plan step runs: its in-memory stage, or the stored one.
    async fn planned_stage(
        &self,
        step: &PlannedStage,
    ) -> Result<portcullis_core::Stage, StoreError> {
        match &step.inline {
            Some(stage) => Ok(stage.clone()),
            None => self.stage(step.stage).await,
        }
    }

    /// A stage, from the definition cache.
    async fn stage(&self, uuid: uuid::Uuid) -> Result<portcullis_core::Stage, StoreError> {
        let generation = self.svc.store.changes();
        if let Some(s) = self.svc.policies.cache.stages.get(&uuid, generation) {
            return Ok(s);
        }
        let s = self.svc.store.find_stage(uuid).await?;
        self.svc
            .policies
            .cache
            .stages
            .put(uuid, generation, s.clone());
        Ok(s)
    }

    async fn stored_plan(&self, flow: &Flow) -> Option<FlowPlan> {
        self.session
            .plan(&flow.slug)
            .and_then(FlowPlan::from_json)
            .filter(|p| p.flow == flow.uuid)
    }

    async fn store_plan(&mut self, plan: Option<&FlowPlan>, slug: &str) -> Result<(), FlowError> {
        self.session
            .set_plan(&self.svc.store, slug, plan.map(FlowPlan::to_json))
            .await?;
        Ok(())
    }

    async fn actor(&self) -> Actor {
        Actor {
            user: self.session.user().map(|u| portcullis_core::EventUser {
                pk: u.user.pk,
                email: u.user.email.clone(),
                username: u.user.username.clone(),
            }),
            client_ip: self.request.http.client_ip.clone(),
            brand: None,
        }
    }

    /// Starts flow `flow` for a protocol (an OAuth authorization, later SAML, ...): plans it
    /// seeded with `context` (whose `redirect` is where the browser goes when the flow is
    /// done), stores the plan, and answers the redirect to the flow's page, or the challenge
    /// that says why the flow cannot run (access denied, ...).
    pub async fn start(
        &mut self,
        flow: uuid::Uuid,
        context: Map<String, Value>,
    ) -> Result<Challenge, FlowError> {
        self.start_with(flow, context, Vec::new()).await
    }

    /// [`Executor::start`], with `appended` stages (not stored: see
    /// [`PlannedStage::in_memory`]) walked after the flow's own.
    pub async fn start_with(
        &mut self,
        flow: uuid::Uuid,
        context: Map<String, Value>,
        appended: Vec<portcullis_core::Stage>,
    ) -> Result<Challenge, FlowError> {
        self.appended = appended;
        self.switch_flow(flow, Some(context)).await
    }

    /// Plans flow `target` now (seeded with `context`), stores the plan, and sends the browser
    /// to the flow's page, which continues it.
    async fn switch_flow(
        &mut self,
        target: uuid::Uuid,
        context: Option<Map<String, Value>>,
    ) -> Result<Challenge, FlowError> {
        let target = match self.svc.store.find_flow(target).await {
            Ok(f) => f,
            Err(StoreError::NotFound) => {
                return Ok(Challenge::access_denied("The target flow does not exist."));
            }
            Err(e) => return Err(e.into()),
        };
        match self.plan_seeded(&target, context).await? {
            Ok(plan) => {
                self.store_plan(Some(&plan), &target.slug).await?;
                let mut to = format!("/if/flow/{}/", target.slug);
                if !self.request.query.is_empty() {
                    to.push('?');
                    to.push_str(&self.request.query);
                }
                Ok(Challenge::redirect(&to))
            }
            Err(c) => Ok(c),
        }
    }

    /// Builds a plan for `flow`, or the challenge that says why there is none.
    async fn plan(&mut self, flow: &Flow) -> Result<Result<FlowPlan, Challenge>, FlowError> {
        self.plan_seeded(flow, None).await
    }

    /// [`Executor::plan`] starting from `context` (another flow's, handed over).
    async fn plan_seeded(
        &mut self,
        flow: &Flow,
        context: Option<Map<String, Value>>,
    ) -> Result<Result<FlowPlan, Challenge>, FlowError> {
        let user = self.session.user();
        match flow.authentication {
            FlowAuthentication::None | FlowAuthentication::RequireRedirect => {}
            FlowAuthentication::RequireAuthenticated if user.is_none() => {
                let auth = self
                    .svc
                    .store
                    .find_flow_by_designation(portcullis_core::FlowDesignation::Authentication)
                    .await?;
                return Ok(Err(match auth {
                    Some(a) if a.slug != flow.slug => Challenge::redirect(&format!(
                        "/if/flow/{}/?next={}",
                        a.slug,
                        encode(&format!("/if/flow/{}/", flow.slug))
                    )),
                    _ => Challenge::access_denied("Flow requires authentication."),
                }));
            }
            FlowAuthentication::RequireAuthenticated => {}
            FlowAuthentication::RequireUnauthenticated if user.is_some() => {
                return Ok(Err(Challenge::access_denied(
                    "Flow requires an unauthenticated session.",
                )));
            }
            FlowAuthentication::RequireUnauthenticated => {}
            FlowAuthentication::RequireSuperuser if !user.is_some_and(|u| u.user.is_superuser) => {
                return Ok(Err(Challenge::access_denied("Flow requires a superuser.")));
            }
            FlowAuthentication::RequireSuperuser => {}
            FlowAuthentication::RequireOutpost => {
                return Ok(Err(Challenge::access_denied("Flow requires an outpost.")));
            }
        }
        let mut plan = FlowPlan {
            flow: flow.uuid,
            flow_slug: flow.slug.clone(),
            stages: Vec::new(),
            context: context.unwrap_or_default(),
            query: self.request.query.clone(),
            created: self.svc.clock.now(),
            challenge: None,
        };
        if let Some(hint) = query_param(&self.request.query, context::LOGIN_HINT) {
            let hint: String = hint.trim().chars().take(MAX_LOGIN_HINT).collect();
            if !hint.is_empty() {
                plan.context
                    .entry(context::LOGIN_HINT)
                    .or_insert_with(|| serde_json::json!(hint));
            }
        }
        // A logged-in user is the flow's pending user (settings flows update them), as in authentik.
        if let Some(u) = self.session.user() {
            plan.context
                .entry(context::PENDING_USER)
                .or_insert_with(|| serde_json::json!(u.user.pk));
        }
        let actor = self.actor().await;
        let req = stages::policy_request(self.session, &plan, self.request, None)?;
        let result = evaluate_target(
            &self.svc.policies,
            flow.pbm_uuid,
            flow.policy_engine_mode,
            &req,
            &self.cache,
            &actor,
        )
        .await?;
        if result.passing {
            plan.context.extend(result.context_updates());
        } else {
            return Ok(Err(match flow.denied_action {
                portcullis_core::DeniedAction::Continue => {
                    Challenge::redirect(&self.final_redirect(&plan))
                }
                _ => {
                    let message = if result.messages.is_empty() {
                        "Flow does not apply to current user.".to_owned()
                    } else {
                        result.messages.join(" ")
                    };
                    Challenge::access_denied(&message)
                }
            }));
        }
        let generation = self.svc.store.changes();
        let planned = match self.svc.policies.cache.plans.get(&flow.uuid, generation) {
            Some(p) => p,
            None => {
                let p = self.svc.store.flow_plan_bindings(flow.uuid).await?;
                self.svc
                    .policies
                    .cache
                    .plans
                    .put(flow.uuid, generation, p.clone());
                p
            }
        };
        for (binding, _stage) in planned {
            if binding.evaluate_on_plan {
                let r = evaluate_target(
                    &self.svc.policies,
                    binding.pbm_uuid,
                    binding.policy_engine_mode,
                    &req,
                    &self.cache,
                    &actor,
                )
                .await?;
                if !r.passing {
                    continue;
                }
                plan.context.extend(r.context_updates());
            }
            plan.stages.push(PlannedStage {
                binding: binding.uuid,
                pbm_uuid: binding.pbm_uuid,
                stage: binding.stage,
                re_evaluate_policies: binding.re_evaluate_policies,
                policy_engine_mode: binding.policy_engine_mode,
                invalid_response_action: binding.invalid_response_action,
                inline: None,
            });
        }
        plan.stages.extend(
            std::mem::take(&mut self.appended)
                .into_iter()
                .map(PlannedStage::in_memory),
        );
        Ok(Ok(plan))
    }

    fn final_redirect(&self, plan: &FlowPlan) -> String {
        if let Some(to) = plan.context.get(context::REDIRECT).and_then(Value::as_str) {
            return to.to_owned();
        }
        query_param(&plan.query, "next")
            .as_deref()
            .and_then(safe_next)
            .unwrap_or("/")
            .to_owned()
    }

    /// The current challenge of flow `slug`, running stages that ask nothing on the way.
    pub async fn get(&mut self, slug: &str) -> Result<Challenge, FlowError> {
        let flow = self.load_flow(slug).await?;
        let plan = match self.stored_plan(&flow).await {
            Some(p) => p,
            None => match self.plan(&flow).await? {
                Ok(p) => p,
                Err(c) => return Ok(self.decorate(c, &flow)),
            },
        };
        let c = self.run(&flow, plan).await;
        self.finish(&flow, c).await
    }

    /// Walks the plan from its current stage to the next challenge (or its end).
    async fn run(&mut self, flow: &Flow, mut plan: FlowPlan) -> Result<Challenge, FlowError> {
        for _ in 0..MAX_STEPS {
            let Some(current) = plan.current().cloned() else {
                self.store_plan(None, &flow.slug).await?;
                return Ok(Challenge::redirect(&self.final_redirect(&plan)));
            };
            let stage = match self.planned_stage(&current).await {
                Ok(s) => s,
                // Deleted while the flow ran: skip it.
                Err(StoreError::NotFound) => {
                    plan.advance();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if current.re_evaluate_policies && !self.binding_passes(&mut plan, &current).await? {
                plan.advance();
                continue;
            }
            let view = stages::view(&stage.kind)
                .ok_or_else(|| FlowError::Config(format!("unknown stage type {}", stage.kind)))?;
            let step = {
                let mut cx = StageCx {
                    svc: self.svc,
                    flow,
                    stage: &stage,
                    plan: &mut plan,
                    session: self.session,
                    request: self.request,
                    users: &self.users,
                };
                view.challenge(&mut cx).await?
            };
            match step {
                Step::Challenge(c) | Step::Invalid(c) => {
                    plan.challenge = Some(c.component.clone());
                    self.store_plan(Some(&plan), &flow.slug).await?;
                    return Ok(c);
                }
                Step::Next => plan.advance(),
                Step::Deny(m) => {
                    self.store_plan(None, &flow.slug).await?;
                    return Ok(Challenge::access_denied(&m));
                }
                Step::Redirect(to) => {
                    self.store_plan(None, &flow.slug).await?;
                    return Ok(Challenge::redirect(&to));
                }
                Step::SwitchFlow {
                    flow: target,
                    keep_context,
                } => {
                    self.store_plan(None, &flow.slug).await?;
                    return self
                        .switch_flow(target, keep_context.then(|| plan.context.clone()))
                        .await;
                }
            }
        }
        self.store_plan(None, &flow.slug).await?;
        Err(FlowError::Internal(
            "the flow did not settle on a stage".into(),
        ))
    }

    async fn binding_passes(
        &mut self,
        plan: &mut FlowPlan,
        current: &PlannedStage,
    ) -> Result<bool, FlowError> {
        // Most stage bindings have no policies: then there is no request to build.
        let rows =
            crate::policies::cached_policy_bindings(&self.svc.policies, current.pbm_uuid).await?;
        if rows.is_empty() {
            return Ok(true);
        }
        let pending = match plan.pending_user() {
            Some(pk) => self.users.get(&self.svc.store, pk).await.ok(),
            None => None,
        };
        let req = stages::policy_request(self.session, plan, self.request, pending)?;
        let actor = self.actor().await;
        let r = crate::policies::evaluate_bindings(
            &self.svc.policies,
            rows,
            current.pbm_uuid,
            current.policy_engine_mode,
            &req,
            &self.cache,
            &actor,
        )
        .await?;
        if r.passing {
            plan.context.extend(r.context_updates());
        }
        Ok(r.passing)
    }

    /// Adds the flow info, and turns errors into `ak-stage-flow-error` with an event.
    async fn finish(
        &mut self,
        flow: &Flow,
        c: Result<Challenge, FlowError>,
    ) -> Result<Challenge, FlowError> {
        let c = match c {
            Ok(c) => c,
            Err(e @ (FlowError::NotFound | FlowError::BadRequest(_))) => return Err(e),
            Err(e) => {
                tracing::error!(flow = %flow.slug, error = %e, "flow execution failed");
                let actor = self.actor().await;
                let event = NewEvent {
                    action: EventAction::FlowExecution,
                    app: "authentik.flows.views.executor".into(),
                    context: serde_json::json!({
                        "message": e.to_string(),
                        "flow": {"pk": flow.uuid.to_string(), "slug": flow.slug},
                    }),
                };
                if let Err(err) = self.svc.store.record_event(&actor, event).await {
                    tracing::error!(error = %err, "could not record a flow_execution event");
                }
                // The plan is unusable; a reload starts afresh.
                let _ = self.store_plan(None, &flow.slug).await;
                let superuser = self.session.user().is_some_and(|u| u.user.is_superuser);
                let detail = e.to_string();
                Challenge::flow_error(
                    "Something went wrong. Please try again later.",
                    superuser.then_some(detail.as_str()),
                )
            }
        };
        self.session.save(&self.svc.store).await?;
        Ok(self.decorate(c, flow))
    }

    fn decorate(&self, mut c: Challenge, flow: &Flow) -> Challenge {
        if c.flow_info.is_none() {
            let mut info = self.flow_info(flow);
            // authentik's titles name the application being authorized: "Redirecting to %(app)s".
            if info.title.contains("%(app)s") {
                let app = self
                    .session
                    .plan(&flow.slug)
                    .and_then(|p| p.get("context")?.get(context::APPLICATION)?.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("the application")
                    .to_owned();
                info.title = info.title.replace("%(app)s", &app);
            }
            c.flow_info = Some(info);
        }
        c
    }

    /// Applies a response to the current challenge of flow `slug` and answers with what comes
    /// next: when the stage accepted it, the next challenge (running the stages that ask
    /// nothing on the way) exactly as a GET described by `then` would; otherwise the same
    /// challenge with its errors, a denial or the final redirect. One round trip where
    /// authentik's executor answers `302` and the client GETs.
    pub async fn solve(
        &mut self,
        slug: &str,
        body: &Value,
        then: &'a FlowRequest,
    ) -> Result<Challenge, FlowError> {
        match self.apply(slug, body).await? {
            Reply::Advanced => {
                // What follows runs as that GET: its request, and policies that see the plan
                // as it is now, not as it was before the response.
                self.request = then;
                self.cache = PolicyCache::new();
                let next = self.get(slug).await;
                if next.is_err() {
                    // The accepted step (a login, say) is kept even if the next one failed.
                    self.session.save(&self.svc.store).await?;
                }
                next
            }
            Reply::Challenge(c) => Ok(c),
        }
    }

    /// Applies a response to the current challenge of flow `slug`; on [`Reply::Advanced`] the
    /// caller asks for the next challenge in a new request (a form page redirects to itself).
    pub async fn post(&mut self, slug: &str, body: &Value) -> Result<Reply, FlowError> {
        let reply = self.apply(slug, body).await?;
        if let Reply::Advanced = reply {
            self.session.save(&self.svc.store).await?;
        }
        Ok(reply)
    }

    /// [`Executor::post`] without saving the session when the flow advanced.
    async fn apply(&mut self, slug: &str, body: &Value) -> Result<Reply, FlowError> {
        let flow = self.load_flow(slug).await?;
        let Value::Object(response) = body else {
            return Err(FlowError::BadRequest(
                "The response must be a JSON object.".into(),
            ));
        };
        let Some(plan) = self.stored_plan(&flow).await else {
            // Nothing asked yet: answer with the first challenge, ignore the response.
            return Ok(Reply::Challenge(self.get(slug).await?));
        };
        let r = self.respond(&flow, plan, response).await;
        match r {
            Ok(Reply::Advanced) => Ok(Reply::Advanced),
            Ok(Reply::Challenge(c)) => Ok(Reply::Challenge(self.finish(&flow, Ok(c)).await?)),
            Err(e) => Ok(Reply::Challenge(self.finish(&flow, Err(e)).await?)),
        }
    }

    async fn respond(
        &mut self,
        flow: &Flow,
        mut plan: FlowPlan,
        response: &Map<String, Value>,
    ) -> Result<Reply, FlowError> {
        let expected = plan.challenge.clone();
        let Some(current) = plan.current().cloned() else {
            return Ok(Reply::Challenge(self.run(flow, plan).await?));
        };
        let stage = match self.planned_stage(&current).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => {
                plan.advance();
                self.store_plan(Some(&plan), &flow.slug).await?;
                return Ok(Reply::Advanced);
            }
            Err(e) => return Err(e.into()),
        };
        let view = stages::view(&stage.kind)
            .ok_or_else(|| FlowError::Config(format!("unknown stage type {}", stage.kind)))?;
        let component = response.get("component").and_then(Value::as_str);
        if expected.is_none() || component != expected.as_deref() {
            // Not an answer to what was asked: ask again, with the error, and change nothing.
            let mut c = self.run(flow, plan).await?;
            if c.component != crate::challenge::REDIRECT {
                c = c.error(
                    "component",
                    "This response does not answer the current challenge.",
                );
            }
            return Ok(Reply::Challenge(c));
        }
        let step = {
            let mut cx = StageCx {
                svc: self.svc,
                flow,
                stage: &stage,
                plan: &mut plan,
                session: self.session,
                request: self.request,
                users: &self.users,
            };
            view.respond(&mut cx, response).await?
        };
        match step {
            Step::Next => {
                plan.advance();
                plan.challenge = None;
                self.store_plan(Some(&plan), &flow.slug).await?;
                Ok(Reply::Advanced)
            }
            Step::Invalid(c) => match current.invalid_response_action {
                InvalidResponseAction::Retry => {
                    self.store_plan(Some(&plan), &flow.slug).await?;
                    Ok(Reply::Challenge(c))
                }
                InvalidResponseAction::Restart | InvalidResponseAction::RestartWithContext => {
                    let keep = (current.invalid_response_action
                        == InvalidResponseAction::RestartWithContext)
                        .then(|| plan.context.clone());
                    match self.plan(flow).await? {
                        Ok(mut fresh) => {
                            if let Some(ctx) = keep {
                                fresh.context = ctx;
                            }
                            self.store_plan(Some(&fresh), &flow.slug).await?;
                            Ok(Reply::Advanced)
                        }
                        Err(c) => {
                            self.store_plan(None, &flow.slug).await?;
                            Ok(Reply::Challenge(c))
                        }
                    }
                }
            },
            Step::Challenge(c) => {
                plan.challenge = Some(c.component.clone());
                self.store_plan(Some(&plan), &flow.slug).await?;
                Ok(Reply::Challenge(c))
            }
            Step::Deny(m) => {
                self.store_plan(None, &flow.slug).await?;
                Ok(Reply::Challenge(Challenge::access_denied(&m)))
            }
            Step::Redirect(to) => {
                self.store_plan(None, &flow.slug).await?;
                Ok(Reply::Challenge(Challenge::redirect(&to)))
            }
            Step::SwitchFlow {
                flow: target,
                keep_context,
            } => {
                self.store_plan(None, &flow.slug).await?;
                let c = self
                    .switch_flow(target, keep_context.then(|| plan.context.clone()))
                    .await?;
                Ok(Reply::Challenge(c))
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
