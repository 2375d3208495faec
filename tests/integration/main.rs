//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod docs;
mod egress;
mod networking;
mod script_errors;
