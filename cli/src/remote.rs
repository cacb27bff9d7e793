//! The CLI against a server (`--server URL`, with `SANDBOX_TOKEN`): the same commands,
//! sent to `/api/v1` instead of run on a local data directory. The principal is the
//! token's; `--as` is not used. Commands that only make sense on the server's machine
//! (init, serve, demo, dev, token, audit export and checkpoint, query explain) are
//! refused with a word on where to run them.

use std::fs;
use std::io::Write;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use sandbox_core::{Error, Result};

use crate::args::{
    AuditCmd, BudgetCmd, Cli, Command, DatasetCmd, JobCmd, OrgCmd, OutputCmd, PrincipalCmd,
    ProductCmd, ReviewCmd, ScenarioCmd, StopCmd, TokenCmd, UsageCmd,
};
use crate::common::{read_text, write_folder};
use crate::texts;
use sandbox_i18n::t;

struct Remote {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

/// Escapes a path segment (ids and names are plain, but a user may type anything).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Remote {
    fn new(lang: sandbox_core::Lang, url: &str, token: &str) -> Result<Remote> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(t!(lang, "cli-server-url", url = url)));
        }
        if sandbox_runtime::tokens::parse(token).is_none() {
            return Err(Error::Unauthenticated(t!(lang, "cli-token-malformed")));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Remote {
            agent,
            base,
            auth: format!("Bearer {token}"),
        })
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>)> {
        let url = format!("{}/api/v1{path}", self.base);
        let transport = |e: ureq::Error| Error::Remote {
            status: 0,
            code: "transport".into(),
            message: format!("{url}: {e}"),
        };
        let mut response = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("Authorization", &self.auth)
                .send_json(b),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .send_json(b),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .send_empty(),
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(transport)?;
        Ok((status, bytes))
    }

    fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        let (status, bytes) = self.send("GET", path, None)?;
        if status >= 400 {
            return Err(error_of(status, &bytes));
        }
        Ok(bytes)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let (status, bytes) = self.send(method, path, body.as_ref())?;
        if status >= 400 {
            return Err(error_of(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Remote {
            status,
            code: "bad_answer".into(),
            message: format!("the server's answer is not JSON: {e}"),
        })
    }

    fn get(&self, path: &str) -> Result<Value> {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call("POST", path, Some(body))
    }
}

/// The server's `{error, message}` as the error the local command would have given (the
/// inverse of the server's one mapping, [`Error::from_answer`]): printed, it shows its
/// phase once.
fn error_of(status: u16, bytes: &[u8]) -> Error {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let code = v["error"].as_str().unwrap_or("http");
    let message = v["message"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}"), str::to_string);
    Error::from_answer(status, code, message)
}

