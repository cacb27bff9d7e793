//! Prometheus metrics (`GET /metrics`, OpenMetrics text, for operators and supervisors).
//!
//! Counters and histograms are kept as requests and jobs happen; the gauges that describe
//! the domain (queue, scenarios, budgets, outputs awaiting review, the audit log) are read
//! from the store at each scrape. Labels are bounded: routes are the router's templates
//! (`/api/v1/jobs/{id}`), never the paths asked for, and scenarios are named by id.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use sandbox_core::{Error, JobStatus, OutputStatus, Result, ScenarioStatus};
use sandbox_runtime::{Domain, gauges};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
}

type Buckets = fn() -> Histogram;

fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn job_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<HttpLabels, Counter>,
    latency: Family<RouteLabels, Histogram, Buckets>,
    refusals: Counter,
    jobs_ended: Family<StatusLabels, Counter>,
    job_seconds: Family<StatusLabels, Histogram, Buckets>,
    jobs_by_status: Family<StatusLabels, Gauge>,
    jobs_running_here: Gauge,
    job_slots: Gauge,
    scenarios_by_status: Family<StatusLabels, Gauge>,
    epsilon_spent: Family<ScenarioLabels, Gauge<f64, AtomicU64>>,
    epsilon_total: Family<ScenarioLabels, Gauge<f64, AtomicU64>>,
    outputs_by_status: Family<StatusLabels, Gauge>,
    audit_events: Gauge,
    products: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("sandbox")),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets as Buckets),
            refusals: Counter::default(),
            jobs_ended: Family::default(),
            job_seconds: Family::new_with_constructor(job_buckets as Buckets),
            jobs_by_status: Family::default(),
            jobs_running_here: Gauge::default(),
            job_slots: Gauge::default(),
            scenarios_by_status: Family::default(),
            epsilon_spent: Family::default(),
            epsilon_total: Family::default(),
            outputs_by_status: Family::default(),
            audit_events: Gauge::default(),
            products: Gauge::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "http_requests",
                "HTTP requests answered, by route template and status",
                m.requests.clone(),
            );
            r.register(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by route template",
                m.latency.clone(),
            );
            r.register(
                "api_refusals",
                "Calls refused with 401 or 403 (each is an api.refused audit event)",
                m.refusals.clone(),
            );
            r.register(
                "jobs_ended",
                "Jobs this process ran to an end, by final status",
                m.jobs_ended.clone(),
            );
            r.register(
                "job_duration_seconds",
                "Wall time of the jobs this process ran, by final status",
                m.job_seconds.clone(),
            );
            r.register(
                "jobs",
                "Jobs in the domain by status",
                m.jobs_by_status.clone(),
            );
            r.register(
                "jobs_running_here",
                "Jobs this process is running",
                m.jobs_running_here.clone(),
            );
            r.register(
                "job_slots",
                "Jobs this process may run at once",
                m.job_slots.clone(),
            );
            r.register(
                "scenarios",
                "Scenarios by status",
                m.scenarios_by_status.clone(),
            );
            r.register(
                "scenario_epsilon_spent",
                "Privacy budget spent, by scenario id",
                m.epsilon_spent.clone(),
            );
            r.register(
                "scenario_epsilon_total",
                "Privacy budget granted, by scenario id",
                m.epsilon_total.clone(),
            );
            r.register(
                "outputs",
                "Outputs by review status",
                m.outputs_by_status.clone(),
            );
            r.register(
                "audit_events",
                "Events in the audit log",
                m.audit_events.clone(),
            );
            r.register("products", "Released products", m.products.clone());
        }
        m
    }

    /// Counts an answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
        if status == 401 || status == 403 {
            self.refusals.inc();
        }
    }

    /// Counts a job that ended.
    pub fn job_ended(&self, status: &str, elapsed: Duration) {
        let labels = StatusLabels {
            status: status.to_string(),
        };
        self.jobs_ended.get_or_create(&labels).inc();
        self.job_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Reads the domain's gauges (for `actor`) and encodes everything as OpenMetrics text.
    pub fn render(
        &self,
        domain: &Domain,
        actor: &str,
        running: usize,
        slots: usize,
    ) -> Result<String> {
        let g = gauges::read(domain, actor)?;
        let set =
            |family: &Family<StatusLabels, Gauge>, states: Vec<&str>, rows: &[(String, i64)]| {
                for s in states {
                    let n = rows.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                    family
                        .get_or_create(&StatusLabels {
                            status: (*s).to_string(),
                        })
                        .set(n);
                }
            };
        set(
            &self.jobs_by_status,
            JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
            &g.jobs_by_status,
        );
        set(
            &self.scenarios_by_status,
            ScenarioStatus::ALL.iter().map(|s| s.as_str()).collect(),
            &g.scenarios_by_status,
        );
        set(
            &self.outputs_by_status,
            OutputStatus::ALL.iter().map(|s| s.as_str()).collect(),
            &g.outputs_by_status,
        );
        for (id, spent, total) in g.budgets {
            let labels = ScenarioLabels {
                scenario: id.to_string(),
            };
            self.epsilon_spent.get_or_create(&labels).set(spent);
            self.epsilon_total.get_or_create(&labels).set(total);
        }
        self.audit_events.set(g.audit_events);
        self.products.set(g.products);
        self.jobs_running_here.set(running as i64);
        self.job_slots.set(slots as i64);
        let registry = self
            .registry
            .lock()
            .map_err(|_| Error::Internal("metrics registry poisoned".into()))?;
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .map_err(|e| Error::Internal(format!("metrics: {e}")))?;
        Ok(text)
    }
}
