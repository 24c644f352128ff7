//! The `referral` binary's library: each subcommand's entry point, and the
//! `Application` that composes every role into one process (`referral all`, and tests).
#![forbid(unsafe_code)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod shops;

pub use app::Application;
