//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod ecs;
mod networking;
mod script_errors;
