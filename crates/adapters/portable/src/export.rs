//! `PortableExport`: the `WorkItems` port over a file bundle. Cards are buffered (the
//! oldest spilled to disk past a memory budget) and written atomically on `flush`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use webriskops_domain::{extract_marker, marker, FindingId, ItemId, StateCategory, TargetState};
use webriskops_ports::{
    in_context, Capabilities, CheckItem, Checklist, ItemChanges, ItemPage, Label, ListItemsOptions,
    NewItem, NewLabel, PortError, PortResult, RemoteItem, Tracker, WorkItems,
};

use crate::bundle::{check_replaceable, split_target, BundleWriter};
use crate::error::PortableError;
use crate::model::{
    CardRecord, FallbackCause, Manifest, RecordSummary, CARDS_CSV, CARDS_DIR, CARDS_JSON,
    CSV_HEADER, FORMAT_NAME, FORMAT_VERSION,
};
use crate::names::card_file_name;

/// Prefix of the item ids this adapter hands out: `portable:<finding id>`.
pub const ITEM_ID_PREFIX: &str = "portable:";
const CHECKLIST_PART: &str = "/checklist/";

/// How and where to write a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortableOptions {
    /// The bundle directory. It must not exist, be empty, or hold an earlier bundle.
    pub out_dir: PathBuf,
    /// Hex SHA-256 of the findings the cards come from (see [`crate::sha256_hex`]).
    pub source_checksum: String,
    /// Where the cards were meant to go (`RecordSummary::from(&record)`), if known.
    pub record_summary: Option<RecordSummary>,
    /// Why the bundle is written: requested by the operator, or setup blocked (with the
    /// blocked states). Recorded in the manifest.
    pub fallback: FallbackCause,
    /// The manifest's time stamp, the only time in the bundle.
    pub created_at: DateTime<Utc>,
    /// Cards kept in memory before the oldest are spilled to a staging directory.
    pub max_cards_in_memory: usize,
    /// Fails the write after this many files have been opened, as a crash would
    /// (for tests of atomicity). `None` in production.
    pub fail_after_files: Option<usize>,
}

