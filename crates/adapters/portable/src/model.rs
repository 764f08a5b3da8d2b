//! What a bundle holds: the manifest, one record per card, and the CSV and Markdown
//! renderings of a card.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{
    AuthMethod, BlockedState, DeploymentMode, FindingId, ProviderKey, ProviderRecord, Scope,
    TargetState,
};

/// The value of `format` in every manifest.
pub const FORMAT_NAME: &str = "webriskops-portable";
/// The bundle format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const CARDS_JSON: &str = "cards.json";
pub const CARDS_CSV: &str = "cards.csv";
pub const CARDS_DIR: &str = "cards";
/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 8] = [
    "title",
    "description",
    "labels",
    "checklist",
    "assignee",
    "due",
    "finding_id",
    "target",
];

/// The parts of a provider record that say where the cards were meant to go. No
/// credential, credential reference, base URL or expiry is copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub provider_key: ProviderKey,
    pub deployment_mode: DeploymentMode,
    pub board_id: Option<String>,
    pub list_id: Option<String>,
    pub done_list_id: Option<String>,
    pub workspace_id: Option<String>,
    pub auth_method: AuthMethod,
    pub scopes: BTreeSet<Scope>,
}

impl From<&ProviderRecord> for RecordSummary {
    fn from(r: &ProviderRecord) -> Self {
        RecordSummary {
            provider_key: r.provider_key,
            deployment_mode: r.deployment_mode,
            board_id: r.board_id.clone(),
            list_id: r.list_id.clone(),
            done_list_id: r.done_list_id.clone(),
            workspace_id: r.workspace_id.clone(),
            auth_method: r.auth_method,
            scopes: r.scopes.clone(),
        }
    }
}

/// Why a bundle was written instead of tracker cards, as the writer is told it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FallbackCause {
    /// The operator asked for files (`--fallback always`), whatever the state of setup.
    #[default]
    Requested,
    /// Setup is blocked by these states, each of which files can stand in for
    /// (`--fallback auto`). Never empty: [`crate::PortableExport::new`] refuses an empty list.
    Blocked(Vec<BlockedState>),
}

impl FallbackCause {
    /// The manifest's `fallback` keyword.
    pub fn trigger(&self) -> FallbackTrigger {
        match self {
            FallbackCause::Requested => FallbackTrigger::Requested,
            FallbackCause::Blocked(_) => FallbackTrigger::Blocked,
        }
    }

    /// The blocked states (empty when requested).
    pub fn reasons(&self) -> &[BlockedState] {
        match self {
            FallbackCause::Requested => &[],
            FallbackCause::Blocked(r) => r,
        }
    }
}

/// The manifest's `fallback`: `"requested"` or `"blocked"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackTrigger {
    /// `--fallback always`: the operator asked for the bundle.
    Requested,
    /// `--fallback auto`: setup is blocked; `fallback_reasons` lists the blocked states.
    Blocked,
}

/// `manifest.json`: what the bundle is, why it exists, and a checksum of every other file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    pub format_version: u32,
    /// The only time in the bundle.
    pub created_at: DateTime<Utc>,
    /// Hex SHA-256 of the findings the cards were made from.
    pub source_checksum: String,
    /// Where the cards were meant to go; `None` when no provider record exists.
    pub provider: Option<RecordSummary>,
    /// Why files were written instead of cards: `requested` (`--fallback always`) or
    /// `blocked` (setup is blocked, see `fallback_reasons`). `None` only in bundles written
    /// before this field existed.
    #[serde(default)]
    pub fallback: Option<FallbackTrigger>,
    /// The blocked states (codes and their fixes) that caused a `blocked` fallback; empty
    /// when the bundle was `requested`.
    pub fallback_reasons: Vec<BlockedState>,
    pub card_count: u64,
    /// Bundle-relative path (`/`-separated) → hex SHA-256, for every file but the manifest.
    pub files: BTreeMap<String, String>,
}

/// One card as the bundle records it (an element of `cards.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    pub finding_id: FindingId,
    /// `[webriskops:finding:<id>]`, also present in `description`.
    pub marker: String,
    pub title: String,
    /// The card description exactly as the tracker export writes it, marker included.
    pub description: String,
    /// The list (or other destination) the card was meant for.
    pub destination_id: String,
    pub target: TargetState,
    /// Label names.
    pub labels: Vec<String>,
    /// Remediation steps, in order.
    pub checklist: Vec<String>,
    pub assignee: Option<String>,
    pub due: Option<NaiveDate>,
    /// Where fields the tracker could not hold went.
    pub routing_notes: Vec<String>,
    /// The card's Markdown file, relative to the bundle (`cards/<name>.md`).
    pub file: String,
}

/// `cards.json`: every card, sorted by finding id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardsFile {
    pub format_version: u32,
    pub cards: Vec<CardRecord>,
}

impl CardRecord {
    /// The CSV row, in [`CSV_HEADER`] order.
    pub fn csv_row(&self) -> [String; 8] {
        [
            self.title.clone(),
            self.description.clone(),
            self.labels.join(","),
            self.checklist.join("\n"),
            self.assignee.clone().unwrap_or_default(),
            self.due.map(|d| d.to_string()).unwrap_or_default(),
            self.finding_id.to_string(),
            self.target.as_str().to_owned(),
        ]
    }

    /// The Markdown page for people.
    pub fn markdown(&self) -> String {
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        let mut md = String::new();
        let _ = writeln!(md, "# {}\n", one_line(&self.title));
        let _ = writeln!(md, "- Finding: {}", self.finding_id);
        let _ = writeln!(md, "- Target: {}", self.target.as_str());
        let _ = writeln!(md, "- Destination list: {}", one_line(&self.destination_id));
        if !self.labels.is_empty() {
            let _ = writeln!(md, "- Labels: {}", one_line(&self.labels.join(", ")));
        }
        if let Some(a) = &self.assignee {
            let _ = writeln!(md, "- Assignee: {}", one_line(a));
        }
        if let Some(d) = self.due {
            let _ = writeln!(md, "- Due: {d}");
        }
        let _ = writeln!(md, "\n## Description\n\n{}", self.description.trim_end());
        if !self.checklist.is_empty() {
            md.push_str("\n## Remediation\n\n");
            for step in &self.checklist {
                let _ = writeln!(md, "- [ ] {}", one_line(step));
            }
        }
        if !self.routing_notes.is_empty() {
            md.push_str("\n## Routing notes\n\n");
            for note in &self.routing_notes {
                let _ = writeln!(md, "- {}", one_line(note));
            }
        }
        md
    }
}
