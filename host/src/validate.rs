//! Module validation at submission, before anything is compiled or stored.

use wasmparser::{ExternalKind, Parser, Payload, TypeRef, Validator, WasmFeatures};

use sandbox_core::{Error, Result};

/// Largest module accepted.
pub const MAX_MODULE_BYTES: usize = 16 << 20;

/// Imports a module may declare: the `sandbox` namespace only.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "response_len",
    "response_read",
    "query",
    "query_with",
    "params",
    "emit",
    "log",
];

/// Checks a module: size, well-formed WebAssembly (core module, no threads or other
/// proposals the host does not offer), imports from `sandbox` only, exports `memory` and
/// `run`. The refusal says exactly why.
pub fn validate(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_MODULE_BYTES {
        return Err(Error::Guest(format!(
            "module is {} bytes; the limit is {MAX_MODULE_BYTES}",
            bytes.len()
        )));
    }
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(Error::Guest(
            "not a WebAssembly binary (bad magic number)".into(),
        ));
    }
    let features = WasmFeatures::default()
        & !(WasmFeatures::THREADS
            | WasmFeatures::SHARED_EVERYTHING_THREADS
            | WasmFeatures::MEMORY64
            | WasmFeatures::MULTI_MEMORY
            | WasmFeatures::COMPONENT_MODEL
            | WasmFeatures::GC
            | WasmFeatures::EXCEPTIONS
            | WasmFeatures::STACK_SWITCHING);
    let mut validator = Validator::new_with_features(features);
    validator
        .validate_all(bytes)
        .map_err(|e| Error::Guest(format!("invalid WebAssembly: {e}")))?;
    let mut has_memory = false;
    let mut has_run = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Error::Guest(format!("invalid WebAssembly: {e}")))?;
        match payload {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                return Err(Error::Guest(
                    "components are not accepted; submit a core module".into(),
                ));
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import =
                        import.map_err(|e| Error::Guest(format!("import section: {e}")))?;
                    if import.module != "sandbox" {
                        return Err(Error::Guest(format!(
                            "imports `{}::{}`: only the `sandbox` namespace is available (no WASI, no other host)",
                            import.module, import.name
                        )));
                    }
                    if !ALLOWED_IMPORTS.contains(&import.name) {
                        return Err(Error::Guest(format!(
                            "imports unknown function `sandbox::{}`",
                            import.name
                        )));
                    }
                    if !matches!(import.ty, TypeRef::Func(_)) {
                        return Err(Error::Guest(format!(
                            "imports `sandbox::{}` as something other than a function",
                            import.name
                        )));
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export =
                        export.map_err(|e| Error::Guest(format!("export section: {e}")))?;
                    match (export.name, export.kind) {
                        ("memory", ExternalKind::Memory) => has_memory = true,
                        ("run", ExternalKind::Func) => has_run = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !has_memory {
        return Err(Error::Guest("module does not export `memory`".into()));
    }
    if !has_run {
        return Err(Error::Guest(
            "module does not export the function `run`".into(),
        ));
    }
    Ok(())
}
