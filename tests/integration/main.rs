//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod docs;
mod egress;
mod networking;
mod repl;
mod script_errors;
