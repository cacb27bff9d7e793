//! The message catalogue: every message the console and the CLI show a person, in
//! Simplified Chinese (`locales/zh-CN.ftl`) and English (`locales/en.ftl`), in Fluent's
//! format (Project Fluent: one message per id, variables, plurals). Code names a message
//! by its id ([`t!`]); no sentence shown to a person is written in code. Refusal rules,
//! roles and statuses keep their stable identifiers in data (API answers, audit events,
//! golden files); what they mean is shown through the catalogue.
//!
//! Both catalogues hold the same ids with the same variables (a test holds it), and every
//! id the workspace's code names exists (another test reads the sources).
//!
//! Times are stored as UTC RFC 3339 text and shown in the domain's time zone
//! ([`local_time`], Asia/Shanghai unless the domain says otherwise), to the second.

#![forbid(unsafe_code)]

use std::str::FromStr;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentResource, FluentValue};

pub use chrono_tz::Tz;
pub use fluent_bundle::FluentArgs as Args;
pub use sandbox_core::Lang;

/// The catalogue's source, per language.
pub const SOURCES: [(Lang, &str); 2] = [
    (Lang::ZhCn, include_str!("../locales/zh-CN.ftl")),
    (Lang::En, include_str!("../locales/en.ftl")),
];

/// The command line's help in languages other than English (English is the grammar's
/// own doc comments): `help-<command path>` and `help-<command path>--<argument>`.
pub const HELP_SOURCES: [(Lang, &str); 1] =
    [(Lang::ZhCn, include_str!("../locales/zh-CN-help.ftl"))];

/// The time zone a domain shows times in unless it says otherwise.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Shanghai;

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static [(Lang, Bundle)] {
    static BUNDLES: OnceLock<Vec<(Lang, Bundle)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, source)| {
                let id = match lang {
                    Lang::ZhCn => unic_langid::langid!("zh-CN"),
                    Lang::En => unic_langid::langid!("en"),
                };
                let mut bundle = Bundle::new_concurrent(vec![id]);
                // Plain text: the console escapes what it shows, the terminal shows it as is.
                bundle.set_use_isolating(false);
                // A catalogue that does not parse is a build of this crate that cannot
                // pass its tests; what parses is kept (a message missing is shown by id).
                let help = HELP_SOURCES
                    .iter()
                    .filter(|(l, _)| l == lang)
                    .map(|(_, source)| *source);
                for source in std::iter::once(*source).chain(help) {
                    let resource = FluentResource::try_new(source.to_string())
                        .unwrap_or_else(|(partial, _)| partial);
                    let _ = bundle.add_resource(resource);
                }
                (*lang, bundle)
            })
            .collect()
    })
}

fn bundle(lang: Lang) -> Option<&'static Bundle> {
    bundles().iter().find(|(l, _)| *l == lang).map(|(_, b)| b)
}

/// The message `id` in `lang` with `args`; the id itself when the catalogue lacks it
/// (which the tests rule out for every id the code names).
pub fn message(lang: Lang, id: &str, args: Option<&Args<'_>>) -> String {
    let Some(bundle) = bundle(lang) else {
        return id.to_string();
    };
    let (message_id, attribute) = match id.split_once('.') {
        Some((m, a)) => (m, Some(a)),
        None => (id, None),
    };
    let Some(msg) = bundle.get_message(message_id) else {
        return id.to_string();
    };
    let pattern = match attribute {
        Some(a) => msg.get_attribute(a).map(|a| a.value()),
        None => msg.value(),
    };
    let Some(pattern) = pattern else {
        return id.to_string();
    };
    let mut errors = Vec::new();
    bundle
        .format_pattern(pattern, args, &mut errors)
        .into_owned()
}

/// Whether the catalogue of `lang` has the message (or `message.attribute`) `id`.
pub fn has(lang: Lang, id: &str) -> bool {
    let Some(bundle) = bundle(lang) else {
        return false;
    };
    match id.split_once('.') {
        Some((m, a)) => bundle
            .get_message(m)
            .is_some_and(|msg| msg.get_attribute(a).is_some()),
        None => bundle.get_message(id).is_some_and(|m| m.value().is_some()),
    }
}

/// A message of the catalogue: `t!(lang, "id")`, or with variables
/// `t!(lang, "id", name = value, ...)` (any value Fluent takes: text or a number).
#[macro_export]
macro_rules! t {
    ($lang:expr, $id:expr $(,)?) => {
        $crate::message($lang, $id, None)
    };
    ($lang:expr, $id:expr, $($name:ident = $value:expr),+ $(,)?) => {{
        let mut args = $crate::Args::new();
        $(args.set(stringify!($name), $crate::value($value));)+
        $crate::message($lang, $id, Some(&args))
    }};
}

/// A value for a message's variable.
pub fn value<'a>(v: impl Into<FluentValue<'a>>) -> FluentValue<'a> {
    v.into()
}

/// A sentence said in whatever language its reader reads: a message id of the catalogue
/// and its variables. Recorded as data where a text is written once and read in several
/// languages (the automated checks' findings are recorded with the output and shown to
/// each reviewer in theirs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Phrase {
    /// The message id.
    pub id: String,
    /// Its variables.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub args: std::collections::BTreeMap<String, Part>,
}

