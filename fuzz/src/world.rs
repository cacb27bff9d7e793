//! The domain the SQL and ingest targets run against, built once per process: principals,
//! the `people` dataset twice (once per mode) whose protected values are canaries the
//! oracle looks for in every answer, and a scenario over each.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use sandbox_runtime::identity::{self, Role};
use sandbox_runtime::{Domain, catalog, scenarios};

/// The operator who approves.
pub const OPERATOR: &str = "ops-fuzz";
/// The provider who registers.
pub const PROVIDER: &str = "psb-fuzz";
/// The developer who asks.
pub const DEVELOPER: &str = "dev-fuzz";
/// A supervisor.
pub const SUPERVISOR: &str = "sup-fuzz";

/// What every protected text value of the fixture contains, and nothing else does.
pub const CANARY: &str = "CANARY";

/// Rows of `people`.
pub const ROWS: usize = 240;

/// The districts, `people`'s public group key.
pub const DISTRICTS: [&str; 6] = ["heping", "hedong", "hexi", "nankai", "hebei", "hongqiao"];

/// A domain with principals only, in a folder kept for the life of the process.
pub fn principals_domain() -> (tempfile::TempDir, Domain) {
    let dir = tempfile::Builder::new()
        .prefix("sandbox-fuzz-")
        .tempdir()
        .expect("a temporary folder");
    let domain = Domain::init(&dir.path().join("domain")).expect("a new domain");
    identity::add(&domain, None, OPERATOR, Role::Operator).expect("operator");
    for (name, role) in [
        (PROVIDER, Role::Provider),
        (DEVELOPER, Role::Developer),
        (SUPERVISOR, Role::Supervisor),
    ] {
        identity::add(&domain, Some(OPERATOR), name, role).expect("principal");
    }
    // The fuzzer refuses queries by the million: usage monitoring would suspend the
    // scenarios after a few of them.
    let conn = domain.conn().expect("store");
    sandbox_store::scenarios::set_usage_settings(
        &conn,
        sandbox_store::scenarios::UsageSettings {
            max_refusals: 0,
            idle_days: 90,
        },
    )
    .expect("usage settings");
    (dir, domain)
}

/// The SQL targets' domain.
pub struct World {
    _dir: tempfile::TempDir,
    /// The domain.
    pub domain: Domain,
    /// The scenario over `people` (differential privacy).
    pub dp: i64,
    /// The scenario over `people_t` (threshold mode).
    pub threshold: i64,
}

/// A fixture built afresh every `uses` inputs. What a target's inputs write (queries and
/// their audit events, ledger rows, released cells, dataset versions) grows with every
/// input, and so would the cost of the next one: a fresh fixture every so many inputs
/// keeps a long run's rate steady, its files few, and the state an input meets small.
pub struct Recycled<T> {
    build: fn() -> T,
    uses: usize,
    slot: Mutex<Option<(Arc<T>, usize)>>,
}

impl<T> Recycled<T> {
    /// A fixture made by `build`, replaced after `uses` inputs.
    pub const fn new(build: fn() -> T, uses: usize) -> Recycled<T> {
        Recycled {
            build,
            uses,
            slot: Mutex::new(None),
        }
    }

    /// The fixture for one input.
    pub fn get(&self) -> Arc<T> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *slot {
            Some((fixture, n)) if *n < self.uses => {
                *n += 1;
                fixture.clone()
            }
            _ => {
                // The old fixture (its folder) goes before the new one is made.
                *slot = None;
                let fixture = Arc::new((self.build)());
                *slot = Some((fixture.clone(), 1));
                fixture
            }
        }
    }
}

/// Inputs the SQL targets' [`World`] serves before it is built afresh.
pub const WORLD_USES: usize = 20_000;

/// The [`World`] for one input.
pub fn world() -> Arc<World> {
    static WORLD: Recycled<World> = Recycled::new(build_world, WORLD_USES);
    WORLD.get()
}

fn build_world() -> World {
    let (dir, domain) = principals_domain();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, people_csv()).expect("write people.csv");
    catalog::add(&domain, PROVIDER, &csv, &people_policy("people", "dp")).expect("people");
    catalog::add(
        &domain,
        PROVIDER,
        &csv,
        &people_policy("people_t", "threshold"),
    )
    .expect("people_t");
    let dp = approved(&domain, "fuzz-dp", "people", "dp");
    let threshold = approved(&domain, "fuzz-threshold", "people_t", "threshold");
    World {
        _dir: dir,
        domain,
        dp,
        threshold,
    }
}

