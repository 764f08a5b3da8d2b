//! The ports over [`LinearClient`]: `TrackerIntrospection` and `WorkItems` for Linear
//! (ADR 0005 step 4; the mapping is `docs/adding-a-tracker.md` §1 and `docs/linear.md`).
//!
//! Containers are teams, destinations their workflow states (typed: `completed` → Done,
//! `canceled`/`duplicate` → Canceled, `started` → Started, the rest Open), items issues.
//! An issue's finding is read from its attachment whose URL is the finding's canonical
//! URL ([`FindingUrl`]); a new issue and that attachment go in one request, with the
//! finding's deterministic client id, so a create sent twice collides instead of making a
//! second issue, and a create whose answer was lost is found by `find_by_finding`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use webriskops_domain::readiness::linear::{CredentialObservation, LinearObservations};
use webriskops_domain::{
    FindingId, ItemId, ProviderRecord, StateCategory, TenantId, TrackerObservations,
};
use webriskops_ports::{
    in_context, Account, Capabilities, CheckItem, Checklist, Container, Destination, Grant,
    ItemChanges, ItemPage, Label, ListItemsOptions, Member, NewItem, NewLabel, PortError,
    PortResult, ReadOptions, RemoteItem, TokenInfo, Tracker, TrackerIntrospection, WorkItems,
};

use crate::client::{Issue, LinearClient, NewIssue, WorkflowState};
use crate::client_id::issue_client_id;
use crate::config::{ConfigError, LinearSettings};
use crate::finding_url::FindingUrl;
use crate::oauth::{revoke_access_token, REVOKE_URL};
use crate::ops::PAGE_SIZE;
use crate::readiness::CredentialFacts;
use crate::secret::Credential;

/// How a [`LinearAdapter`] is set up beyond the client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearAdapterOptions {
    /// Each finding's canonical URL, the identity of its issue. Default
    /// `https://app.webriskops.example/findings/{id}`; the application reads
    /// `WEBRISKOPS_FINDING_URL`. Changing it orphans the issues made with the old one.
    pub finding_url: FindingUrl,
    /// Where an OAuth access token is revoked (`https://api.linear.app/oauth/revoke`; a
    /// simulator's `…/oauth/revoke` in tests). Unused for a personal API key.
    pub revoke_url: String,
    /// What the caller knows of the credential (OAuth scopes and expiry come with the
    /// token): `token_info` reports its expiry.
    pub credential_facts: CredentialFacts,
    /// Why refreshing the OAuth access token failed before this adapter was built (the
    /// refresh token was refused): readiness reports it as a new authorization needed.
    pub refresh_failure: Option<String>,
}

impl Default for LinearAdapterOptions {
    fn default() -> Self {
        LinearAdapterOptions {
            finding_url: FindingUrl::default(),
            revoke_url: REVOKE_URL.to_owned(),
            credential_facts: CredentialFacts::default(),
            refresh_failure: None,
        }
    }
}

/// Linear behind the tracker ports. One per tenant and credential.
#[derive(Debug)]
pub struct LinearAdapter {
    client: LinearClient,
    credential: Credential,
    tenant: TenantId,
    options: LinearAdapterOptions,
    timeout: Duration,
    /// Workflow state id → team id, learnt from every state and issue read: a create
    /// names its state only, and `issueCreate` (and the client id) needs the team.
    state_teams: Mutex<HashMap<String, String>>,
}

/// The page size of `list_items` (and its largest): small, because each issue of a page
/// multiplies the query's complexity (FACTS.md "Rate limits").
pub const MAX_PAGE_SIZE: u32 = PAGE_SIZE;

/// The category of a Linear workflow state type (ADR 0005 §1).
pub fn state_category(kind: &str) -> StateCategory {
    match kind {
        "completed" => StateCategory::Done,
        "canceled" | "duplicate" => StateCategory::Canceled,
        "started" => StateCategory::Started,
        // triage, backlog, unstarted, and any type Linear adds later.
        _ => StateCategory::Open,
    }
}

