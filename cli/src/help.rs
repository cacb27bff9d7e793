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
        if matches!(id, "help" | "version") || (!path.is_empty() && arg.is_global_set()) {
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
}
