//! The one error type of the policy crate.
//!
//! Budget overruns are their own variant so the flow engine can tell "this expression is broken"
//! from "this expression ran too long" when it records the `policy_exception` event.

use std::fmt;
use std::time::Duration;

/// Which resource limit an expression ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The tick (function call / loop iteration) budget, which is also the CPU-time bound.
    Ticks,
    /// The Starlark heap size limit (including the size check on `*` repetition).
    Memory,
    /// The call-stack depth limit (deep or infinite recursion).
    CallStack,
    /// The wall-clock deadline.
    WallClock,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Budget::Ticks => "instruction",
            Budget::Memory => "memory",
            Budget::CallStack => "call-stack",
            Budget::WallClock => "wall-clock",
        })
    }
}

/// Formats an optional 1-based line number of the user's expression as `" (line N)"`.
struct Line(Option<usize>);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, " (line {n})"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The expression does not parse (or uses a construct Portcullis refuses, like `*=`).
    #[error("expression syntax error{}: {message}", Line(*.line))]
    Syntax {
        line: Option<usize>,
        message: String,
    },
    /// The expression raised an error while running.
    #[error("expression error{}: {message}", Line(*.line))]
    Runtime {
        line: Option<usize>,
        message: String,
    },
    /// The expression exceeded one of its resource budgets and was stopped.
    #[error("expression exceeded its {budget} budget{}: {message}", Line(*.line))]
    BudgetExceeded {
        budget: Budget,
        line: Option<usize>,
        message: String,
    },
    /// The policy did not answer within its binding's timeout.
    #[error("policy timed out after {0:?}")]
    Timeout(Duration),
    /// The policy is configured in a way it cannot run with (e.g. `wait_min > wait_max`).
    #[error("invalid policy configuration: {0}")]
    Config(String),
    /// A lookup the policy depends on (users, reputation scores) failed.
    #[error("policy lookup failed: {0}")]
    Lookup(String),
}

impl PolicyError {
    /// True when the error is a resource budget (ticks, memory, stack, wall clock) or a timeout.
    pub fn is_budget_exceeded(&self) -> bool {
        matches!(
            self,
            PolicyError::BudgetExceeded { .. } | PolicyError::Timeout(_)
        )
    }
}
