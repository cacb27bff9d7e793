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
sign-in-help = Operators and supervisors sign in with the API token an operator issued them. The token is not kept in the browser; a session cookie is. An operator issues one with
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
product-signature = Signature (Ed25519, hex)
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
cli-col-time = TIME (UTC)
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
