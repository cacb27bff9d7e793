//! A structure-aware SQL generator: the fuzzer's bytes, read through [`arbitrary`], choose
//! a query over the fixed schema of [`crate::world`] (its columns, and names it does not
//! have), with the aggregates, scalar functions and operators of the allow-list and
//! beyond it, literals at the edges of their types, nested expressions, filters, group
//! keys, subqueries, joins, set operations and windows. Most texts parse; many are
//! accepted, so the oracle sees answers.

use arbitrary::{Result, Unstructured};

/// Tables: the fixture's two (most often), one that does not exist, a catalog table.
const TABLES: &[&str] = &[
    "people",
    "people_t",
    "people",
    "people_t",
    "people",
    "people_t",
    "missing",
    "information_schema.tables",
];
const NUMERIC: &[&str] = &["age", "income"];
const TEXT: &[&str] = &["district", "name", "id", "phone"];
const DATE: &[&str] = &["born"];
const AGGREGATES: &[&str] = &[
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "MEDIAN",
    "VAR_POP",
    "VAR_SAMP",
    "VARIANCE",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "ARRAY_AGG",
    "STRING_AGG",
    "FIRST_VALUE",
    "BIT_OR",
    "APPROX_DISTINCT",
];
const NUMERIC_FUNCTIONS: &[(&str, usize)] = &[
    ("abs", 1),
    ("ceil", 1),
    ("floor", 1),
    ("round", 1),
    ("round", 2),
    ("trunc", 1),
    ("sqrt", 1),
    ("ln", 1),
    ("log", 1),
    ("log", 2),
    ("log10", 1),
    ("exp", 1),
    ("signum", 1),
    ("power", 2),
    ("greatest", 2),
    ("least", 2),
    ("coalesce", 2),
    ("nullif", 2),
    ("random", 0),
    ("pi", 0),
    ("factorial", 1),
    ("gcd", 2),
];
const TEXT_FUNCTIONS: &[(&str, usize)] = &[
    ("upper", 1),
    ("lower", 1),
    ("trim", 1),
    ("substr", 2),
    ("left", 2),
    ("concat", 2),
    ("replace", 3),
    ("md5", 1),
    ("to_hex", 1),
    ("repeat", 2),
];
const NUMERIC_LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "0.5",
    "10",
    "120",
    "500000",
    "9223372036854775807",
    "(-9223372036854775807 - 1)",
    "1e308",
    "-1e308",
    "'NaN'::double",
    "NULL",
    "CAST(NULL AS BIGINT)",
];
const TEXT_LITERALS: &[&str] = &[
    "''", "'heping'", "'hexi'", "'王伟'", "'-1'", "'%'", "'a''b'", "NULL",
];
const DATE_LITERALS: &[&str] = &[
    "DATE '1970-01-01'",
    "DATE '1999-12-31'",
    "DATE '2262-04-11'",
    "CURRENT_DATE",
    "NULL",
];
const TYPES: &[&str] = &[
    "BIGINT",
    "INT",
    "SMALLINT",
    "DOUBLE",
    "REAL",
    "DECIMAL(10, 2)",
    "DECIMAL(38, 10)",
    "VARCHAR",
    "DATE",
    "TIMESTAMP",
    "BOOLEAN",
];

