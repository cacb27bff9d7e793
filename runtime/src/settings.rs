//! What people see the domain in: its default language and time zone (operators and
//! admins set them), and the language each principal chose for itself.

use sandbox_core::Lang;
use sandbox_core::audit::{EventKind, Subject};
use sandbox_core::authz::Action;
use sandbox_store::authz::{self, On};
use sandbox_store::{audit, principals};
use serde_json::json;

pub use sandbox_store::settings::{DEFAULT_TIME_ZONE, Settings};

use crate::{Domain, Error, Result};

/// The domain's settings (every principal may read them: they say how to show things).
pub fn get(domain: &Domain, actor: &str) -> Result<Settings> {
    let conn = domain.conn()?;
    authz::authorize(&conn, actor, Action::WhoAmI, On::Domain)?;
    Ok(sandbox_store::settings::get(&conn)?)
}

/// The domain's settings, for showing a page or a message before anyone is known (the
/// console's sign-in page, the CLI's first lines): they are not secret.
pub fn for_display(domain: &Domain) -> Result<Settings> {
    Ok(sandbox_store::settings::get(&*domain.conn()?)?)
}

/// Sets the default language and the time zone (operators and admins). The time zone is
/// an IANA name (`Asia/Shanghai`).
pub fn set(domain: &Domain, actor: &str, settings: &Settings) -> Result<Settings> {
    if sandbox_i18n::time_zone(&settings.time_zone).is_none() {
        return Err(Error::Invalid(format!(
            "unknown time zone `{}` (an IANA name such as Asia/Shanghai)",
            settings.time_zone
        )));
    }
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::SettingsSet, On::Domain)?;
    sandbox_store::settings::set(&tx, actor, settings)?;
    tx.commit()?;
    Ok(settings.clone())
}

/// Sets the language `actor` reads Sandbox in (`None`: the client's, else the domain's
/// default).
pub fn set_language(domain: &Domain, actor: &str, language: Option<Lang>) -> Result<()> {
    let mut conn = domain.conn()?;
    let tx = conn.write()?;
    authz::authorize(&tx, actor, Action::PreferencesSet, On::Domain)?;
    principals::set_language(&tx, actor, language)?;
    audit::append(
        &tx,
        actor,
        EventKind::PrincipalLanguageSet,
        &Subject::Principal(actor.to_string()),
        json!({"language": language}),
    )?;
    tx.commit()?;
    Ok(())
}

/// The language to show `principal` a message in: its own choice, else what the client
/// asks for, else the domain's default.
pub fn language_for(
    principal_choice: Option<Lang>,
    client_asks: Option<Lang>,
    settings: &Settings,
) -> Lang {
    principal_choice
        .or(client_asks)
        .unwrap_or(settings.default_language)
}
