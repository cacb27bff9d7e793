//! The audit log's vocabulary: what happened ([`EventKind`]) and to what ([`Subject`]).
//! Every event the domain records names one of each; their text is what the log stores
//! and hashes, so it never changes for a kind that exists.

use std::fmt;

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A data directory was created (its public key is in the details).
    DomainInit,
    /// A principal was added.
    PrincipalAdded,
    /// A suspended principal was qualified again.
    PrincipalQualified,
    /// A principal was suspended.
    PrincipalSuspended,
    /// A principal was revoked for good.
    PrincipalRevoked,
    /// An API token was issued.
    TokenIssued,
    /// An API token was revoked.
    TokenRevoked,
    /// A dataset version was registered.
    DatasetRegistered,
    /// A dataset was retired (kept, refused for new scenarios).
    DatasetRetired,
    /// A developer applied for a scenario.
    ScenarioApplied,
    /// An operator approved a scenario.
    ScenarioApproved,
    /// An operator rejected a scenario.
    ScenarioRejected,
    /// A scenario was suspended (by an operator or usage monitoring).
    ScenarioSuspended,
    /// A suspended scenario was reinstated.
    ScenarioReinstated,
    /// A scenario was revoked for good.
    ScenarioRevoked,
    /// A scenario was flagged idle (usage monitoring).
    ScenarioIdle,
    /// The usage monitoring settings changed.
    UsageSettings,
    /// A module was stored.
    ModuleStored,
    /// A module was refused (validation or compilation).
    ModuleRefused,
    /// A job was queued.
    JobQueued,
    /// A job was refused before it was queued (an emergency stop).
    JobRefused,
    /// A queued job started.
    JobStarted,
    /// A job succeeded and staged its outputs.
    JobSucceeded,
    /// A job failed.
    JobFailed,
    /// A job was cancelled.
    JobCancelled,
    /// Someone asked for a running job to be cancelled.
    JobCancelRequested,
    /// A query was refused (by the policy pass, the scenario, or the budget).
    QueryRefused,
    /// A query was charged to the budget.
    QueryCharged,
    /// A job's output was staged.
    OutputStaged,
    /// The automated checks ran on a staged output.
    OutputChecked,
    /// The checks ran again at release and sent the output back.
    OutputRechecked,
    /// A review decision on an output was refused (a stop or a suspension covers it).
    OutputRefused,
    /// An operator approved an output.
    OutputOperatorApprove,
    /// An operator rejected an output.
    OutputOperatorReject,
    /// An operator asked for changes to an output.
    OutputOperatorRequestChanges,
    /// A supervisor approved an output.
    OutputSupervisorApprove,
    /// A supervisor rejected an output.
    OutputSupervisorReject,
    /// A supervisor asked for changes to an output.
    OutputSupervisorRequestChanges,
    /// An output was released as a product.
    ProductReleased,
    /// A staged output's file was taken away (downloaded) by a reviewer.
    OutputDownloaded,
    /// A product's file was downloaded.
    ProductDownloaded,
    /// An objection raised against a dataset version.
    DatasetObjected,
    /// A dataset version suspended: its queries refused.
    DatasetSuspended,
    /// A dataset version's suspension lifted.
    DatasetReinstated,
    /// The products derived from a dataset version recalled.
    DatasetRecalled,
    /// A dataset's files destroyed at the end of its authorization.
    DatasetDestroyed,
    /// A `not_shared` dataset allowed into a named scenario (SYS Art. 24).
    DatasetSharingDecided,
    /// A compliance report generated and signed.
    ReportGenerated,
    /// An incident opened.
    IncidentOpened,
    /// An entry added to an incident's timeline.
    IncidentLogged,
    /// An incident closed.
    IncidentClosed,
    /// A rectification order issued.
    OrderIssued,
    /// A rectification order answered by its target.
    OrderAnswered,
    /// A rectification order closed (its answer accepted).
    OrderClosed,
    /// A rectification order's deadline passed unanswered: its target suspended.
    OrderEnforced,
    /// A provider or a supervisor recorded no objection to a scenario.
    ScenarioConsented,
    /// A provider or a supervisor objected to a scenario, with reasons.
    ScenarioObjected,
    /// The applicant answered an objection.
    ScenarioObjectionAnswered,
    /// A scenario became usable: the operator approved it and every consent it needs is in.
    ScenarioUsable,
    /// A scenario type established from a reviewed scenario.
    ScenarioTypeEstablished,
    /// A product download refused (withdrawn, or the caller not entitled).
    ProductDownloadRefused,
    /// A product withdrawn, with its reason and the holders to notify.
    ProductWithdrawn,
    /// A product granted to a data user or an organisation after its release.
    ProductGranted,
    /// An organisation entered in the register.
    OrganisationRegistered,
    /// An organisation's entry changed (qualification, officer, cap, ...).
    OrganisationChanged,
    /// The register of organisations exported.
    OrganisationsExported,
    /// A principal placed in an organisation (or taken out of one).
    PrincipalOrganisationSet,
    /// An emergency stop was imposed.
    StopImposed,
    /// An emergency stop was lifted.
    StopLifted,
    /// The audit retention was set.
    AuditRetentionSet,
    /// A principal chose the language it reads Sandbox in.
    PrincipalLanguageSet,
    /// The domain's default language or time zone was set.
    DomainSettingsSet,
    /// The domain's secrets were wrapped by a new master key (the ids, never a key).
    MasterKeyRotated,
    /// A metadata database in the clear was encrypted (`key protect`; the master key's id).
    DatabaseEncrypted,
    /// A backup of the domain was taken (its id and what it holds, never a key).
    BackupTaken,
    /// The domain was restored from a backup (its id, and how the restored log stands
    /// against a checkpoint kept elsewhere, when one was given).
    DomainRestored,
    /// A reviewer or the developer wrote to a review request's thread.
    ReviewCommented,
    /// The audit log was exported.
    AuditExported,
    /// An API call was refused (401 or 403).
    ApiRefused,
    /// Refusals of callers who proved no one, held back and counted.
    ApiRefusalsLimited,
    /// A console call was refused.
    ConsoleRefused,
    /// Someone signed in to the review console.
    ConsoleSignedIn,
    /// Someone signed out of the review console.
    ConsoleSignedOut,
}