impl Default for PortableOptions {
    fn default() -> Self {
        PortableOptions {
            out_dir: PathBuf::from("webriskops-bundle"),
            source_checksum: String::new(),
            record_summary: None,
            fallback: FallbackCause::Requested,
            created_at: Utc::now(),
            max_cards_in_memory: 1024,
            fail_after_files: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    position: u32,
    seq: u64,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChecklistState {
    name: String,
    steps: Vec<Step>,
}

/// Everything the files need about one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CardState {
    finding_id: FindingId,
    destination_id: String,
    title: String,
    body: String,
    labels: Vec<String>,
    assignee: Option<String>,
    due: Option<NaiveDate>,
    notes: Vec<String>,
    target: TargetState,
    checklists: Vec<ChecklistState>,
    next_seq: u64,
}

impl CardState {
    fn record(&self, file: String) -> CardRecord {
        let checklist = self
            .checklists
            .iter()
            .flat_map(|c| {
                let mut steps: Vec<&Step> = c.steps.iter().collect();
                steps.sort_by_key(|s| (s.position, s.seq));
                steps.into_iter().map(|s| s.name.clone())
            })
            .collect();
        CardRecord {
            finding_id: self.finding_id.clone(),
            marker: marker(&self.finding_id),
            title: self.title.clone(),
            description: self.body.clone(),
            destination_id: self.destination_id.clone(),
            target: self.target,
            labels: self.labels.clone(),
            checklist,
            assignee: self.assignee.clone(),
            due: self.due,
            routing_notes: self.notes.clone(),
            file,
        }
    }
}

#[derive(Default)]
struct State {
    /// Every card: finding id → Markdown file name (the sort order of the bundle).
    index: BTreeMap<FindingId, String>,
    /// File name → finding id, to refuse a collision.
    names: HashMap<String, FindingId>,
    hot: HashMap<FindingId, CardState>,
    hot_order: VecDeque<FindingId>,
    spill: Option<tempfile::TempDir>,
}

fn item_id(f: &FindingId) -> ItemId {
    ItemId::new(format!("{ITEM_ID_PREFIX}{f}")).expect("finding ids are valid item ids")
}

fn not_found(what: impl fmt::Display) -> PortError {
    PortError::not_found(format!(
        "{what} (portable bundles only know cards created in this export)"
    ))
}

fn check_marker(f: &FindingId, body: &str) -> PortResult<()> {
    if extract_marker(body).as_ref() == Some(f) {
        Ok(())
    } else {
        Err(PortError::InvalidInput {
            context: Default::default(),
            message: format!(
                "the description of the card of {f} must carry its marker {}; build it with CardExport",
                marker(f)
            ),
        })
    }
}

fn reject_ids(kind: &str, ids: &[String]) -> PortResult<()> {
    if ids.is_empty() {
        Ok(())
    } else {
        Err(PortError::NotSupported {
            context: Default::default(),
            what: format!(
                "{kind} ids on portable cards; pass names (label_names, assignee) instead"
            ),
        })
    }
}

impl State {
    fn spill_path(&self, file: &str) -> Option<PathBuf> {
        self.spill
            .as_ref()
            .map(|d| d.path().join(format!("{file}.json")))
    }

    fn evict(&mut self, out_dir: &Path, budget: usize) -> Result<(), PortableError> {
        while self.hot.len() > budget.max(1) {
            let Some(id) = self.hot_order.pop_front() else {
                return Ok(());
            };
            let Some(card) = self.hot.remove(&id) else {
                continue;
            };
            if self.spill.is_none() {
                let (parent, name) = split_target(out_dir)?;
                fs::create_dir_all(&parent).map_err(PortableError::io("create", &parent))?;
                let dir = tempfile::Builder::new()
                    .prefix(&format!(".{name}.spill-"))
                    .tempdir_in(&parent)
                    .map_err(PortableError::io("create a spill directory in", &parent))?;
                self.spill = Some(dir);
            }
            let path = self
                .spill_path(&self.index[&id])
                .expect("spill directory exists");
            let bytes = serde_json::to_vec(&card).expect("card state serialises");
            fs::write(&path, bytes).map_err(PortableError::io("write", &path))?;
        }
        Ok(())
    }

    fn read_spilled(&self, id: &FindingId) -> Result<CardState, PortableError> {
        let path = self
            .spill_path(&self.index[id])
            .ok_or_else(|| PortableError::Conflict {
                message: format!("the buffered card of {id} was lost; run the export again"),
            })?;
        let bytes = fs::read(&path).map_err(PortableError::io("read", &path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PortableError::io("decode", &path)(std::io::Error::other(e)))
    }

    /// The buffered card of `id`, brought back into memory if it was spilled.
    fn card_mut(
        &mut self,
        id: &FindingId,
        out_dir: &Path,
        budget: usize,
    ) -> PortResult<&mut CardState> {
        if !self.index.contains_key(id) {
            return Err(not_found(format!("portable card {ITEM_ID_PREFIX}{id}")));
        }
        if !self.hot.contains_key(id) {
            let card = self.read_spilled(id)?;
            self.hot.insert(id.clone(), card);
            self.hot_order.push_back(id.clone());
            self.evict(out_dir, budget)?;
        }
        Ok(self.hot.get_mut(id).expect("card is in memory"))
    }

    fn write_bundle(&self, opts: &PortableOptions) -> Result<(), PortableError> {
        let mut w = BundleWriter::begin(&opts.out_dir, opts.fail_after_files)?;
        let mut json = w.open(CARDS_JSON)?;
        let json_path = json.path().to_owned();
        let csv_file = w.open(CARDS_CSV)?;
        let csv_path = csv_file.path().to_owned();
        let csv_err =
            |e: csv::Error| PortableError::io("write", &csv_path)(std::io::Error::other(e));
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(csv_file);
        csv.write_record(CSV_HEADER).map_err(csv_err)?;
        write!(
            json,
            "{{\n  \"format_version\": {FORMAT_VERSION},\n  \"cards\": ["
        )
        .map_err(PortableError::io("write", &json_path))?;
        for (i, (id, file)) in self.index.iter().enumerate() {
            let spilled;
            let card = match self.hot.get(id) {
                Some(c) => c,
                None => {
                    spilled = self.read_spilled(id)?;
                    &spilled
                }
            };
            let record = card.record(format!("{CARDS_DIR}/{file}"));
            w.write_file(&record.file, record.markdown().as_bytes())?;
            csv.write_record(record.csv_row()).map_err(csv_err)?;
            let pretty = serde_json::to_string_pretty(&record).expect("card record serialises");
            let mut chunk = String::from(if i == 0 { "\n" } else { ",\n" });
            for (n, line) in pretty.lines().enumerate() {
                if n > 0 {
                    chunk.push('\n');
                }
                chunk.push_str("    ");
                chunk.push_str(line);
            }
            json.write_all(chunk.as_bytes())
                .map_err(PortableError::io("write", &json_path))?;
        }
        let close = if self.index.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        };
        json.write_all(close.as_bytes())
            .map_err(PortableError::io("write", &json_path))?;
        w.finish(json)?;
        let csv_file = csv
            .into_inner()
            .map_err(|e| PortableError::io("write", &csv_path)(e.into_error()))?;
        w.finish(csv_file)?;
        w.commit(Manifest {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            created_at: opts.created_at,
            source_checksum: opts.source_checksum.clone(),
            provider: opts.record_summary.clone(),
            fallback: Some(opts.fallback.trigger()),
            fallback_reasons: opts.fallback.reasons().to_vec(),
            card_count: self.index.len() as u64,
            files: BTreeMap::new(),
        })
    }
}

/// The portable export: a write-only tracker whose "cards" become a bundle of files.
///
/// Creates, checklists and updates are buffered; `flush` writes `cards.json`,
/// `cards.csv`, one Markdown file per card and `manifest.json` into a staging
/// directory and renames it into place, replacing an earlier bundle only then.
/// Clones share the same buffer.
#[derive(Clone)]
pub struct PortableExport {
    opts: Arc<PortableOptions>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for PortableExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cards = self.state.lock().map(|s| s.index.len()).unwrap_or(0);
        f.debug_struct("PortableExport")
            .field("out_dir", &self.opts.out_dir)
            .field("cards", &cards)
            .finish()
    }
}

impl PortableExport {
    /// Checks the options and that the target may be replaced (nothing there, an
    /// empty directory or an earlier bundle), before any card is buffered.
    ///
    /// # Errors
    /// `InvalidOptions` for a checksum that is not 64 hex digits or an `out_dir` without
    /// a directory name; `NotABundle` when the target holds other files.
    pub fn new(mut opts: PortableOptions) -> Result<Self, PortableError> {
        let sum = opts.source_checksum.trim().to_ascii_lowercase();
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PortableError::InvalidOptions {
                reason: format!(
                    "source_checksum must be the 64 hex digits of a SHA-256, got {} characters",
                    opts.source_checksum.chars().count()
                ),
            });
        }
        opts.source_checksum = sum;
        if matches!(&opts.fallback, FallbackCause::Blocked(r) if r.is_empty()) {
            return Err(PortableError::InvalidOptions {
                reason: "a blocked fallback must name the blocked states that caused it; \
                         use FallbackCause::Requested for a bundle the operator asked for"
                    .into(),
            });
        }
        split_target(&opts.out_dir)?;
        check_replaceable(&opts.out_dir)?;
        Ok(PortableExport {
            opts: Arc::new(opts),
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// The bundle directory.
    pub fn out_dir(&self) -> &Path {
        &self.opts.out_dir
    }

    /// How many cards are buffered.
    pub fn card_count(&self) -> usize {
        self.state.lock().map(|s| s.index.len()).unwrap_or(0)
    }

    fn lock(&self) -> PortResult<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| poisoned())
    }

