//! The module's handle on the host.

use serde::de::DeserializeOwned;

use crate::abi;
use crate::error::{Error, Result};
use crate::sys;
use crate::table::Table;

/// Log levels, as numbered by the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Level {
    /// Level 0: very detailed tracing.
    Trace = 0,
    /// Level 1: debugging detail.
    Debug = 1,
    /// Level 2: normal progress.
    Info = 2,
    /// Level 3: something looks wrong but the module goes on.
    Warn = 3,
    /// Level 4: the module failed; the host records this as the failure reason.
    Error = 4,
}

/// The module's handle on the host: run queries, read the job's parameters, stage
/// outputs and write log lines.
///
/// The [`macro@crate::analysis`] macro creates the one `Context` of a job and passes it to
/// the analysis function.
#[derive(Debug)]
pub struct Context {
    _private: (),
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// Runs one SQL query through the host's mediator and returns its (noisy) result.
    ///
    /// The table's [`epsilon`](Table::epsilon) and [`mechanism`](Table::mechanism) tell
    /// what the query cost and how it was protected. Fails with [`Error::Refused`] if the
    /// policy refuses the query, [`Error::Budget`] if the privacy budget is exhausted, and
    /// [`Error::Limit`] past the job's number of queries.
    ///
    /// Noisy columns come rounded to the unit the datasets' policies ask for (what their
    /// noise supports: [`Table::rounding`]); [`Context::query_unrounded`] gives them as
    /// drawn. An average, variance or quantile whose noisy count is too small to mean
    /// anything is NULL ([`Table::withheld`]); [`Table::ci95`] tells each noisy column's
    /// 95 % interval.
    pub fn query(&mut self, sql: &str) -> Result<Table> {
        Ok(self.query_unrounded(sql)?.rounded())
    }

    /// Like [`Context::query`], with the noisy columns as drawn (not rounded), for the
    /// module's own arithmetic. What the module emits is held to the policies' rounding
    /// all the same: a column of the answer passed through to an output is staged rounded
    /// to its unit.
    pub fn query_unrounded(&mut self, sql: &str) -> Result<Table> {
        check(sys::query(sql))?;
        Table::from_ipc(&take_response()?)
    }

    /// Like [`Context::query`], spending `epsilon` instead of the scenario's ε per query
    /// (which caps it): a smaller ε for a rough look, the full cap where accuracy counts.
    /// A non-positive or non-finite ε fails with [`Error::InvalidArgument`] before anything is
    /// spent; above the cap, the mediator refuses with the scenario rule.
    pub fn query_with(&mut self, sql: &str, epsilon: f64) -> Result<Table> {
        check(sys::query_with(sql, epsilon))?;
        Ok(Table::from_ipc(&take_response()?)?.rounded())
    }

    /// The job's parameters, deserialized into `T`.
    ///
    /// A job without parameters (`{}`, `null` or nothing) gives `T::default()`. Parameters
    /// that do not fit `T` give [`Error::Params`]; use `#[serde(deny_unknown_fields)]` on
    /// `T` to also reject misspelt names.
    pub fn params<T: DeserializeOwned + Default>(&mut self) -> Result<T> {
        parse_params(&self.params_bytes()?)
    }

