//! What every role needs to run: configuration, telemetry, connections, auth, the
//! problem+json error shape, and serving HTTP with graceful shutdown.
#![forbid(unsafe_code)]

pub mod auth;
pub mod clickhouse;
pub mod clickhouse_lookup;
pub mod config;
pub mod connections;
pub mod db;
pub mod entries;
pub mod gate;
pub mod graph_writes;
pub mod http;
pub mod in_flight;
pub mod metrics;
pub mod nats;
pub mod openapi;
pub mod periodic;
pub mod problem;
pub mod ratelimit;
pub mod stall;
pub mod telemetry;
pub mod turns;
pub mod wire_time;

pub use config::Config;
pub use problem::Problem;
