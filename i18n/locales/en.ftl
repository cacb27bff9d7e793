## Sandbox's messages in English. Every id here exists in zh-CN.ftl with the same
## variables (the catalogue's tests hold it). Stable identifiers (statuses, rules, checks)
## stay in data; these are their words.

app-name = Sandbox
console-name = Sandbox review console

## Roles

role-provider = provider
role-operator = operator
role-developer = developer
role-supervisor = supervisor
role-admin = admin

## The console's frame

nav-pending = Pending
nav-scenarios = Scenarios and budgets
nav-products = Products
nav-audit = Audit trail
sign-in = Sign in
sign-out = Sign out
sign-in-help = Operators, supervisors, developers, providers and data users sign in with the API token an operator issued them. The token is not kept in the browser; a session cookie is. An operator issues one with
sign-in-token = API token
sign-in-no-token = Give an API token.
sign-in-too-many = Too many failed sign-ins from this address; try again in a minute.
language-unknown = Choose Simplified Chinese or English.

## Problems

problem-internal = Something went wrong
problem-internal-detail = See the server log.
problem-not-found = Not found
problem-bad-request = Bad request
problem-refused = Refused
refused-cross-origin = The form was posted from another site.
refused-csrf = The form did not carry this session's secret: reload the page and try again.

## Column headings

col-output = Output
col-kind = Kind
col-status = Status
col-checks = Checks
col-scenario = Scenario
col-submitted-by = Submitted by
col-staged = Staged
col-check = Check
col-outcome = Outcome
col-why = Why
col-answer = Answer
col-mechanism = Mechanism or rule
col-when = When
col-who = Who
col-tier = Tier
col-decision = Decision
col-reason = Reason
col-actor = Actor
col-action = Action
col-subject = Subject
col-details = Details
col-product = Product
col-released-by = Released by
col-released = Released
col-files = Files
col-developer = Developer
col-valid-until = Valid until
col-epsilon = ε spent / granted
col-jobs = Jobs
col-queries = Queries answered / refused
col-attention = Attention

## Pending outputs

dashboard-title = Pending outputs
dashboard-heading = Outputs awaiting review
dashboard-yours = Awaiting your decision ({ $tier })
dashboard-none = Nothing awaits you.
dashboard-others = Awaiting the other tier

## Tables

table-empty = An empty table.
table-first-rows = The first { $shown } of { $total } rows are shown; the product holds all of them.
table-rows = { $total ->
    [one] 1 row.
   *[other] { $total } rows.
}
bytes = { $n ->
    [one] 1 byte
   *[other] { $n } bytes
}

## One output

