//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod destroy;
mod docs;
mod ecs;
mod egress;
mod emulator;
mod guide;
mod iam_logs;
mod load_balancing;
mod lock;
mod networking;
mod prune;
mod queries;
mod repl;
mod script_errors;
mod settle;
mod status;
mod zones;
