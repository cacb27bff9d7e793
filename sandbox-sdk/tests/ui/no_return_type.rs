use sandbox_sdk::prelude::*;

#[analysis]
fn run(ctx: &mut Context) {
    let _ = ctx;
}

fn main() {}
