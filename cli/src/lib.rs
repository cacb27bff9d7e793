//! The `sandbox` command line: every command on a local data directory calls the runtime's
//! domain functions ([`sandbox_runtime`]), the same ones the server calls, so both refuse
//! the same things; with `--server` the same commands go through the HTTP API.
//!
//! The demo ([`demo`]) and the developer's local loop ([`dev`]) live here, with the binary:
//! they bring in the synthetic generator of `examples/`, which no library crate depends on.

#![forbid(unsafe_code)]

pub mod args;
pub mod commands;
mod common;
pub mod demo;
pub mod dev;
mod help;
mod lists;
mod progress;
mod reader;
mod remote;
mod texts;

pub use args::{Cli, Command, LogFormat};
pub use commands::run;
