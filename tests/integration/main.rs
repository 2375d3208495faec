//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod destroy;
mod ecs;
mod egress;
mod iam_logs;
mod load_balancing;
mod networking;
mod script_errors;
