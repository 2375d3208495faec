//! deckhand: deploy and operate Amazon ECS services from small Rhai scripts.
//!
//! `cli` is the command line; `script` runs a script in a `pass` (check, plan or apply) whose
//! primitives (`bindings`) converge AWS resources through the typed service layer (`aws`),
//! recording every change in the `plan`. `local` runs the emulator used by `--local` and tests.

pub mod arn;
pub mod aws;
mod bindings;
pub mod cli;
pub mod connect;
pub mod converge;
pub mod destroy;
pub mod docs;
pub mod engine;
pub mod error;
pub mod exec;
pub mod interrupt;
pub mod kinds;
pub mod local;
pub mod lock;
pub mod lock_calls;
pub mod pass;
pub mod period;
pub mod plan;
pub mod poll;
pub mod prune;
pub mod repl;
pub mod rollback;
pub mod runtime;
pub mod script;
pub mod settle;
pub mod status;
pub mod tagged;
pub mod tail;
pub mod task_run;
pub mod timing;
pub mod wait;

pub use cli::main;
pub use error::{Error, Result};
