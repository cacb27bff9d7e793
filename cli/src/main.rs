//! The `sandbox` command.

use std::io::IsTerminal;
use std::process::ExitCode;

use sandbox_cli::{Cli, Command, LogFormat};
use sandbox_core::Error;

fn main() -> ExitCode {
    let cli = match Cli::parse_with_config() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let lang = cli.language();
    // The server logs a line per request at `info`; other commands only warnings.
    let default = match cli.command {
        Command::Serve { .. } | Command::Scheduler { .. } | Command::Executor { .. } => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: a redirected server log holds no escape codes.
    let terminal = std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
    let json = cli.json;
    match sandbox_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`sandbox audit log | head`): nothing more to say.
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                // The same `{error, message}` the API answers with, on standard error:
                // standard output holds only results.
                let body = serde_json::json!({"error": e.code(), "message": e.detail()});
                eprintln!("{body}");
            } else if e.is_internal() && !matches!(e, Error::Remote { .. }) {
                // On this machine the whole text helps; there is no server log to read.
                eprintln!("error: {e}");
            } else {
                let line = sandbox_i18n::error_line(lang, &e);
                if terminal {
                    // The whole line in red, as cargo marks its errors.
                    eprintln!("\x1b[1;31m{line}\x1b[0m");
                } else {
                    eprintln!("{line}");
                }
            }
            ExitCode::FAILURE
        }
    }
}
