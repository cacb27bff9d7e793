use sandbox_sdk::prelude::*;

#[analysis]
struct Run;

fn main() {}