fn pick<'a>(u: &mut Unstructured<'_>, xs: &[&'a str]) -> Result<&'a str> {
    u.choose(xs).copied()
}

/// A whole statement.
pub fn statement(u: &mut Unstructured<'_>) -> Result<String> {
    let q = query(u, 2)?;
    Ok(match u.int_in_range(0..=9u8)? {
        0 => format!("({q}) UNION ALL ({})", query(u, 1)?),
        1 => format!("WITH w AS ({}) {q}", query(u, 1)?),
        2 => format!("EXPLAIN {q}"),
        3 => format!("{q}; {q}"),
        _ => q,
    })
}

/// A SELECT, `depth` levels of subqueries deep at most: half the time one the policy may
/// well accept (public keys, allowed aggregates of nested numeric expressions, filters),
/// else anything.
pub fn query(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    if u.ratio(1, 2)? {
        plausible(u)
    } else {
        wild(u, depth)
    }
}

const ALLOWED: &[&str] = &[
    "COUNT", "SUM", "AVG", "MIN", "MAX", "MEDIAN", "VAR_POP", "STDDEV", "VARIANCE",
];

fn plausible(u: &mut Unstructured<'_>) -> Result<String> {
    let table = pick(u, &["people", "people_t"])?;
    let grouped = u.ratio(1, 2)?;
    let mut items = Vec::new();
    if grouped {
        items.push("district".to_string());
    }
    for _ in 0..u.int_in_range(1..=3u8)? {
        items.push(match u.int_in_range(0..=4u8)? {
            0 => "COUNT(*)".into(),
            1 => "COUNT(DISTINCT id)".into(),
            2 => format!(
                "{}({}) {} {}",
                pick(u, ALLOWED)?,
                numeric(u, 1)?,
                pick(u, &["+", "*", "/"])?,
                pick(u, NUMERIC_LITERALS)?
            ),
            _ => format!("{}({})", pick(u, ALLOWED)?, numeric(u, 2)?),
        });
    }
    let mut sql = format!("SELECT {} FROM {table}", items.join(", "));
    if u.ratio(1, 2)? {
        sql.push_str(&format!(" WHERE {}", predicate(u, 2, 0)?));
    }
    if grouped {
        sql.push_str(" GROUP BY district");
    }
    Ok(sql)
}

fn wild(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    let from = relation(u, depth)?;
    let grouped = u.ratio(2, 3)?;
    let mut keys = Vec::new();
    if grouped {
        for _ in 0..u.int_in_range(0..=2u8)? {
            keys.push(key(u)?);
        }
    }
    let mut items: Vec<String> = keys.clone();
    for _ in 0..u.int_in_range(1..=3u8)? {
        let item = if grouped || u.ratio(1, 4)? {
            aggregate(u, depth)?
        } else {
            expr(u, 2)?
        };
        items.push(if u.ratio(1, 3)? {
            format!(
                "{item} AS {}",
                pick(u, &["a", "\"x y\"", "income", "count"])?
            )
        } else {
            item
        });
    }
    let distinct = if u.ratio(1, 10)? { "DISTINCT " } else { "" };
    let mut sql = format!("SELECT {distinct}{} FROM {from}", items.join(", "));
    if u.ratio(2, 3)? {
        sql.push_str(&format!(" WHERE {}", predicate(u, 2, depth)?));
    }
    if !keys.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        if u.ratio(1, 4)? {
            sql.push_str(&format!(
                " HAVING {} > {}",
                aggregate(u, 0)?,
                pick(u, NUMERIC_LITERALS)?
            ));
        }
    }
    if u.ratio(1, 4)? {
        sql.push_str(&format!(" ORDER BY {}", u.int_in_range(1..=items.len())?));
    }
    if u.ratio(1, 5)? {
        sql.push_str(&format!(" LIMIT {}", pick(u, &["0", "1", "5", "1000000"])?));
    }
    Ok(sql)
}

fn relation(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    let table = pick(u, TABLES)?;
    Ok(match u.int_in_range(0..=9u8)? {
        0 if depth > 0 => format!("({}) AS s", inner_rows(u, table)?),
        1 => format!("{table} a JOIN {table} b ON a.id = b.id"),
        2 => format!("{table} CROSS JOIN {table} AS c"),
        3 => "generate_series(1, 10)".into(),
        4 => format!("{table} TABLESAMPLE SYSTEM (50)"),
        _ => table.into(),
    })
}

/// A subquery that keeps rows (as a row-level view of the table would).
fn inner_rows(u: &mut Unstructured<'_>, table: &str) -> Result<String> {
    let mut cols: Vec<&str> = Vec::new();
    for _ in 0..u.int_in_range(1..=4u8)? {
        cols.push(pick(
            u,
            &["*", "id", "district", "age", "income", "name", "born"],
        )?);
    }
    Ok(format!(
        "SELECT {} FROM {table} WHERE {}",
        cols.join(", "),
        predicate(u, 1, 0)?
    ))
}

fn key(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => "age".into(),
        1 => format!("upper({})", pick(u, TEXT)?),
        2 => format!("date_part('year', {})", pick(u, DATE)?),
        3 => "income".into(),
        4 => "name".into(),
        5 => format!("CASE WHEN {} THEN 'x' ELSE 'y' END", predicate(u, 1, 0)?),
        _ => "district".into(),
    })
}

fn aggregate(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    let f = pick(u, AGGREGATES)?;
    Ok(match u.int_in_range(0..=9u8)? {
        0 => "COUNT(*)".into(),
        1 => "COUNT(DISTINCT id)".into(),
        2 => format!(
            "APPROX_PERCENTILE_CONT({}, {})",
            numeric(u, 1)?,
            pick(u, &["0.5", "0.9", "2", "-1"])?
        ),
        3 if depth > 0 => format!("({})", query(u, depth - 1)?),
        4 => format!("{f}(DISTINCT {})", numeric(u, 1)?),
        5 => format!(
            "{f}({}) FILTER (WHERE {})",
            numeric(u, 1)?,
            predicate(u, 1, 0)?
        ),
        6 => format!("{f}({}) OVER (PARTITION BY district)", numeric(u, 1)?),
        7 => format!(
            "{} {} {}",
            aggregate(u, 0)?,
            pick(u, &["+", "*", "/", "-"])?,
            pick(u, NUMERIC_LITERALS)?
        ),
        _ => format!("{f}({})", numeric(u, 2)?),
    })
}