    /// The job's parameters as raw JSON (`{}` when there are none).
    pub fn params_json(&mut self) -> Result<serde_json::Value> {
        let bytes = self.params_bytes()?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(format!("parameters JSON: {e}")))
    }

    fn params_bytes(&mut self) -> Result<Vec<u8>> {
        check(sys::params())?;
        take_response()
    }

    /// Stages a table as a candidate output named `name` (1 to 64 characters from
    /// `[a-z0-9_-]`, unique within the job).
    pub fn emit_table(&mut self, name: &str, table: &Table) -> Result<()> {
        validate_output_name(name)?;
        let data = table.to_ipc()?;
        check(sys::emit(abi::KIND_TABLE, name, &data))
    }

    /// Stages a Markdown text as a candidate output named `name` (1 to 64 characters from
    /// `[a-z0-9_-]`, unique within the job).
    pub fn emit_text(&mut self, name: &str, markdown: &str) -> Result<()> {
        validate_output_name(name)?;
        check(sys::emit(abi::KIND_TEXT, name, markdown.as_bytes()))
    }

    /// Stages a chart (rendered as SVG) as a candidate output named `name`.
    pub fn emit_chart(&mut self, name: &str, chart: &crate::Chart) -> Result<()> {
        validate_output_name(name)?;
        check(sys::emit(abi::KIND_CHART, name, chart.to_svg().as_bytes()))
    }

    /// Stages a chart drawn by the module as a PNG image, named `name`. The host keeps
    /// only its pixels (see [`abi::KIND_PNG`]); reviewers read it, since no check can.
    pub fn emit_png(&mut self, name: &str, png: &[u8]) -> Result<()> {
        validate_output_name(name)?;
        check(sys::emit(abi::KIND_PNG, name, png))
    }

    /// Writes a log line. Logging never fails the module: if the host refuses the line
    /// (e.g. the job's log volume is exhausted) it is dropped; use [`Context::try_log`] to
    /// find out.
    pub fn log(&self, level: Level, message: &str) {
        let _ = self.try_log(level, message);
    }

    /// Writes a log line, reporting whether the host accepted it.
    pub fn try_log(&self, level: Level, message: &str) -> Result<()> {
        check(sys::log(level as i32, message))
    }

    /// Writes a log line at [`Level::Debug`].
    pub fn log_debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// Writes a log line at [`Level::Info`].
    pub fn log_info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Writes a log line at [`Level::Warn`].
    pub fn log_warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Writes a log line at [`Level::Error`].
    pub fn log_error(&self, message: &str) {
        self.log(Level::Error, message);
    }
}

/// Turns a status into a result, reading the host's JSON error response on failure.
fn check(status: i32) -> Result<()> {
    if status == abi::STATUS_OK {
        return Ok(());
    }
    // If the error response itself cannot be read, report the status without a message.
    let body = take_response().unwrap_or_default();
    Err(Error::from_host(status, &body))
}

/// Reads (and so clears) the pending response; empty if there is none.
fn take_response() -> Result<Vec<u8>> {
    let len = sys::response_len();
    let mut buf = vec![0; len];
    if len == 0 {
        return Ok(buf);
    }
    match sys::response_read(&mut buf) {
        abi::STATUS_OK => Ok(buf),
        // The failed read replaced the response with an error we could read, but a host
        // that cannot hand over a response it announced is broken: say so plainly.
        status => Err(Error::internal(format!(
            "could not read the host's response of {len} bytes (status {status})"
        ))),
    }
}

/// Deserializes the job's parameters; see [`Context::params`].
fn parse_params<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Decode(format!("parameters JSON: {e}")))?;
    match &value {
        serde_json::Value::Null => return Ok(T::default()),
        serde_json::Value::Object(map) if map.is_empty() => return Ok(T::default()),
        _ => {}
    }
    serde_json::from_value(value).map_err(|e| Error::Params(e.to_string()))
}

