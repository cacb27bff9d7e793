//! The domain's settings that people see: the default language (of a principal who chose
//! none, with a client that asks for none) and the time zone times are shown in. Kept in
//! `meta`; a change is a `domain.settings_set` audit event, in the caller's transaction.

use sandbox_core::Lang;
use sandbox_core::audit::{EventKind, Subject};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Conn, Result, audit, meta};

const LANGUAGE: &str = "default_language";
const TIME_ZONE: &str = "time_zone";

/// The time zone of a domain that names none.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// The domain's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The language of a principal who chose none, with a client that asks for none.
    pub default_language: Lang,
    /// The IANA time zone times are shown in (stored times are UTC).
    pub time_zone: String,
}

impl Default for Settings {
    /// A new domain's: Simplified Chinese, Asia/Shanghai.
    fn default() -> Settings {
        Settings {
            default_language: Lang::ZhCn,
            time_zone: DEFAULT_TIME_ZONE.to_string(),
        }
    }
}

/// The domain's settings (a domain that never set one: Simplified Chinese, Asia/Shanghai).
pub fn get(conn: &Conn) -> Result<Settings> {
    Ok(Settings {
        default_language: meta::get(conn, LANGUAGE)?
            .as_deref()
            .and_then(Lang::from_tag)
            .unwrap_or_default(),
        time_zone: meta::get(conn, TIME_ZONE)?.unwrap_or_else(|| DEFAULT_TIME_ZONE.to_string()),
    })
}

/// Writes a new domain's settings (its `domain.init` event names them).
pub fn init(conn: &Conn, settings: &Settings) -> Result<()> {
    meta::set(conn, LANGUAGE, settings.default_language.tag())?;
    meta::set(conn, TIME_ZONE, &settings.time_zone)?;
    Ok(())
}

/// Records new settings for `actor` (checked by the caller: a known time zone), with its
/// audit event, in the caller's transaction.
pub fn set(conn: &Conn, actor: &str, settings: &Settings) -> Result<()> {
    let before = get(conn)?;
    meta::set(conn, LANGUAGE, settings.default_language.tag())?;
    meta::set(conn, TIME_ZONE, &settings.time_zone)?;
    audit::append(
        conn,
        actor,
        EventKind::DomainSettingsSet,
        &Subject::Domain,
        json!({"before": before, "after": settings}),
    )?;
    Ok(())
}
