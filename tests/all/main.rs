//! End-to-end and adversarial tests. One binary, many modules (link once).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod accuracy;
mod atrest;
mod audit;
mod backup;
mod budget;
mod cluster;
mod console;
mod demo;
mod disclosure;
mod diskfull;
mod fuzz;
mod governance;
mod independence;
mod ingest;
mod load;
mod mediation;
mod queue;
mod review;
mod sandbox;
mod server;
mod structure;
mod sums;
mod threshold;