    fn remote(&self, card: &CardState) -> RemoteItem {
        RemoteItem {
            id: item_id(&card.finding_id),
            finding_id: Some(card.finding_id.clone()),
            url: None,
            container_id: self
                .opts
                .record_summary
                .as_ref()
                .and_then(|r| r.board_id.clone())
                .unwrap_or_default(),
            destination_id: card.destination_id.clone(),
            // The bundle records where each card should end: open, or closed.
            category: match card.target {
                TargetState::Open => StateCategory::Open,
                TargetState::Done | TargetState::Archived => StateCategory::Done,
            },
            state_name: card.target.as_str().to_owned(),
            title: card.title.clone(),
            body: card.body.clone(),
            archived: card.target == TargetState::Archived,
            label_ids: Vec::new(),
            member_ids: Vec::new(),
            due: card.due,
            created_secs: u64::try_from(self.opts.created_at.timestamp()).unwrap_or(0),
            last_activity: None,
            checklists: None,
            // The bundle writes priority as a label and in the JSON, not natively.
            priority: None,
        }
    }
}

fn poisoned() -> PortError {
    PortError::other("the portable export buffer is unusable after a panic; run the export again")
}

fn finding_of_item(id: &ItemId) -> PortResult<FindingId> {
    id.as_str()
        .strip_prefix(ITEM_ID_PREFIX)
        .and_then(|f| FindingId::new(f).ok())
        .ok_or_else(|| not_found(format!("portable card {id}")))
}

