//! Who may receive a product (TJ-Sec Art. 9, 11; SYS Art. 33): a data user by principal
//! name, or every data user of an organisation, named by its unified social credit code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};

/// A recipient of products, written `NAME` (a principal) or `org:CODE` (an organisation's
/// unified social credit code, GB 32100-2015).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Grantee {
    /// One principal.
    Principal(String),
    /// Every principal of an organisation.
    Organisation(String),
}

impl schemars::JsonSchema for Grantee {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Grantee".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = String::json_schema(generator);
        schema.insert(
            "description".into(),
            "A data user's principal name, or `org:` and an organisation's unified social credit code."
                .into(),
        );
        schema
    }
}

impl Grantee {
    /// `principal` or `organisation`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::Principal(_) => "principal",
            Grantee::Organisation(_) => "organisation",
        }
    }

    /// The principal's name or the organisation's code.
    pub fn name(&self) -> &str {
        match self {
            Grantee::Principal(n) | Grantee::Organisation(n) => n,
        }
    }

    /// From its stored kind and name.
    pub fn from_parts(kind: &str, name: &str) -> Result<Grantee> {
        match kind {
            "principal" => name.parse(),
            "organisation" => format!("org:{name}").parse(),
            other => Err(PolicyError::invalid(
                "recipient",
                format!("unknown kind `{other}`"),
            )),
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Principal(n) => f.write_str(n),
            Grantee::Organisation(c) => write!(f, "org:{c}"),
        }
    }
}

impl FromStr for Grantee {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Grantee> {
        let s = s.trim();
        if let Some(code) = s.strip_prefix("org:") {
            check_credit_code(code)?;
            return Ok(Grantee::Organisation(code.to_string()));
        }
        let mut chars = s.chars();
        let ok = chars.next().is_some_and(char::is_alphanumeric)
            && s.chars().count() <= 64
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '·'));
        if ok {
            Ok(Grantee::Principal(s.to_string()))
        } else {
            Err(PolicyError::invalid(
                "recipient",
                format!(
                    "`{s}`: a principal's name, or `org:` and an organisation's unified social credit code"
                ),
            ))
        }
    }
}

impl TryFrom<String> for Grantee {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Grantee> {
        s.parse()
    }
}

impl From<Grantee> for String {
    fn from(g: Grantee) -> String {
        g.to_string()
    }
}

/// The characters of a unified social credit code, in the order of their values.
const CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// The weights of its first 17 characters.
const CODE_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Checks a unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of
/// its alphabet (digits and capitals without I, O, S, V, Z), the last a check character.
pub fn check_credit_code(code: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(PolicyError::invalid(
            "credit_code",
            format!("`{code}` is not a unified social credit code: {why}"),
        ))
    };
    let bytes = code.as_bytes();
    if bytes.len() != 18 {
        return bad("it has 18 characters");
    }
    let mut values = [0u32; 18];
    for (v, b) in values.iter_mut().zip(bytes) {
        match CODE_CHARS.iter().position(|c| c == b) {
            Some(p) => *v = p as u32,
            None => return bad("digits and capital letters other than I, O, S, V and Z"),
        }
    }
    let sum: u32 = values[..17]
        .iter()
        .zip(CODE_WEIGHTS)
        .map(|(v, w)| v * w)
        .sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return bad("its check character does not match");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credit_codes_are_checked_by_their_last_character() {
        check_credit_code("91110000100003208J").unwrap_err();
        for code in [
            "91110000100003208K",
            "12100000400000624D",
            "91120000MA05K7Q3XD",
        ] {
            check_credit_code(code).unwrap();
            let mut wrong = code.as_bytes().to_vec();
            wrong[5] = if wrong[5] == b'0' { b'1' } else { b'0' };
            check_credit_code(std::str::from_utf8(&wrong).unwrap()).unwrap_err();
        }
        check_credit_code("91110000I00003208J").unwrap_err();
        check_credit_code("short").unwrap_err();
    }

    #[test]
    fn grantees_read_and_write_as_text() {
        let p: Grantee = "user-chen".parse().unwrap();
        assert_eq!(p, Grantee::Principal("user-chen".into()));
        let o: Grantee = "org:91120000MA05K7Q3XD".parse().unwrap();
        assert_eq!(o.kind(), "organisation");
        assert_eq!(o.to_string(), "org:91120000MA05K7Q3XD");
        assert_eq!(Grantee::from_parts("organisation", o.name()).unwrap(), o);
        "org:12345".parse::<Grantee>().unwrap_err();
        "bad name!".parse::<Grantee>().unwrap_err();
        "".parse::<Grantee>().unwrap_err();
    }
}
