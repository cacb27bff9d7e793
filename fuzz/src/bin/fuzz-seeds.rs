//! Writes every target's seeds into `fuzz/libfuzzer/corpus/TARGET`, where `cargo fuzz run`
//! starts from (or into the folder given as the first argument).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("libfuzzer/corpus"),
        PathBuf::from,
    );
    for (target, _) in sandbox_fuzz::TARGETS {
        let dir = root.join(target);
        let n = sandbox_fuzz::seeds::write(target, &dir)?;
        println!("{target}: {n} seeds in {}", dir.display());
    }
    Ok(())
}
