//! Charts built from a table, emitted as SVG (`Context::emit_chart`).
//!
//! The SVG uses a small, fixed vocabulary (`svg`, `g`, `rect`, `line`, `text`, `title`)
//! with no scripts, links, styles or external references: the host refuses anything else,
//! and reviewers see the chart exactly as it would be released.

use crate::{Error, Result, Table};

/// A bar chart: one bar per row, labelled by one column, sized by another.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    title: String,
    value_label: String,
    labels: Vec<String>,
    values: Vec<f64>,
}

/// Most bars one chart may have.
pub const MAX_BARS: usize = 200;

impl Chart {
    /// A bar chart of `table`: `label_column` (text or integers) names the bars,
    /// `value_column` (numeric) sizes them. Rows with a null or non-finite value are left
    /// out.
    pub fn bar(table: &Table, label_column: &str, value_column: &str) -> Result<Chart> {
        let labels: Vec<Option<String>> = match table.str_column(label_column) {
            Ok(v) => v,
            Err(_) => table
                .i64_column(label_column)?
                .into_iter()
                .map(|v| v.map(|v| v.to_string()))
                .collect(),
        };
        let values = table.f64_column(value_column)?;
        let (labels, values): (Vec<String>, Vec<f64>) = labels
            .into_iter()
            .zip(values)
            .filter_map(|(l, v)| match v {
                Some(v) if v.is_finite() => Some((l.unwrap_or_default(), v)),
                _ => None,
            })
            .unzip();
        if labels.len() > MAX_BARS {
            return Err(Error::invalid(format!(
                "a chart has at most {MAX_BARS} bars, not {}",
                labels.len()
            )));
        }
        Ok(Chart {
            title: String::new(),
            value_label: value_column.to_string(),
            labels,
            values,
        })
    }

    /// Sets the title shown above the bars.
    pub fn title(mut self, title: impl Into<String>) -> Chart {
        self.title = title.into();
        self
    }

    /// Sets the label of the value axis (the value column's name by default).
    pub fn value_label(mut self, label: impl Into<String>) -> Chart {
        self.value_label = label.into();
        self
    }

    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        const WIDTH: f64 = 720.0;
        const HEIGHT: f64 = 400.0;
        const LEFT: f64 = 70.0;
        const RIGHT: f64 = 20.0;
        const TOP: f64 = 40.0;
        const BOTTOM: f64 = 60.0;
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let max = self.values.iter().copied().fold(0.0_f64, f64::max);
        let min = self.values.iter().copied().fold(0.0_f64, f64::min);
        let span = if max - min > 0.0 { max - min } else { 1.0 };
        let y = |v: f64| TOP + plot_h * (max - v) / span;
        let n = self.values.len().max(1) as f64;
        let slot = plot_w / n;
        let bar = slot * 0.8;
        let mut out = String::new();
        out.push_str(&format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        ));
        out.push_str(&format!("<title>{}</title>", escape(&self.title)));
        out.push_str(&format!(
            r#"<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        ));
        let zero = y(0.0);
        out.push_str(&format!(
            r##"<line x1="{LEFT}" y1="{zero:.1}" x2="{}" y2="{zero:.1}" stroke="#333"/>"##,
            WIDTH - RIGHT
        ));
        out.push_str(&format!(
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#333"/>"##,
            TOP + plot_h
        ));
        for v in [min, max] {
            out.push_str(&format!(
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y(v) + 4.0,
                number(v)
            ));
        }
        out.push_str(&format!(
            r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.value_label)
        ));
        out.push_str("<g>");
        for (i, (label, v)) in self.labels.iter().zip(&self.values).enumerate() {
            let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
            let (top, height) = if *v >= 0.0 {
                (y(*v), zero - y(*v))
            } else {
                (zero, y(*v) - zero)
            };
            out.push_str(&format!(
                r##"<rect x="{x:.1}" y="{top:.1}" width="{bar:.1}" height="{height:.1}" fill="#4e79a7"><title>{}: {}</title></rect>"##,
                escape(label),
                number(*v)
            ));
            out.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                TOP + plot_h + 18.0,
                escape(label)
            ));
        }
        out.push_str("</g></svg>");
        out
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Escapes text for XML character data and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::builder()
            .column_i64("hour", vec![7, 8, 9])
            .column_f64("trips", vec![120.0, 340.5, -5.0])
            .build()
            .expect("table")
    }

    #[test]
    fn bars_follow_the_rows_and_text_is_escaped() {
        let svg = Chart::bar(&table(), "hour", "trips")
            .expect("chart")
            .title("Trips <by> hour & \"peak\"")
            .to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("8: 340.50"));
        assert!(svg.contains("Trips &lt;by&gt; hour &amp; &quot;peak&quot;"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn bad_columns_are_errors() {
        assert!(Chart::bar(&table(), "nope", "trips").is_err());
        assert!(Chart::bar(&table(), "hour", "nope").is_err());
    }
}
