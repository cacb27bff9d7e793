use sandbox_sdk::prelude::*;

#[analysis]
async fn run(ctx: &mut Context) -> Result<()> {
    let _ = ctx;
    Ok(())
}

fn main() {}
