//! Compiling the wrapped source and running it inside the limits.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use starlark::ErrorKind;
use starlark::codemap::{FileSpan, FileSpanRef};
use starlark::environment::{Globals, GlobalsBuilder, Module};
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator};
use starlark::syntax::ast::{AssignOp, StmtP};
use starlark::syntax::{AstModule, Dialect, DialectTypes};
use starlark::values::Value;

use super::{ExpressionLimits, ExpressionPolicy, convert, globals};
use crate::error::{Budget, PolicyError};
use crate::request::{PolicyRequest, PolicyResult, PolicyUser, UserDirectory};

/// Name of the function the admin's code becomes the body of (authentik's name; a leading
/// underscore would make it private to the module).
const ENTRY: &str = "handler";
/// Name `a * b` is rewritten to (see `globals::checked_mul`).
pub(super) const CHECKED_MUL: &str = "__portcullis_mul";

/// Per-run state the helpers reach. It lives in a thread-local for the length of one run (a run
/// is synchronous on one thread): `Evaluator::extra` would need an `unsafe impl`, which the
/// workspace forbids.
pub(super) struct EvalState {
    pub messages: RefCell<Vec<String>>,
    pub log: RefCell<Vec<String>>,
    /// `ak_set_context` values.
    pub context: RefCell<serde_json::Map<String, serde_json::Value>>,
    /// Users this run knows the groups of (request.user, pending_user, ak_user_by results).
    pub users: RefCell<Vec<PolicyUser>>,
    pub directory: Arc<dyn UserDirectory>,
    pub limits: ExpressionLimits,
    /// Set by a helper or the deadline check when it stops the run for a budget.
    pub budget_hit: Cell<Option<Budget>>,
    /// 1-based line of the admin's code last started, for errors raised without a span.
    pub last_line: Cell<Option<usize>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<EvalState>>> = const { RefCell::new(None) };
}

/// Installs a run's state for this thread and restores the previous one when dropped.
struct Installed(Option<Rc<EvalState>>);

