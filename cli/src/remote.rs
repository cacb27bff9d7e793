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
    AuditCmd, BudgetCmd, Cli, Command, DatasetCmd, JobCmd, OutputCmd, PrincipalCmd, ProductCmd,
    ReviewCmd, ScenarioCmd, StopCmd, TokenCmd, UsageCmd,
};
use crate::common::{read_text, scenario_details, write_folder};

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
    fn new(url: &str, token: &str) -> Result<Remote> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "--server {url}: give an http:// or https:// URL"
            )));
        }
        if sandbox_runtime::tokens::parse(token).is_none() {
            return Err(Error::Unauthenticated(
                "SANDBOX_TOKEN (or --token) is not a Sandbox API token (sbx_<id>_<secret>)".into(),
            ));
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

fn job_text(j: &Value) -> String {
    let mut t = format!("job {} {}", s(&j["id"]), s(&j["status"]));
    if let Some(p) = j["queue_position"].as_i64() {
        t.push_str(&format!(" ({p} ahead in the queue)"));
    }
    if j["progress"].is_object() {
        let p = &j["progress"];
        t.push_str(&format!(
            " ({} ms of {}, {} queries, fuel {} of {})",
            s(&p["elapsed_ms"]),
            s(&p["deadline_ms"]),
            s(&p["queries"]),
            s(&p["fuel_used"]),
            s(&p["fuel_limit"])
        ));
    }
    if let Some(e) = j["error"].as_str() {
        t.push_str(&format!(": {e}"));
    }
    for o in j["outputs"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "\n  output {} `{}` ({}) {}",
            s(&o["id"]),
            s(&o["name"]),
            s(&o["kind"]),
            s(&o["status"])
        ));
    }
    t
}

fn lines(v: &Value, line: impl Fn(&Value) -> String) -> String {
    v.as_array()
        .map(|a| a.iter().map(line).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn scenario_text(r: &Value) -> String {
    format!(
        "scenario {} `{}` is {}",
        s(&r["id"]),
        s(&r["spec"]["name"]),
        s(&r["status"])
    )
}

fn output_text(o: &Value) -> String {
    format!("output {} is {}", s(&o["id"]), s(&o["status"]))
}

/// Runs `cli`'s command against the server at `url`.
pub fn run(cli: &Cli, url: &str) -> Result<()> {
    let token = cli.token.as_deref().ok_or_else(|| {
        Error::Unauthenticated("--server needs a token: set SANDBOX_TOKEN (or --token)".into())
    })?;
    let r = Remote::new(url, token)?;
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
            print(cli, &current, |_| crate::common::settings_text(&settings))
        }
        Command::Whoami => {
            let p = r.get("/whoami")?;
            print(cli, &p, |p| {
                format!("{} ({}, {})", s(&p["name"]), s(&p["role"]), s(&p["status"]))
            })
        }
        Command::Budget(BudgetCmd::Show { scenario }) => {
            let b = r.get(&format!("/scenarios/{}/budget", seg(scenario)))?;
            print(cli, &b, |b| {
                format!(
                    "scenario {}: ε spent {} of {}",
                    s(&b["scenario_id"]),
                    s(&b["epsilon_spent"]),
                    s(&b["epsilon_total"])
                )
            })
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
                    return print(cli, &v, |v| {
                        crate::common::stops_text(v.as_array().map_or(&[][..], Vec::as_slice))
                    });
                }
            };
            let v = r.post(&path, body)?;
            print(cli, &v, |v| match v["id"].as_i64() {
                Some(id) if v.get("lifted").is_none() => format!(
                    "stop {id} in force; {} running job(s) interrupted",
                    v["interrupted"].as_array().map_or(0, Vec::len)
                ),
                _ => "stop lifted".to_string(),
            })
        }
        other => Err(not_remote(command_name(other))),
    }
}

fn review(cli: &Cli, r: &Remote, cmd: &ReviewCmd) -> Result<()> {
    match cmd {
        ReviewCmd::Show { job } => {
            let t = r.get(&format!("/jobs/{}/thread", seg(job)))?;
            print(cli, &t, crate::common::thread_text)
        }
        ReviewCmd::Comment { job, text } => {
            let t = r.post(
                &format!("/jobs/{}/comments", seg(job)),
                json!({"body": text}),
            )?;
            print(cli, &t, crate::common::thread_text)
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
            print(cli, &v, |v| {
                crate::common::decided_text(v.as_array().map_or(&[][..], Vec::as_slice))
            })
        }
    }
}