impl EventKind {
    /// The kind as the log stores it, e.g. `query.charged`.
    pub fn as_str(self) -> &'static str {
        use EventKind::*;
        match self {
            DomainInit => "domain.init",
            PrincipalAdded => "principal.added",
            PrincipalQualified => "principal.qualified",
            PrincipalSuspended => "principal.suspended",
            PrincipalRevoked => "principal.revoked",
            TokenIssued => "token.issued",
            TokenRevoked => "token.revoked",
            DatasetRegistered => "dataset.registered",
            DatasetRetired => "dataset.retired",
            ScenarioApplied => "scenario.applied",
            ScenarioApproved => "scenario.approved",
            ScenarioRejected => "scenario.rejected",
            ScenarioSuspended => "scenario.suspended",
            ScenarioReinstated => "scenario.reinstated",
            ScenarioRevoked => "scenario.revoked",
            ScenarioIdle => "scenario.idle",
            UsageSettings => "usage.settings",
            ModuleStored => "module.stored",
            ModuleRefused => "module.refused",
            JobQueued => "job.queued",
            JobRefused => "job.refused",
            JobStarted => "job.started",
            JobSucceeded => "job.succeeded",
            JobFailed => "job.failed",
            JobCancelled => "job.cancelled",
            JobCancelRequested => "job.cancel_requested",
            QueryRefused => "query.refused",
            QueryCharged => "query.charged",
            OutputStaged => "output.staged",
            OutputChecked => "output.checked",
            OutputRechecked => "output.rechecked",
            OutputRefused => "output.refused",
            OutputOperatorApprove => "output.operator_approve",
            OutputOperatorReject => "output.operator_reject",
            OutputOperatorRequestChanges => "output.operator_request_changes",
            OutputSupervisorApprove => "output.supervisor_approve",
            OutputSupervisorReject => "output.supervisor_reject",
            OutputSupervisorRequestChanges => "output.supervisor_request_changes",
            ProductReleased => "product.released",
            OutputDownloaded => "output.downloaded",
            ProductDownloaded => "product.downloaded",
            ProductDownloadRefused => "product.download_refused",
            DatasetObjected => "dataset.objected",
            DatasetSuspended => "dataset.suspended",
            DatasetReinstated => "dataset.reinstated",
            DatasetRecalled => "dataset.recalled",
            DatasetDestroyed => "dataset.destroyed",
            DatasetSharingDecided => "dataset.sharing_decided",
            ReportGenerated => "report.generated",
            IncidentOpened => "incident.opened",
            IncidentLogged => "incident.logged",
            IncidentClosed => "incident.closed",
            OrderIssued => "order.issued",
            OrderAnswered => "order.answered",
            OrderClosed => "order.closed",
            OrderEnforced => "order.enforced",
            ScenarioConsented => "scenario.consented",
            ScenarioObjected => "scenario.objected",
            ScenarioObjectionAnswered => "scenario.objection_answered",
            ScenarioUsable => "scenario.usable",
            ScenarioTypeEstablished => "scenario_type.established",
            ProductWithdrawn => "product.withdrawn",
            ProductGranted => "product.granted",
            OrganisationRegistered => "organisation.registered",
            OrganisationChanged => "organisation.changed",
            OrganisationsExported => "organisation.exported",
            PrincipalOrganisationSet => "principal.organisation_set",
            StopImposed => "stop.imposed",
            StopLifted => "stop.lifted",
            AuditRetentionSet => "audit.retention_set",
            PrincipalLanguageSet => "principal.language_set",
            DomainSettingsSet => "domain.settings_set",
            MasterKeyRotated => "domain.master_key_rotated",
            DatabaseEncrypted => "domain.database_encrypted",
            BackupTaken => "domain.backup_taken",
            DomainRestored => "domain.restored",
            ReviewCommented => "review.commented",
            AuditExported => "audit.exported",
            ApiRefused => "api.refused",
            ApiRefusalsLimited => "api.refusals_limited",
            ConsoleRefused => "console.refused",
            ConsoleSignedIn => "console.signed_in",
            ConsoleSignedOut => "console.signed_out",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an audit event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The domain as a whole (`domain`).
    Domain,
    /// The audit log itself (`audit`).
    Audit,
    /// A principal (`principal:NAME`).
    Principal(String),
    /// An API token (`token:ID`).
    Token(String),
    /// A dataset version (`dataset:NAME@VERSION`).
    Dataset {
        /// Dataset name.
        name: String,
        /// Version.
        version: i64,
    },
    /// A scenario (`scenario:ID`).
    Scenario(i64),
    /// A stored module (`module:SHA256`).
    Module(String),
    /// A job (`job:ID`).
    Job(String),
    /// A staged output (`output:ID`).
    Output(String),
    /// A released product (`product:ID`).
    Product(String),
    /// An organisation, by its unified social credit code (`organisation:CODE`).
    Organisation(String),
    /// An incident (`incident:ID`).
    Incident(i64),
    /// A rectification order (`order:ID`).
    Order(i64),
    /// An emergency stop (`stop:ID`).
    Stop(i64),
    /// A console session, by the first 16 hex digits of its id's hash (`session:…`).
    Session(String),
    /// A client address (`client:ADDR`).
    Client(String),
    /// An API call (`api:METHOD PATH`).
    Api {
        /// HTTP method.
        method: String,
        /// Path asked for.
        path: String,
    },
    /// A console call (`console:METHOD PATH`).
    Console {
        /// HTTP method.
        method: String,
        /// Path asked for.
        path: String,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Domain => f.write_str("domain"),
            Subject::Audit => f.write_str("audit"),
            Subject::Principal(n) => write!(f, "principal:{n}"),
            Subject::Token(id) => write!(f, "token:{id}"),
            Subject::Dataset { name, version } => write!(f, "dataset:{name}@{version}"),
            Subject::Scenario(id) => write!(f, "scenario:{id}"),
            Subject::Module(sha) => write!(f, "module:{sha}"),
            Subject::Job(id) => write!(f, "job:{id}"),
            Subject::Output(id) => write!(f, "output:{id}"),
            Subject::Product(id) => write!(f, "product:{id}"),
            Subject::Organisation(code) => write!(f, "organisation:{code}"),
            Subject::Incident(id) => write!(f, "incident:{id}"),
            Subject::Order(id) => write!(f, "order:{id}"),
            Subject::Stop(id) => write!(f, "stop:{id}"),
            Subject::Session(id) => write!(f, "session:{id}"),
            Subject::Client(addr) => write!(f, "client:{addr}"),
            Subject::Api { method, path } => write!(f, "api:{method} {path}"),
            Subject::Console { method, path } => write!(f, "console:{method} {path}"),
        }
    }
}