fn parse_checklist_id(id: &str) -> PortResult<(FindingId, usize)> {
    id.strip_prefix(ITEM_ID_PREFIX)
        .and_then(|rest| rest.rsplit_once(CHECKLIST_PART))
        .and_then(|(f, n)| Some((FindingId::new(f).ok()?, n.parse().ok()?)))
        .ok_or_else(|| not_found(format!("portable checklist {id}")))
}

impl Tracker for PortableExport {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tracker: "portable",
            list_items: false,
            labels: false,
            create_labels: false,
            checklists: true,
            members: false,
            native_priority: false,
            archive: false,
            move_items: false,
            revoke: false,
            max_page_size: 0,
            // Files take any length; the cards are cut as Trello cuts them, so that a
            // bundle imported into Trello later fits.
            max_title_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
            max_body_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
            max_step_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
            max_assignees: u32::MAX,
            copies_step_lists: false,
        }
    }
}

#[async_trait]
impl WorkItems for PortableExport {
    async fn list_items(&self, _opts: &ListItemsOptions) -> PortResult<ItemPage> {
        in_context(self, "list_items", async {
            Err(PortError::NotSupported {
                context: Default::default(),
            what:
                "listing items of a portable bundle (write-only); read it with PortableBundle::load"
                    .into(),
        })
        })
        .await
    }

    async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem> {
        in_context(self, "create_item", async {
        check_marker(&item.finding_id, &item.body)?;
        reject_ids("label", &item.label_ids)?;
        reject_ids("member", &item.member_ids)?;
        let mut state = self.lock()?;
        let id = &item.finding_id;
        if state.index.contains_key(id) {
            return Err(PortError::Conflict {
                context: Default::default(),
                message: format!(
                    "the card of {id} is already in the portable bundle; update {ITEM_ID_PREFIX}{id} instead"
                ),
            });
        }
        let file = card_file_name(id.as_str());
        if let Some(other) = state.names.get(&file) {
            return Err(PortableError::Conflict {
                message: format!(
                    "finding ids {other} and {id} map to the same file name {file}; rename one of them"
                ),
            }
            .into());
        }
        let card = CardState {
            finding_id: id.clone(),
            destination_id: item.destination_id.clone(),
            title: item.title.clone(),
            body: item.body.clone(),
            labels: item.label_names.clone(),
            assignee: item.assignee.clone(),
            due: item.due,
            notes: item.notes.clone(),
            target: item.target,
            checklists: Vec::new(),
            next_seq: 0,
        };
        let remote = self.remote(&card);
        state.names.insert(file.clone(), id.clone());
        state.index.insert(id.clone(), file);
        state.hot.insert(id.clone(), card);
        state.hot_order.push_back(id.clone());
        state.evict(&self.opts.out_dir, self.opts.max_cards_in_memory)?;
        Ok(remote)
    }).await
    }