/// The label colours the domain names (Trello's palette), as `#rrggbb` values Linear
/// accepts (`IssueLabelCreateInput.color` is a hex string). Chosen near Linear's own
/// label palette.
pub const LABEL_COLORS: &[(&str, &str)] = &[
    ("green", "#4cb782"),
    ("yellow", "#f2c94c"),
    ("orange", "#f2994a"),
    ("red", "#eb5757"),
    ("purple", "#bb87fc"),
    ("blue", "#4ea7fc"),
    ("sky", "#26b5ce"),
    ("lime", "#a6d96a"),
    ("pink", "#f38bb5"),
    ("black", "#95a2b3"),
];

/// A label colour for Linear: a name of [`LABEL_COLORS`] (any case) or `#rrggbb` itself.
///
/// # Errors
/// `InvalidInput` naming the colours accepted.
pub fn label_color(color: &str) -> PortResult<String> {
    let c = color.trim().to_ascii_lowercase();
    if let Some((_, hex)) = LABEL_COLORS.iter().find(|(name, _)| *name == c) {
        return Ok((*hex).to_owned());
    }
    let hex = c.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(c);
    }
    let names: Vec<&str> = LABEL_COLORS.iter().map(|(n, _)| *n).collect();
    Err(PortError::InvalidInput {
        context: Default::default(),
        message: format!(
            "label colour {:?} is not one Linear takes here: use #rrggbb or one of {}",
            crate::errors::excerpt(color, 40),
            names.join(", ")
        ),
    })
}

fn shape(what: &str, detail: &str) -> PortError {
    crate::paging::shape(what, detail)
}

