//! Example Sandbox module: taxi trips by hour of day, and the peak hours.
//!
//! Outputs:
//! - `trips_by_hour`: the (noisy) number of trips and average duration per hour, a table;
//! - `trips_chart`: a bar chart of the trips per hour (SVG);
//! - `peak_hours`: a short Markdown paragraph naming the busiest hours.
//!
//! Parameters (all optional): `{"district": "hexi"}` counts only trips starting there;
//! `{"epsilon": 0.5}` spends that ε instead of the scenario's ε per query.

#![forbid(unsafe_code)]

use sandbox_sdk::prelude::*;
use serde::Deserialize;

/// The job's parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Only trips starting in this district.
    district: Option<String>,
    /// ε to spend on the query.
    epsilon: Option<f64>,
}

#[analysis]
fn run(ctx: &mut Context) -> Result<()> {
    let params: Params = ctx.params()?;
    let sql = query(&params)?;
    let table = match params.epsilon {
        Some(epsilon) => ctx.query_with(&sql, epsilon)?,
        None => ctx.query(&sql)?,
    };
    ctx.emit_table("trips_by_hour", &table)?;
    let title = match &params.district {
        Some(d) => format!("Taxi trips by hour of day ({d})"),
        None => "Taxi trips by hour of day".to_owned(),
    };
    let chart = Chart::bar(&table, "hour", "trips")?
        .title(title)
        .value_label("trips (noisy)");
    ctx.emit_chart("trips_chart", &chart)?;
    ctx.emit_text("peak_hours", &summary(&table)?)?;
    Ok(())
}

/// The SQL for these parameters. A district name must be lowercase letters only, so it
/// cannot carry SQL into the text.
fn query(params: &Params) -> Result<String> {
    let filter = match &params.district {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_lowercase()) => {
            format!(" WHERE district = '{d}'")
        }
        Some(d) => return Err(Error::module(format!("not a district name: {d:?}"))),
        None => String::new(),
    };
    Ok(format!(
        "SELECT hour, COUNT(*) AS trips, AVG(minutes) AS avg_minutes \
         FROM trips{filter} GROUP BY hour ORDER BY hour"
    ))
}

/// The three busiest hours, from the noisy counts.
fn summary(table: &Table) -> Result<String> {
    let hours = table.i64_column("hour")?;
    let trips = table.f64_column("trips")?;
    let mut by_hour: Vec<(i64, f64)> = hours
        .iter()
        .zip(&trips)
        .filter_map(|(h, n)| Some(((*h)?, (*n)?)))
        .collect();
    by_hour.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut text = String::from("## Peak hours\n\n");
    if by_hour.is_empty() {
        text.push_str("No trips to report.\n");
        return Ok(text);
    }
    let top: Vec<String> = by_hour
        .iter()
        .take(3)
        .map(|(h, n)| format!("{h:02}:00 (about {:.0} trips)", (n / 10.0).round() * 10.0))
        .collect();
    text.push_str(&format!("The busiest hours: {}.\n\n", top.join(", ")));
    text.push_str(&format!(
        "Counts are differentially private (ε = {:.2}) and rounded to tens.\n",
        table.epsilon()
    ));
    Ok(text)
}