fn print(cli: &Cli, value: &Value, text: impl FnOnce(&Value) -> String) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if cli.json {
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    } else {
        writeln!(out, "{}", text(value))?;
    }
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Runs `cli`'s command against the server at `url`.
pub fn run(cli: &Cli, url: &str) -> Result<()> {
    let lang = cli.language();
    let token = cli
        .token
        .as_deref()
        .ok_or_else(|| Error::Unauthenticated(t!(lang, "cli-server-needs-token")))?;
    let r = Remote::new(lang, url, token)?;
    match &cli.command {
        Command::Principal(c) => principal(cli, &r, c),
        Command::Token(c) => token_cmd(cli, &r, c),
        Command::Dataset(c) => dataset(cli, &r, c),
        Command::Scenario(c) => scenario(cli, &r, c),
        Command::Usage(c) => usage(cli, &r, c),
        Command::Job(c) => job(cli, &r, c),
        Command::Output(c) => output(cli, &r, c),
        Command::Review(c) => review(cli, &r, c),
        Command::Product(c) => product(cli, &r, c),
        Command::Org(c) => org(cli, &r, c),
        Command::Incident(c) => incident(cli, &r, c),
        Command::Report(c) => report(cli, &r, c),
        Command::Order(c) => order(cli, &r, c),
        Command::Audit(c) => audit(cli, &r, c),
        Command::Settings {
            language,
            time_zone,
        } => {
            let mut current = r.get("/settings")?;
            if language.is_some() || time_zone.is_some() {
                let body = json!({
                    "default_language": language.map_or(current["default_language"].clone(), |l| json!(l)),
                    "time_zone": time_zone.as_deref().map_or(current["time_zone"].clone(), Value::from),
                });
                current = r.call("PUT", "/settings", Some(body))?;
            }
            let settings: sandbox_runtime::settings::Settings =
                serde_json::from_value(current.clone()).map_err(|e| Error::Remote {
                    status: 200,
                    code: "bad_answer".into(),
                    message: format!("the server's settings: {e}"),
                })?;
            print(cli, &current, |_| {
                texts::settings(&remote_ui(cli, &r), &settings)
            })
        }
        Command::Whoami => {
            let p = r.get("/whoami")?;
            print(cli, &p, |p| texts::whoami(&remote_ui(cli, &r), p))
        }
        Command::Budget(BudgetCmd::Show { scenario }) => {
            let b = r.get(&format!("/scenarios/{}/budget", seg(scenario)))?;
            print(cli, &b, |b| texts::budget(&remote_ui(cli, &r), b))
        }
        Command::Stop(cmd) => {
            let (path, body) = match cmd {
                StopCmd::Scenario { scenario, reason } => (
                    "/stops".to_string(),
                    json!({"scope": "scenario", "target": scenario, "reason": reason}),
                ),
                StopCmd::Developer { name, reason } => (
                    "/stops".to_string(),
                    json!({"scope": "developer", "target": name, "reason": reason}),
                ),
                StopCmd::Domain { reason } => (
                    "/stops".to_string(),
                    json!({"scope": "domain", "reason": reason}),
                ),
                StopCmd::Lift { id, reason } => {
                    (format!("/stops/{id}/lift"), json!({"reason": reason}))
                }
                StopCmd::List { all } => {
                    let v = r.get(&format!("/stops?all={all}"))?;
                    return print(cli, &v, |v| texts::stops(&remote_ui(cli, &r), v));
                }
            };
            let v = r.post(&path, body)?;
            print(cli, &v, |v| texts::stop(&remote_ui(cli, &r), v))
        }
        other => Err(not_remote(lang, command_name(other))),
    }
}

fn review(cli: &Cli, r: &Remote, cmd: &ReviewCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        ReviewCmd::Show { job } => {
            let t = r.get(&format!("/jobs/{}/thread", seg(job)))?;
            print(cli, &t, |t| texts::thread(&ui, t))
        }
        ReviewCmd::Comment { job, text } => {
            let t = r.post(
                &format!("/jobs/{}/comments", seg(job)),
                json!({"body": text}),
            )?;
            print(cli, &t, |t| texts::thread(&ui, t))
        }
        ReviewCmd::Decide {
            job,
            decision,
            reason,
        } => {
            let v = r.post(
                &format!("/jobs/{}/review", seg(job)),
                json!({"decision": decision.decision().as_str(), "reason": reason}),
            )?;
            print(cli, &v, |v| texts::decided(&ui, v))
        }
    }
}

/// The reader of the server's texts: the CLI's language, the domain's time zone (asked
/// of the server only when the answer is shown as text).
fn remote_ui(cli: &Cli, r: &Remote) -> texts::Ui {
    let zone = if cli.json {
        None
    } else {
        r.get("/settings")
            .ok()
            .and_then(|v| v["time_zone"].as_str().map(str::to_string))
    };
    texts::Ui::new(cli.language(), zone.as_deref())
}

/// A command that works on the data directory only.
fn not_remote(lang: sandbox_core::Lang, name: &str) -> Error {
    Error::Invalid(t!(lang, "cli-not-remote", command = name))
}