/// Checks an output name locally, so that a typo fails with a clear message before the
/// host is asked.
fn validate_output_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > abi::MAX_OUTPUT_NAME_LEN || !ok_chars {
        return Err(Error::invalid(format!(
            "output name {name:?} must be 1 to {} characters from [a-z0-9_-]",
            abi::MAX_OUTPUT_NAME_LEN
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use serde::Deserialize;

    use super::*;
    use crate::sys::{Call, set_mock_host};

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        min_age: Option<i64>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Required {
        district: String,
        limit: u32,
    }

    #[test]
    fn params_parsing() {
        assert_eq!(
            parse_params::<Optional>(b"{}").expect("empty"),
            Optional::default()
        );
        assert_eq!(
            parse_params::<Optional>(b"").expect("nothing"),
            Optional::default()
        );
        assert_eq!(
            parse_params::<Optional>(b"null").expect("null"),
            Optional::default()
        );
        assert_eq!(
            parse_params::<Optional>(br#"{"min_age": 30}"#).expect("given"),
            Optional { min_age: Some(30) }
        );
        // No parameters at all: the default, even with required fields.
        assert_eq!(
            parse_params::<Required>(b" {} ").expect("empty"),
            Required::default()
        );
        assert_eq!(
            parse_params::<Required>(br#"{"district":"north","limit":3}"#).expect("given"),
            Required {
                district: "north".into(),
                limit: 3
            }
        );
    }

    #[test]
    fn params_that_do_not_fit() {
        for body in [
            &br#"{"min_age": "thirty"}"#[..],
            br#"{"min_age": 30, "typo": 1}"#,
            br#"[1, 2]"#,
        ] {
            let err = parse_params::<Optional>(body).expect_err("does not fit");
            assert!(matches!(err, Error::Params(_)), "{err:?}");
        }
        let err = parse_params::<Required>(br#"{"district":"north"}"#).expect_err("missing");
        assert!(matches!(err, Error::Params(_)), "{err:?}");
        let err = parse_params::<Optional>(b"{not json").expect_err("bad json");
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
    }

    #[test]
    fn output_names() {
        for ok in ["a", "income_by_district", "x-1", &"a".repeat(64)] {
            validate_output_name(ok).expect(ok);
        }
        for bad in [
            "",
            "Upper",
            "with space",
            "dot.ted",
            "ümlaut",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    validate_output_name(bad),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn outside_the_host_every_call_is_internal() {
        let mut ctx = Context::new();
        let err = ctx.query("SELECT 1").expect_err("no host");
        assert_eq!(
            err,
            Error::internal("sandbox-sdk: not running inside the Sandbox host")
        );
        assert!(matches!(
            ctx.params::<Optional>(),
            Err(Error::Internal { .. })
        ));
        assert!(matches!(
            ctx.emit_text("t", "x"),
            Err(Error::Internal { .. })
        ));
        assert!(matches!(
            ctx.try_log(Level::Info, "x"),
            Err(Error::Internal { .. })
        ));
        ctx.log_info("dropped silently");
        // Every failure's response was consumed.
        assert_eq!(sys::response_len(), 0);
    }

    #[test]
    fn query_with_passes_its_epsilon_to_the_host() {
        let result = Table::builder()
            .column_f64("n", vec![10.4])
            .build()
            .expect("valid table");
        let ipc = result.to_ipc().expect("encode");
        let calls = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&calls);
        set_mock_host(move |call| {
            seen.borrow_mut().push(call.clone());
            match call {
                Call::QueryWith(_, epsilon) if epsilon <= 0.5 => (abi::STATUS_OK, ipc.clone()),
                _ => (
                    abi::STATUS_REFUSED,
                    br#"{"kind":"refused","rule":"scenario","message":"above the cap"}"#.to_vec(),
                ),
            }
        });
        let mut ctx = Context::new();
        let cheap = ctx
            .query_with("SELECT COUNT(*) AS n FROM residents", 0.25)
            .expect("query with ε");
        assert_eq!(cheap, result);
        assert!(matches!(
            ctx.query_with("SELECT COUNT(*) FROM residents", 2.0),
            Err(Error::Refused { .. })
        ));
        let calls = calls.borrow();
        assert!(matches!(&calls[0], Call::QueryWith(_, e) if *e == 0.25));
        assert!(matches!(&calls[1], Call::QueryWith(_, e) if *e == 2.0));
    }

    #[test]
    fn query_params_emit_and_log_through_a_scripted_host() {
        let result = Table::builder()
            .column_str("district", vec!["north", "south"])
            .column_f64("n", vec![10.4, 20.6])
            .build()
            .expect("valid table");
        let ipc = result.to_ipc().expect("encode");
        let calls = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&calls);
        set_mock_host(move |call| {
            seen.borrow_mut().push(call.clone());
            match call {
                Call::Query(sql) if sql.contains("secret") => (
                    abi::STATUS_REFUSED,
                    br#"{"kind":"refused","rule":"protected_column","message":"column secret is protected"}"#
                        .to_vec(),
                ),
                Call::Query(_) => (abi::STATUS_OK, ipc.clone()),
                Call::QueryWith(_, epsilon) if epsilon <= 0.5 => (abi::STATUS_OK, ipc.clone()),
                Call::QueryWith(..) => (
                    abi::STATUS_REFUSED,
                    br#"{"kind":"refused","rule":"scenario","message":"above the cap"}"#.to_vec(),
                ),
                Call::Params => (abi::STATUS_OK, br#"{"min_age": 18}"#.to_vec()),
                Call::Emit { name, .. } if name == "dup" => (
                    abi::STATUS_INVALID_ARGUMENT,
                    br#"{"kind":"invalid","message":"duplicate output name"}"#.to_vec(),
                ),
                Call::Emit { .. } | Call::Log { .. } => (abi::STATUS_OK, Vec::new()),
            }
        });

        let mut ctx = Context::new();
        let p: Optional = ctx.params().expect("params");
        assert_eq!(p.min_age, Some(18));
        let t = ctx
            .query("SELECT district, COUNT(*) AS n FROM residents GROUP BY district")
            .expect("query");
        assert_eq!(t, result);
        let err = ctx
            .query("SELECT secret FROM residents")
            .expect_err("refused");
        assert_eq!(
            err,
            Error::Refused {
                rule: Some("protected_column".into()),
                message: "column secret is protected".into()
            }
        );
        ctx.emit_table("by_district", &t).expect("emit table");
        ctx.emit_text("summary", "# Summary").expect("emit text");
        assert!(matches!(
            ctx.emit_text("dup", "x"),
            Err(Error::InvalidArgument { .. })
        ));
        // Rejected locally: the host never sees it.
        assert!(matches!(
            ctx.emit_text("Bad Name", "x"),
            Err(Error::InvalidArgument { .. })
        ));
        ctx.log_warn("careful");

        let calls = calls.borrow();
        assert_eq!(calls.len(), 7, "{calls:?}");
        assert!(
            matches!(&calls[3], Call::Emit { kind: abi::KIND_TABLE, name, data }
            if name == "by_district" && Table::from_ipc(data).ok().as_ref() == Some(&result))
        );
        assert_eq!(
            calls[4],
            Call::Emit {
                kind: abi::KIND_TEXT,
                name: "summary".into(),
                data: b"# Summary".to_vec()
            }
        );
        assert_eq!(
            calls[6],
            Call::Log {
                level: 3,
                message: "careful".into()
            }
        );
        assert_eq!(sys::response_len(), 0);
    }

    #[test]
    fn run_analysis_logs_the_error_and_returns_one() {
        let logs = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&logs);
        set_mock_host(move |call| {
            if let Call::Log { level, message } = call {
                seen.borrow_mut().push((level, message));
            }
            (abi::STATUS_OK, Vec::new())
        });
        let ok = crate::__private::run_analysis(|ctx| {
            ctx.log_info("hello");
            Ok::<(), Error>(())
        });
        assert_eq!(ok, 0);
        let failed =
            crate::__private::run_analysis(|_| Err::<(), _>(Error::module("no districts")));
        assert_eq!(failed, 1);
        assert_eq!(
            *logs.borrow(),
            [(2, "hello".to_owned()), (4, "no districts".to_owned())]
        );
        // The hook is process-wide; put the default one back for the other tests.
        let _ = std::panic::take_hook();
    }
}