/// A variable of a [`Phrase`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Text shown as it is (a name, a value found).
    Text(String),
    /// A number (plurals select on it).
    Number(f64),
    /// Another phrase.
    Phrase(Phrase),
    /// Phrases or text joined as a short list (`a, b and c` style: `list-separator`).
    List(Vec<Part>),
    /// Findings joined one after another (`item-separator`).
    Items(Vec<Part>),
}

impl From<&str> for Part {
    fn from(v: &str) -> Part {
        Part::Text(v.to_string())
    }
}

impl From<String> for Part {
    fn from(v: String) -> Part {
        Part::Text(v)
    }
}

impl From<Phrase> for Part {
    fn from(v: Phrase) -> Part {
        Part::Phrase(v)
    }
}

macro_rules! number_part {
    ($($t:ty),*) => {$(
        impl From<$t> for Part {
            fn from(v: $t) -> Part {
                Part::Number(v as f64)
            }
        }
    )*};
}
number_part!(i32, i64, u8, u32, u64, usize, f64);

impl Phrase {
    /// The message `id`, without variables yet.
    pub fn new(id: &str) -> Phrase {
        Phrase {
            id: id.to_string(),
            args: Default::default(),
        }
    }

    /// With the variable `name`.
    pub fn arg(mut self, name: &str, value: impl Into<Part>) -> Phrase {
        self.args.insert(name.to_string(), value.into());
        self
    }

    /// The phrase in `lang`.
    pub fn say(&self, lang: Lang) -> String {
        let mut args = Args::new();
        for (name, part) in &self.args {
            match part {
                Part::Number(n) => args.set(name.as_str(), *n),
                other => args.set(name.as_str(), other.say(lang)),
            }
        }
        message(lang, &self.id, Some(&args))
    }
}

impl Part {
    /// The part in `lang`.
    pub fn say(&self, lang: Lang) -> String {
        match self {
            Part::Text(t) => t.clone(),
            Part::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Part::Number(n) => n.to_string(),
            Part::Phrase(p) => p.say(lang),
            Part::List(parts) => join(lang, parts, "list-separator"),
            Part::Items(parts) => join(lang, parts, "item-separator"),
        }
    }
}

fn join(lang: Lang, parts: &[Part], separator: &str) -> String {
    let separator = message(lang, separator, None);
    parts
        .iter()
        .map(|p| p.say(lang))
        .collect::<Vec<_>>()
        .join(&separator)
}

/// A time zone by its IANA name (`Asia/Shanghai`).
pub fn time_zone(name: &str) -> Option<Tz> {
    Tz::from_str(name).ok()
}

/// A stored time (RFC 3339, as the store writes it) in `tz`, to the second
/// (`2026-12-06 20:59:12`); text that is not a time is shown as it is.
pub fn local_time(stored: &str, tz: Tz) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => stored.to_string(),
    }
}

/// A stored time in `tz` with the zone's abbreviation or offset, for a place where the
/// zone is not said around it (`2026-12-06 20:59:12 CST`).
pub fn local_time_with_zone(stored: &str, tz: Tz) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => stored.to_string(),
    }
}

/// A stable identifier as words in `lang` (`output-status` and `operator_approved`:
/// the message `output-status-operator-approved`), or the identifier itself when the
/// catalogue has no words for it.
pub fn word(lang: Lang, family: &str, id: &str) -> String {
    let key = format!("{family}-{}", id.replace('_', "-"));
    if has(lang, &key) {
        message(lang, &key, None)
    } else {
        id.to_string()
    }
}

/// The name of the role in `lang` (the stable identifier stays in data).
pub fn role(lang: Lang, role: sandbox_core::Role) -> String {
    message(
        lang,
        &format!("role-{}", role.as_str().replace('_', "-")),
        None,
    )
}

/// What a refusal rule means, in `lang` (the rule's identifier stays as it is).
pub fn rule(lang: Lang, rule: sandbox_core::refusal::Rule) -> String {
    message(
        lang,
        &format!("rule-{}", rule.as_str().replace('_', "-")),
        None,
    )
}

/// An error as a command line prints it: `error: ...` (`错误：...`).
pub fn error_line(lang: Lang, e: &sandbox_core::Error) -> String {
    let mut args = Args::new();
    args.set("message", error(lang, e));
    message(lang, "error-line", Some(&args))
}

/// An error as a person reads it in `lang`: what kind of error it is, in words, then
/// what happened (the detail stays as the domain wrote it; a refused query names its rule
/// in words and by identifier). A failure of the system says only that it failed: its
/// text is for the log.
pub fn error(lang: Lang, e: &sandbox_core::Error) -> String {
    if let sandbox_core::Error::Remote {
        status,
        code,
        message: detail,
    } = e
    {
        let mut args = Args::new();
        args.set("status", *status);
        args.set("code", code.as_str());
        args.set("detail", detail.as_str());
        return message(lang, "error-remote", Some(&args));
    }
    if e.is_internal() {
        return message(lang, "error-internal", None);
    }
    if let sandbox_core::Error::Refused(r) = e {
        let mut args = Args::new();
        args.set("rule", rule(lang, r.rule));
        args.set("id", r.rule.as_str());
        args.set("detail", r.message.as_str());
        return message(lang, "error-refused", Some(&args));
    }
    let mut args = Args::new();
    args.set("detail", e.detail());
    let key = format!("error-{}", e.code().replace('_', "-"));
    let key = if has(lang, &key) {
        key.as_str()
    } else {
        "error-other"
    };
    message(lang, key, Some(&args))
}

#[cfg(test)]
mod tests;