fn principal(cli: &Cli, r: &Remote, cmd: &PrincipalCmd) -> Result<()> {
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        PrincipalCmd::Add { name, role, org } => {
            let p = r.post(
                "/principals",
                json!({"name": name, "role": role, "organisation": org}),
            )?;
            print(cli, &p, |p| texts::principal_added(&ui, p))
        }
        PrincipalCmd::Language { language } => {
            let chosen = crate::common::parse_language_choice(lang, language)?;
            let p = r.call("PUT", "/whoami/language", Some(json!({"language": chosen})))?;
            print(cli, &p, |p| {
                texts::language_choice(
                    &ui,
                    &s(&p["name"]),
                    p["language"]
                        .as_str()
                        .and_then(sandbox_core::Lang::from_tag),
                )
            })
        }
        PrincipalCmd::List => {
            let list = r.get("/principals")?;
            print(cli, &list, |v| crate::lists::principals(v, &ui))
        }
        PrincipalCmd::Qualify { name, reason }
        | PrincipalCmd::Suspend { name, reason }
        | PrincipalCmd::Revoke { name, reason } => {
            let verb = match cmd {
                PrincipalCmd::Qualify { .. } => "qualify",
                PrincipalCmd::Suspend { .. } => "suspend",
                _ => "revoke",
            };
            let p = r.post(
                &format!("/principals/{}/{verb}", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &p, |p| texts::principal_status(&ui, p))
        }
    }
}

fn token_cmd(cli: &Cli, r: &Remote, cmd: &TokenCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        TokenCmd::Issue { name } => {
            let t = r.call("POST", &format!("/principals/{}/tokens", seg(name)), None)?;
            print(cli, &t, |t| texts::token_issued(&ui, t))
        }
        TokenCmd::List { principal } => {
            let path = match principal {
                Some(p) => format!("/tokens?principal={}", seg(p)),
                None => "/tokens".to_string(),
            };
            let list = r.get(&path)?;
            print(cli, &list, |v| crate::lists::tokens(v, &ui))
        }
        TokenCmd::Revoke { id, reason } => {
            let t = r.post(
                &format!("/tokens/{}/revoke", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &t, |t| texts::token_revoked(&ui, t))
        }
    }
}

