//! The languages people read Sandbox in: Simplified Chinese (the default of a new domain)
//! and English. Which one a message is shown in is chosen at the edges (the console, the
//! CLI) from the principal's setting, else what the client asks for, else the domain's
//! default; the messages themselves are in the catalogue (`sandbox-i18n`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A language of the message catalogue.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Lang {
    /// Simplified Chinese (`zh-CN`).
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English (`en`).
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag (`zh-CN`, `en`), as stored and as in HTML's `lang`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language's own name, for a language switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::ZhCn => "简体中文",
            Lang::En => "English",
        }
    }

    /// The language a tag names, if the catalogue has it: a BCP 47 tag (`zh`, `zh-CN`,
    /// `zh-Hans-CN`, `en-GB`) or a POSIX locale (`zh_CN.UTF-8`); any Chinese is shown in
    /// Simplified Chinese, any English in English. `C`, `POSIX` and the rest name none.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an HTTP `Accept-Language` header the catalogue has, by the
    /// weights the header gives (`zh-CN,zh;q=0.9,en;q=0.8`); `None` when it names none.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut ranked: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q.is_finite() && q > 0.0).then_some((q, i, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.first().map(|(_, _, lang)| *lang)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for Lang {
    type Err = Error;
    fn from_str(s: &str) -> Result<Lang> {
        Lang::from_tag(s).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown language `{s}` (zh-CN for Simplified Chinese, en for English)"
            ))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_locales_name_a_language() {
        for (tag, lang) in [
            ("zh-CN", Some(Lang::ZhCn)),
            ("zh", Some(Lang::ZhCn)),
            ("zh-Hans-CN", Some(Lang::ZhCn)),
            ("zh_CN.UTF-8", Some(Lang::ZhCn)),
            ("ZH-cn", Some(Lang::ZhCn)),
            ("en", Some(Lang::En)),
            ("en-GB", Some(Lang::En)),
            ("en_US.UTF-8", Some(Lang::En)),
            ("C", None),
            ("POSIX", None),
            ("fr-FR", None),
            ("", None),
        ] {
            assert_eq!(Lang::from_tag(tag), lang, "{tag}");
        }
        assert_eq!("en".parse::<Lang>().unwrap(), Lang::En);
        assert!("klingon".parse::<Lang>().is_err());
    }

    #[test]
    fn accept_language_follows_the_weights() {
        let cases = [
            ("zh-CN,zh;q=0.9,en;q=0.8", Some(Lang::ZhCn)),
            ("en-US,en;q=0.9,zh-CN;q=0.8", Some(Lang::En)),
            ("fr;q=1.0, en;q=0.5, zh;q=0.7", Some(Lang::ZhCn)),
            ("fr, de", None),
            ("zh;q=0, en", Some(Lang::En)),
            ("en;q=abc", Some(Lang::En)),
            ("", None),
        ];
        for (header, lang) in cases {
            assert_eq!(Lang::from_accept_language(header), lang, "{header}");
        }
    }

    #[test]
    fn serde_uses_the_tag() {
        assert_eq!(serde_json::to_string(&Lang::ZhCn).unwrap(), "\"zh-CN\"");
        assert_eq!(serde_json::from_str::<Lang>("\"en\"").unwrap(), Lang::En);
    }
}