/// A command that works on the data directory only.
fn not_remote(name: &str) -> Error {
    Error::Invalid(format!(
        "`{name}` works on the data directory, not through a server: run it on the server's machine without --server"
    ))
}

fn principal(cli: &Cli, r: &Remote, cmd: &PrincipalCmd) -> Result<()> {
    match cmd {
        PrincipalCmd::Add { name, role } => {
            let p = r.post("/principals", json!({"name": name, "role": role}))?;
            print(cli, &p, |p| {
                format!("added {} ({})", s(&p["name"]), s(&p["role"]))
            })
        }
        PrincipalCmd::Language { language } => {
            let chosen = crate::common::parse_language_choice(language)?;
            let p = r.call("PUT", "/whoami/language", Some(json!({"language": chosen})))?;
            print(cli, &p, |p| {
                crate::common::language_text(
                    &s(&p["name"]),
                    p["language"]
                        .as_str()
                        .and_then(sandbox_core::Lang::from_tag),
                )
            })
        }
        PrincipalCmd::List => {
            let list = r.get("/principals")?;
            print(cli, &list, |v| crate::lists::principals(v, cli.language()))
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
            print(cli, &p, |p| {
                format!(
                    "{} ({}) is {}",
                    s(&p["name"]),
                    s(&p["role"]),
                    s(&p["status"])
                )
            })
        }
    }
}

fn token_cmd(cli: &Cli, r: &Remote, cmd: &TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Issue { name } => {
            let t = r.call("POST", &format!("/principals/{}/tokens", seg(name)), None)?;
            print(cli, &t, |t| {
                format!(
                    "token {} for {} (shown once; only its hash is kept):\n{}",
                    s(&t["id"]),
                    s(&t["principal"]),
                    s(&t["token"])
                )
            })
        }
        TokenCmd::List { principal } => {
            let path = match principal {
                Some(p) => format!("/tokens?principal={}", seg(p)),
                None => "/tokens".to_string(),
            };
            let list = r.get(&path)?;
            print(cli, &list, |v| crate::lists::tokens(v, cli.language()))
        }
        TokenCmd::Revoke { id, reason } => {
            let t = r.post(
                &format!("/tokens/{}/revoke", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &t, |t| {
                format!("token {} of {} revoked", s(&t["id"]), s(&t["principal"]))
            })
        }
    }
}

