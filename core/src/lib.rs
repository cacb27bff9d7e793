//! Sandbox's pure core: what every layer shares and nothing else.
//!
//! - [`Error`], by phase, and [`Result`];
//! - identifiers and hashes ([`ids`]); the cryptographic suite's hashes and MACs ([`suite`]);
//! - principals, roles and the one role × action table ([`principal`], [`authz`]);
//! - the mediator's refusal rules ([`refusal`]);
//! - job limits, interruptions, stop targets, output kinds ([`job`]);
//! - the languages of the message catalogue ([`lang`]);
//! - the traits through which the layers talk ([`port`]): the WASM host reaches data only
//!   through a [`port::QueryPort`], and stops reach running jobs through an
//!   [`port::Interrupter`].
//!
//! **Architecture invariant:** the core does no I/O and depends on no engine, database or
//! framework: not SQLite, DataFusion, Arrow, wasmtime or axum. It can be read alone.

#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
mod error;
pub mod ids;
pub mod job;
pub mod lang;
pub mod port;
pub mod principal;
pub mod refusal;
pub mod status;
pub mod suite;

pub use error::{Error, Result, StoreError};
pub use ids::{new_id, plain_file_name, sha256_hex};
pub use lang::Lang;
pub use principal::{Principal, Role};
pub use status::{Decision, JobStatus, OutputStatus, ReviewTier, ScenarioStatus};
pub use suite::{Secret, Suite};