    async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem> {
        in_context(self, "update_item", async {
            let finding = finding_of_item(id)?;
            if let Some(body) = &changes.body {
                check_marker(&finding, body)?;
            }
            reject_ids("label", changes.label_ids.as_deref().unwrap_or_default())?;
            reject_ids("member", changes.member_ids.as_deref().unwrap_or_default())?;
            let mut state = self.lock()?;
            let card =
                state.card_mut(&finding, &self.opts.out_dir, self.opts.max_cards_in_memory)?;
            if let Some(t) = &changes.title {
                card.title.clone_from(t);
            }
            if let Some(b) = &changes.body {
                card.body.clone_from(b);
            }
            if let Some(d) = changes.due {
                card.due = d;
            }
            if let Some(dest) = &changes.destination_id {
                card.destination_id.clone_from(dest);
            }
            match changes.archived {
                Some(true) => card.target = TargetState::Archived,
                Some(false) if card.target == TargetState::Archived => {
                    card.target = TargetState::Open
                }
                _ => {}
            }
            let card = card.clone();
            Ok(self.remote(&card))
        })
        .await
    }

    async fn create_checklist(&self, item: &ItemId, name: &str) -> PortResult<Checklist> {
        in_context(self, "create_checklist", async {
            let finding = finding_of_item(item)?;
            let mut state = self.lock()?;
            let card =
                state.card_mut(&finding, &self.opts.out_dir, self.opts.max_cards_in_memory)?;
            card.checklists.push(ChecklistState {
                name: name.to_owned(),
                steps: Vec::new(),
            });
            Ok(Checklist {
                id: format!("{item}{CHECKLIST_PART}{}", card.checklists.len() - 1),
                name: name.to_owned(),
                items: Vec::new(),
            })
        })
        .await
    }

    async fn add_check_item(
        &self,
        checklist_id: &str,
        name: &str,
        position: u32,
    ) -> PortResult<CheckItem> {
        in_context(self, "add_check_item", async {
            let (finding, index) = parse_checklist_id(checklist_id)?;
            let mut state = self.lock()?;
            let card =
                state.card_mut(&finding, &self.opts.out_dir, self.opts.max_cards_in_memory)?;
            let seq = card.next_seq;
            let list = card
                .checklists
                .get_mut(index)
                .ok_or_else(|| not_found(format!("portable checklist {checklist_id}")))?;
            list.steps.push(Step {
                position,
                seq,
                name: name.to_owned(),
            });
            card.next_seq += 1;
            Ok(CheckItem {
                id: format!("{checklist_id}/item/{seq}"),
                name: name.to_owned(),
                complete: false,
            })
        })
        .await
    }

    async fn create_label(&self, _label: &NewLabel) -> PortResult<Label> {
        in_context(self, "create_label", async {
            Err(PortError::NotSupported {
                context: Default::default(),
                what: "labels in a portable bundle; cards carry label names instead".into(),
            })
        })
        .await
    }

    async fn flush(&self) -> PortResult<()> {
        in_context(self, "flush", async {
            let opts = Arc::clone(&self.opts);
            let state = Arc::clone(&self.state);
            tokio::task::spawn_blocking(move || -> PortResult<()> {
                let state = state.lock().map_err(|_| poisoned())?;
                state.write_bundle(&opts).map_err(PortError::from)
            })
            .await
            .map_err(|e| PortError::other(format!("writing the portable bundle stopped: {e}")))?
        })
        .await
    }
}
