//! Tables `product_grants` and `product_withdrawals`: who may receive a released product
//! (its scope at release and later grants) and its withdrawal; and its holders, read from
//! the audit log's download events.

use crate::db::{OptionalExt, args};
use sandbox_policies::Grantee;

use crate::{Conn, Result};

/// A grant of a product.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Grant {
    /// To whom: a data user's name, or `org:` and a credit code.
    #[schemars(with = "String")]
    pub grantee: Grantee,
    /// Whether it was the product's scope at release (written in its manifest), or a
    /// grant made afterwards.
    pub at_release: bool,
    /// Who granted it (the releasing reviewer, for the scope at release).
    pub granted_by: String,
    /// When.
    pub granted_at: String,
}

/// Records a grant; a grantee granted before is left as it was. Returns whether it is new.
pub fn grant(
    conn: &Conn,
    product_id: &str,
    grantee: &Grantee,
    at_release: bool,
    by: &str,
    at: &str,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO product_grants
             (product_id, grantee_kind, grantee, at_release, granted_by, granted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            product_id,
            grantee.kind(),
            grantee.name(),
            i64::from(at_release),
            by,
            at
        ],
    )?;
    Ok(n == 1)
}

/// A product's grants, the scope at release first, then in the order granted.
pub fn grants(conn: &Conn, product_id: &str) -> Result<Vec<Grant>> {
    let rows: Vec<(String, String, i64, String, String)> = conn.rows(
        "SELECT grantee_kind, grantee, at_release, granted_by, granted_at FROM product_grants
             WHERE product_id = ?1 ORDER BY at_release DESC, granted_at, grantee",
        args![product_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    rows.into_iter()
        .map(|(kind, name, at_release, granted_by, granted_at)| {
            Ok(Grant {
                grantee: Grantee::from_parts(&kind, &name).map_err(|e| {
                    sandbox_core::Error::Internal(format!("grant of {product_id}: {e}"))
                })?,
                at_release: at_release == 1,
                granted_by,
                granted_at,
            })
        })
        .collect()
}

/// Whether a principal (of an organisation, if any) is granted a product, directly or
/// through its organisation.
pub fn granted(
    conn: &Conn,
    product_id: &str,
    principal: &str,
    organisation: Option<&str>,
) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM product_grants WHERE product_id = ?1 AND (
                 (grantee_kind = 'principal' AND grantee = ?2)
                 OR (grantee_kind = 'organisation' AND grantee = ?3))",
            args![product_id, principal, organisation],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A product's withdrawal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Withdrawal {
    /// Why.
    pub reason: String,
    /// By whom (an operator or a supervisor).
    pub withdrawn_by: String,
    /// When.
    pub withdrawn_at: String,
    /// SHA-256 of the signed withdrawal notice in the product's folder.
    pub notice_sha256: String,
}

/// Records a withdrawal (refused by the table's key when the product was withdrawn before).
pub fn withdraw(conn: &Conn, product_id: &str, w: &Withdrawal) -> Result<()> {
    conn.execute(
        "INSERT INTO product_withdrawals (product_id, reason, withdrawn_by, withdrawn_at, notice_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![product_id, w.reason, w.withdrawn_by, w.withdrawn_at, w.notice_sha256],
    )?;
    Ok(())
}

/// A product's withdrawal, if it was withdrawn.
pub fn withdrawal(conn: &Conn, product_id: &str) -> Result<Option<Withdrawal>> {
    conn.query_row(
        "SELECT reason, withdrawn_by, withdrawn_at, notice_sha256 FROM product_withdrawals
             WHERE product_id = ?1",
        args![product_id],
        |r| {
            Ok(Withdrawal {
                reason: r.get(0)?,
                withdrawn_by: r.get(1)?,
                withdrawn_at: r.get(2)?,
                notice_sha256: r.get(3)?,
            })
        },
    )
    .optional()
}

/// A holder of a product: someone who downloaded one of its files.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Holder {
    /// Who.
    pub principal: String,
    /// Their role, as stored now.
    pub role: Option<String>,
    /// Their organisation, as stored now.
    pub organisation: Option<String>,
    /// How many downloads.
    pub downloads: i64,
    /// The first and the last.
    pub first_at: String,
    /// The last.
    pub last_at: String,
}

/// Everyone who downloaded a file of a product, from the `product.downloaded` events of
/// the audit log (the record of what left), by name.
pub fn holders(conn: &Conn, product_id: &str) -> Result<Vec<Holder>> {
    conn.rows(
        "SELECT e.actor, p.role, p.organisation, COUNT(*), MIN(e.ts), MAX(e.ts)
             FROM audit_events e LEFT JOIN principals p ON p.name = e.actor
             WHERE e.action = 'product.downloaded' AND e.subject = ?1
             GROUP BY e.actor, p.role, p.organisation ORDER BY e.actor",
        args![format!("product:{product_id}")],
        |r| {
            Ok(Holder {
                principal: r.get(0)?,
                role: r.get(1)?,
                organisation: r.get(2)?,
                downloads: r.get(3)?,
                first_at: r.get(4)?,
                last_at: r.get(5)?,
            })
        },
    )
}