output-heading = Output { $name }
output-id = Output id
output-datasets = Datasets
output-job = Job
output-job-by = { $job }, submitted by { $submitter }
output-module = Module
checks-heading = Automated checks
queries-heading = Provenance: the queries this job made
col-accuracy = 95 % interval
accuracy-rounded = rounded to { $unit }
accuracy-withheld = { $count ->
    [one] one cell withheld (too few to mean anything)
   *[other] { $count } cells withheld (too few to mean anything)
}
interval-title = Half-width of the 95 % interval the job's answer gave this column: the true value lies within it 19 times in 20.
table-interval-note = ± beside a column: the half-width of its 95 % interval, from the job's answers. — : withheld (an average, variance or quantile of too few to mean anything) or empty.
col-request = Request
open-request = Open the request
decide-confirm = I have read the outputs and their checks, and confirm this decision.
request-title = Review request of job { $job }
request-awaiting = Awaiting
awaiting-operator = the operator's review
awaiting-supervisor = the supervisor's review
awaiting-developer = the developer's changes
awaiting-none = nothing: every output is decided
request-job = Job { $job }
request-no-outputs = This job staged no outputs.
request-decide-all = Your decision applies to every output of this request that awaits your tier.
request-decided = Recorded: { $decision }, for every output that awaited your tier.
thread-heading = Thread
thread-empty = No comments or decisions yet.
thread-comment = comment
thread-write = Write to the developer and the other reviewers
thread-post = Post comment
thread-posted = Your comment was posted.
thread-incomplete = The comment form was not complete.
download-as = Download the table as
product-files = Files
scenario-heading = Scenario { $name }
scenario-purpose = Purpose
scenario-valid = Valid
scenario-mode = Mode
scenario-per-query = at most { $epsilon } per query
agreement-heading = Agreement
agreement-response-plan = Response plan for a security incident
agreement-rights = Rights and obligations
agreement-security = Security requirements
agreement-legal-basis = Legal basis
agreement-breach = Breach
agreement-terms = Terms
agreement-before-terms = approved before an agreement's terms were asked for
scenario-columns = Datasets and columns asked for
scenario-level4 = { $count ->
    [one] One column asked for is at level 4 (the most sensitive): check that the purpose needs it, and how it is desensitized.
   *[other] { $count } columns asked for are at level 4 (the most sensitive): check that the purpose needs each, and how it is desensitized.
}
scenario-purpose-check = { $count ->
    [one] The scenario asks for one column. Approve only what its purpose needs.
   *[other] The scenario asks for { $count } columns. Approve only what its purpose needs; ask the developer to drop the rest.
}
scenario-reason = Comment (required to reject)
scenario-confirm = I have checked the purpose, the columns and their levels, and confirm this decision.
scenario-decided = Recorded: the scenario is now { $status }.
col-dataset = Dataset
col-column = Column
col-level = Level
col-access = Use
col-description = What it holds
access-none = none
access-join-key = join key
access-filter = filter
access-group = group key
access-aggregate = aggregated
access-plain = row-level (public data)
content-as-written = The text as written
nav-my-jobs = My jobs
my-jobs-title = My jobs and their review
my-jobs-intro = What reviewers said about your jobs' outputs, and where each review stands. Open a job to read the thread and answer; answer a request for changes by resubmitting (sandbox job submit ... --resubmits JOB).
my-jobs-none = You have submitted no jobs.
col-job = Job
col-outputs = Outputs
output-params = Parameters
small-cell = a count below the smallest group the policy allows ({ $min })
small-cell-note = A count below { $min } (the smallest group the policy allows) is marked.
queries-none = No queries.
queries-epsilon = ε spent by this job: { $epsilon }
content-heading = As it would be released
content-chart = chart { $name }
content-unreadable = The file cannot be shown: { $why }
decisions-heading = Decisions
decisions-none = None yet.
decide-comment = Comment (required to reject, to request changes, to override a failed check, and for an operator to pass a finding for review)
decide-not-yours = This output does not await your tier's decision.
decide-incomplete = The decision form was not complete.
decide-unknown = Approve, reject or request changes.
decision-recorded = Recorded: { $decision }. The output is now { $status }.

## Words for stable identifiers

kind-table = table
kind-text = text
kind-chart = chart
output-status-staged = staged
output-status-checked = checked
output-status-flagged = flagged by a check
output-status-operator-approved = approved by the operator
output-status-changes-requested = changes requested
output-status-released = released
output-status-rejected = rejected
tier-operator = operator review
tier-supervisor = supervisor review
decision-approve = Approve
decision-reject = Reject
decision-request-changes = Request changes
outcome-pass = passed
outcome-review = for review
outcome-fail = failed
check-type-and-size = type and size
check-identifiers = identifiers
check-provenance = provenance
check-raw-values = raw values
check-threshold = group sizes
check-differencing = differencing
query-status-answered = answered
query-status-refused = refused
query-status-failed = failed
scenario-status-pending = pending
scenario-status-approved = approved
scenario-status-rejected = rejected
scenario-status-suspended = suspended
scenario-status-revoked = revoked
job-status-queued = queued
job-status-running = running
job-status-succeeded = succeeded
job-status-failed = failed
job-status-cancelled = cancelled
flag-idle = idle
flag-expired = expired
flag-expires-soon = expires soon
flag-refusals = many refusals
flag-suspended = suspended

## The audit trail

audit-title = Audit trail
audit-intro = { $size } events. Every action in the domain is one of them, in a Merkle tree whose roots the domain key signs.
audit-verify = Verify the whole log
audit-earlier = ← earlier
audit-later = later →
audit-verified = Verified: { $events } events, { $checkpoints } signed checkpoints, root { $root }.
audit-verify-failed = Verification failed: { $why }

## Products

