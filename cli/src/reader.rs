//! Who reads what a command prints: their language and the domain's time zone.

use sandbox_core::Lang;
use serde_json::Value;

/// Who reads: their language, and the domain's time zone (times are stored in UTC and
/// shown in it, to the second).
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// The reader's language.
    pub lang: Lang,
    /// The domain's time zone.
    pub tz: sandbox_i18n::Tz,
}

impl Ui {
    /// A reader of `lang` of a domain whose time zone is `time_zone` (its default when
    /// unknown).
    pub fn new(lang: Lang, time_zone: Option<&str>) -> Ui {
        Ui {
            lang,
            tz: time_zone
                .and_then(sandbox_i18n::time_zone)
                .unwrap_or(sandbox_i18n::DEFAULT_TIME_ZONE),
        }
    }

    /// A stored time in the domain's zone, to the second; `-` for none.
    pub fn time(&self, v: &Value) -> String {
        match v.as_str() {
            Some(t) => sandbox_i18n::local_time(t, self.tz),
            None if v.is_null() => "-".to_string(),
            None => v.to_string(),
        }
    }
}
