//! Classification levels, access rules and the uses a query makes of a column: the
//! vocabulary a policy and its errors share.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Classification level of a column, 1 (public) to 4 (highly sensitive).
///
/// The level caps the access a column may be given (TJ-Sec Art. 6: protection by level):
///
/// | level | meaning | accesses allowed |
/// |---|---|---|
/// | 1 | public | any, including `plain` (row-level) |
/// | 2 | internal | `none`, `join_key`, `filter`, `group`, `aggregate` |
/// | 3 | sensitive | `none`, `join_key`, `filter`, `aggregate` |
/// | 4 | highly sensitive | `none`, `join_key` (only desensitized by `keyed_hash`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Level(u8);

impl schemars::JsonSchema for Level {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Level".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Classification level: 1 public, 2 internal, 3 sensitive, 4 highly sensitive.",
            "type": "integer",
            "minimum": 1,
            "maximum": 4
        })
    }
}

impl Level {
    /// Public.
    pub const PUBLIC: Level = Level(1);
    /// Internal.
    pub const INTERNAL: Level = Level(2);
    /// Sensitive.
    pub const SENSITIVE: Level = Level(3);
    /// Highly sensitive.
    pub const HIGHLY_SENSITIVE: Level = Level(4);

    /// The level as its number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The accesses this level allows.
    pub fn ceiling(self) -> &'static [Access] {
        use Access::*;
        match self.0 {
            1 => &[None, JoinKey, Filter, Group, Aggregate, Plain],
            2 => &[None, JoinKey, Filter, Group, Aggregate],
            3 => &[None, JoinKey, Filter, Aggregate],
            _ => &[None, JoinKey],
        }
    }

    /// Whether `access` is within this level's ceiling.
    pub fn allows(self, access: Access) -> bool {
        self.ceiling().contains(&access)
    }
}

impl TryFrom<u8> for Level {
    type Error = String;
    fn try_from(value: u8) -> std::result::Result<Self, Self::Error> {
        if (1..=4).contains(&value) {
            Ok(Level(value))
        } else {
            Err(format!("classification level must be 1..=4, got {value}"))
        }
    }
}

impl From<Level> for u8 {
    fn from(l: Level) -> u8 {
        l.0
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a query may do with a column. Deny by default: `none` makes a column invisible.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Invisible to every query.
    None,
    /// Usable only as an equality join key between datasets (desensitized).
    JoinKey,
    /// Usable in WHERE predicates.
    Filter,
    /// Usable as a GROUP BY key (and in filters).
    Group,
    /// Usable as the argument of an aggregate (and in filters).
    Aggregate,
    /// Row-level output allowed: public data only.
    Plain,
}

impl Access {
    /// Whether this access permits `usage`.
    pub fn permits(self, usage: Use) -> bool {
        use Access as A;
        match usage {
            Use::Join => matches!(
                self,
                A::JoinKey | A::Filter | A::Group | A::Aggregate | A::Plain
            ),
            Use::Filter => matches!(self, A::Filter | A::Group | A::Aggregate | A::Plain),
            Use::Group => matches!(self, A::Group | A::Plain),
            Use::Aggregate => matches!(self, A::Aggregate | A::Plain),
            Use::Count => matches!(self, A::Aggregate | A::Group | A::Filter | A::Plain),
            Use::Output => matches!(self, A::Plain),
        }
    }

    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::JoinKey => "join_key",
            Access::Filter => "filter",
            Access::Group => "group",
            Access::Aggregate => "aggregate",
            Access::Plain => "plain",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A use of a column in a query, checked against its [`Access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// Equality join key.
    Join,
    /// WHERE predicate.
    Filter,
    /// GROUP BY key.
    Group,
    /// Argument of SUM, AVG and other value aggregates.
    Aggregate,
    /// Argument of COUNT(column): counts non-null values.
    Count,
    /// Row-level output.
    Output,
}

impl Use {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Join => "join",
            Use::Filter => "filter",
            Use::Group => "group",
            Use::Aggregate => "aggregate",
            Use::Count => "count",
            Use::Output => "output",
        }
    }
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
