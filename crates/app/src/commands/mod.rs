//! One module per command, plus the readiness rendering they share.

pub mod demo;
pub mod export;
pub mod revoke;
pub mod setup;
pub mod status;
pub mod sync;

use serde::Serialize;
use webriskops_domain::{BlockedState, ProviderRecord, Readiness, ReadyStates};

use crate::output::Out;

/// The readiness part of setup and status JSON: these names never change.
#[derive(Debug, Serialize)]
pub struct ReadinessJson<'a> {
    pub ready: &'a ReadyStates,
    pub blocked: &'a [BlockedState],
    pub notes: &'a [String],
}

impl<'a> From<&'a Readiness> for ReadinessJson<'a> {
    fn from(r: &'a Readiness) -> Self {
        Self {
            ready: &r.ready,
            blocked: &r.blocked,
            notes: &r.notes,
        }
    }
}

/// Prints the five ready states, each blocked state with its fix, and the notes.
pub fn print_readiness(out: &Out, r: &Readiness, record: &ProviderRecord) {
    let mark = |ok: bool| if ok { "ready  " } else { "not yet" };
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let states = [
        (
            r.ready.cloud_target,
            "cloud target",
            format!(
                "{} / {}, base_url {}",
                record.provider_key,
                record.deployment_mode,
                record.base_url().unwrap_or("empty")
            ),
        ),
        (r.ready.board, "board", or_none(&record.board_id)),
        (r.ready.list, "list", or_none(&record.list_id)),
        (
            r.ready.scope,
            "scope",
            record
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            r.ready.revoke_path,
            "revoke path",
            if record.revoke_path_confirmed {
                "confirmed".into()
            } else {
                "not confirmed".into()
            },
        ),
    ];
    for (ok, name, detail) in states {
        out.say(format!("  {}  {name:<13} {detail}", mark(ok)));
    }
    if !r.blocked.is_empty() {
        out.say("Blocked:");
        for b in &r.blocked {
            out.say(format!("  {} ({}): {}", b.code, b.field, b.fix));
        }
    }
    for n in &r.notes {
        out.say(format!("Note: {n}"));
    }
}