impl Installed {
    fn new(state: Rc<EvalState>) -> Self {
        Self(CURRENT.with(|c| c.replace(Some(state))))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

impl EvalState {
    /// The state of the run in progress on this thread.
    pub fn current() -> Option<Rc<EvalState>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// The error a helper returns when it refuses work that would exceed a budget.
    pub fn exceeded(&self, budget: Budget, what: String) -> starlark::Error {
        self.budget_hit.set(Some(budget));
        starlark::Error::new_native(BudgetError(what))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct BudgetError(pub String);

static GLOBALS: LazyLock<Globals> = LazyLock::new(|| {
    GlobalsBuilder::standard()
        .with(globals::helpers)
        .with_namespace("ak_logger", globals::logger)
        .build()
});

fn dialect() -> Dialect {
    Dialect {
        enable_load: false,
        enable_keyword_only_arguments: true,
        // Python annotations parse and are ignored, as the Python interpreter ignores them.
        enable_types: DialectTypes::ParseOnly,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

/// authentik's `wrap_expression`: the code, indented, becomes the body of a function.
fn wrap(expression: &str) -> String {
    let mut out = String::with_capacity(expression.len() + 64);
    out.push_str("def ");
    out.push_str(ENTRY);
    out.push_str("():\n");
    for line in expression.lines() {
        if !line.trim().is_empty() {
            out.push_str("    ");
        }
        out.push_str(line);
        out.push('\n');
    }
    // An empty or comment-only body still needs a statement.
    out.push_str("    pass\n");
    out
}

/// 1-based line number in the admin's code of a span in the wrapped source (the wrapper's
/// `def` line is line 0 of the wrapped file, so the 0-based wrapped line is the 1-based user line).
fn user_line(span: &FileSpan) -> Option<usize> {
    let line = span.resolve_span().begin.line;
    (line >= 1).then_some(line)
}

pub(super) fn compile(
    name: &str,
    expression: &str,
    limits: &ExpressionLimits,
) -> Result<AstModule, PolicyError> {
    if expression.len() > limits.max_source_bytes {
        return Err(PolicyError::Syntax {
            line: None,
            message: format!(
                "expression is longer than {} bytes",
                limits.max_source_bytes
            ),
        });
    }
    let file = if name.is_empty() {
        "PolicyEvaluator"
    } else {
        name
    };
    let mut ast =
        AstModule::parse(file, wrap(expression), &dialect()).map_err(|e| PolicyError::Syntax {
            line: e.span().and_then(user_line),
            message: e.without_diagnostic().to_string(),
        })?;
    if let Some(line) = find_multiply_assign(&ast) {
        return Err(PolicyError::Syntax {
            line: Some(line),
            message: "`x *= n` is not supported; write `x = x * n`".to_owned(),
        });
    }
    let replace = HashMap::from([("*".to_owned(), CHECKED_MUL.to_owned())]);
    ast.replace_binary_operators(&replace);
    Ok(ast)
}

/// Parsed expressions, so one that runs on every request (a scope mapping, a policy of a busy
/// flow) is parsed once per process, not per run. Bounded by the source bytes it holds.
struct Compiled {
    asts: HashMap<(String, String), AstModule>,
    bytes: usize,
}

/// Most source bytes [`COMPILED`] holds before it starts over (the parsed trees take a few times
/// this).
const COMPILED_MAX_BYTES: usize = 4 * 1024 * 1024;

static COMPILED: LazyLock<Mutex<Compiled>> = LazyLock::new(|| {
    Mutex::new(Compiled {
        asts: HashMap::new(),
        bytes: 0,
    })
});

/// [`compile`], from the cache when this source was compiled before under the same name.
fn compiled(
    name: &str,
    expression: &str,
    limits: &ExpressionLimits,
) -> Result<AstModule, PolicyError> {
    let key = (name.to_owned(), expression.to_owned());
    if expression.len() <= limits.max_source_bytes
        && let Some(ast) = COMPILED.lock().ok().and_then(|c| c.asts.get(&key).cloned())
    {
        return Ok(ast);
    }
    let ast = compile(name, expression, limits)?;
    if let Ok(mut cache) = COMPILED.lock() {
        let size = name.len() + expression.len();
        if cache.bytes + size > COMPILED_MAX_BYTES {
            cache.asts.clear();
            cache.bytes = 0;
        }
        if size <= COMPILED_MAX_BYTES && cache.asts.insert(key, ast.clone()).is_none() {
            cache.bytes += size;
        }
    }
    Ok(ast)
}

/// Finds a `*=` statement, which bypasses the size check on `*`.
fn find_multiply_assign(ast: &AstModule) -> Option<usize> {
    fn go(stmt: &starlark::syntax::ast::AstStmt, ast: &AstModule, found: &mut Option<usize>) {
        if found.is_some() {
            return;
        }
        if let StmtP::AssignModify(_, AssignOp::Multiply, _) = &stmt.node {
            *found = user_line(&ast.file_span(stmt.span)).or(Some(0));
            return;
        }
        stmt.visit_stmt(|s| go(s, ast, found));
    }
    let mut found = None;
    go(ast.statement(), ast, &mut found);
    found
}

pub(super) fn evaluate(
    policy: &ExpressionPolicy,
    req: &PolicyRequest,
    directory: Arc<dyn UserDirectory>,
) -> Result<PolicyResult, PolicyError> {
    run_expression(policy, req, directory, false).map(|(r, _)| r)
}

/// Runs the expression for the value it returns, as JSON (prompt fields' `initial_value` and
/// `placeholder` expressions). A value JSON cannot hold is an error.
pub(super) fn evaluate_value(
    policy: &ExpressionPolicy,
    req: &PolicyRequest,
    directory: Arc<dyn UserDirectory>,
) -> Result<serde_json::Value, PolicyError> {
    run_expression(policy, req, directory, true).map(|(_, v)| v)
}

fn run_expression(
    policy: &ExpressionPolicy,
    req: &PolicyRequest,
    directory: Arc<dyn UserDirectory>,
    want_value: bool,
) -> Result<(PolicyResult, serde_json::Value), PolicyError> {
    let limits = policy.limits;
    let ast = compiled(&policy.name, &policy.expression, &limits)?;
    let mut known_users = vec![req.user.clone()];
    if let Some(pending) = &req.pending_user {
        known_users.push(pending.clone());
    }
    let state = Rc::new(EvalState {
        messages: RefCell::new(Vec::new()),
        log: RefCell::new(Vec::new()),
        context: RefCell::new(serde_json::Map::new()),
        users: RefCell::new(known_users),
        directory,
        limits,
        budget_hit: Cell::new(None),
        last_line: Cell::new(None),
    });
    let _installed = Installed::new(Rc::clone(&state));
    let deadline = Instant::now() + limits.wall_clock;

    let outcome = Module::with_temp_heap(|module| {
        convert::bind_request(&module, req);
        let mut eval = Evaluator::new(&module);
        let setup = eval
            .set_max_tick_count(limits.max_ticks)
            .and_then(|()| eval.set_max_heap_size(limits.max_heap_bytes))
            .and_then(|()| eval.set_max_callstack_size(limits.max_call_depth));
        if let Err(e) = setup {
            return Err(PolicyError::Config(e.to_string()));
        }
        let state_ref = &*state;
        eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(StatementGuard {
            max_heap_bytes: limits.max_heap_bytes,
            deadline,
        })));
        eval.set_check_cancelled(Box::new(move || {
            let late = Instant::now() >= deadline;
            if late {
                state_ref.budget_hit.set(Some(Budget::WallClock));
            }
            late
        }));
        let run = eval.eval_module(ast, &GLOBALS).and_then(|_| {
            let entry = module.get(ENTRY).unwrap_or_else(Value::new_none);
            eval.eval_function(entry, &[], &[])
        });
        match run {
            Ok(value) if want_value => {
                let json = value
                    .to_json()
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .ok_or_else(|| PolicyError::Runtime {
                        line: None,
                        message: format!(
                            "the expression returned a {}, not a JSON value",
                            value.get_type()
                        ),
                    })?;
                Ok((value.to_bool(), json))
            }
            Ok(value) => Ok((value.to_bool(), serde_json::Value::Null)),
            Err(e) => Err(map_error(&e, &eval, &state)),
        }
    });
    let (passing, value) = outcome?;
    Ok((
        PolicyResult {
            passing,
            messages: state.messages.take(),
            log: state.log.take(),
            context: state.context.take(),
        },
        value,
    ))
}

/// Checks the heap and the deadline before every statement. Starlark itself checks them only
/// every thousand ticks, and a loop that doubles a list (`x = x + x`) reaches gigabytes in thirty
/// ticks. Checking per statement bounds the overshoot to what one statement allocates.
///
/// (`before_stmt_for_dap` is hidden from starlark's docs as meant for its debugger, but it is the
/// only per-statement hook; starlark is pinned to 0.14 in the workspace.)
struct StatementGuard {
    max_heap_bytes: usize,
    deadline: Instant,
}

impl<'e> BeforeStmtFuncDyn<'e> for StatementGuard {
    fn call<'v>(
        &mut self,
        span: FileSpanRef,
        _continued: bool,
        eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        let state = EvalState::current();
        if let Some(state) = &state {
            let line = span.file.resolve_span(span.span).begin.line;
            state.last_line.set((line >= 1).then_some(line));
        }
        let used = eval.heap().allocated_bytes();
        let budget = if used > self.max_heap_bytes {
            Some((
                Budget::Memory,
                format!(
                    "heap of {used} bytes exceeds the limit of {} bytes",
                    self.max_heap_bytes
                ),
            ))
        } else if Instant::now() >= self.deadline {
            Some((
                Budget::WallClock,
                "the expression ran past its deadline".to_owned(),
            ))
        } else {
            None
        };
        match (budget, state) {
            (Some((budget, message)), Some(state)) => Err(state.exceeded(budget, message)),
            (Some((_, message)), None) => Err(starlark::Error::new_native(BudgetError(message))),
            (None, _) => Ok(()),
        }
    }
}

/// Turns a Starlark error into a typed policy error with the admin's line number.
fn map_error(e: &starlark::Error, eval: &Evaluator<'_, '_, '_>, state: &EvalState) -> PolicyError {
    let line = e.span().and_then(user_line).or_else(|| {
        e.call_stack()
            .frames
            .iter()
            .rev()
            .filter_map(|f| f.location.as_ref())
            .find_map(user_line)
            .or(state.last_line.get())
    });
    let message = e.without_diagnostic().to_string();
    let budget = state.budget_hit.get().or_else(|| match e.kind() {
        ErrorKind::StackOverflow(_) => Some(Budget::CallStack),
        _ if eval.get_total_tick_count() >= state.limits.max_ticks => Some(Budget::Ticks),
        _ if message.contains("Heap memory limit") => Some(Budget::Memory),
        _ => None,
    });
    match budget {
        Some(budget) => PolicyError::BudgetExceeded {
            budget,
            line,
            message,
        },
        None => PolicyError::Runtime { line, message },
    }
}
