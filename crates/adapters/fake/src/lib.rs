//! An in-memory tracker implementing both tracker ports, for tests.
//!
//! It is a real adapter: it keeps boards, lists, labels, members and cards, shares its
//! state between clones, records every call, and injects faults (fail the next N calls
//! of a kind, optionally after applying them, and latency). It passes the same
//! conformance suite as the Trello adapter.

mod store;
pub use store::MemoryStore;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use webriskops_domain::{
    extract_marker, extract_template_marker, template_marker, ItemId, Permission, StateCategory,
};
use webriskops_ports::{
    in_context, Account, Capabilities, CheckItem, Checklist, Container, Destination, ItemChanges,
    ItemPage, Label, ListItemsOptions, Member, NewItem, NewLabel, NewStepTemplate, PortError,
    PortResult, ReadOptions, RemoteItem, StepTemplate, TokenInfo, Tracker, TrackerIntrospection,
    WorkItems,
};

/// A call the fake received: the port method name and its main argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub target: String,
}

/// A planned failure: the next `times` calls of `method` (or of any method) fail with
/// `error`; with `apply_first` the call takes effect before failing, as a request whose
/// answer was lost does.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<&'static str>,
    pub times: u32,
    pub error: PortError,
    pub apply_first: bool,
}

#[derive(Debug, Clone)]
struct Card {
    seq: u64,
    item: RemoteItem,
    checklists: Vec<Checklist>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    account: Option<Account>,
    token: Option<TokenInfo>,
    token_valid: bool,
    containers: BTreeMap<String, Container>,
    destinations: BTreeMap<String, Destination>,
    labels: BTreeMap<String, Vec<Label>>,
    members: BTreeMap<String, Vec<Member>>,
    cards: BTreeMap<String, Card>,
    checklist_card: HashMap<String, String>,
    positions: HashMap<String, u32>,
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    latency: Duration,
    capabilities: Option<Capabilities>,
}

/// The fake tracker. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct FakeTracker {
    state: Arc<Mutex<State>>,
}

/// Ids of the standard fake world.
#[derive(Debug, Clone)]
pub struct FakeWorld {
    pub tracker: FakeTracker,
    pub board_id: String,
    pub list_id: String,
    pub done_list_id: String,
    pub org_id: String,
    pub member_ids: HashMap<String, String>,
}

const BASE_CAPS: Capabilities = Capabilities {
    tracker: "fake",
    list_items: true,
    labels: true,
    create_labels: true,
    checklists: true,
    members: true,
    native_priority: false,
    archive: true,
    move_items: true,
    revoke: true,
    max_page_size: 50,
    // Text limits and assignees as Trello's.
    max_title_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    max_body_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    max_step_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    max_assignees: u32::MAX,
    copies_step_lists: false,
};

impl FakeTracker {
    /// An empty tracker with a valid token of full permissions.
    pub fn new() -> Self {
        let t = FakeTracker::default();
        {
            let mut s = t.lock();
            s.token_valid = true;
            s.account = Some(Account {
                id: "fake-member-owner".into(),
                username: "secops".into(),
                full_name: Some("Security Ops".into()),
            });
            s.token = Some(TokenInfo {
                member_id: Some("fake-member-owner".into()),
                app_name: Some("WebRiskOps".into()),
                created_at: None,
                expires_at: None,
                permissions: vec![
                    Permission {
                        id_model: "*".into(),
                        model_type: "Board".into(),
                        read: true,
                        write: true,
                    },
                    Permission {
                        id_model: "*".into(),
                        model_type: "Organization".into(),
                        read: true,
                        write: true,
                    },
                ],
                grant: webriskops_ports::Grant::from_permissions(
                    &[Permission {
                        id_model: "*".into(),
                        model_type: "Board".into(),
                        read: true,
                        write: true,
                    }],
                    None,
                ),
            });
        }
        t
    }

