//! Example Sandbox module: enterprise registrations by industry and year.
//!
//! Outputs:
//! - `registrations`: the (noisy) number of enterprises registered per industry and year,
//!   with their average staff, as a table;
//! - `registrations_chart`: registrations per year of one industry (SVG bar chart);
//! - `trend`: a Markdown paragraph on that industry's growth.
//!
//! The year is a generalization of the registration date (`date_part`); its values come
//! from the data, so the scenario must allow δ for τ-thresholding.
//!
//! Parameters (all optional): `{"industry": "information_technology"}` picks the industry
//! of the chart and the paragraph (default: information technology).

#![forbid(unsafe_code)]

use sandbox_sdk::prelude::*;
use serde::Deserialize;

/// The job's parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The industry the chart and the paragraph describe.
    industry: Option<String>,
}

const SQL: &str = "SELECT industry, TRY_CAST(date_part('year', registered_on) AS BIGINT) AS year, \
     COUNT(*) AS registrations, AVG(employees) AS avg_employees \
     FROM enterprises \
     GROUP BY industry, TRY_CAST(date_part('year', registered_on) AS BIGINT) \
     ORDER BY industry, year";

#[analysis]
fn run(ctx: &mut Context) -> Result<()> {
    let params: Params = ctx.params()?;
    let industry = params
        .industry
        .unwrap_or_else(|| "information_technology".to_owned());
    let table = ctx.query(SQL)?;
    ctx.emit_table("registrations", &table)?;

    let industries = table.str_column("industry")?;
    let years = table.i64_column("year")?;
    let counts = table.f64_column("registrations")?;
    let mut series: Vec<(i64, f64)> = industries
        .iter()
        .zip(&years)
        .zip(&counts)
        .filter_map(|((i, y), n)| (i.as_deref()? == industry).then_some(((*y)?, (*n)?)))
        .collect();
    series.sort_by_key(|(y, _)| *y);
    let chart_table = Table::builder()
        .column_i64("year", series.iter().map(|(y, _)| *y).collect::<Vec<_>>())
        .column_f64(
            "registrations",
            series.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        )
        .build()?;
    let chart = Chart::bar(&chart_table, "year", "registrations")?
        .title(format!("New {industry} enterprises per year"))
        .value_label("registrations (noisy)");
    ctx.emit_chart("registrations_chart", &chart)?;
    ctx.emit_text("trend", &trend(&industry, &series, table.epsilon()))?;
    Ok(())
}

/// A paragraph comparing the first and the last year released.
fn trend(industry: &str, series: &[(i64, f64)], epsilon: f64) -> String {
    let mut text = format!("## {industry}\n\n");
    match (series.first(), series.last()) {
        (Some((y0, n0)), Some((y1, n1))) if y1 > y0 => text.push_str(&format!(
            "About {:.0} new enterprises in {y0} and about {:.0} in {y1}.\n",
            (n0 / 10.0).round() * 10.0,
            (n1 / 10.0).round() * 10.0
        )),
        _ => text.push_str("Too few years were released to describe a trend.\n"),
    }
    text.push_str(&format!(
        "\nCounts are differentially private (ε = {epsilon:.2}); years with few registrations are not released.\n"
    ));
    text
}