fn not_supported_checklists() -> PortError {
    PortError::NotSupported {
        context: Default::default(),
        what: "checklists: Linear has none (capabilities().checklists is false); remediation steps belong in the description".into(),
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn destination(s: WorkflowState, team_id: &str) -> Destination {
    Destination {
        category: state_category(&s.kind),
        closed: s.archived_at.is_some(),
        container_id: team_id.to_owned(),
        id: s.id,
        name: s.name,
    }
}

/// The longest issue title sent (UTF-16 units). Linear documents no limit in its schema;
/// integrations report 256 characters (shinobistack/gokakashi#12: "Linear's
/// 256-character limit"), so 255 stays within it. An assumption to revisit when Linear
/// documents it.
pub const LINEAR_TITLE_LIMIT: usize = 255;

/// The longest description sent (UTF-16 units). No documented limit was found (not in
/// the schema, the docs or the SDK); an assumption, conservatively Trello's 16,384, which
/// keeps every description Linear exports today unchanged.
pub const LINEAR_DESCRIPTION_LIMIT: usize = 16_384;

impl LinearAdapter {
    /// An adapter for `tenant` (part of every issue's client id) with `credential`.
    ///
    /// # Errors
    /// A setting is unusable (see [`LinearSettings::validate`]).
    pub fn new(
        settings: &LinearSettings,
        credential: Credential,
        tenant: TenantId,
        options: LinearAdapterOptions,
    ) -> Result<Self, ConfigError> {
        Ok(LinearAdapter {
            client: LinearClient::new(settings, &credential)?,
            credential,
            tenant,
            options,
            timeout: settings.timeout(),
            state_teams: Mutex::new(HashMap::new()),
        })
    }

    /// The client underneath, for operations the ports do not name (readiness).
    pub fn client(&self) -> &LinearClient {
        &self.client
    }

    /// The canonical URL of a finding, as its issue's attachment carries it.
    pub fn finding_url(&self, finding: &FindingId) -> String {
        self.options.finding_url.url(finding)
    }

    fn caps(&self) -> Capabilities {
        Capabilities {
            tracker: "linear",
            list_items: true,
            labels: true,
            create_labels: true,
            checklists: false,
            members: true,
            native_priority: true,
            archive: true,
            move_items: true,
            // A personal API key cannot be revoked through the API (FACTS.md; the schema
            // has no mutation for it): a person deletes it in Linear.
            revoke: matches!(self.credential, Credential::OAuth(_)),
            max_page_size: MAX_PAGE_SIZE,
            max_title_chars: LINEAR_TITLE_LIMIT,
            max_body_chars: LINEAR_DESCRIPTION_LIMIT,
            // No checklists: the steps travel in the description.
            max_step_chars: LINEAR_DESCRIPTION_LIMIT,
            // `Issue.assignee` is a single user (schema.graphql); more go elsewhere.
            max_assignees: 1,
            copies_step_lists: false,
        }
    }

    fn remember(&self, state_id: &str, team_id: &str) {
        self.state_teams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(state_id.to_owned(), team_id.to_owned());
    }

    /// The team of a workflow state: known from earlier reads, else asked once.
    async fn team_of_state(&self, state_id: &str) -> PortResult<String> {
        let known = self
            .state_teams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(state_id)
            .cloned();
        if let Some(team) = known {
            return Ok(team);
        }
        let s = self.client.workflow_state(state_id).await?;
        self.remember(&s.state.id, &s.team.id);
        Ok(s.team.id)
    }

    /// An issue as the ports see it. `finding` is set when the caller knows whose the
    /// issue is (found by that finding's URL or client id).
    fn item(
        &self,
        issue: Issue,
        with_checklists: bool,
        finding: Option<&FindingId>,
    ) -> PortResult<RemoteItem> {
        self.remember(&issue.state.id, &issue.team.id);
        let id = ItemId::new(&issue.id).map_err(|e| shape("an issue", &e.to_string()))?;
        let finding_id = finding.cloned().or_else(|| {
            issue
                .attachments
                .nodes
                .iter()
                .find_map(|a| self.options.finding_url.finding(&a.url))
        });
        let created_secs = issue
            .created_at
            .as_deref()
            .and_then(instant)
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .unwrap_or(0);
        Ok(RemoteItem {
            id,
            finding_id,
            url: Some(issue.url),
            container_id: issue.team.id,
            destination_id: issue.state.id,
            category: state_category(&issue.state.kind),
            state_name: issue.state.name,
            title: issue.title,
            body: issue.description.unwrap_or_default(),
            archived: issue.archived_at.is_some(),
            label_ids: issue.labels.nodes.into_iter().map(|l| l.id).collect(),
            member_ids: issue.assignee.into_iter().map(|a| a.id).collect(),
            due: issue.due_date.as_deref().and_then(date),
            created_secs,
            last_activity: instant(&issue.updated_at),
            // Linear has no checklists: asked for, they are none.
            checklists: with_checklists.then(Vec::new),
            // 0 is "no priority"; 1 urgent … 4 low are the domain's ranks p1 … p4.
            priority: priority_rank(issue.priority),
        })
    }

    async fn read(&self, id: &str) -> PortResult<Issue> {
        self.client
            .issue(id)
            .await?
            .ok_or_else(|| PortError::not_found(format!("Linear issue {}", excerpt(id))))
    }
}

/// Linear's priority (a Float in the schema: 0 none, 1 urgent … 4 low) as a rank.
fn priority_rank(p: f64) -> Option<u8> {
    [1u8, 2, 3, 4]
        .into_iter()
        .find(|r| (p - f64::from(*r)).abs() < f64::EPSILON)
}

fn excerpt(s: &str) -> String {
    crate::errors::excerpt(s, 80)
}

impl Tracker for LinearAdapter {
    fn capabilities(&self) -> Capabilities {
        self.caps()
    }
}

#[async_trait]
impl TrackerIntrospection for LinearAdapter {
    /// `viewer`: the user behind the credential; `username` is the display name (the
    /// `@handle`), else the name.
    async fn whoami(&self) -> PortResult<Account> {
        in_context(self, "whoami", async {
            let (v, _) = self.client.viewer().await?;
            Ok(Account {
                id: v.id,
                username: v.display_name.unwrap_or_else(|| v.name.clone()),
                full_name: Some(v.name),
            })
        })
        .await
    }

    /// The credential works (`viewer`) and whose it is; expiry from the credential's
    /// facts (an OAuth token's `expires_in`; a personal API key does not expire).
    /// `permissions` stays empty: Linear has no per-object permissions to report, and no
    /// query for a key's own scopes. The neutral `grant` (ADR 0005 §7) comes from the
    /// credential facts: OAuth2 scopes, expiry and whether a refresh token is kept; a
    /// personal API key has no scopes (its owner's full rights) and never expires. Neither
    /// form restricts teams: the teams it reaches are what `containers` lists.
    async fn token_info(&self) -> PortResult<TokenInfo> {
        in_context(self, "token_info", async {
            let (v, _) = self.client.viewer().await?;
            let facts = &self.options.credential_facts;
            Ok(TokenInfo {
                member_id: Some(v.id),
                app_name: None,
                created_at: None,
                expires_at: facts.expires_at,
                permissions: vec![],
                grant: Grant::from_scopes(
                    facts.scopes.clone(),
                    facts.expires_at,
                    facts.refreshable,
                ),
            })
        })
        .await
    }

    /// `teams`, with the workspace of the credential (`organization`).
    async fn containers(&self) -> PortResult<Vec<Container>> {
        in_context(self, "containers", async {
            let (_, org) = self.client.viewer().await?;
            Ok(self
                .client
                .teams()
                .await?
                .into_iter()
                .map(|t| Container {
                    id: t.id,
                    name: t.name,
                    closed: t.archived_at.is_some(),
                    organization_id: Some(org.id.clone()),
                    url: None,
                })
                .collect())
        })
        .await
    }

    async fn container(&self, id: &str) -> PortResult<Container> {
        in_context(self, "container", async {
            let t = self.client.team(id).await?;
            Ok(Container {
                id: t.id,
                name: t.name,
                closed: t.archived_at.is_some(),
                organization_id: t.organization.map(|o| o.id),
                url: None,
            })
        })
        .await
    }

    /// The team's workflow states, archived ones included (`closed`), each with the
    /// category of its type.
    async fn destinations(&self, container_id: &str) -> PortResult<Vec<Destination>> {
        in_context(self, "destinations", async {
            let states = self.client.team_states(container_id).await?;
            Ok(states
                .into_iter()
                .map(|s| {
                    self.remember(&s.id, container_id);
                    destination(s, container_id)
                })
                .collect())
        })
        .await
    }

    async fn destination(&self, id: &str) -> PortResult<Destination> {
        in_context(self, "destination", async {
            let s = self.client.workflow_state(id).await?;
            self.remember(&s.state.id, &s.team.id);
            Ok(destination(s.state, &s.team.id))
        })
        .await
    }

    /// The team's labels and the workspace's (every page).
    async fn labels(&self, container_id: &str) -> PortResult<Vec<Label>> {
        in_context(self, "labels", async {
            Ok(self
                .client
                .labels(container_id)
                .await?
                .into_iter()
                .map(|l| Label {
                    id: l.id,
                    name: l.name,
                    color: l.color,
                })
                .collect())
        })
        .await
    }

    /// The workspace's active users (Linear assigns any of them on any team's issue):
    /// `username` is the display name, `email` the e-mail, `full_name` the name.
    async fn members(&self, _container_id: &str) -> PortResult<Vec<Member>> {
        in_context(self, "members", async {
            Ok(self
                .client
                .users()
                .await?
                .into_iter()
                .filter(|u| u.active != Some(false))
                .map(|u| Member {
                    id: u.id,
                    username: u.display_name.unwrap_or_else(|| u.name.clone()),
                    full_name: Some(u.name),
                    email: u.email,
                })
                .collect())
        })
        .await
    }

    /// An OAuth token: `POST /oauth/revoke` (the whole grant goes). A personal API key:
    /// `NotSupported`, since Linear has no API to revoke one.
    async fn revoke_token(&self) -> PortResult<()> {
        in_context(self, "revoke_token", async {
        match &self.credential {
            Credential::OAuth(token) => {
                revoke_access_token(&self.options.revoke_url, token, self.timeout).await
            }
            Credential::ApiKey(_) => Err(PortError::NotSupported {
                context: Default::default(),
                what: "revoking a Linear personal API key through the API: delete the key in Linear under Settings › Security & access".into(),
            }),
        }
    }).await
    }

    /// Linear's own readiness observations ([`crate::observe`]): the credential (its
    /// scopes and expiry from the facts this adapter was built with), the teams it sees,
    /// the chosen team's workflow states and where the chosen states really are.
    async fn observe_setup(
        &self,
        record: &ProviderRecord,
        now: DateTime<Utc>,
    ) -> PortResult<Option<TrackerObservations>> {
        in_context(self, "observe_setup", async {
            if let Some(reason) = &self.options.refresh_failure {
                return Ok(Some(TrackerObservations::Linear(LinearObservations::new(
                    now,
                    CredentialObservation::RefreshFailed {
                        reason: reason.clone(),
                    },
                ))));
            }
            crate::readiness::observe(
                Some(&self.client),
                &self.options.credential_facts,
                record,
                now,
            )
            .await
            .map(|o| Some(TrackerObservations::Linear(o)))
        })
        .await
    }
}

#[async_trait]
impl WorkItems for LinearAdapter {
    fn request_stats(&self) -> Option<webriskops_ports::RequestStats> {
        let s = self.client.stats();
        Some(webriskops_ports::RequestStats {
            reads: s.queries,
            writes: s.mutations,
            rate_limited: s.rate_limited,
            // Linear counts per user (or OAuth app per user), never per application key.
            rate_limited_key: 0,
            retries: s.retries,
        })
    }

    /// One page of the team's issues, newest first; the cursor is the oldest issue of
    /// the page (`before` it comes the next page).
    async fn list_items(&self, opts: &ListItemsOptions) -> PortResult<ItemPage> {
        in_context(self, "list_items", async {
            let size = match opts.page_size {
                0 => MAX_PAGE_SIZE,
                n => n.min(MAX_PAGE_SIZE),
            };
            let page = self
                .client
                .team_issues_page(
                    &opts.container_id,
                    size,
                    opts.cursor.as_deref(),
                    opts.include_archived,
                )
                .await?;
            let items = page
                .issues
                .into_iter()
                .map(|i| self.item(i, opts.with_checklists, None))
                .collect::<PortResult<Vec<_>>>()?;
            Ok(ItemPage {
                items,
                next_cursor: page.older,
                step_templates: vec![],
            })
        })
        .await
    }

    /// One request: `issueCreate` with the finding's client id, title, description,
    /// native priority, labels, the first member as assignee, due date and state, then
    /// `attachmentCreate` with the finding's canonical URL. Never resent: a lost answer
    /// is `OutcomeUnknown`, for `find_by_finding` to settle.
    async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem> {
        in_context(self, "create_item", async {
            // An issue has no place for portable notes: the service routes what they would
            // say into the description (`RoutingContext::notes_in_body`), where the
            // fingerprint covers it. Refused rather than dropped, so nothing is lost unseen.
            if !item.notes.is_empty() {
                return Err(PortError::InvalidInput {
                    context: Default::default(),
                    message: format!(
                    "finding {}: {} routing note(s) have no place in a linear issue; route them \
                     into the description (RoutingContext::notes_in_body) before creating it",
                    item.finding_id,
                    item.notes.len()
                ),
                });
            }
            if let Some(p) = item.priority {
                if p > 4 {
                    return Err(PortError::InvalidInput {
                        context: Default::default(),
                        message: format!(
                            "priority {p} is out of Linear's range: 1 (urgent) to 4 (low), or none"
                        ),
                    });
                }
            }
            let team_id = self.team_of_state(&item.destination_id).await?;
            let new = NewIssue {
                team_id,
                title: item.title.clone(),
                description: item.body.clone(),
                priority: item.priority,
                state_id: Some(item.destination_id.clone()),
                label_ids: item.label_ids.clone(),
                // Linear has one assignee; the rest are the service's to route.
                assignee_id: item.member_ids.first().cloned(),
                due_date: item.due.map(|d| d.format("%Y-%m-%d").to_string()),
                finding_url: self.finding_url(&item.finding_id),
                attachment_title: format!("WebRiskOps finding {}", item.finding_id),
                attachment_subtitle: None,
            };
            let issue = self
                .client
                .create_issue_with_attachment(&self.tenant, &item.finding_id, &new)
                .await?;
            self.item(issue, false, None)
        })
        .await
    }

    /// `issueUpdate` with only the given fields (labels replace; the first member is the
    /// assignee, none unassigns), then `issueArchive`/`issueUnarchive` when asked.
    async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem> {
        in_context(self, "update_item", async {
            let mut input = Map::new();
            if let Some(t) = &changes.title {
                input.insert("title".into(), json!(t));
            }
            if let Some(b) = &changes.body {
                input.insert("description".into(), json!(b));
            }
            if let Some(l) = &changes.label_ids {
                input.insert("labelIds".into(), json!(l));
            }
            if let Some(m) = &changes.member_ids {
                input.insert("assigneeId".into(), json!(m.first()));
            }
            if let Some(d) = &changes.due {
                let v = d.map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()));
                input.insert("dueDate".into(), v);
            }
            if let Some(s) = &changes.destination_id {
                input.insert("stateId".into(), json!(s));
            }
            if let Some(p) = changes.priority {
                input.insert("priority".into(), json!(p));
            }
            let mut current = None;
            if !input.is_empty() {
                current = Some(self.client.update_issue(id.as_str(), input).await?);
            }
            if let Some(archive) = changes.archived {
                let already = current
                    .as_ref()
                    .is_some_and(|i| i.archived_at.is_some() == archive);
                if !already {
                    current = if archive {
                        self.client.archive_issue(id.as_str()).await?
                    } else {
                        self.client.unarchive_issue(id.as_str()).await?
                    };
                }
            }
            let issue = match current {
                Some(i) => i,
                None => self.read(id.as_str()).await?,
            };
            self.item(issue, false, None)
        })
        .await
    }

    async fn create_checklist(&self, _item: &ItemId, _name: &str) -> PortResult<Checklist> {
        in_context(self, "create_checklist", async {
            Err(not_supported_checklists())
        })
        .await
    }

    async fn add_check_item(
        &self,
        _checklist_id: &str,
        _name: &str,
        _position: u32,
    ) -> PortResult<CheckItem> {
        in_context(self, "add_check_item", async {
            Err(not_supported_checklists())
        })
        .await
    }

    /// A team label (`issueLabelCreate`), its colour as `#rrggbb` ([`label_color`]).
    async fn create_label(&self, label: &NewLabel) -> PortResult<Label> {
        in_context(self, "create_label", async {
            let color = label.color.as_deref().map(label_color).transpose()?;
            let l = self
                .client
                .create_label(&label.container_id, &label.name, color.as_deref())
                .await?;
            Ok(Label {
                id: l.id,
                name: l.name,
                color: l.color,
            })
        })
        .await
    }

    async fn get_item(&self, id: &ItemId, opts: &ReadOptions) -> PortResult<RemoteItem> {
        in_context(self, "get_item", async {
            let issue = self.read(id.as_str()).await?;
            self.item(issue, opts.with_checklists, None)
        })
        .await
    }

    /// One request (`IssueByFinding`): the issues carrying the finding's canonical URL,
    /// archived ones too, of which the one with the oldest attachment in this team wins;
    /// else the issue with the finding's client id in this team (a create that stopped
    /// before its attachment).
    async fn find_by_finding(
        &self,
        container_id: &str,
        finding: &FindingId,
        opts: &ReadOptions,
    ) -> PortResult<Option<RemoteItem>> {
        in_context(self, "find_by_finding", async {
            let client_id = issue_client_id(&self.tenant, container_id, finding);
            let found = self
                .client
                .issue_by_finding(&self.finding_url(finding), &client_id)
                .await?;
            let issue = found
                .by_url
                .into_iter()
                .find(|i| i.team.id == container_id)
                .or_else(|| {
                    found
                        .by_client_id
                        .filter(|i| i.team.id == container_id && i.id == client_id)
                });
            issue
                .map(|i| self.item(i, opts.with_checklists, Some(finding)))
                .transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_types_map_to_categories() {
        for (kind, cat) in [
            ("triage", StateCategory::Open),
            ("backlog", StateCategory::Open),
            ("unstarted", StateCategory::Open),
            ("started", StateCategory::Started),
            ("completed", StateCategory::Done),
            ("canceled", StateCategory::Canceled),
            ("duplicate", StateCategory::Canceled),
            ("something-new", StateCategory::Open),
        ] {
            assert_eq!(state_category(kind), cat, "{kind}");
        }
    }

    #[test]
    fn label_colours_are_hex_linear_takes() {
        for name in [
            "red", "orange", "yellow", "blue", "sky", "purple", "pink", "lime", "green",
        ] {
            let hex = label_color(name).unwrap();
            assert_eq!(hex.len(), 7, "{name}: {hex}");
            assert!(hex.starts_with('#') && hex[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(label_color("Red").unwrap(), label_color("red").unwrap());
        assert_eq!(label_color("#AABBCC").unwrap(), "#aabbcc");
        let e = label_color("green_dark").unwrap_err();
        assert_eq!(e.kind(), "invalid_input");
        assert!(e.to_string().contains("#rrggbb"), "{e}");
        assert!(label_color("#abc").is_err());
    }

    #[test]
    fn dates_read_as_linear_writes_them() {
        assert_eq!(date("2026-12-31"), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(date("nope"), None);
        assert!(instant("2026-01-01T00:00:00.000Z").is_some());
    }
}
