use sandbox_sdk::prelude::*;

#[analysis]
fn run(ctx: &Context) -> Result<()> {
    let _ = ctx;
    Ok(())
}

fn main() {}
