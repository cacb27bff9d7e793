//! Example Sandbox module: the number of residents and their average income per district.
//!
//! Outputs:
//! - `income_by_district`: the (noisy) query result as a table;
//! - `summary`: a short Markdown paragraph naming the district with the highest average
//!   income, with rounded numbers.
//!
//! Parameters (all optional): `{"min_age": 18}` counts only residents of at least that age;
//! `{"as_drawn": true}` asks for the answer as drawn (`query_unrounded`) rather than rounded
//! to what its noise supports. The domain stages the table rounded all the same when the
//! dataset's policy says so: only the module's own arithmetic sees the extra digits.

#![forbid(unsafe_code)]

use sandbox_sdk::prelude::*;
use serde::Deserialize;

/// The job's parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Only count residents at least this old.
    min_age: Option<i64>,
    /// The answer as drawn, unrounded.
    #[serde(default)]
    as_drawn: bool,
}

#[analysis]
fn run(ctx: &mut Context) -> Result<()> {
    let params: Params = ctx.params()?;
    let table = if params.as_drawn {
        ctx.query_unrounded(&query(&params))?
    } else {
        ctx.query(&query(&params))?
    };
    ctx.log_info(&format!(
        "income_by_district: {} districts, epsilon {}",
        table.num_rows(),
        table.epsilon()
    ));
    ctx.emit_table("income_by_district", &table)?;
    ctx.emit_text("summary", &summary(&table, &params)?)?;
    Ok(())
}

/// The SQL for these parameters. `min_age` is an integer, so formatting it into the text
/// cannot inject SQL.
fn query(params: &Params) -> String {
    let filter = match params.min_age {
        Some(age) => format!(" WHERE age >= {age}"),
        None => String::new(),
    };
    format!(
        "SELECT district, COUNT(*) AS residents, AVG(income) AS avg_income \
         FROM residents{filter} GROUP BY district ORDER BY district"
    )
}

/// A Markdown paragraph from the noisy result. Numbers are rounded: the noise makes more
/// digits meaningless.
fn summary(table: &Table, params: &Params) -> Result<String> {
    let districts = table.str_column("district")?;
    let residents = table.f64_column("residents")?;
    let incomes = table.f64_column("avg_income")?;

    let best = districts
        .iter()
        .zip(&residents)
        .zip(&incomes)
        .filter_map(|((d, n), avg)| Some((d.as_deref()?, *n, (*avg)?)))
        .max_by(|a, b| a.2.total_cmp(&b.2));

    let scope = match params.min_age {
        Some(age) => format!("residents aged {age} or more"),
        None => "all residents".to_owned(),
    };
    let mut text = String::from("## Income by district\n\n");
    match best {
        Some((district, n, avg)) => text.push_str(&format!(
            "District with the highest average income: **{district}**, about {} \
             (about {} residents; {} districts, counting {scope}).",
            thousands(round_to(avg, 100.0)),
            thousands(n.map_or(0.0, |n| n.max(0.0).round())),
            table.num_rows(),
        )),
        None => text.push_str(&format!(
            "No district has an average income to report (counting {scope})."
        )),
    }
    text.push_str(&format!(
        "\n\nFigures are differentially private (ε = {:.2}{}) and rounded; small \
         differences between districts may be due to noise.\n",
        table.epsilon(),
        table
            .mechanism()
            .map(|m| format!(", {m} mechanism"))
            .unwrap_or_default()
    ));
    Ok(text)
}

/// Rounds to the nearest multiple of `step`.
fn round_to(value: f64, step: f64) -> f64 {
    (value / step).round() * step
}

/// Formats a whole number with thousands separators: 41200 → "41,200".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}
