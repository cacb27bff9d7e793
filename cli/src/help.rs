//! The command line's own help in the reader's language. English is the grammar's doc
//! comments ([`crate::args`]); another language's help comes from the message catalogue
//! (`i18n/locales/*-help.ftl`): `help-<command path>` for a command (`help-job-submit`)
//! and `help-<command path>--<argument id>` for an argument (`help-job-submit--wait`;
//! global arguments under `help-sandbox`). Clap's headings and its help flag follow.

use clap::{Arg, ArgAction, Command};
use sandbox_core::Lang;

/// The key of a command's help: `help-sandbox` for the root, else `help-` and the path of
/// subcommand names (`help-job-submit`).
fn command_key(path: &[&str]) -> String {
    if path.is_empty() {
        "help-sandbox".to_string()
    } else {
        format!("help-{}", path.join("-"))
    }
}

/// A parse error in `lang`: what went wrong, the usage line and where to read more, for the
/// kinds a person makes most; anything else (and English) as clap says it.
pub fn parse_error(e: &clap::Error, lang: Lang) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if lang == Lang::En {
        return None;
    }
    let text = |kind: ContextKind| -> String {
        match e.get(kind) {
            Some(ContextValue::String(s)) => s.clone(),
            Some(ContextValue::Strings(v)) => v.join(", "),
            Some(ContextValue::StyledStr(s)) => s.to_string(),
            Some(ContextValue::StyledStrs(v)) => v
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Some(ContextValue::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let t = |id: &str, args: &[(&str, String)]| {
        let mut fluent = sandbox_i18n::Args::new();
        for (k, v) in args {
            fluent.set(*k, v.clone());
        }
        sandbox_i18n::message(lang, id, Some(&fluent))
    };
    let what = match e.kind() {
        ErrorKind::UnknownArgument => t(
            "parse-unknown-argument",
            &[("arg", text(ContextKind::InvalidArg))],
        ),
        ErrorKind::InvalidSubcommand => t(
            "parse-unknown-command",
            &[("command", text(ContextKind::InvalidSubcommand))],
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => t(
            "parse-invalid-value",
            &[
                ("value", text(ContextKind::InvalidValue)),
                ("arg", text(ContextKind::InvalidArg)),
            ],
        ),
        ErrorKind::MissingRequiredArgument => t(
            "parse-missing-argument",
            &[("arg", text(ContextKind::InvalidArg))],
        ),
        ErrorKind::ArgumentConflict => t(
            "parse-conflict",
            &[
                ("arg", text(ContextKind::InvalidArg)),
                ("other", text(ContextKind::PriorArg)),
            ],
        ),
        _ => return None,
    };
    let mut out = sandbox_i18n::message(
        lang,
        "error-line",
        Some(&{
            let mut a = sandbox_i18n::Args::new();
            a.set("message", what);
            a
        }),
    );
    for (kind, id) in [
        (ContextKind::SuggestedArg, "parse-did-you-mean"),
        (ContextKind::SuggestedSubcommand, "parse-did-you-mean"),
        (ContextKind::ValidValue, "parse-valid-values"),
    ] {
        let hint = text(kind);
        if !hint.is_empty() {
            out.push_str("\n\n  ");
            out.push_str(&t(id, &[("hint", hint)]));
        }
    }
    let usage = text(ContextKind::Usage);
    if !usage.is_empty() {
        let usage = usage.trim_start_matches("Usage:").trim();
        out.push_str("\n\n");
        out.push_str(&sandbox_i18n::message(lang, "help-heading-usage", None));
        out.push_str(usage);
    }
    out.push_str("\n\n");
    out.push_str(&t("parse-more", &[]));
    Some(out)
}

#[cfg(test)]
/// Every help text of the grammar with its key and its English (what a catalogue of
/// another language must hold): commands, then their arguments, depth first. Global
/// arguments are listed under the root only, where they are declared.
pub fn keys(command: &Command) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect(command, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
fn collect<'a>(command: &'a Command, path: &mut Vec<&'a str>, out: &mut Vec<(String, String)>) {
    let key = command_key(path);
    let about = command
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default();
    out.push((key.clone(), about));
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        // clap's own flags: `--help` everywhere, `--version` on the root (a subcommand's
        // `--version` is a dataset version, ours).
        if id == "help"
            || (id == "version" && path.is_empty())
            || (!path.is_empty() && arg.is_global_set())
        {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        out.push((format!("{key}--{id}"), help));
    }
    for sub in command.get_subcommands() {
        path.push(sub.get_name());
        collect(sub, path, out);
        path.pop();
    }
}

/// The grammar with its help in `lang`.
pub fn localized(command: Command, lang: Lang) -> Command {
    if lang == Lang::En {
        return command;
    }
    let t = |id: &str| sandbox_i18n::message(lang, id, None);
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{}{{usage}}\n\n{{all-args}}{{after-help}}",
        t("help-heading-usage")
    );
    let command = command.disable_help_flag(true).arg(
        Arg::new("help")
            .short('h')
            .long("help")
            .global(true)
            .action(ArgAction::Help)
            .help(t("help-heading-help")),
    );
    walk(command, &mut Vec::new(), lang, &template)
}

fn walk(mut command: Command, path: &mut Vec<String>, lang: Lang, template: &str) -> Command {
    let t = |id: &str| sandbox_i18n::message(lang, id, None);
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    let key = command_key(&names);
    if sandbox_i18n::has(lang, &key) {
        command = command.about(t(&key)).long_about(None);
    }
    let (options, arguments) = (t("help-heading-options"), t("help-heading-arguments"));
    command = command
        .help_template(template.to_string())
        .subcommand_help_heading(t("help-heading-commands"))
        .mut_args(|arg| {
            let id = format!("{key}--{}", arg.get_id());
            let arg = if sandbox_i18n::has(lang, &id) {
                arg.help(t(&id)).long_help(None)
            } else {
                arg
            };
            if arg.is_positional() {
                arg.help_heading(arguments.clone())
            } else {
                arg.help_heading(options.clone())
            }
        });
    let subs: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        path.push(name.clone());
        command = command.mut_subcommand(&name, |sub| walk(sub, path, lang, template));
        path.pop();
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and argument has its help in every language other than English, and
    /// the catalogue holds no help for what the grammar no longer has.
    #[test]
    fn every_command_and_argument_has_help_in_chinese() {
        let keys = keys(&crate::Cli::command());
        assert!(keys.len() > 100, "{} keys", keys.len());
        let missing: Vec<String> = keys
            .iter()
            .filter(|(k, _)| !sandbox_i18n::has(Lang::ZhCn, k))
            .map(|(k, en)| format!("{k} = {en}"))
            .collect();
        assert!(
            missing.is_empty(),
            "missing in zh-CN-help.ftl:\n{}",
            missing.join("\n")
        );
        let known: std::collections::BTreeSet<&str> =
            keys.iter().map(|(k, _)| k.as_str()).collect();
        let stale: Vec<&str> = sandbox_i18n::HELP_SOURCES
            .iter()
            .flat_map(|(_, source)| source.lines())
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
            .filter(|k| k.starts_with("help-"))
            .filter(|k| !known.contains(k) && !HEADINGS.contains(k))
            .collect();
        assert!(stale.is_empty(), "help for nothing: {stale:?}");
    }

    const HEADINGS: [&str; 5] = [
        "help-heading-usage",
        "help-heading-options",
        "help-heading-arguments",
        "help-heading-commands",
        "help-heading-help",
    ];

    #[test]
    fn help_reads_in_chinese() {
        let mut command = localized(crate::Cli::command(), Lang::ZhCn);
        command.build();
        let job = command
            .find_subcommand_mut("job")
            .and_then(|j| j.find_subcommand_mut("submit"))
            .map(|s| s.render_help().to_string())
            .unwrap_or_default();
        assert!(job.contains("用法：") && job.contains("选项"), "{job}");
        assert!(
            !job.contains("Usage:") && !job.contains("Options:"),
            "{job}"
        );
        assert!(!job.contains("Print help"), "{job}");
    }

    #[test]
    fn a_mistyped_command_line_is_told_in_chinese() {
        let e = localized(crate::Cli::command(), Lang::ZhCn)
            .try_get_matches_from(["sandbox", "job", "submitt"])
            .err()
            .and_then(|e| parse_error(&e, Lang::ZhCn))
            .unwrap_or_default();
        assert!(e.starts_with("错误：未知的命令 'submitt'"), "{e}");
        assert!(e.contains("submit") && e.contains("用法："), "{e}");
        let e = localized(crate::Cli::command(), Lang::ZhCn)
            .try_get_matches_from(["sandbox", "job", "submit", "--scenario", "s"])
            .err()
            .and_then(|e| parse_error(&e, Lang::ZhCn))
            .unwrap_or_default();
        assert!(e.starts_with("错误：缺少必需的参数"), "{e}");
    }
}
