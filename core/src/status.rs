//! The states of scenarios, jobs and outputs, and the review's tiers and decisions: typed
//! here, stored and shown by their snake_case names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value a stored name stands for.
            pub fn parse(s: &str) -> Result<$name> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(Error::Internal(format!(concat!($what, " `{}`"), other))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

named_enum! {
    /// Where a scenario stands.
    ScenarioStatus, "scenario status" {
        /// Applied for, not decided.
        Pending => "pending",
        /// Approved: jobs may run within its window.
        Approved => "approved",
        /// Rejected by an operator.
        Rejected => "rejected",
        /// Suspended (usage monitoring or an operator).
        Suspended => "suspended",
        /// Revoked for good.
        Revoked => "revoked",
    }
}

named_enum! {
    /// Where a job stands: queued → running → succeeded | failed | cancelled.
    JobStatus, "job status" {
        /// Waiting in the queue.
        Queued => "queued",
        /// Claimed by a runner.
        Running => "running",
        /// Ended and staged its outputs.
        Succeeded => "succeeded",
        /// Ended with an error; nothing staged.
        Failed => "failed",
        /// Cancelled; nothing staged.
        Cancelled => "cancelled",
    }
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

named_enum! {
    /// Where an output stands: staged → checked | flagged → operator_approved → released,
    /// or rejected, or changes_requested.
    OutputStatus, "output status" {
        /// Written, not yet checked.
        Staged => "staged",
        /// Every automated check passed or asks for a person's look.
        Checked => "checked",
        /// An automated check failed: approving needs written overrides.
        Flagged => "flagged",
        /// The operator approved; the supervisor decides.
        OperatorApproved => "operator_approved",
        /// A reviewer asked for changes.
        ChangesRequested => "changes_requested",
        /// Released as a product.
        Released => "released",
        /// Rejected.
        Rejected => "rejected",
    }
}

impl OutputStatus {
    /// Whether the output awaits a review decision (checked, flagged, or approved by the
    /// operator and awaiting the supervisor).
    pub fn pending(self) -> bool {
        matches!(
            self,
            OutputStatus::Checked | OutputStatus::Flagged | OutputStatus::OperatorApproved
        )
    }
}

named_enum! {
    /// The two tiers of review (JZ Art. 15).
    ReviewTier, "review tier" {
        /// The operating institution's review, first.
        Operator => "operator",
        /// The supervisor's review, second.
        Supervisor => "supervisor",
    }
}

named_enum! {
    /// A review decision.
    Decision, "review decision" {
        /// Approve.
        Approve => "approve",
        /// Reject.
        Reject => "reject",
        /// Send back to the developer: the output is not released, and a new job may
        /// follow.
        RequestChanges => "request_changes",
    }
}