fn dataset(cli: &Cli, r: &Remote, cmd: &DatasetCmd) -> Result<()> {
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        DatasetCmd::Add { file, policy } => {
            let is_csv = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if !is_csv {
                return Err(Error::Input {
                    path: file.display().to_string(),
                    message: t!(lang, "cli-remote-parquet"),
                });
            }
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload.csv".into());
            let v = r.post(
                "/datasets",
                json!({"policy": read_text(policy)?, "csv": read_text(file)?, "file_name": file_name}),
            )?;
            print(cli, &v, |v| texts::dataset_added(&ui, v))
        }
        DatasetCmd::List => {
            let list = r.get("/datasets")?;
            print(cli, &list, |v| crate::lists::datasets(v, &ui))
        }
        DatasetCmd::Retire { name, reason } => {
            let v = r.post(
                &format!("/datasets/{}/retire", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &v, |v| texts::dataset_retired(&ui, v))
        }
        DatasetCmd::Share {
            name,
            scenario,
            reason,
        } => {
            let d = r.post(
                &format!("/datasets/{}/sharing", seg(name)),
                json!({"scenario": scenario, "reason": reason}),
            )?;
            print(cli, &d, |d| texts::sharing_decided(&ui, d))
        }
        DatasetCmd::Destroy { name, reason } => {
            let d = r.post(
                &format!("/datasets/{}/destroy", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &d, |d| texts::destruction(&ui, d))
        }
        DatasetCmd::Destruction { name } => {
            let d = r.get(&format!("/datasets/{}/destruction", seg(name)))?;
            print(cli, &d, |d| texts::destruction(&ui, d))
        }
        DatasetCmd::Version { name, version } => {
            let s = r.get(&format!("/datasets/{}/versions/{version}", seg(name)))?;
            print(cli, &s, |s| texts::version_standing(&ui, s))
        }
        DatasetCmd::Object {
            name,
            version,
            reason,
        } => {
            let s = r.post(
                &format!("/datasets/{}/versions/{version}/objections", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &s, |s| texts::version_standing(&ui, s))
        }
        DatasetCmd::Suspend {
            name,
            version,
            reason,
        } => {
            let s = r.post(
                &format!("/datasets/{}/versions/{version}/suspend", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &s, |s| texts::version_standing(&ui, s))
        }
        DatasetCmd::Reinstate {
            name,
            version,
            reason,
        } => {
            let s = r.post(
                &format!("/datasets/{}/versions/{version}/reinstate", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &s, |s| texts::version_standing(&ui, s))
        }
        DatasetCmd::Recall {
            name,
            version,
            reason,
        } => {
            let w = r.post(
                &format!("/datasets/{}/versions/{version}/recall", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &w, |w| texts::recalled(&ui, w))
        }
        DatasetCmd::Show { name } => {
            let v = r.get(&format!("/datasets/{}", seg(name)))?;
            print(cli, &v, |v| texts::dataset(&ui, v))
        }
    }
}

fn scenario(cli: &Cli, r: &Remote, cmd: &ScenarioCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        ScenarioCmd::Apply { file } => {
            let x = r.post("/scenarios", json!({"spec": read_text(file)?}))?;
            print(cli, &x, |x| texts::scenario_status(&ui, x))
        }
        ScenarioCmd::Consents { scenario } => {
            let c = r.get(&format!("/scenarios/{}/consents", seg(scenario)))?;
            print(cli, &c, |c| texts::consents(&ui, c))
        }
        ScenarioCmd::Consent {
            scenario,
            dataset,
            object,
        } => {
            let c = r.post(
                &format!("/scenarios/{}/consent", seg(scenario)),
                json!({"dataset": dataset, "objection": object}),
            )?;
            print(cli, &c, |c| texts::consents(&ui, c))
        }
        ScenarioCmd::Answer {
            scenario,
            to,
            dataset,
            text,
        } => {
            let party = match to {
                crate::args::PartyArg::Provider => "provider",
                crate::args::PartyArg::Supervisor => "supervisor",
            };
            let c = r.post(
                &format!("/scenarios/{}/answer", seg(scenario)),
                json!({"party": party, "dataset": dataset, "answer": text}),
            )?;
            print(cli, &c, |c| texts::consents(&ui, c))
        }
        ScenarioCmd::TypeAdd {
            name,
            from,
            description,
        } => {
            let t = r.post(
                "/scenario-types",
                json!({"name": name, "scenario": from, "description": description}),
            )?;
            print(cli, &t, |t| texts::scenario_type(&ui, t))
        }
        ScenarioCmd::Types => {
            let list = r.get("/scenario-types")?;
            print(cli, &list, |v| crate::lists::scenario_types(v, &ui))
        }
        ScenarioCmd::Approve { scenario, reason } => {
            let x = r.post(
                &format!("/scenarios/{}/approve", seg(scenario)),
                json!({"reason": reason}),
            )?;
            print(cli, &x, |x| texts::scenario_status(&ui, x))
        }
        ScenarioCmd::Reject { scenario, reason } => {
            let x = r.post(
                &format!("/scenarios/{}/reject", seg(scenario)),
                json!({"reason": reason}),
            )?;
            print(cli, &x, |x| texts::scenario_status(&ui, x))
        }
        ScenarioCmd::Suspend { scenario, reason }
        | ScenarioCmd::Reinstate { scenario, reason }
        | ScenarioCmd::Revoke { scenario, reason } => {
            let verb = match cmd {
                ScenarioCmd::Suspend { .. } => "suspend",
                ScenarioCmd::Reinstate { .. } => "reinstate",
                _ => "revoke",
            };
            let x = r.post(
                &format!("/scenarios/{}/{verb}", seg(scenario)),
                json!({"reason": reason}),
            )?;
            print(cli, &x, |x| texts::scenario_status(&ui, x))
        }
        ScenarioCmd::List => {
            let list = r.get("/scenarios")?;
            print(cli, &list, |v| crate::lists::scenarios(v, &ui))
        }
        ScenarioCmd::Show { scenario } => {
            let x = r.get(&format!("/scenarios/{}", seg(scenario)))?;
            print(cli, &x, |x| texts::scenario_details(&ui, x))
        }
    }
}

fn usage(cli: &Cli, r: &Remote, cmd: &UsageCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        UsageCmd::Show => {
            let list = r.get("/usage")?;
            print(cli, &list, |l| texts::usage(&ui, l))
        }
        UsageCmd::Settings {
            max_refusals,
            idle_days,
        } => {
            let mut current = r.get("/usage/settings")?;
            if max_refusals.is_some() || idle_days.is_some() {
                let body = json!({
                    "max_refusals": max_refusals.map_or(current["max_refusals"].clone(), Value::from),
                    "idle_days": idle_days.map_or(current["idle_days"].clone(), Value::from),
                });
                current = r.call("PUT", "/usage/settings", Some(body))?;
            }
            print(cli, &current, |c| texts::usage_settings(&ui, c))
        }
    }
}

fn job(cli: &Cli, r: &Remote, cmd: &JobCmd) -> Result<()> {
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        JobCmd::Submit(args) => {
            let module = fs::read(&args.module).map_err(|e| Error::Input {
                path: args.module.display().to_string(),
                message: e.to_string(),
            })?;
            let params: Value = serde_json::from_str(&args.params).map_err(|e| {
                Error::Guest(t!(lang, "cli-params-not-json", error = e.to_string()))
            })?;
            let mut body = json!({
                "scenario": args.scenario,
                "module": base64::engine::general_purpose::STANDARD.encode(&module),
                "params": params,
                "limits": args.limits(),
            });
            if let Some(earlier) = &args.resubmits {
                body["resubmits"] = json!(earlier);
            }
            if !(args.wait.is_finite() && args.wait >= 0.0) {
                return Err(Error::Invalid(t!(lang, "cli-wait-invalid")));
            }
            let j = {
                let _p = crate::progress::Progress::start(
                    t!(
                        lang,
                        "cli-progress-submitting",
                        module = args.module.display().to_string(),
                        seconds = args.wait
                    ),
                    cli.json || args.wait <= 0.0,
                );
                r.post(&format!("/jobs?wait={}", args.wait), body)?
            };
            print(cli, &j, |j| texts::job(&ui, j))?;
            crate::common::job_ended(
                lang,
                &s(&j["id"]),
                &s(&j["status"]),
                j["error"].as_str(),
                Some(args.wait),
            )
        }
        JobCmd::Status { id } => {
            let j = r.get(&format!("/jobs/{}", seg(id)))?;
            print(cli, &j, |j| texts::job(&ui, j))
        }
        JobCmd::List { status, limit } => {
            let mut path = format!("/jobs?limit={limit}");
            if let Some(st) = status {
                path.push_str(&format!("&status={}", seg(st)));
            }
            let list = r.get(&path)?;
            print(cli, &list, |v| crate::lists::jobs(v, &ui))
        }
        JobCmd::Logs { id } => {
            let v = r.get(&format!("/jobs/{}/logs", seg(id)))?;
            print(cli, &v["lines"], texts::log_lines)
        }
        JobCmd::Cancel { id, reason } => {
            let j = r.post(
                &format!("/jobs/{}/cancel", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &j, |j| texts::job(&ui, j))
        }
    }
}

fn output(cli: &Cli, r: &Remote, cmd: &OutputCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        OutputCmd::List => {
            let list = r.get("/outputs?status=all")?;
            print(cli, &list, |v| crate::lists::outputs(v, &ui))
        }
        OutputCmd::Approve { id, reason } => {
            let o = r.post(
                &format!("/outputs/{}/approve", seg(id)),
                json!({"reason": reason}),
            )?;
            // A release names the product it made and how to fetch it.
            let product = if o["status"] == "released" {
                r.get("/products")?
                    .as_array()
                    .and_then(|l| l.iter().find(|p| p["output_id"] == o["id"]).cloned())
            } else {
                None
            };
            print(cli, &o, |o| {
                texts::output_decided(&ui, o, product.as_ref(), None)
            })
        }
        OutputCmd::Reject { id, reason } => {
            let o = r.post(
                &format!("/outputs/{}/reject", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &o, |o| texts::output_decided(&ui, o, None, None))
        }
        OutputCmd::RequestChanges { id, reason } => {
            let o = r.post(
                &format!("/outputs/{}/request-changes", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &o, |o| texts::output_decided(&ui, o, None, None))
        }
        OutputCmd::Checks { id } => {
            let o = r.get(&format!("/outputs/{}", seg(id)))?;
            print(cli, &o["checks"], |_| texts::output_checks(&ui, &o))
        }
        OutputCmd::Show { id, rows } => {
            let o = r.get(&format!("/outputs/{}", seg(id)))?;
            let bytes = r.bytes(&format!("/outputs/{}/file", seg(id)))?;
            let shown = sandbox_runtime::export::show(&s(&o["file_name"]), &bytes, *rows, ui.lang)?;
            print(cli, &o, |o| texts::output_shown(&ui, o, &shown))
        }
        OutputCmd::Download { id, out, format } => {
            let format = format.map_or_else(
                || sandbox_runtime::export::Format::of_path(out),
                crate::args::FormatArg::format,
            );
            let fetching = crate::progress::Progress::start(
                t!(ui.lang, "cli-progress-fetching", id = id.as_str()),
                cli.json,
            );
            let bytes = r.bytes(&format!(
                "/outputs/{}/file?format={}",
                seg(id),
                format.extension()
            ))?;
            drop(fetching);
            crate::common::write_file(out, &bytes)?;
            print(cli, &json!({"file": out, "bytes": bytes.len()}), |_| {
                texts::wrote_file(&ui, out, bytes.len())
            })
        }
    }
}

fn product(cli: &Cli, r: &Remote, cmd: &ProductCmd) -> Result<()> {
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        ProductCmd::List => {
            let list = r.get("/products")?;
            print(cli, &list, |v| crate::lists::products(v, &ui))
        }
        ProductCmd::Show { id } => {
            let p = r.get(&format!("/products/{}", seg(id)))?;
            print(cli, &p["catalog"], |e| texts::product_shown(&ui, e))
        }
        ProductCmd::Withdraw { id, reason } => {
            let w = r.post(
                &format!("/products/{}/withdraw", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &w, |w| texts::product_withdrawn(&ui, w))
        }
        ProductCmd::Grant { id, to } => {
            let g = r.post(
                &format!("/products/{}/grants", seg(id)),
                json!({"grantee": to}),
            )?;
            print(cli, &g, |g| texts::product_granted(&ui, id, g))
        }
        ProductCmd::Holders { id } => {
            let h = r.get(&format!("/products/{}/holders", seg(id)))?;
            print(cli, &h, |h| crate::lists::holders(h, &ui))
        }
        ProductCmd::Download { id, out, format } => {
            let p = r.get(&format!("/products/{}", seg(id)))?;
            let mut names: Vec<String> = p["manifest"]["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect();
            names.push(sandbox_runtime::review::MANIFEST.into());
            names.push(sandbox_runtime::review::SIGNATURE.into());
            let format = format.map(crate::args::FormatArg::format);
            let copies = crate::common::converted_names(&names, format);
            names.extend(copies.iter().map(|(copy, _)| copy.clone()));
            let bar = crate::progress::Progress::bar(
                t!(lang, "cli-progress-downloading", id = id.as_str()),
                names.len() as u64,
                false,
                cli.json,
            );
            write_folder(out, &names, |name| {
                bar.step();
                match (copies.iter().find(|(copy, _)| copy == name), format) {
                    (Some((_, of)), Some(f)) => r.bytes(&format!(
                        "/products/{}/files/{}?format={}",
                        seg(id),
                        seg(of),
                        f.extension()
                    )),
                    _ => r.bytes(&format!("/products/{}/files/{}", seg(id), seg(name))),
                }
            })?;
            drop(bar);
            print(cli, &json!({"dir": out, "files": names}), |_| {
                texts::product_downloaded(&ui, id, names.len(), out)
            })
        }
        ProductCmd::Verify { .. } => Err(Error::Invalid(t!(lang, "cli-remote-verify"))),
    }
}

fn report(cli: &Cli, r: &Remote, cmd: &crate::args::ReportCmd) -> Result<()> {
    use crate::args::ReportCmd;
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        ReportCmd::Compliance {
            from,
            to,
            scenario,
            out,
        } => {
            let mut path = format!("/reports/compliance?from={from}&to={to}");
            if let Some(s) = scenario {
                path.push_str(&format!("&scenario={}", seg(s)));
            }
            let answer = r.get(&path)?;
            let signature = answer["signature"].as_str().unwrap_or_default();
            sandbox_runtime::report::write(out, &answer["report"], signature)?;
            // What the server signed is its pretty-printed JSON: written as it was, the
            // folder verifies.
            sandbox_runtime::report::verify(out, None)?;
            print(cli, &answer["report"], |v| texts::report(&ui, v, Some(out)))
        }
        ReportCmd::Verify { .. } => Err(Error::Invalid(t!(lang, "cli-remote-verify"))),
    }
}

fn incident(cli: &Cli, r: &Remote, cmd: &crate::args::IncidentCmd) -> Result<()> {
    use crate::args::IncidentCmd;
    let ui = remote_ui(cli, r);
    let i = match cmd {
        IncidentCmd::Open {
            grade,
            title,
            description,
        } => r.post(
            "/incidents",
            json!({"grade": grade, "title": title, "description": description}),
        )?,
        IncidentCmd::Log {
            id,
            kind,
            reference,
            to,
            text,
        } => r.post(
            &format!("/incidents/{id}/entries"),
            json!({"kind": kind, "reference": reference, "recipient": to, "text": text}),
        )?,
        IncidentCmd::Close { id, summary } => r.post(
            &format!("/incidents/{id}/close"),
            json!({"summary": summary}),
        )?,
        IncidentCmd::Show { id } => r.get(&format!("/incidents/{id}"))?,
        IncidentCmd::List => {
            let list = r.get("/incidents")?;
            return print(cli, &list, |v| crate::lists::incidents(v, &ui));
        }
    };
    print(cli, &i, |i| texts::incident(&ui, i))
}

fn order(cli: &Cli, r: &Remote, cmd: &crate::args::OrderCmd) -> Result<()> {
    use crate::args::OrderCmd;
    let ui = remote_ui(cli, r);
    let o = match cmd {
        OrderCmd::Issue {
            target_kind,
            target,
            requirement,
            deadline,
        } => r.post(
            "/orders",
            json!({"target_kind": target_kind, "target": target, "requirement": requirement, "deadline": deadline}),
        )?,
        OrderCmd::Answer { id, text } => {
            r.post(&format!("/orders/{id}/answer"), json!({"answer": text}))?
        }
        OrderCmd::Close { id } => r.call("POST", &format!("/orders/{id}/close"), None)?,
        OrderCmd::List => {
            let list = r.get("/orders")?;
            return print(cli, &list, |v| crate::lists::orders(v, &ui));
        }
    };
    print(cli, &o, |o| texts::order(&ui, o))
}

fn org(cli: &Cli, r: &Remote, cmd: &OrgCmd) -> Result<()> {
    let ui = remote_ui(cli, r);
    match cmd {
        OrgCmd::Add {
            code,
            name,
            officer,
            contact,
            qualified_until,
            epsilon_cap,
        } => {
            let o = r.post(
                "/organisations",
                json!({"credit_code": code, "name": name, "security_officer": officer,
                       "security_contact": contact, "qualified_until": qualified_until,
                       "epsilon_cap": epsilon_cap}),
            )?;
            print(cli, &o, |o| texts::organisation(&ui, o))
        }
        OrgCmd::List => {
            let list = r.get("/organisations")?;
            print(cli, &list, |v| crate::lists::organisations(v, &ui))
        }
        OrgCmd::Show { code } => {
            let o = r.get(&format!("/organisations/{}", seg(code)))?;
            print(cli, &o, |o| texts::organisation(&ui, o))
        }
        OrgCmd::Set { code, reason, .. } => {
            let current = r.get(&format!("/organisations/{}", seg(code)))?;
            let entry = crate::common::changed_entry(cmd, &current)?;
            let o = r.call(
                "PUT",
                &format!("/organisations/{}", seg(code)),
                Some(
                    json!({"name": entry.name, "security_officer": entry.security_officer,
                            "security_contact": entry.security_contact,
                            "qualified_until": entry.qualified_until,
                            "epsilon_cap": entry.epsilon_cap, "reason": reason}),
                ),
            )?;
            print(cli, &o, |o| texts::organisation(&ui, o))
        }
        OrgCmd::Assign {
            principal,
            code,
            none,
        } => {
            let code = if *none { None } else { code.clone() };
            let p = r.call(
                "PUT",
                &format!("/principals/{}/organisation", seg(principal)),
                Some(json!({"organisation": code})),
            )?;
            print(cli, &p, |p| texts::principal_assigned(&ui, p))
        }
        OrgCmd::Export { out } => {
            let format = match crate::common::register_format(out) {
                sandbox_runtime::organisations::RegisterFormat::Csv => "csv",
                sandbox_runtime::organisations::RegisterFormat::Json => "json",
            };
            let bytes = r.bytes(&format!("/organisations/export?format={format}"))?;
            crate::common::write_file(out, &bytes)?;
            print(cli, &json!({"file": out, "bytes": bytes.len()}), |_| {
                texts::wrote_file(&ui, out, bytes.len())
            })
        }
    }
}

fn audit(cli: &Cli, r: &Remote, cmd: &AuditCmd) -> Result<()> {
    let lang = cli.language();
    let ui = remote_ui(cli, r);
    match cmd {
        AuditCmd::Log { from, limit } => {
            let page = r.get(&format!("/audit/events?from={from}&limit={limit}"))?;
            if cli.json {
                return print(cli, &page["events"], |_| String::new());
            }
            print(cli, &page, |v| crate::lists::audit_page(v, &ui))
        }
        AuditCmd::Verify => {
            let v = r.get("/audit/verify")?;
            if v["verified"] != Value::Bool(true) {
                return Err(Error::Verify(s(&v["message"])));
            }
            print(cli, &v, |v| texts::audit_verified(&ui, v, true))
        }
        AuditCmd::Prove {
            seq: Some(seq),
            size,
            from: None,
            ..
        } => {
            let path = match size {
                Some(n) => format!("/audit/proof/{seq}?size={n}"),
                None => format!("/audit/proof/{seq}"),
            };
            let proof = r.get(&path)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(&proof)?)?;
            Ok(())
        }
        _ => Err(not_remote(
            lang,
            "audit export/checkpoint/retention/verify-proof",
        )),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Init { .. } => "init",
        Command::Migrate { .. } => "migrate",
        Command::Serve { .. } => "serve",
        Command::Scheduler { .. } => "scheduler",
        Command::Executor { .. } => "executor",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
        Command::Demo(_) => "demo",
        Command::Key(_) => "key protect/rotate",
        Command::Backup(_) => "backup",
        Command::Restore { .. } => "restore",
        Command::Dev(_) => "dev",
        Command::Query(_) => "query",
        Command::Audit(_) => "audit export/checkpoint/retention/verify-proof",
        _ => "this command",
    }
}