products-title = Products
products-heading = Product registry
products-none = No product has been released.
product-heading = Product { $id }
product-signed = The manifest below is signed by the domain key; this command checks it and every file:
product-signature = Signature (the domain key's: Ed25519, or SM2 in the gm suite; hex)
product-manifest = Manifest

## Scenarios

scenarios-title = Scenarios and budgets
scenarios-heading = Scenarios and their budgets

## Refusal rules: what each means

rule-syntax = not valid SQL, or more than one statement
rule-invalid-query = valid SQL that does not plan (types or arguments that do not fit)
rule-not-a-query = a statement that is not a query
rule-row-level-output = the query would return rows rather than aggregates
rule-column-access = a column used in a way its rule does not permit
rule-unknown-column = a column the scenario does not include
rule-unknown-table = a table the scenario does not include
rule-aggregate-not-allowed = an aggregate function that is not allowed
rule-function-not-allowed = a function that is not allowed
rule-expression-not-allowed = an expression form that is not allowed
rule-plan-not-allowed = a query shape that is not allowed
rule-group-keys-not-public = group keys that would come from the data
rule-no-dataset = the query reads no dataset
rule-scenario = the scenario does not permit it
rule-budget-exhausted = the privacy budget left cannot pay for it

## Errors as people read them

error-line = error: { $message }
error-refused = Query refused ({ $rule }, `{ $id }`): { $detail }
error-bad-request = Invalid request: { $detail }
error-unauthenticated = Not authenticated: { $detail }
error-forbidden = Not permitted: { $detail }
error-not-found = Not found: { $detail }
error-conflict = Conflict: { $detail }
error-review = Review: { $detail }
error-cancelled = Cancelled: { $detail }
error-stopped = Emergency stop: { $detail }
error-busy = Busy: { $detail }
error-policy = Policy: { $detail }
error-input = Bad input: { $detail }
error-module = Module: { $detail }
error-limit = Limit reached: { $detail }
error-verification-failed = Verification failed: { $detail }
error-internal = Something went wrong; see the server log.
error-remote = Server ({ $status } { $code }): { $detail }
error-other = { $detail }

## The command line
cli-col-name = NAME
cli-col-role = ROLE
cli-col-status = STATUS
cli-col-language = LANGUAGE
cli-col-id = ID
cli-col-principal = PRINCIPAL
cli-col-issued = ISSUED
cli-col-by = BY
cli-col-revoked = REVOKED
cli-col-version = VERSION
cli-col-rows = ROWS
cli-col-provider = PROVIDER
cli-col-summary = SUMMARY
cli-col-developer = DEVELOPER
cli-col-epsilon = ε SPENT / GRANTED
cli-col-submitted = SUBMITTED
cli-col-kind = KIND
cli-col-job = JOB
cli-col-output = OUTPUT
cli-col-released = RELEASED
cli-col-seq = SEQ
cli-col-time = TIME ({ $zone })
cli-col-actor = ACTOR
cli-col-action = ACTION
cli-col-subject = SUBJECT
cli-col-empty-principals = no principals
cli-col-empty-tokens = no tokens
cli-col-empty-datasets = no datasets
cli-col-empty-scenarios = no scenarios
cli-col-empty-jobs = no jobs
cli-col-empty-outputs = no outputs
cli-col-empty-products = no products
cli-col-empty-events = no events from there
cli-audit-more = events { $first } to { $last } of { $size }; the next page: sandbox audit log --from { $next }
cli-col-column = COLUMN
cli-col-level = LEVEL
cli-col-access = USE
cli-col-jobs = JOBS
cli-col-idle = IDLE
cli-col-answered = ANSWERED
cli-col-refused = REFUSED (COUNTED)
cli-col-flags = FLAGS
cli-col-check = CHECK
cli-col-outcome = OUTCOME
cli-col-reason = REASON
cli-col-scope = SCOPE
cli-col-target = TARGET
cli-col-since = SINCE
cli-col-empty-stops = no stops in force
cli-and = {" and "}
cli-days = { $days } d
cli-whoami = { $name } ({ $role }, { $status })
cli-principal-added = added { $name } ({ $role })
cli-principal-status = { $name } ({ $role }) is { $status }
cli-language-chosen = { $name } reads Sandbox in { $language } ({ $tag })
cli-language-auto = { $name } reads Sandbox in the client's language, else the domain's
cli-settings =
    default language  { $language } ({ $tag })
    time zone         { $zone }
cli-token-issued =
    token { $id } for { $principal } (shown once; only its hash is kept):
    { $token }
cli-token-revoked = token { $id } of { $principal } revoked
cli-dataset-added = registered { $name } version { $version }: { $rows } rows, content hash { $sha256 }
cli-dataset-show =
    { $name } v{ $version } — { $summary }
    provider: { $provider }
    rows: { $rows }  obtained: { $obtained }
cli-dataset-retired-at = retired { $at } by { $by }: { $reason }
cli-dataset-retired = dataset { $name } is retired: refused for new scenarios
cli-ingest-read = ingest report: { $read } rows read, { $stored } stored
cli-ingest-without-unit = { $rows } rows without a privacy unit left out
cli-ingest-units = { $units } privacy units
cli-ingest-over-max-rows = ; { $units } have more rows than max_rows_per_unit ({ $rows } rows beyond it are never read)
cli-ingest-nulls = { $count } NULL
cli-ingest-below = { $count } below its bounds
cli-ingest-above = { $count } above its bounds
cli-ingest-outside = { $count } outside its categories
cli-ingest-column = column { $name }: { $found }
cli-ingest-dropped = out of range: { $rows } rows left out (the policy's out_of_range is `drop`)
cli-ingest-kept = out of range: kept, and clamped to the bounds by every query (the policy's out_of_range is `keep`)
cli-ingest-not-stored = not stored (no query can see them): { $columns }
cli-ingest-stored-desensitized = stored desensitized, as every query sees them: { $columns }
cli-ingest-clean = nothing to report: no NULLs, every value within its bounds and categories
cli-scenario-status = scenario { $id } `{ $name }` is { $status }
cli-scenario-show =
    scenario { $id } `{ $name }` ({ $status }), developer { $developer }
    purpose: { $purpose }
    valid { $from } to { $until }
    ε { $spent } spent of { $total }
cli-scenario-per-query = , at most { $epsilon } per query
cli-scenario-columns = datasets and columns:
cli-scenario-response-plan = response plan: { $plan }
cli-scenario-agreement =
    agreement:
      rights and obligations: { $rights }
      security requirements: { $security }
      legal basis: { $basis }
      breach: { $breach }
cli-budget = scenario { $scenario }: ε spent { $spent } of { $total }, { $left } left
cli-budget-rho = zCDP: ρ spent { $spent } of { $total } (δ { $delta })
cli-budget-delta = δ spent { $spent } of { $total }
cli-usage-refused = { $refused } ({ $counted })
cli-usage-settings = a scenario is suspended at { $refusals } over-scope refusals (0: never) and flagged idle after { $days } days
cli-job = job { $id } { $status }
cli-job-queued = ({ $ahead } ahead in the queue)
cli-job-progress = ({ $elapsed } ms of { $deadline }, { $queries } queries, fuel { $fuel } of { $limit })
cli-job-output = output { $id } `{ $name }` ({ $kind }) { $status }
cli-job-cancelled = job { $id } was cancelled
cli-job-still = job { $id } is still { $status } after { $seconds } s; `sandbox job status { $id }` tells when it ends
cli-output-released = output { $id } is released as product { $product }
cli-product-at = at { $path }
cli-product-fetch = fetch it with: sandbox product download { $product } --out DIR
cli-output-status = output { $id } is { $status }
cli-output-named = output { $id } ({ $name }): { $status }
cli-output-shown = output { $id } `{ $name }` ({ $kind }, { $status })
cli-wrote-file = wrote { $path } ({ $bytes } bytes)
cli-product-downloaded = { $files } file(s) of product { $id } written to { $dir }
cli-product-verified = product { $id } verified: signature and { $files } file(s) match
cli-stop-in-force = stop { $id } in force; { $interrupted } running job(s) interrupted
cli-stop-lifted = stop lifted
cli-stop-was-lifted = (lifted { $at } by { $by })
cli-audit-last-checkpoint = last checkpoint { $number } of { $size } events at { $at }
cli-audit-no-checkpoint = no checkpoint yet
cli-audit-verified = audit log verified: { $events } events, root { $root }, { $checkpoints } signed checkpoint(s) ({ $last })
cli-audit-verified-by-server = audit log verified by the server: { $events } events, root { $root }, { $checkpoints } signed checkpoint(s) ({ $last })
cli-audit-checkpoint = checkpoint { $number }: { $size } events, root { $root }, signed at { $at }
cli-audit-exported = exported events { $from }..={ $to } ({ $events } events, { $checkpoints } checkpoints) to { $path }
cli-audit-retention = audit retention: { $years } years (at least { $least }; events are never deleted)
cli-proof-given-key = the given key
cli-proof-own-key = key { $key } (compare it with the domain's)
cli-proof-verified = { $kind } proof verified ({ $suite } suite): { $statement }; signed by { $by }
cli-query-no-keys = none
cli-query-accepted = accepted: { $aggregates } aggregate(s) over `{ $datasets }`; group keys: { $keys }
cli-thread = review request of { $developer } under scenario { $scenario }; awaiting { $awaiting }
cli-thread-job = job { $id } ({ $status }, submitted { $at })
cli-thread-decision = { $decision } ({ $tier }) on { $output }
cli-man-wrote = wrote { $pages } manual pages to { $dir }
cli-init-suite = Cryptographic suite: { $suite } (hashes { $hash }, signatures { $signature }, key wrapping { $wrapping }), fixed for the domain's life.
cli-init-master = Master key: { $source } (id { $id }). Keep it apart from the data directory and its backups: without it the domain cannot be opened.
cli-key-protected = The domain's secrets are wrapped by the master key from { $source } (id { $id }), their clear copies removed, and its metadata database is encrypted.
cli-key-rotated = The domain's secrets moved from master key { $from } to { $to } ({ $source }); the old key's files are removed. Keep the new key apart from the data directory; the old one opens nothing now.
cli-backup-done = Backup { $id } written to { $file }: { $files } files, { $bytes } bytes, the audit log at { $events } events. It opens only with the domain's master key: keep them apart.
cli-backup-verified = Backup { $id } (taken { $taken }) verified: { $files } files match its manifest; its audit log ({ $events } events) and { $checkpoints } signed checkpoints verify.
cli-migrated = The PostgreSQL metadata store is at schema version { $version }{ $created ->
    [yes] {" "}(made in an empty database).
   *[no] .
}
cli-restored = Backup { $id } (taken { $taken }) restored into { $dir }: { $files } files checked; its audit log ({ $events } events) and { $checkpoints } signed checkpoints verify.
cli-restored-holds = Against the checkpoint kept elsewhere: the restored log holds its { $checkpoint } events ({ $log } in all).
cli-restored-rolled-back = ROLLED BACK: the restored log has { $log } events, the checkpoint kept elsewhere covers { $checkpoint }: what happened after the backup is not in this domain. Do not serve it as current before that is dealt with.
cli-restored-diverged = DIVERGED: the restored log's first { $checkpoint } events are not the ones the checkpoint kept elsewhere signed: this log was rewritten. Do not serve it.
cli-init-done =
    initialised { $dir }
    later commands act on it with --data-dir { $dir }, or after
      export SANDBOX_DATA_DIR={ $dir }
    the first principal is an operator or an admin:
      sandbox --data-dir { $dir } principal add NAME --role operator
cli-checkpoint-warning = warning: no audit checkpoint written: { $error }
cli-did-you-mean = did you mean `{ $name }`?
cli-need-actor = say who acts: --as NAME (or SANDBOX_AS)
cli-progress-registering = registering { $file }
cli-progress-running = running { $module }
cli-progress-submitting = submitting { $module }, waiting up to { $seconds } s
cli-progress-downloading = downloading product { $id }
cli-server-url = --server { $url }: give an http:// or https:// URL
cli-token-malformed = SANDBOX_TOKEN (or --token) is not a Sandbox API token (sbx_<id>_<secret>)
cli-server-needs-token = --server needs a token: set SANDBOX_TOKEN (or --token)
cli-not-remote = `{ $command }` works on the data directory, not through a server: run it on the server's machine without --server
cli-remote-parquet = through a server, datasets are registered from CSV; register Parquet on the server's machine
cli-remote-verify = product verify checks a local folder against the domain key: run it without --server (download the product first)
cli-params-not-json = params are not JSON: { $error }
cli-wait-invalid = --wait: seconds, at least 0
cli-prove-what = say what to prove: SEQ, or --from M [--to N]
cli-unknown-language = unknown language `{ $text }` (zh-CN, en, or auto for the client's)
principal-status-active = active
principal-status-suspended = suspended
principal-status-revoked = revoked
stop-scope-domain = domain
stop-scope-scenario = scenario
stop-scope-developer = developer
cli-dev-synthetic = SYNTHETIC DATA: { $units } unit(s) per dataset generated from the policies; nothing here describes real data.
cli-dev-failed = job failed ({ $kind }): { $error }
cli-dev-marker = Every file here was computed from synthetic data generated from policies by `sandbox dev run`. It describes no real person or entity and is not a data product.

## The demo

demo-build-first = build the example modules first: scripts/build-guests.sh
demo-title = Sandbox demo: raw data does not leave the domain; data is usable but not visible.
demo-init =
    1. Operating institution initialises a domain at { $dir }
       (SQLite metadata, the { $suite } cryptographic suite with its { $signature } signing key, domain store folders)
demo-principals = principals: { $principals }
demo-dataset = 2. Provider psb-wang registers `{ $name }`: { $rows } rows, stored as Parquet in the domain
demo-scenario =
    3. Developer dev-zhao applies for scenario `{ $name }`; provider psb-wang and supervisor sup-chen record no objection; operator ops-li approves it
       purpose: { $purpose }
       budget: ε { $epsilon } in total, { $per_query } per query; valid { $from } to { $until }
demo-refusals = 4. The mediator refuses what would expose raw data (each refusal is audited):
demo-job =
    5. dev-zhao submits the module income_by_district.wasm ({ $bytes } bytes) as job { $job }
       it ran in wasmtime with no I/O: { $queries ->
        [one] one query
       *[other] { $queries } queries
    }, { $fuel } fuel; status { $status }
demo-module-log = module log: { $text }
demo-budget = ε spent { $spent } of { $total }; { $left } left
demo-outputs = 6. Outputs are staged and checked automatically:
demo-release-refused = 7. Review: releasing before any approval is refused: { $error }
demo-self-review-refused = the developer approving their own output is refused: { $error }
demo-operator-approves = operator ops-li approves
demo-supervisor-approves = supervisor sup-chen approves → released
demo-source = { $name } v{ $version } from { $provider } (obtained { $obtained })
demo-product =
    8. Product { $id } at { $path }
       manifest.json signed by the domain key; verified: signature and file hashes match
       sources: { $sources }
       module { $hash } { $module }
demo-audit = 9. Audit log: { $events } events, Merkle tree and hash chain verified, { $checkpoints } signed checkpoint(s) (root { $root }…)
demo-done = Done in { $seconds } s. Data directory: { $dir }
demo-principal = { $name } ({ $role })

## The automated checks' findings

list-separator = {", "}
item-separator = {"; "}
check-at-cell = row { $row }, column `{ $column }`
check-at-row = row { $row }
check-at-line = line { $line }
check-finding = { $at }: { $what }
check-finding-number = { $at } ({ $number }): { $what }
check-numbers = { $numbers }
check-examples = { $items }
check-examples-more = { $items } (and { $more } more)
check-kind-not-allowed = { $kind } outputs are not allowed by the policy
check-over-bytes = { $bytes } bytes, over the cap of { $cap }
check-over-rows = { $rows } rows, over the cap of { $cap }
check-what-table = table, { $rows } rows
check-what-text = Markdown text
check-what-png-size = PNG chart, { $width }×{ $height } pixels
check-what-png = PNG chart
check-what-svg = SVG chart
check-png-refused = PNG refused: { $error }
check-svg-refused = SVG refused: { $error }
check-size-allowed = { $what }, { $bytes } bytes: allowed
check-size-problems = { $what }: { $problems }
check-identifiers-none = no { $kinds } found
check-identifiers-found = found { $found }
identifier-resident-ids = resident ID numbers
identifier-mobiles = mobile numbers
identifier-bank-cards = bank card numbers
identifier-emails = e-mail addresses
identifier-plates = licence plates
identifier-resident-id = resident ID number { $value }
identifier-mobile = mobile number { $value }
identifier-bank-card = bank card number { $value }
identifier-email = e-mail address { $value }
identifier-plate = licence plate { $value }
check-raw-no-sets = no value sets to compare with
check-raw-hit = equals a rare value of `{ $column }`
check-raw-no-columns = no protected columns with rare values
check-raw-clean = no rare raw value of { $columns } found
check-threshold-small = a count below { $min } that no answer released
check-threshold-total = equals a total that includes suppressed cells
check-threshold-filled = a value for a cell the mediator suppressed
check-threshold-clean = no small cells, suppressed cells or revealing totals; the mediator applied min_group_size { $min }, dominance and p% to every cell it released
check-threshold-derived = { $count } numbers of the table were derived by the module: dominance and p% were applied to the mediator's cells only
check-provenance-image = an image: its labels and values cannot be read automatically; compare it with the answers the module received
check-provenance-clean = all { $count } numbers come from answers the module received
check-provenance-untraced = { $untraced } of { $count } numbers were not in any answer the module received (derived or invented): { $places }
check-differencing-not-table = not a table
check-differencing-dp = answers carry differential-privacy noise: the difference of two releases is noisy too, and its privacy cost was charged
check-differencing-cell = column `{ $column }` differs from `{ $table }` by fewer than { $min }
check-differencing-row-cell = column `{ $column }` of row ({ $row }) differs from `{ $table }` by fewer than { $min }
check-differencing-clean = compared with { $tables } released tables of the scenario: no difference below { $min }
cli-progress-exporting = exporting the audit log to { $path }
cli-progress-deciding = recording the decision
cli-progress-fetching = fetching output { $id }
cli-table-rows = { $total ->
    [one] 1 row
   *[other] { $total } rows
}
cli-table-first = { $total } rows, the first { $shown } shown
cli-chart-not-shown = `{ $name }` is a chart ({ $bytes } bytes): download it to look at it
cli-staged-output = `{ $name }` ({ $kind }, { $bytes } bytes): { $status }
cli-dev-written = -> { $path }
cli-check-line = { $mark } { $check }: { $reason }
parse-unknown-argument = unexpected argument '{ $arg }'
parse-unknown-command = unrecognized subcommand '{ $command }'
parse-invalid-value = invalid value '{ $value }' for '{ $arg }'
parse-missing-argument = the following required arguments were not provided: '{ $arg }'
parse-conflict = '{ $arg }' cannot be used with '{ $other }'
parse-did-you-mean = did you mean: { $hint }
parse-valid-values = possible values: { $hint }
parse-more = For more information, try '--help'.

## Products reach only those entitled; withdrawal; organisations

role-data-user = data user
error-withdrawn = Withdrawn: { $detail }
col-providers = Providers
col-scope = Granted to
col-product-status = Status
col-datasets = Dataset versions
col-principal = Principal
col-organisation = Organisation
col-downloads = Downloads
col-last-download = Last downloaded
product-scope-organisation = organisation { $code }
product-scope-none = nobody beyond the reviewers and its developer
product-granted-later = granted by { $who } on { $at }
product-withdrawn-on = withdrawn { $at }
product-withdrawn-by = Withdrawn by { $who } on { $at }
product-available = available
product-not-granted = not granted to you
product-not-granted-long = This product is not granted to you: the catalog shows what it is, whom it is for and where its data came from, not its files.
product-files-withdrawn = Its files can no longer be downloaded.
product-holders = Holders (who downloaded it)
product-holders-none = Nobody has downloaded it.
product-withdraw-reason = Why it is withdrawn (recorded, and written in the signed notice)
product-withdraw-confirm = I withdraw this product: downloads are refused from now on, for good.
product-withdraw = Withdraw the product
product-withdrawn-done = The product is withdrawn; its holders are listed for notification.
cli-col-scenario = SCENARIO
cli-col-organisation = ORGANISATION
cli-col-downloads = DOWNLOADS
cli-col-last-download = LAST DOWNLOADED
cli-col-empty-holders = nobody has downloaded it
cli-col-credit-code = CREDIT CODE
cli-col-security-officer = SECURITY OFFICER
cli-col-qualified-until = QUALIFIED UNTIL
cli-col-epsilon-cap = ε SPENT / CAP
cli-col-members = MEMBERS
cli-col-empty-organisations = no organisations in the register
cli-product-withdrawal = Withdrawn by { $who } on { $at }: { $reason }
cli-product-shown = Product { $id }: { $name }
      scenario     { $scenario } ({ $purpose })
      providers    { $providers }
      data         { $datasets }
      released     { $released } by { $by }
      granted to   { $scope }
cli-product-files = Files: { $files }
cli-product-withdrawn = Product { $id } withdrawn. { $count ->
    [0] Nobody had downloaded it.
    [one] 1 holder to notify: { $holders }
   *[other] { $count } holders to notify: { $holders }
}
cli-product-granted = Product { $id } is granted to { $scope }.
cli-organisation = Organisation { $code }: { $name }
      security officer   { $officer } ({ $contact })
      qualified until    { $until }
      ε spent / cap      { $spent } / { $cap }
      members            { $members }
cli-principal-in-organisation = { $name } belongs to organisation { $code }.
cli-principal-in-no-organisation = { $name } belongs to no organisation.
cli-col-empty-types = no scenario types established
cli-scenario-awaits-consents = scenario { $id } `{ $name }` is approved by { $who }; it becomes usable once every consent is in (`sandbox scenario consents { $name }`)
cli-consents-by-type = Scenario { $id } is of the established type `{ $kind }`: its review covers it, no consents of its own are needed.
cli-consents-complete = Scenario { $id }: every consent is in.
cli-consents-awaited = Scenario { $id } awaits consents:
cli-consent-provider = provider of `{ $dataset }`
cli-consent-supervisor = supervisor
cli-consent-no-objection = { $party }: no objection ({ $who }, { $at })
cli-consent-objection = { $party }: OBJECTION ({ $who }, { $at }): { $reasons }
cli-consent-awaited = { $party }: awaited
cli-consent-answer = answered { $at }: { $answer }
cli-consents-operator-approved = The operator { $who } has approved it.
cli-consents-operator-awaited = The operator's approval is awaited too.
cli-scenario-type = Scenario type `{ $name }` established from scenario { $id }: { $description }
cli-version-in-use = dataset { $name } version { $version } is not suspended
cli-version-suspended = dataset { $name } version { $version } is SUSPENDED since { $at } by { $who }: { $reason }
cli-version-objection = objection by { $who } on { $at }: { $reason }
cli-version-products = { $count ->
    [0] no product came from it
    [one] 1 product came from it: { $products }
   *[other] { $count } products came from it: { $products }
}
cli-recalled = { $count ->
    [0] No product to recall: none came from it, or every one was withdrawn already.
    [one] Recalled 1 product: { $products }
   *[other] Recalled { $count } products: { $products }
}
cli-not-destroyed = The dataset has not been destroyed.
cli-destroyed = Dataset { $name } destroyed by { $who } on { $at }: { $reason }. Its files, as they were:
cli-sharing-decided = Dataset { $name } (not shared) may go into scenario `{ $scenario }`: decided by { $who }.
incident-grade-general = general
incident-grade-relatively-major = relatively major
incident-grade-major = major
incident-grade-especially-major = especially major
incident-entry-action = action
incident-entry-stop = stop
incident-entry-suspension = suspension
incident-entry-withdrawal = withdrawal
incident-entry-report = report
incident-entry-notice = notice
org-add = Enter an organisation
org-change = Change { $code }: renew or end its qualification, officer, cap
org-contact = How to reach the officer
org-cap = ε cap across its members' scenarios (empty: none)
org-reason = Why (recorded)
org-save = Save the change
incident-open = open
incident-open = Open an incident
incident-grade = Grade
incident-title = Title
incident-description = What happened
incident-log = Add to the timeline
incident-entry-kind = Kind
incident-entry-reference = What it refers to (a stop's id, a suspended principal or scenario, a withdrawn product)
incident-entry-recipient = To whom (a report or a notice)
incident-entry-text = What was done
incident-close = Close the incident
incident-summary = How it ended
order-issue = Issue a rectification order
order-target-name = Developer, organisation's credit code, or scenario
order-target-principal = developer
order-target-organisation = organisation
order-target-scenario = scenario
order-close = Close: rectified
order-answer = Answer the order
my-orders-title = Rectification orders to you
oversight-recorded = Recorded.
incident-closed = closed
order-status-open = open
order-status-answered = answered
order-status-closed = closed
order-status-enforced = enforced (deadline passed)
cli-col-grade = GRADE
cli-col-deadline = DEADLINE
cli-col-empty-incidents = no incidents
cli-col-empty-orders = no rectification orders
cli-incident = Incident { $id } ({ $grade }): { $title }
      opened by { $who } on { $at }: { $description }
cli-incident-entry = { $at } { $who } · { $kind } { $reference } → { $to }: { $text }
cli-incident-closed = Closed by { $who } on { $at }: { $summary }
cli-order = Rectification order { $id } ({ $status }) to { $kind } { $target }, by { $deadline }: { $requirement }
cli-order-answer = answered by { $who } on { $at }: { $answer }
cli-report-domain = the domain
cli-report-scenario = scenario `{ $name }`
cli-report = Compliance report for { $scope }, { $from } to { $to } (checked against the signed checkpoint of { $size } events); evidence per requirement:
cli-report-written = Written with its signature to { $dir } (`sandbox report verify { $dir }`).
nav-reports = Reports
reports-title = Compliance reports
reports-heading = Compliance report
reports-from = From
reports-to = to
reports-scenario = Scenario (empty: the whole domain)
reports-make = Make the report
reports-checkpoint = checked against the signed checkpoint of { $size } events
reports-download = Download it signed (JSON)
reports-verify = to verify offline with
reports-requirement = Requirement
reports-articles = Articles
reports-evidence = Events
reports-events = Evidence in the audit log
provider-scenarios-intro = The scenarios over the datasets you registered, and your word on each: nothing is used before you record no objection.
provider-your-word = Your word
consents-heading = Consents before use
consents-by-type = Of the established type `{ $kind }`: its review covers this scenario.
consents-party = Party
consents-provider = provider of `{ $dataset }`
consents-supervisor = supervisor
consents-answer = The applicant's answer
consents-operator-approved = Approved by the operator { $who }; usable once every consent is in.
consents-operator-awaited = The operator's approval is awaited.
consent-state-awaited = awaited
consent-state-no-objection = no objection
consent-state-objection = objection
nav-oversight = Oversight
oversight-title = Oversight
oversight-incidents = Incidents
oversight-no-incidents = No incident has been recorded.
oversight-orders = Rectification orders
oversight-no-orders = No rectification order has been issued.
oversight-target = To
oversight-deadline = Deadline
oversight-requirement = Requirement
oversight-organisations = Register of organisations
oversight-no-organisations = No organisation is registered.
oversight-credit-code = Credit code
oversight-name = Name
oversight-officer = Security officer
oversight-qualified-until = Qualified until
oversight-members = Members
consents-reasons = Reasons for an objection (recorded and shown to the applicant)
consents-confirm = I record the data bureau's word on this scenario.
nav-datasets = Catalog
datasets-title = The catalog
datasets-version = Version
datasets-share = Share type
datasets-authorized = Authorized scenarios
datasets-retired = retired
version-heading = Dataset { $name }, version { $version }
version-suspended = Suspended by { $who } since { $at }
version-objections = Objections
version-no-objections = No objection was raised against this version.
version-products = Products whose numbers came from it
version-reason = Why (recorded)
version-confirm = I act on this dataset version.
version-object = Raise an objection
version-suspend = Suspend its queries
version-reinstate = Reinstate it
version-recall = Recall every product it fed
version-done = Recorded.
