use sandbox_sdk::prelude::*;

#[analysis(fast)]
fn run(ctx: &mut Context) -> Result<()> {
    let _ = ctx;
    Ok(())
}

fn main() {}
