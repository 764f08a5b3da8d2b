//! Where a work item stands, in words every tracker shares (ADR 0005 §1): the category of
//! its state, beside the tracker's own state name.
//!
//! A Trello list has no category of its own: the adapter reads the record's done list as
//! `Done` (and an archived card as `Done` when the record names no done list), every
//! other list as `Open`. A Linear workflow state is typed: `completed` is `Done`,
//! `canceled` and `duplicate` are `Canceled`, `started` is `Started`, the rest `Open`.

use serde::{Deserialize, Serialize};

/// The category of a tracker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateCategory {
    /// Not started: a backlog, a to-do list, triage.
    #[default]
    Open,
    /// Being worked on.
    Started,
    /// Finished: the work was done.
    Done,
    /// Closed without doing the work (Linear's Canceled and Duplicate).
    Canceled,
}

impl StateCategory {
    /// `open`, `started`, `done` or `canceled`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateCategory::Open => "open",
            StateCategory::Started => "started",
            StateCategory::Done => "done",
            StateCategory::Canceled => "canceled",
        }
    }

    /// Whether an item in this state is closed (done or canceled).
    pub fn is_closed(self) -> bool {
        matches!(self, StateCategory::Done | StateCategory::Canceled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_done_and_canceled_are_closed() {
        assert!(!StateCategory::Open.is_closed());
        assert!(!StateCategory::Started.is_closed());
        assert!(StateCategory::Done.is_closed());
        assert!(StateCategory::Canceled.is_closed());
        assert_eq!(
            serde_json::to_string(&StateCategory::Canceled).unwrap(),
            "\"canceled\""
        );
    }
}