    /// A board "Security Remediation" with lists To Do, Doing and Done, members
    /// secops, jdoe and asmith, in one organization.
    pub fn standard() -> FakeWorld {
        let t = FakeTracker::new();
        let org = "6500000000000000000000ff".to_owned();
        let board = t.add_container("Security Remediation", Some(&org));
        let list = t.add_destination(&board, "To Do");
        t.add_destination(&board, "Doing");
        let done = t.add_destination(&board, "Done");
        let mut member_ids = HashMap::new();
        for (user, name) in [
            ("secops", "Security Ops"),
            ("jdoe", "Jane Doe"),
            ("asmith", "Alex Smith"),
        ] {
            member_ids.insert(user.to_owned(), t.add_member(&board, user, name));
        }
        FakeWorld {
            tracker: t,
            board_id: board,
            list_id: list,
            done_list_id: done,
            org_id: org,
            member_ids,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ids look like Trello's (24 hex, creation time first), so readiness rules apply
    /// to fake records unchanged. `kind` only documents the call site.
    fn next_id(s: &mut State, _kind: &str) -> (u64, String) {
        s.next += 1;
        (
            s.next,
            format!("{:08x}{:016x}", 0x6500_0000 + s.next, s.next),
        )
    }

    pub fn add_container(&self, name: &str, org: Option<&str>) -> String {
        let mut s = self.lock();
        let (_, id) = Self::next_id(&mut s, "board");
        s.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                name: name.into(),
                closed: false,
                organization_id: org.map(Into::into),
                url: None,
            },
        );
        s.labels.insert(id.clone(), Vec::new());
        s.members.insert(id.clone(), Vec::new());
        id
    }

    /// A destination without a category of its own (like a Trello list): it reads `Open`
    /// unless a read names it as the done destination.
    pub fn add_destination(&self, container: &str, name: &str) -> String {
        self.add_destination_of(container, name, StateCategory::Open)
    }

    /// A destination of a typed state (like a Linear workflow state): items in it read as
    /// `category` whatever the read's done destination.
    pub fn add_destination_of(
        &self,
        container: &str,
        name: &str,
        category: StateCategory,
    ) -> String {
        let mut s = self.lock();
        let (_, id) = Self::next_id(&mut s, "list");
        s.destinations.insert(
            id.clone(),
            Destination {
                id: id.clone(),
                name: name.into(),
                closed: false,
                container_id: container.into(),
                category,
            },
        );
        id
    }

    pub fn add_member(&self, container: &str, username: &str, full_name: &str) -> String {
        let mut s = self.lock();
        let (_, id) = Self::next_id(&mut s, "member");
        let m = Member {
            id: id.clone(),
            username: username.into(),
            full_name: Some(full_name.into()),
            email: None,
        };
        s.members.entry(container.into()).or_default().push(m);
        id
    }

    pub fn add_label(&self, container: &str, name: &str, color: Option<&str>) -> String {
        let mut s = self.lock();
        let (_, id) = Self::next_id(&mut s, "label");
        s.labels.entry(container.into()).or_default().push(Label {
            id: id.clone(),
            name: name.into(),
            color: color.map(Into::into),
        });
        id
    }

    /// Replaces the token's permissions and expiry.
    pub fn set_token(&self, permissions: Vec<Permission>, expires_at: Option<DateTime<Utc>>) {
        let mut s = self.lock();
        if let Some(t) = s.token.as_mut() {
            t.grant = webriskops_ports::Grant::from_permissions(&permissions, expires_at);
            t.permissions = permissions;
            t.expires_at = expires_at;
        }
    }

    /// Makes every later call fail as with a revoked or invalid token.
    pub fn invalidate_token(&self) {
        self.lock().token_valid = false;
    }

    /// Lets new items copy their steps from step templates (`copies_step_lists`, off by
    /// default so that the fake keeps the k + 2 path unless a test asks).
    pub fn copy_step_lists(&self) {
        let mut s = self.lock();
        let caps = s.capabilities.unwrap_or(BASE_CAPS);
        s.capabilities = Some(Capabilities {
            copies_step_lists: true,
            ..caps
        });
    }

    /// Overrides the capabilities (e.g. no label creation).
    pub fn set_capabilities(&self, caps: Capabilities) {
        self.lock().capabilities = Some(caps);
    }

    pub fn close_destination(&self, id: &str) {
        if let Some(d) = self.lock().destinations.get_mut(id) {
            d.closed = true;
        }
    }