/// Any expression.
fn expr(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => text(u, depth)?,
        1 => pick(u, DATE)?.into(),
        _ => numeric(u, depth)?,
    })
}

fn numeric(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    if depth == 0 || u.ratio(1, 3)? {
        return Ok(if u.ratio(1, 2)? {
            pick(u, NUMERIC)?.into()
        } else {
            pick(u, NUMERIC_LITERALS)?.into()
        });
    }
    let d = depth - 1;
    Ok(match u.int_in_range(0..=8u8)? {
        0 => format!(
            "({} {} {})",
            numeric(u, d)?,
            pick(u, &["+", "-", "*", "/", "%", "&", "|", "<<"])?,
            numeric(u, d)?
        ),
        1 => format!("(-{})", numeric(u, d)?),
        2 => format!("CAST({} AS {})", expr(u, d)?, pick(u, TYPES)?),
        3 => format!("TRY_CAST({} AS {})", expr(u, d)?, pick(u, TYPES)?),
        4 => format!(
            "CASE WHEN {} THEN {} ELSE {} END",
            predicate(u, d, 0)?,
            numeric(u, d)?,
            numeric(u, d)?
        ),
        5 => format!("length({})", text(u, d)?),
        6 => format!(
            "date_part('{}', {})",
            pick(u, &["year", "month", "day", "dow", "epoch"])?,
            date(u)?
        ),
        _ => {
            let (f, n) = *u.choose(NUMERIC_FUNCTIONS)?;
            let args = (0..n).map(|_| numeric(u, d)).collect::<Result<Vec<_>>>()?;
            format!("{f}({})", args.join(", "))
        }
    })
}

fn text(u: &mut Unstructured<'_>, depth: u32) -> Result<String> {
    if depth == 0 || u.ratio(1, 2)? {
        return Ok(if u.ratio(1, 2)? {
            pick(u, TEXT)?.into()
        } else {
            pick(u, TEXT_LITERALS)?.into()
        });
    }
    let d = depth - 1;
    let (f, n) = *u.choose(TEXT_FUNCTIONS)?;
    let args = (0..n)
        .map(|i| if i == 0 { text(u, d) } else { numeric(u, 0) })
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("{f}({})", args.join(", ")))
}

fn date(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(if u.ratio(1, 2)? {
        pick(u, DATE)?.into()
    } else {
        pick(u, DATE_LITERALS)?.into()
    })
}

fn predicate(u: &mut Unstructured<'_>, depth: u32, subqueries: u32) -> Result<String> {
    let d = depth.saturating_sub(1);
    Ok(match u.int_in_range(0..=10u8)? {
        0 if depth > 0 => format!(
            "({} {} {})",
            predicate(u, d, subqueries)?,
            pick(u, &["AND", "OR"])?,
            predicate(u, d, subqueries)?
        ),
        1 if depth > 0 => format!("NOT ({})", predicate(u, d, subqueries)?),
        2 => format!(
            "{} {} {}",
            text(u, d)?,
            pick(u, &["=", "<>", "<", "LIKE", "ILIKE", "~"])?,
            text(u, 0)?
        ),
        3 => format!("{} IS {}NULL", expr(u, d)?, pick(u, &["", "NOT "])?),
        4 => format!(
            "{} BETWEEN {} AND {}",
            numeric(u, d)?,
            numeric(u, 0)?,
            numeric(u, 0)?
        ),
        5 => format!(
            "district IN ({}, {})",
            pick(u, TEXT_LITERALS)?,
            pick(u, TEXT_LITERALS)?
        ),
        6 => format!("{} {} {}", date(u)?, pick(u, &["<", ">=", "="])?, date(u)?),
        7 if subqueries > 0 => format!("id IN ({})", query(u, subqueries - 1)?),
        8 => format!(
            "name = '{}NAME-{}'",
            crate::world::CANARY,
            u.int_in_range(0..=300u16)?
        ),
        _ => format!(
            "{} {} {}",
            numeric(u, d)?,
            pick(u, &["=", "<>", "<", "<=", ">", ">="])?,
            numeric(u, d)?
        ),
    })
}

/// The structured target: a statement generated from the input, mediated and judged.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(sql) = statement(&mut u) {
        crate::sql::mediate(&sql);
    }
}

/// The structured target's planning stage ([`crate::sql::plan`]): the same statements,
/// checked and explained without being answered, so that its runs reach the executions
/// the whole path cannot.
pub fn run_plan(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(sql) = statement(&mut u) {
        crate::sql::plan(&sql);
    }
}
