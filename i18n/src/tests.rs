//! The catalogue's tests: both languages hold the same messages with the same variables,
//! every message the code names exists, and the words for every stable identifier exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fluent_syntax::ast;
use sandbox_core::Role;
use sandbox_core::refusal::Rule;

use super::*;

/// Every message (and `message.attribute`) of a catalogue, with the variables it uses.
fn messages(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let resource = fluent_syntax::parser::parse(source).unwrap_or_else(|(_, errors)| {
        panic!("the catalogue does not parse: {errors:?}");
    });
    let mut out = BTreeMap::new();
    for entry in resource.body {
        if let ast::Entry::Message(m) = entry {
            if let Some(value) = &m.value {
                out.insert(m.id.name.to_string(), variables(value));
            }
            for a in &m.attributes {
                out.insert(format!("{}.{}", m.id.name, a.id.name), variables(&a.value));
            }
        }
    }
    out
}

fn variables(pattern: &ast::Pattern<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, &mut out);
        }
    }
    out
}

fn expression_variables(e: &ast::Expression<&str>, out: &mut BTreeSet<String>) {
    match e {
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, out);
            for v in variants {
                out.extend(variables(&v.value));
            }
        }
        ast::Expression::Inline(i) => inline_variables(i, out),
    }
}

fn inline_variables(e: &ast::InlineExpression<&str>, out: &mut BTreeSet<String>) {
    match e {
        ast::InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_string());
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, out),
        _ => {}
    }
}

#[test]
fn both_languages_hold_the_same_messages_with_the_same_variables() {
    let [(_, zh), (_, en)] = SOURCES;
    let zh = messages(zh);
    let en = messages(en);
    let only_zh: Vec<_> = zh.keys().filter(|k| !en.contains_key(*k)).collect();
    let only_en: Vec<_> = en.keys().filter(|k| !zh.contains_key(*k)).collect();
    assert!(only_zh.is_empty(), "only in zh-CN.ftl: {only_zh:?}");
    assert!(only_en.is_empty(), "only in en.ftl: {only_en:?}");
    for (id, vars) in &en {
        assert_eq!(&zh[id], vars, "`{id}` uses other variables in zh-CN.ftl");
    }
    assert!(en.len() > 100, "{} messages", en.len());
}

/// The ids the workspace's code names: the literal second argument of `t!(lang, "id"`,
/// and the literal argument of a page's `ui.t("id")`.
fn ids_named_in_code() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeSet::new();
    let is_id = |id: &str| {
        id.starts_with(|c: char| c.is_ascii_lowercase())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    for dir in ["server/src", "cli/src", "runtime/src", "i18n/src"] {
        visit(&root.join(dir), &mut |path, text| {
            let mut literals = Vec::new();
            for (at, _) in text.match_indices("t!(") {
                // The macro `t!`, not `print!` or `assert!`, and not in a comment.
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                if text[line_start..at].trim_start().starts_with("//") {
                    continue;
                }
                if text[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    continue;
                }
                // `t!(lang, "id"`: the literal after the first comma.
                let rest = &text[at + 3..];
                if let Some((_, after)) = rest.split_once(',')
                    && let Some(lit) = after.trim_start().strip_prefix('"')
                {
                    literals.push(lit);
                }
            }
            for (at, _) in text.match_indices("ui.t(\"") {
                literals.push(&text[at + 6..]);
            }
            for lit in literals {
                if let Some((id, _)) = lit.split_once('"')
                    && is_id(id)
                {
                    out.insert((id.to_string(), path.display().to_string()));
                }
            }
        });
    }
    out
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &str)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            f(&path, &text);
        }
    }
}

#[test]
fn every_message_the_code_names_exists() {
    let named = ids_named_in_code();
    assert!(named.len() > 50, "the scan found only {} ids", named.len());
    for (id, file) in &named {
        for lang in Lang::ALL {
            assert!(has(lang, id), "{file} names `{id}`, missing in {lang}");
        }
    }
}

#[test]
fn every_role_rule_and_error_code_has_words() {
    for lang in Lang::ALL {
        for r in Role::ALL {
            assert!(
                has(lang, &format!("role-{}", r.as_str().replace('_', "-"))),
                "{lang} {r}"
            );
        }
        for rule in Rule::ALL {
            let key = format!("rule-{}", rule.as_str().replace('_', "-"));
            assert!(has(lang, &key), "{lang} {key}");
        }
        for e in [
            sandbox_core::Error::Invalid("x".into()),
            sandbox_core::Error::Unauthenticated("x".into()),
            sandbox_core::Error::Forbidden("x".into()),
            sandbox_core::Error::NotFound("x".into()),
            sandbox_core::Error::Conflict("x".into()),
            sandbox_core::Error::Review("x".into()),
            sandbox_core::Error::Withdrawn("x".into()),
            sandbox_core::Error::Cancelled("x".into()),
            sandbox_core::Error::Stopped("x".into()),
            sandbox_core::Error::Busy("x".into()),
            sandbox_core::Error::Guest("x".into()),
            sandbox_core::Error::Verify("x".into()),
        ] {
            let key = format!("error-{}", e.code().replace('_', "-"));
            assert!(has(lang, &key), "{lang} {key}");
        }
    }
}

#[test]
fn messages_take_their_variables_and_plurals() {
    assert_eq!(t!(Lang::En, "table-rows", total = 1), "1 row.");
    assert_eq!(t!(Lang::En, "table-rows", total = 12), "12 rows.");
    assert_eq!(t!(Lang::ZhCn, "table-rows", total = 12), "共 12 行。");
    assert_eq!(t!(Lang::ZhCn, "no-such-message"), "no-such-message");
    assert_eq!(role(Lang::ZhCn, Role::Supervisor), "监管方");
}

#[test]
fn errors_read_in_the_language_with_their_detail() {
    let e = sandbox_core::Error::NotFound("scenario 7".into());
    assert_eq!(error(Lang::En, &e), "Not found: scenario 7");
    assert_eq!(error(Lang::ZhCn, &e), "未找到：scenario 7");
    let refused = sandbox_core::Error::Refused(sandbox_core::refusal::Refusal::new(
        Rule::RowLevelOutput,
        "SELECT * returns rows",
    ));
    let zh = error(Lang::ZhCn, &refused);
    assert!(
        zh.contains("明细行") && zh.contains("`row_level_output`"),
        "{zh}"
    );
    let internal = sandbox_core::Error::Internal("secret detail".into());
    assert!(!error(Lang::En, &internal).contains("secret"));
}

#[test]
fn times_are_shown_in_the_domain_zone_to_the_second() {
    let stored = "2026-12-06T13:05:09.123456Z";
    assert_eq!(local_time(stored, DEFAULT_TIME_ZONE), "2026-12-06 21:05:09");
    assert_eq!(
        local_time(stored, time_zone("Europe/London").unwrap()),
        "2026-12-06 13:05:09"
    );
    assert_eq!(local_time("not a time", DEFAULT_TIME_ZONE), "not a time");
    assert!(time_zone("Mars/Olympus").is_none());
}