fn dataset(cli: &Cli, r: &Remote, cmd: &DatasetCmd) -> Result<()> {
    match cmd {
        DatasetCmd::Add { file, policy } => {
            let is_csv = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if !is_csv {
                return Err(Error::Input {
                    path: file.display().to_string(),
                    message: "through a server, datasets are registered from CSV; register Parquet on the server's machine".into(),
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
            print(cli, &v, crate::common::dataset_added_text)
        }
        DatasetCmd::List => {
            let list = r.get("/datasets")?;
            print(cli, &list, |v| crate::lists::datasets(v, cli.language()))
        }
        DatasetCmd::Retire { name, reason } => {
            let v = r.post(
                &format!("/datasets/{}/retire", seg(name)),
                json!({"reason": reason}),
            )?;
            print(cli, &v, |v| {
                format!(
                    "dataset {} is retired: refused for new scenarios",
                    s(&v["name"])
                )
            })
        }
        DatasetCmd::Show { name } => {
            let v = r.get(&format!("/datasets/{}", seg(name)))?;
            print(cli, &v, |v| {
                serde_json::to_string_pretty(v).unwrap_or_default()
            })
        }
    }
}

fn scenario(cli: &Cli, r: &Remote, cmd: &ScenarioCmd) -> Result<()> {
    match cmd {
        ScenarioCmd::Apply { file } => {
            let x = r.post("/scenarios", json!({"spec": read_text(file)?}))?;
            print(cli, &x, scenario_text)
        }
        ScenarioCmd::Approve { scenario, reason } => {
            let x = r.post(
                &format!("/scenarios/{}/approve", seg(scenario)),
                json!({"reason": reason}),
            )?;
            print(cli, &x, scenario_text)
        }
        ScenarioCmd::Reject { scenario, reason } => {
            let x = r.post(
                &format!("/scenarios/{}/reject", seg(scenario)),
                json!({"reason": reason}),
            )?;
            print(cli, &x, scenario_text)
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
            print(cli, &x, scenario_text)
        }
        ScenarioCmd::List => {
            let list = r.get("/scenarios")?;
            print(cli, &list, |v| crate::lists::scenarios(v, cli.language()))
        }
        ScenarioCmd::Show { scenario } => {
            let x = r.get(&format!("/scenarios/{}", seg(scenario)))?;
            print(cli, &x, scenario_details)
        }
    }
}

fn usage(cli: &Cli, r: &Remote, cmd: &UsageCmd) -> Result<()> {
    match cmd {
        UsageCmd::Show => {
            let list = r.get("/usage")?;
            print(cli, &list, |l| {
                lines(l, |u| {
                    format!(
                        "{:>4} {:<28} {:<10} jobs {:>4}  idle {:>5}  refused {} ({} counted)  {}",
                        s(&u["id"]),
                        s(&u["name"]),
                        s(&u["status"]),
                        s(&u["jobs"]),
                        s(&u["idle_days"]),
                        s(&u["refused"]),
                        s(&u["counted_refusals"]),
                        u["flags"]
                            .as_array()
                            .map(|f| f.iter().map(s).collect::<Vec<_>>().join(","))
                            .unwrap_or_default()
                    )
                })
            })
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
            print(cli, &current, |c| {
                format!(
                    "a scenario is suspended at {} over-scope refusals (0: never) and flagged idle after {} days",
                    s(&c["max_refusals"]),
                    s(&c["idle_days"])
                )
            })
        }
    }
}

fn job(cli: &Cli, r: &Remote, cmd: &JobCmd) -> Result<()> {
    match cmd {
        JobCmd::Submit(args) => {
            let module = fs::read(&args.module).map_err(|e| Error::Input {
                path: args.module.display().to_string(),
                message: e.to_string(),
            })?;
            let params: Value = serde_json::from_str(&args.params)
                .map_err(|e| Error::Guest(format!("params are not JSON: {e}")))?;
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
                return Err(Error::Invalid("--wait: seconds, at least 0".into()));
            }
            let j = {
                let _p = crate::progress::Progress::start(
                    format!(
                        "submitting {}, waiting up to {} s",
                        args.module.display(),
                        args.wait
                    ),
                    cli.json || args.wait <= 0.0,
                );
                r.post(&format!("/jobs?wait={}", args.wait), body)?
            };
            print(cli, &j, job_text)?;
            crate::common::job_ended(
                &s(&j["id"]),
                &s(&j["status"]),
                j["error"].as_str(),
                Some(args.wait),
            )
        }
        JobCmd::Status { id } => {
            let j = r.get(&format!("/jobs/{}", seg(id)))?;
            print(cli, &j, job_text)
        }
        JobCmd::List { status, limit } => {
            let mut path = format!("/jobs?limit={limit}");
            if let Some(st) = status {
                path.push_str(&format!("&status={}", seg(st)));
            }
            let list = r.get(&path)?;
            print(cli, &list, |v| crate::lists::jobs(v, cli.language()))
        }
        JobCmd::Logs { id } => {
            let v = r.get(&format!("/jobs/{}/logs", seg(id)))?;
            print(cli, &v["lines"], |l| {
                lines(l, |x| format!("[{}] {}", s(&x["level"]), s(&x["text"])))
            })
        }
        JobCmd::Cancel { id, reason } => {
            let j = r.post(
                &format!("/jobs/{}/cancel", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &j, job_text)
        }
    }
}

fn output(cli: &Cli, r: &Remote, cmd: &OutputCmd) -> Result<()> {
    match cmd {
        OutputCmd::List => {
            let list = r.get("/outputs?status=all")?;
            print(cli, &list, |v| crate::lists::outputs(v, cli.language()))
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
            print(cli, &o, |o| match &product {
                Some(p) => format!(
                    "output {} is released as product {}\nfetch it with: sandbox product download {} --out DIR",
                    s(&o["id"]),
                    s(&p["id"]),
                    s(&p["id"])
                ),
                None => output_text(o),
            })
        }
        OutputCmd::Reject { id, reason } => {
            let o = r.post(
                &format!("/outputs/{}/reject", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &o, output_text)
        }
        OutputCmd::RequestChanges { id, reason } => {
            let o = r.post(
                &format!("/outputs/{}/request-changes", seg(id)),
                json!({"reason": reason}),
            )?;
            print(cli, &o, output_text)
        }
        OutputCmd::Checks { id } => {
            let o = r.get(&format!("/outputs/{}", seg(id)))?;
            print(cli, &o["checks"], |c| {
                let mut l = vec![format!(
                    "output {} ({}) is {}",
                    s(&o["id"]),
                    s(&o["name"]),
                    s(&o["status"])
                )];
                for x in c["results"].as_array().into_iter().flatten() {
                    l.push(format!(
                        "  {:<14} {:<7} {}",
                        s(&x["check"]),
                        s(&x["outcome"]),
                        s(&x["reason"])
                    ));
                }
                l.join("\n")
            })
        }
        OutputCmd::Show { id, rows } => {
            let o = r.get(&format!("/outputs/{}", seg(id)))?;
            let bytes = r.bytes(&format!("/outputs/{}/file", seg(id)))?;
            let shown = sandbox_runtime::export::show(&s(&o["file_name"]), &bytes, *rows)?;
            print(cli, &o, |o| {
                format!(
                    "output {} `{}` ({}, {})\n{shown}",
                    s(&o["id"]),
                    s(&o["name"]),
                    s(&o["kind"]),
                    s(&o["status"])
                )
            })
        }
        OutputCmd::Download { id, out, format } => {
            let format = format.map_or_else(
                || sandbox_runtime::export::Format::of_path(out),
                crate::args::FormatArg::format,
            );
            let bytes = r.bytes(&format!(
                "/outputs/{}/file?format={}",
                seg(id),
                format.extension()
            ))?;
            crate::common::write_file(out, &bytes)?;
            print(cli, &json!({"file": out, "bytes": bytes.len()}), |_| {
                format!("wrote {} ({} bytes)", out.display(), bytes.len())
            })
        }
    }
}

fn product(cli: &Cli, r: &Remote, cmd: &ProductCmd) -> Result<()> {
    match cmd {
        ProductCmd::List => {
            let list = r.get("/products")?;
            print(cli, &list, |v| crate::lists::products(v, cli.language()))
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
            write_folder(out, &names, |name| {
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
            print(cli, &json!({"dir": out, "files": names}), |_| {
                format!("downloaded {} file(s) of product {id} to {}", names.len(), out.display())
            })
        }
        ProductCmd::Verify { .. } => Err(Error::Invalid(
            "product verify checks a local folder against the domain key: run it without --server (download the product first)".into(),
        )),
    }
}

fn audit(cli: &Cli, r: &Remote, cmd: &AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Log { from, limit } => {
            let page = r.get(&format!("/audit/events?from={from}&limit={limit}"))?;
            if cli.json {
                return print(cli, &page["events"], |_| String::new());
            }
            print(cli, &page, |v| crate::lists::audit_page(v, cli.language()))
        }
        AuditCmd::Verify => {
            let v = r.get("/audit/verify")?;
            if v["verified"] != Value::Bool(true) {
                return Err(Error::Verify(s(&v["message"])));
            }
            print(cli, &v, |v| {
                format!(
                    "audit log verified by the server: {} events, root {}, {} signed checkpoint(s)",
                    s(&v["events"]),
                    s(&v["root"]),
                    s(&v["checkpoints"])
                )
            })
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
        _ => Err(not_remote("audit export/checkpoint/retention/verify-proof")),
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Init { .. } => "init",
        Command::Serve { .. } => "serve",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
        Command::Demo(_) => "demo",
        Command::Dev(_) => "dev",
        Command::Query(_) => "query",
        Command::Audit(_) => "audit export/checkpoint/retention/verify-proof",
        _ => "this command",
    }
}
