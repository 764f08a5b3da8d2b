//! One module per command, plus the readiness rendering they share.

pub mod accounts;
pub mod demo;
pub mod demo_serve;
pub mod export;
pub mod revoke;
pub mod serve;
pub mod setup;
pub mod setup_linear;
pub mod status;
pub mod sync;

use webriskops_domain::{ProviderKey, ProviderRecord, Readiness};

use crate::output::Out;

pub use webriskops_server::json::ReadinessJson;

/// The names of the container and destination steps in the provider's words.
fn step_names(provider: ProviderKey) -> (&'static str, &'static str) {
    match provider {
        ProviderKey::TrelloCloud => ("board", "list"),
        ProviderKey::LinearCloud => ("team", "state"),
    }
}

/// The setup flag that changes a record field, for the blocked states' fixes (the domain
/// words them for every front end; the CLI adds its flag).
pub fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "board_id" => "--board-id",
        "list_id" => "--list-id",
        "done_list_id" => "--done-list-id",
        "team_id" => "--team-id",
        "state_id" => "--state-id",
        "done_state_id" => "--done-state-id",
        "workspace_id" => "--workspace-id",
        "base_url" => "--base-url",
        "revoke_path" => "--confirm-revoke-path",
        _ => return None,
    })
}

/// Prints the five ready states, each blocked state with its fix, and the notes.
pub fn print_readiness(out: &Out, r: &Readiness, record: &ProviderRecord) {
    let (container, destination) = step_names(record.provider_key);
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
        (r.ready.board, container, or_none(&record.board_id)),
        (r.ready.list, destination, or_none(&record.list_id)),
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
            let flag = flag_of(&b.field)
                .map(|f| format!(" [{f}]"))
                .unwrap_or_default();
            out.say(format!("  {} ({}): {}{flag}", b.code, b.field, b.fix));
        }
    }
    for n in &r.notes {
        out.say(format!("Note: {n}"));
    }
}