/// A test policy: the catalog fields every policy needs, dataset `name` with `privacy_unit
/// = "id"` (a keyed-hash join key, at most two rows per unit) in `mode`, then
/// `columns_and_disclosure` (its other `[[column]]`s and its `[disclosure]`).
pub fn test_policy(name: &str, mode: &str, columns_and_disclosure: &str) -> String {
    format!(
        r#"
[dataset]
name = "{name}"
title = "Test dataset {name}"
summary = "A dataset of the tests"
provider = "Test provider"
provider_code = "11120000MB1234567X"
industry = "testing"
time_covered = "2025-01/2025-12"
area_covered = "nowhere"
update_frequency = "never"
share_type = "conditional"
open_type = "not_shared"
privacy_unit = "id"
max_rows_per_unit = 2
mode = "{mode}"

[[column]]
name = "id"
level = 4
access = "join_key"
desensitize = "keyed_hash"
description = "Unit"
{columns_and_disclosure}"#
    )
}

/// The policy of `people` under `name` in `mode`: a keyed-hash unit, a phone no query may
/// touch, a public group key, two bounded values, a name and a birth date to filter on.
pub fn people_policy(name: &str, mode: &str) -> String {
    test_policy(
        name,
        mode,
        r#"
[[column]]
name = "phone"
level = 4
access = "none"
description = "Mobile number"

[[column]]
name = "district"
level = 2
access = "group"
categories = ["heping", "hedong", "hexi", "nankai", "hebei", "hongqiao"]
description = "District"

[[column]]
name = "age"
level = 3
access = "aggregate"
bounds = [0, 120]
description = "Age"

[[column]]
name = "income"
level = 3
access = "aggregate"
bounds = [0, 500000]
description = "Yearly income"

[[column]]
name = "name"
level = 3
access = "filter"
description = "Name"

[[column]]
name = "born"
level = 3
access = "filter"
description = "Date of birth"

[disclosure]
min_group_size = 10
max_output_rows = 1000
"#,
    )
}

fn approved(domain: &Domain, name: &str, dataset: &str, mode: &str) -> i64 {
    let today = chrono::Utc::now().date_naive();
    let until = today + chrono::Days::new(365);
    let text = format!(
        r#"name = "{name}"
purpose = "Fuzzing the mediator with every query it may be sent"
valid_from = "{today}"
valid_until = "{until}"
response_plan = "the operator's duty officer is called; the scenario's jobs are stopped; the developer notifies the data bureau within the hour"
mode = "{mode}"
[budget]
epsilon = 100.0
epsilon_per_query = 0.0001
[[dataset]]
name = "{dataset}"
columns = ["id", "district", "age", "income", "name", "born"]
[agreement]
rights_and_obligations = "the developer uses the data for the stated purpose only and keeps the products' scope"
security_requirements = "no attempt to re-identify anyone; credentials kept by the named developer only"
legal_basis = "the data bureau's authorization of the public data operation"
breach = "suspension of the scenario, revocation of the authorization and liability under the agreement"
"#
    );
    let s = scenarios::apply(domain, DEVELOPER, &text).expect("scenario");
    let key = s.id.to_string();
    sandbox_runtime::consent::consent(domain, PROVIDER, &key, None, None).expect("consent");
    sandbox_runtime::consent::consent(domain, SUPERVISOR, &key, None, None).expect("consent");
    scenarios::decide(domain, OPERATOR, &key, true, None)
        .expect("approval")
        .id
}

/// A number that looks random, from `n` (SplitMix64).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Row `n`'s income: six irregular decimals, so that no aggregate of several rows and no
/// quantile candidate equals one by chance.
pub fn income(n: usize) -> f64 {
    100_000.0 + (mix(n as u64) % 300_000_000_000) as f64 / 1_000_000.0
}

/// The rows of `people` as CSV (units repeat: up to two rows each).
pub fn people_csv() -> String {
    let mut out = String::from("id,phone,district,age,income,name,born\n");
    for n in 0..ROWS {
        let unit = n * 3 / 4;
        let name = if n % 7 == 0 {
            format!("王伟-{CANARY}-{n}")
        } else {
            format!("{CANARY}NAME-{n}")
        };
        out.push_str(&format!(
            "{CANARY}ID-{unit},{CANARY}PHONE-{n:08},{},{},{:.6},{name},{}\n",
            DISTRICTS[n % DISTRICTS.len()],
            18 + mix(n as u64 + 7) % 70,
            income(n),
            chrono::NaiveDate::from_ymd_opt(1950, 1, 1)
                .map(|d| d + chrono::Days::new(mix(n as u64 + 11) % 20_000))
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ));
    }
    out
}

/// Whether `path` holds anything whose name starts with `prefix`.
pub fn holds(path: &Path, prefix: &str) -> bool {
    std::fs::read_dir(path).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
    })
}
