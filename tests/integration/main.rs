//! Integration tests: the real `deckhand` binary against a local emulator per test.

mod support;

mod autoscaling;
mod creates_together;
mod day2;
mod destroy;
mod docs;
mod domains;
mod ecr;
mod ecs;
mod egress;
mod emulator;
mod environments;
mod guide;
mod iam_logs;
mod load_balancing;
mod lock;
mod networking;
mod prune;
mod queries;
mod rehearsal_ecs;
mod rehearsal_network;
mod rehearsal_overlap;
mod repl;
mod rollback;
mod rules;
mod safe_deploys;
mod script_errors;
mod secrets;
mod settle;
mod status;
mod time;
mod vpc;
mod zones;