    pub fn close_container(&self, id: &str) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.closed = true;
        }
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Adds latency to every call.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls of a method were made.
    pub fn count(&self, method: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Calls that write.
    pub fn write_count(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| is_write(c.method))
            .count()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// All cards of a container, archived included, oldest first, with checklists (read
    /// without a done destination).
    pub fn items(&self, container: &str) -> Vec<RemoteItem> {
        let s = self.lock();
        let mut v: Vec<&Card> = s
            .cards
            .values()
            .filter(|c| c.item.container_id == container)
            .collect();
        v.sort_by_key(|c| c.seq);
        let read = ReadOptions {
            with_checklists: true,
            done_destination: None,
        };
        v.into_iter().map(|c| view(&s, c, &read)).collect()
    }

    /// A person acting in the tracker: applies changes without going through the port.
    pub fn person_update(&self, id: &ItemId, changes: &ItemChanges) {
        let mut s = self.lock();
        apply_changes(&mut s, id.as_str(), changes).expect("card exists");
    }

    /// A person moving a card to a state of `category`: to the first destination of its
    /// container typed so (see [`FakeTracker::add_destination_of`]), created (named after
    /// the category) when there is none. Returns the destination's id.
    pub fn person_move_to_category(&self, id: &ItemId, category: StateCategory) -> String {
        let container = {
            let s = self.lock();
            s.cards
                .get(id.as_str())
                .expect("card exists")
                .item
                .container_id
                .clone()
        };
        let existing = self
            .lock()
            .destinations
            .values()
            .find(|d| d.container_id == container && d.category == category && !d.closed)
            .map(|d| d.id.clone());
        let dest = existing.unwrap_or_else(|| {
            let name = match category {
                StateCategory::Open => "Backlog",
                StateCategory::Started => "In Progress",
                StateCategory::Done => "Completed",
                StateCategory::Canceled => "Canceled",
            };
            self.add_destination_of(&container, name, category)
        });
        self.person_update(
            id,
            &ItemChanges {
                destination_id: Some(dest.clone()),
                ..Default::default()
            },
        );
        dest
    }

    /// A person creating a card directly (e.g. a copy carrying a marker).
    pub fn person_create(&self, destination: &str, title: &str, body: &str) -> ItemId {
        let mut s = self.lock();
        create(&mut s, destination, title, body, vec![], vec![], None)
            .expect("destination exists")
            .id
    }

    /// A person deleting a card.
    pub fn person_delete(&self, id: &ItemId) {
        self.lock().cards.remove(id.as_str());
    }

    /// A person ticking a check item.
    pub fn person_tick(&self, item: &ItemId, check_item_name: &str) {
        let mut s = self.lock();
        if let Some(card) = s.cards.get_mut(item.as_str()) {
            for cl in &mut card.checklists {
                for ci in &mut cl.items {
                    if ci.name == check_item_name {
                        ci.complete = true;
                    }
                }
            }
        }
    }

    /// Records the call, applies latency and faults. Returns `Err` to fail now, or
    /// `Ok(Some(err))` to fail after applying.
    async fn enter(&self, method: &'static str, target: &str) -> PortResult<Option<PortError>> {
        let latency = {
            let mut s = self.lock();
            s.calls.push(Call {
                method,
                target: target.to_owned(),
            });
            s.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut s = self.lock();
        if !s.token_valid {
            return Err(PortError::Unauthenticated {
                context: Default::default(),
                message: "invalid token".into(),
            });
        }
        let pos = s
            .faults
            .iter()
            .position(|f| f.method.is_none_or(|m| m == method));
        if let Some(i) = pos {
            let fault = &mut s.faults[i];
            fault.times = fault.times.saturating_sub(1);
            let (error, apply_first) = (fault.error.clone(), fault.apply_first);
            if fault.times == 0 {
                s.faults.remove(i);
            }
            return if apply_first {
                Ok(Some(error))
            } else {
                Err(error)
            };
        }
        Ok(None)
    }
}

fn is_write(method: &str) -> bool {
    matches!(
        method,
        "create_item"
            | "update_item"
            | "create_checklist"
            | "add_check_item"
            | "create_label"
            | "revoke_token"
            | "create_step_template"
            | "delete_step_template"
            | "create_item_copying"
    )
}

/// A card as a read shows it: the finding from the marker in its body (the fake stores
/// identity as Trello does), the category of its destination (the read's done
/// destination reads `Done`; an archived card reads `Done` when the read names none).
fn view(s: &State, c: &Card, read: &ReadOptions) -> RemoteItem {
    let mut item = c.item.clone();
    item.finding_id = extract_marker(&item.body);
    let dest = s.destinations.get(&item.destination_id);
    item.state_name = dest.map_or_else(|| item.destination_id.clone(), |d| d.name.clone());
    let own = dest.map_or(StateCategory::Open, |d| d.category);
    item.category = match read.done_destination.as_deref() {
        Some(done) if done == item.destination_id => StateCategory::Done,
        None if item.archived && !own.is_closed() => StateCategory::Done,
        _ => own,
    };
    item.checklists = read.with_checklists.then(|| c.checklists.clone());
    // Priority is native only when the fake is set up to have it, as a tracker would.
    if !s.capabilities.unwrap_or(BASE_CAPS).native_priority {
        item.priority = None;
    }
    item
}

/// The answer of a write: the card read without a done destination.
fn written(s: &State, id: &str) -> PortResult<RemoteItem> {
    let card = s
        .cards
        .get(id)
        .ok_or_else(|| PortError::not_found(format!("item {id}")))?;
    let mut item = view(s, card, &ReadOptions::default());
    item.checklists = None;
    Ok(item)
}

fn finish<T>(result: T, after: Option<PortError>) -> PortResult<T> {
    match after {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

fn create(
    s: &mut State,
    destination: &str,
    title: &str,
    body: &str,
    label_ids: Vec<String>,
    member_ids: Vec<String>,
    due: Option<chrono::NaiveDate>,
) -> PortResult<RemoteItem> {
    let container = s
        .destinations
        .get(destination)
        .map(|d| d.container_id.clone())
        .ok_or_else(|| PortError::InvalidInput {
            context: Default::default(),
            message: format!("invalid value for destination {destination}"),
        })?;
    if title.is_empty() {
        return Err(PortError::InvalidInput {
            context: Default::default(),
            message: "invalid value for name".into(),
        });
    }
    let (seq, id) = FakeTracker::next_id(s, "card");
    let item = RemoteItem {
        id: ItemId::new(&id).expect("fake ids are valid"),
        finding_id: None,
        url: Some(format!("https://fake.invalid/c/{id}")),
        container_id: container,
        destination_id: destination.to_owned(),
        category: StateCategory::Open,
        state_name: String::new(),
        title: title.to_owned(),
        body: body.to_owned(),
        archived: false,
        label_ids,
        member_ids,
        due,
        created_secs: 1_700_000_000 + seq,
        last_activity: Some(Utc::now()),
        checklists: None,
        priority: None,
    };
    s.cards.insert(
        id.clone(),
        Card {
            seq,
            item,
            checklists: Vec::new(),
        },
    );
    written(s, &id)
}

fn apply_changes(s: &mut State, id: &str, c: &ItemChanges) -> PortResult<RemoteItem> {
    if let Some(d) = &c.destination_id {
        if !s.destinations.contains_key(d) {
            return Err(PortError::InvalidInput {
                context: Default::default(),
                message: format!("invalid value for destination {d}"),
            });
        }
    }
    let card = s
        .cards
        .get_mut(id)
        .ok_or_else(|| PortError::not_found(format!("item {id}")))?;
    let item = &mut card.item;
    if let Some(v) = &c.title {
        item.title.clone_from(v);
    }
    if let Some(v) = &c.body {
        item.body.clone_from(v);
    }
    if let Some(v) = &c.label_ids {
        item.label_ids.clone_from(v);
    }
    if let Some(v) = &c.member_ids {
        item.member_ids.clone_from(v);
    }
    if let Some(v) = c.due {
        item.due = v;
    }
    if let Some(v) = &c.destination_id {
        item.destination_id.clone_from(v);
    }
    if let Some(v) = c.priority {
        item.priority = Some(v);
    }
    if let Some(v) = c.archived {
        item.archived = v;
    }
    item.last_activity = Some(Utc::now());
    written(s, id)
}

impl Tracker for FakeTracker {
    fn capabilities(&self) -> Capabilities {
        self.lock().capabilities.unwrap_or(BASE_CAPS)
    }
}

#[async_trait]
impl TrackerIntrospection for FakeTracker {
    async fn whoami(&self) -> PortResult<Account> {
        in_context(self, "whoami", async {
            let after = self.enter("whoami", "me").await?;
            let account = self
                .lock()
                .account
                .clone()
                .ok_or_else(|| PortError::not_found("account"))?;
            finish(account, after)
        })
        .await
    }

    async fn token_info(&self) -> PortResult<TokenInfo> {
        in_context(self, "token_info", async {
            let after = self.enter("token_info", "token").await?;
            let token = self
                .lock()
                .token
                .clone()
                .ok_or_else(|| PortError::not_found("token"))?;
            finish(token, after)
        })
        .await
    }

    async fn containers(&self) -> PortResult<Vec<Container>> {
        in_context(self, "containers", async {
            let after = self.enter("containers", "me").await?;
            let all = self.lock().containers.values().cloned().collect();
            finish(all, after)
        })
        .await
    }

    async fn container(&self, id: &str) -> PortResult<Container> {
        in_context(self, "container", async {
            let after = self.enter("container", id).await?;
            let c = self
                .lock()
                .containers
                .get(id)
                .cloned()
                .ok_or_else(|| PortError::not_found(format!("board {id}")))?;
            finish(c, after)
        })
        .await
    }

    async fn destinations(&self, container_id: &str) -> PortResult<Vec<Destination>> {
        in_context(self, "destinations", async {
            let after = self.enter("destinations", container_id).await?;
            let d = self
                .lock()
                .destinations
                .values()
                .filter(|d| d.container_id == container_id)
                .cloned()
                .collect();
            finish(d, after)
        })
        .await
    }

    async fn destination(&self, id: &str) -> PortResult<Destination> {
        in_context(self, "destination", async {
            let after = self.enter("destination", id).await?;
            let d = self
                .lock()
                .destinations
                .get(id)
                .cloned()
                .ok_or_else(|| PortError::not_found(format!("list {id}")))?;
            finish(d, after)
        })
        .await
    }

    async fn labels(&self, container_id: &str) -> PortResult<Vec<Label>> {
        in_context(self, "labels", async {
            let after = self.enter("labels", container_id).await?;
            let l = self
                .lock()
                .labels
                .get(container_id)
                .cloned()
                .ok_or_else(|| PortError::not_found(format!("board {container_id}")))?;
            finish(l, after)
        })
        .await
    }

    async fn members(&self, container_id: &str) -> PortResult<Vec<Member>> {
        in_context(self, "members", async {
            let after = self.enter("members", container_id).await?;
            let m = self
                .lock()
                .members
                .get(container_id)
                .cloned()
                .ok_or_else(|| PortError::not_found(format!("board {container_id}")))?;
            finish(m, after)
        })
        .await
    }

    async fn revoke_token(&self) -> PortResult<()> {
        in_context(self, "revoke_token", async {
            let after = self.enter("revoke_token", "token").await?;
            self.lock().token_valid = false;
            finish((), after)
        })
        .await
    }
}

#[async_trait]
impl WorkItems for FakeTracker {
    /// Every call received counts as one request: writes as writes, the rest as reads
    /// (the fake answers no call with a rate limit).
    fn request_stats(&self) -> Option<webriskops_ports::RequestStats> {
        let calls = self.calls().len() as u64;
        let writes = self.write_count() as u64;
        Some(webriskops_ports::RequestStats {
            reads: calls - writes,
            writes,
            ..Default::default()
        })
    }

    async fn list_items(&self, opts: &ListItemsOptions) -> PortResult<ItemPage> {
        in_context(self, "list_items", async {
            let after = self.enter("list_items", &opts.container_id).await?;
            let s = self.lock();
            if !s.containers.contains_key(&opts.container_id) {
                return Err(PortError::not_found(format!("board {}", opts.container_id)));
            }
            let max = BASE_CAPS.max_page_size;
            let size = if opts.page_size == 0 {
                max
            } else {
                opts.page_size.min(max)
            } as usize;
            let before: Option<u64> = match &opts.cursor {
                None => None,
                Some(c) => Some(c.parse().map_err(|_| PortError::InvalidInput {
                    context: Default::default(),
                    message: format!("invalid cursor {c:?}"),
                })?),
            };
            let mut cards: Vec<&Card> = s
                .cards
                .values()
                .filter(|c| c.item.container_id == opts.container_id)
                .filter(|c| opts.include_archived || !c.item.archived)
                .filter(|c| before.is_none_or(|b| c.seq < b))
                .collect();
            cards.sort_by_key(|c| std::cmp::Reverse(c.seq));
            let page: Vec<&Card> = cards.into_iter().take(size).collect();
            let next_cursor = (page.len() == size)
                .then(|| page.last().map(|c| c.seq.to_string()))
                .flatten();
            let read = opts.read_options();
            // Step templates (their own marker, no finding's) are listed apart, with
            // their checklists, as the Trello adapter does.
            let (templates, items): (Vec<&Card>, Vec<&Card>) = page.into_iter().partition(|c| {
                extract_marker(&c.item.body).is_none()
                    && extract_template_marker(&c.item.body).is_some()
            });
            let step_templates = templates
                .into_iter()
                .filter_map(|c| {
                    Some(StepTemplate {
                        id: c.item.id.to_string(),
                        key: extract_template_marker(&c.item.body)?,
                        destination_id: c.item.destination_id.clone(),
                        hidden: c.item.archived,
                        checklists: c.checklists.clone(),
                    })
                })
                .collect();
            let items = items.into_iter().map(|c| view(&s, c, &read)).collect();
            finish(
                ItemPage {
                    items,
                    next_cursor,
                    step_templates,
                },
                after,
            )
        })
        .await
    }

    async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem> {
        in_context(self, "create_item", async {
            let after = self.enter("create_item", item.finding_id.as_str()).await?;
            let mut s = self.lock();
            let created = create(
                &mut s,
                &item.destination_id,
                &item.title,
                &item.body,
                item.label_ids.clone(),
                item.member_ids.clone(),
                item.due,
            )?;
            if let Some(card) = s.cards.get_mut(created.id.as_str()) {
                card.item.priority = item.priority;
            }
            let created = written(&s, created.id.as_str())?;
            finish(created, after)
        })
        .await
    }

    async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem> {
        in_context(self, "update_item", async {
            let after = self.enter("update_item", id.as_str()).await?;
            let mut s = self.lock();
            let item = apply_changes(&mut s, id.as_str(), changes)?;
            finish(item, after)
        })
        .await
    }

    async fn create_checklist(&self, item: &ItemId, name: &str) -> PortResult<Checklist> {
        in_context(self, "create_checklist", async {
            let after = self.enter("create_checklist", item.as_str()).await?;
            let mut s = self.lock();
            if !s.cards.contains_key(item.as_str()) {
                return Err(PortError::not_found(format!("item {item}")));
            }
            let (_, id) = Self::next_id(&mut s, "checklist");
            let list = Checklist {
                id: id.clone(),
                name: name.to_owned(),
                items: Vec::new(),
            };
            s.checklist_card.insert(id, item.to_string());
            s.cards
                .get_mut(item.as_str())
                .expect("checked above")
                .checklists
                .push(list.clone());
            finish(list, after)
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
            let after = self.enter("add_check_item", checklist_id).await?;
            let mut s = self.lock();
            let card_id = s
                .checklist_card
                .get(checklist_id)
                .cloned()
                .ok_or_else(|| PortError::not_found(format!("checklist {checklist_id}")))?;
            let (_, id) = Self::next_id(&mut s, "checkitem");
            let ci = CheckItem {
                id,
                name: name.to_owned(),
                complete: false,
            };
            // Keep items ordered by their requested position, as Trello's `pos` does.
            s.positions.insert(ci.id.clone(), position);
            let positions = s.positions.clone();
            let card = s
                .cards
                .get_mut(&card_id)
                .ok_or_else(|| PortError::not_found(format!("item {card_id}")))?;
            let list = card
                .checklists
                .iter_mut()
                .find(|l| l.id == checklist_id)
                .expect("indexed checklist exists");
            list.items.push(ci.clone());
            list.items
                .sort_by_key(|i| positions.get(&i.id).copied().unwrap_or(u32::MAX));
            finish(ci, after)
        })
        .await
    }

    /// Only with `copies_step_lists` set (`set_capabilities`): an archived card with the
    /// template marker and one checklist.
    async fn create_step_template(&self, t: &NewStepTemplate) -> PortResult<StepTemplate> {
        in_context(self, "create_step_template", async {
            if !self.capabilities().copies_step_lists {
                return Err(PortError::NotSupported {
                    context: Default::default(),
                    what: "step templates".into(),
                });
            }
            let after = self.enter("create_step_template", &t.key).await?;
            let mut s = self.lock();
            let body = format!("{}\n\n{}", t.body, template_marker(&t.key));
            let created = create(
                &mut s,
                &t.destination_id,
                &t.title,
                &body,
                vec![],
                vec![],
                None,
            )?;
            let (_, cl_id) = Self::next_id(&mut s, "checklist");
            let mut list = Checklist {
                id: cl_id.clone(),
                name: t.checklist_name.clone(),
                items: Vec::new(),
            };
            for step in &t.steps {
                let (_, id) = Self::next_id(&mut s, "checkitem");
                list.items.push(CheckItem {
                    id,
                    name: step.clone(),
                    complete: false,
                });
            }
            s.checklist_card.insert(cl_id, created.id.to_string());
            let card = s.cards.get_mut(created.id.as_str()).expect("just created");
            card.item.archived = true;
            card.checklists.push(list.clone());
            finish(
                StepTemplate {
                    id: created.id.to_string(),
                    key: t.key.clone(),
                    destination_id: t.destination_id.clone(),
                    hidden: true,
                    checklists: vec![list],
                },
                after,
            )
        })
        .await
    }

    async fn delete_step_template(&self, id: &str) -> PortResult<()> {
        in_context(self, "delete_step_template", async {
            let after = self.enter("delete_step_template", id).await?;
            let mut s = self.lock();
            let card = s
                .cards
                .remove(id)
                .ok_or_else(|| PortError::not_found(format!("item {id}")))?;
            for l in card.checklists {
                s.checklist_card.remove(&l.id);
            }
            finish((), after)
        })
        .await
    }

    /// As Trello's copy (FACTS.md §1a): every checklist of the template with new ids,
    /// ticks included (the harsher reading), nothing shared afterwards.
    async fn create_item_copying(
        &self,
        item: &NewItem,
        template_id: &str,
    ) -> PortResult<RemoteItem> {
        in_context(self, "create_item_copying", async {
            let after = self
                .enter("create_item_copying", item.finding_id.as_str())
                .await?;
            let mut s = self.lock();
            let source = s
                .cards
                .get(template_id)
                .map(|c| c.checklists.clone())
                .ok_or_else(|| PortError::not_found(format!("template {template_id}")))?;
            let created = create(
                &mut s,
                &item.destination_id,
                &item.title,
                &item.body,
                item.label_ids.clone(),
                item.member_ids.clone(),
                item.due,
            )?;
            let mut copies = Vec::with_capacity(source.len());
            for l in source {
                let (_, cl_id) = Self::next_id(&mut s, "checklist");
                let mut copy = Checklist {
                    id: cl_id.clone(),
                    name: l.name,
                    items: Vec::new(),
                };
                for i in l.items {
                    let (_, id) = Self::next_id(&mut s, "checkitem");
                    copy.items.push(CheckItem { id, ..i });
                }
                s.checklist_card.insert(cl_id, created.id.to_string());
                copies.push(copy);
            }
            s.cards
                .get_mut(created.id.as_str())
                .expect("just created")
                .checklists = copies;
            let created = written(&s, created.id.as_str())?;
            finish(created, after)
        })
        .await
    }

    async fn get_item(&self, id: &ItemId, opts: &ReadOptions) -> PortResult<RemoteItem> {
        in_context(self, "get_item", async {
            let after = self.enter("get_item", id.as_str()).await?;
            let s = self.lock();
            let card = s
                .cards
                .get(id.as_str())
                .ok_or_else(|| PortError::not_found(format!("item {id}")))?;
            finish(view(&s, card, opts), after)
        })
        .await
    }

    async fn create_label(&self, label: &NewLabel) -> PortResult<Label> {
        in_context(self, "create_label", async {
            let after = self.enter("create_label", &label.container_id).await?;
            let mut s = self.lock();
            if !s.containers.contains_key(&label.container_id) {
                return Err(PortError::not_found(format!(
                    "board {}",
                    label.container_id
                )));
            }
            let (_, id) = Self::next_id(&mut s, "label");
            let l = Label {
                id,
                name: label.name.clone(),
                color: label.color.clone(),
            };
            s.labels
                .entry(label.container_id.clone())
                .or_default()
                .push(l.clone());
            finish(l, after)
        })
        .await
    }
}
