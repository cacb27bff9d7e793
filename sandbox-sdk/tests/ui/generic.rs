use sandbox_sdk::prelude::*;

#[analysis]
fn run<T>(ctx: &mut Context) -> Result<()> {
    let _ = ctx;
    Ok(())
}

fn main() {}
