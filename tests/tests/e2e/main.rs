//! End-to-end tests against real Postgres and NATS (and ClickHouse, a browser where
//! named). One binary, so the suite links once; tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cluster;
mod commission;
mod connections;
mod credentials;
mod deadlock;
mod demo;
mod edge;
mod errors;
mod faults;
mod foundation;
mod graph_load;
mod groups;
mod in_flight;
mod live;
mod live_lifetime;
mod nats_auth;
mod openapi;
mod plans;
mod pool;
mod reports;
mod revocations;
mod security;
mod simulation;
mod spellings;
mod stream_full;
mod validation;
mod warehouse;
mod wire;
