//! The simulated world: organization, teams, workflow states, labels, users,
//! issues, attachments and credentials, plus the rules every write obeys.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::faults::Faults;
use crate::ids;
use crate::log::LoggedRequest;
use crate::ratelimit::RateLimiter;

/// An error a resolver reports; becomes `errors[]` with `extensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimError {
    pub message: String,
    pub kind: ErrKind,
}

/// The error classes, mapped to Linear's `extensions` (FACTS.md "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrKind {
    /// Bad argument, unknown entity, id collision: `type "invalid input"`.
    InvalidInput,
    /// Missing scope: `type "forbidden"`.
    Forbidden,
    /// A schema-valid field or filter linear-sim does not implement.
    Unsupported,
}

impl SimError {
    pub(crate) fn input(message: impl Into<String>) -> Self {
        SimError {
            message: message.into(),
            kind: ErrKind::InvalidInput,
        }
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        SimError {
            message: message.into(),
            kind: ErrKind::Forbidden,
        }
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        SimError {
            message: message.into(),
            kind: ErrKind::Unsupported,
        }
    }

    /// "Entity not found" in the words Linear uses (inference: observed
    /// messages read `Entity not found: Issue`).
    pub(crate) fn not_found(entity: &str) -> Self {
        SimError::input(format!(
            "Entity not found: {entity} - Could not find referenced {entity}."
        ))
    }

    /// The `extensions` object of this error.
    pub(crate) fn extensions(&self) -> Value {
        let (code, ty) = match self.kind {
            ErrKind::InvalidInput => ("INPUT_ERROR", "invalid input"),
            ErrKind::Forbidden => ("FORBIDDEN", "forbidden"),
            ErrKind::Unsupported => ("NOT_SUPPORTED_BY_SIMULATOR", "feature not accessible"),
        };
        serde_json::json!({
            "code": code,
            "type": ty,
            "userError": true,
            "userPresentableMessage": self.message,
        })
    }
}

pub(crate) type SimResult<T> = Result<T, SimError>;

/// Timestamp in Linear's format, e.g. `2025-01-31T12:00:00.000Z`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub id: String,
    pub name: String,
    pub url_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Team {
    pub id: String,
    pub key: String,
    pub name: String,
    pub triage_enabled: bool,
    pub members: Vec<String>,
    pub next_number: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct WfState {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub kind: String,
    pub position: f64,
    pub color: String,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub id: String,
    pub team_id: Option<String>,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub id: String,
    pub team_id: String,
    pub number: u32,
    pub title: String,
    pub description: Option<String>,
    pub priority: i64,
    pub state_id: String,
    pub assignee_id: Option<String>,
    pub creator_id: Option<String>,
    pub label_ids: Vec<String>,
    pub due_date: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub trashed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub id: String,
    pub issue_id: String,
    pub url: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub metadata: Value,
    pub creator_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a credential may do. API keys and OAuth tokens share the model: Linear
/// API keys carry the same permissions as OAuth scopes (FACTS.md "Endpoint / auth").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scopes {
    /// `read` is always present.
    pub read: bool,
    /// `write`: every mutation.
    pub write: bool,
    /// `issues:create`: `issueCreate` and attachment creation only.
    pub issues_create: bool,
    /// `admin`.
    pub admin: bool,
}

impl Scopes {
    /// Read and write.
    pub fn read_write() -> Self {
        Scopes {
            read: true,
            write: true,
            issues_create: false,
            admin: false,
        }
    }

    /// Read only.
    pub fn read_only() -> Self {
        Scopes {
            read: true,
            write: false,
            issues_create: false,
            admin: false,
        }
    }

    /// Parses Linear's comma-separated scope list (`read,write`); unknown
    /// names are `Err` with the name.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut s = Scopes::read_only();
        for part in list.split([',', ' ']).filter(|p| !p.is_empty()) {
            match part {
                "read" => {}
                "write" => s.write = true,
                "issues:create" => s.issues_create = true,
                "admin" => s.admin = true,
                "comments:create" | "timeSchedule:write" => {}
                other => return Err(other.to_owned()),
            }
        }
        Ok(s)
    }

    /// The comma-separated form.
    pub fn to_list(&self) -> String {
        let mut v = vec!["read"];
        if self.write {
            v.push("write");
        }
        if self.issues_create {
            v.push("issues:create");
        }
        if self.admin {
            v.push("admin");
        }
        v.join(",")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    pub user_id: String,
    pub scopes: Scopes,
    /// `None`: every team the user can see.
    pub team_ids: Option<Vec<String>>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct OAuthClient {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Scopes,
    pub redirect_uri: String,
    pub expires: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Scopes,
    pub expires_at: Instant,
    pub revoked: bool,
    /// The grant this token belongs to (revoking one revokes the grant).
    pub grant: String,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Scopes,
    pub revoked: bool,
    pub grant: String,
}

/// The whole simulated world.
#[derive(Debug)]
pub(crate) struct State {
    pub org: Org,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub states: Vec<WfState>,
    pub labels: Vec<Label>,
    pub issues: Vec<Issue>,
    pub attachments: Vec<Attachment>,
    pub api_keys: HashMap<String, ApiKey>,
    pub oauth_clients: HashMap<String, OAuthClient>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Every secret the simulator handed out, oldest first, never removed: API keys,
    /// OAuth client secrets, authorization codes, access and refresh tokens, webhook
    /// signing secrets. Tests search what a server shows for them.
    pub granted: Vec<String>,
    /// The person who approves `GET /oauth/authorize`.
    pub authorizing_user: Option<String>,
    pub token_ttl: Duration,
    pub last_sync_id: f64,
    pub limiter: RateLimiter,
    pub faults: Faults,
    pub log: Vec<LoggedRequest>,
    pub latency: Duration,
    pub webhooks: Vec<crate::webhooks::Webhook>,
    /// Every delivery attempt, oldest first.
    pub deliveries: Vec<crate::webhooks::SimDelivery>,
    /// Where webhook events go; None until the server starts its worker.
    pub outbox: Option<tokio::sync::mpsc::UnboundedSender<crate::webhooks::Outgoing>>,
}

/// Fields an issue is created with.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewIssue {
    pub id: Option<String>,
    pub team_id: String,
    pub title: String,
    pub description: Option<String>,
    pub priority: Option<i64>,
    pub state_id: Option<String>,
    pub assignee_id: Option<String>,
    pub label_ids: Vec<String>,
    pub due_date: Option<String>,
    pub creator_id: Option<String>,
}

/// Fields of an update; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub(crate) struct IssuePatch {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub priority: Option<i64>,
    pub state_id: Option<String>,
    pub assignee_id: Option<Option<String>>,
    pub label_ids: Option<Vec<String>>,
    pub added_label_ids: Vec<String>,
    pub removed_label_ids: Vec<String>,
    pub due_date: Option<Option<String>>,
    pub trashed: Option<bool>,
}

/// Linear's priority labels (FACTS.md "Create issue": 0 = No priority,
/// 1 = Urgent, 2 = High, 3 = Medium, 4 = Low).
pub(crate) fn priority_label(p: i64) -> &'static str {
    match p {
        1 => "Urgent",
        2 => "High",
        3 => "Medium",
        4 => "Low",
        _ => "No priority",
    }
}

/// Parses a `TimelessDate`: `YYYY-MM-DD`, or an ISO duration such as
/// `P2W1D`/`-P3D` relative to today (FACTS.md "Create issue").
pub(crate) fn parse_due_date(s: &str) -> SimResult<String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let bad = || {
        SimError::input(format!(
            "invalid dueDate `{s}`: expected YYYY-MM-DD or a duration like P2W1D"
        ))
    };
    let mut rest = rest.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut days: i64 = 0;
    while !rest.is_empty() {
        let n_len = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if n_len == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..n_len].parse().map_err(|_| bad())?;
        let unit = rest[n_len..].chars().next().ok_or_else(bad)?;
        days += match unit {
            'W' => n * 7,
            'D' => n,
            _ => return Err(bad()),
        };
        rest = &rest[n_len + 1..];
    }
    let delta = chrono::Duration::days(if neg { -days } else { days });
    Ok((Utc::now().date_naive() + delta)
        .format("%Y-%m-%d")
        .to_string())
}

/// Re-renders Markdown the way Linear's editor may hand it back: CRLF becomes
/// LF, `*`/`+` bullets become `-`, `1)` becomes `1.`, trailing spaces go.
/// Inference: Linear stores descriptions as a document (`descriptionState`)
/// and serializes Markdown from it, so text read back can differ from text sent.
pub(crate) fn render_markdown(s: &str) -> String {
    let text = s.replace("\r\n", "\n");
    let mut out: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in text.split('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            out.push(line.trim_end().to_owned());
            continue;
        }
        if in_code {
            out.push(line.to_owned());
            continue;
        }
        let indent_len = line.len() - line.trim_start().len();
        let (indent, body) = line.split_at(indent_len);
        let body = body.trim_end();
        let converted = if let Some(rest) = body.strip_prefix("* ").or(body.strip_prefix("+ ")) {
            format!("{indent}- {rest}")
        } else {
            let digits = body.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 && body[digits..].starts_with(") ") {
                format!("{indent}{}. {}", &body[..digits], &body[digits + 2..])
            } else {
                format!("{indent}{body}")
            }
        };
        out.push(converted);
    }
    out.join("\n")
}

impl State {
    pub(crate) fn new(limiter: RateLimiter, latency: Duration, token_ttl: Duration) -> Self {
        State {
            org: Org {
                id: ids::uuid_v4(),
                name: "Linear Sim".into(),
                url_key: "linear-sim".into(),
                created_at: Utc::now(),
            },
            users: Vec::new(),
            teams: Vec::new(),
            states: Vec::new(),
            labels: Vec::new(),
            issues: Vec::new(),
            attachments: Vec::new(),
            api_keys: HashMap::new(),
            oauth_clients: HashMap::new(),
            auth_codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            granted: Vec::new(),
            authorizing_user: None,
            token_ttl,
            last_sync_id: 1000.0,
            limiter,
            faults: Faults::default(),
            log: Vec::new(),
            latency,
            webhooks: Vec::new(),
            deliveries: Vec::new(),
            outbox: None,
        }
    }

    pub(crate) fn next_sync_id(&mut self) -> f64 {
        self.last_sync_id += 1.0;
        self.last_sync_id
    }

    pub(crate) fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub(crate) fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub(crate) fn wf_state(&self, id: &str) -> Option<&WfState> {
        self.states.iter().find(|s| s.id == id)
    }

    pub(crate) fn label(&self, id: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == id)
    }

    pub(crate) fn attachment(&self, id: &str) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.id == id)
    }

    /// Finds an issue by UUID or by identifier (`ENG-12`, key compared
    /// without regard to case), FACTS.md "Update issue".
    pub(crate) fn issue_index(&self, id_or_identifier: &str) -> Option<usize> {
        if let Some(i) = self.issues.iter().position(|i| i.id == id_or_identifier) {
            return Some(i);
        }
        let (key, num) = id_or_identifier.rsplit_once('-')?;
        let num: u32 = num.parse().ok()?;
        let team = self
            .teams
            .iter()
            .find(|t| t.key.eq_ignore_ascii_case(key))?;
        self.issues
            .iter()
            .position(|i| i.team_id == team.id && i.number == num)
    }

    pub(crate) fn issue(&self, id_or_identifier: &str) -> Option<&Issue> {
        self.issue_index(id_or_identifier).map(|i| &self.issues[i])
    }

    pub(crate) fn identifier(&self, issue: &Issue) -> String {
        let key = self.team(&issue.team_id).map_or("?", |t| t.key.as_str());
        format!("{key}-{}", issue.number)
    }

    pub(crate) fn issue_url(&self, issue: &Issue) -> String {
        format!(
            "https://linear.app/{}/issue/{}",
            self.org.url_key,
            self.identifier(issue).to_ascii_lowercase()
        )
    }

    pub(crate) fn create_user(&mut self, name: &str, email: &str, admin: bool) -> String {
        let id = ids::uuid_v4();
        self.users.push(User {
            id: id.clone(),
            name: name.to_owned(),
            display_name: email.split('@').next().unwrap_or(name).to_owned(),
            email: email.to_owned(),
            active: true,
            admin,
            created_at: Utc::now(),
        });
        id
    }

    /// Creates a team with Linear's standard workflow states (Triage when
    /// `triage`, Backlog, Todo, In Progress, Done, Canceled, Duplicate).
    pub(crate) fn create_team(&mut self, key: &str, name: &str, triage: bool) -> String {
        let id = ids::uuid_v4();
        self.teams.push(Team {
            id: id.clone(),
            key: key.to_owned(),
            name: name.to_owned(),
            triage_enabled: triage,
            members: Vec::new(),
            next_number: 1,
            created_at: Utc::now(),
        });
        let mut standard = vec![
            ("Backlog", "backlog", 0.0, "#bec2c8"),
            ("Todo", "unstarted", 1.0, "#e2e2e2"),
            ("In Progress", "started", 2.0, "#f2c94c"),
            ("Done", "completed", 3.0, "#5e6ad2"),
            ("Canceled", "canceled", 4.0, "#95a2b3"),
            ("Duplicate", "duplicate", 5.0, "#95a2b3"),
        ];
        if triage {
            standard.insert(0, ("Triage", "triage", -1.0, "#fc7840"));
        }
        for (n, k, p, c) in standard {
            self.create_state(&id, n, k, p, c);
        }
        id
    }

    pub(crate) fn create_state(
        &mut self,
        team: &str,
        name: &str,
        kind: &str,
        position: f64,
        color: &str,
    ) -> String {
        let id = ids::uuid_v4();
        self.states.push(WfState {
            id: id.clone(),
            team_id: team.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            position,
            color: color.to_owned(),
            archived_at: None,
            created_at: Utc::now(),
        });
        id
    }

    pub(crate) fn add_team_member(&mut self, team: &str, user: &str) {
        if let Some(t) = self.teams.iter_mut().find(|t| t.id == team) {
            if !t.members.iter().any(|m| m == user) {
                t.members.push(user.to_owned());
            }
        }
    }

    /// Creates a label (`team: None` = workspace label). Names are unique per
    /// team (and among workspace labels), compared without regard to case.
    pub(crate) fn create_label(
        &mut self,
        team: Option<&str>,
        name: &str,
        color: Option<&str>,
        description: Option<&str>,
    ) -> SimResult<String> {
        if name.trim().is_empty() {
            return Err(SimError::input("label name must not be empty"));
        }
        if let Some(t) = team {
            if self.team(t).is_none() {
                return Err(SimError::not_found("Team"));
            }
        }
        let clash = self.labels.iter().any(|l| {
            l.archived_at.is_none()
                && l.team_id.as_deref() == team
                && l.name.eq_ignore_ascii_case(name)
        });
        if clash {
            return Err(SimError::input(format!(
                "duplicate label name: a label named `{name}` already exists"
            )));
        }
        let id = ids::uuid_v4();
        self.labels.push(Label {
            id: id.clone(),
            team_id: team.map(str::to_owned),
            name: name.to_owned(),
            color: color.unwrap_or("#bec2c8").to_owned(),
            description: description.map(str::to_owned),
            archived_at: None,
            created_at: Utc::now(),
        });
        Ok(id)
    }

    fn check_labels(&self, team: &str, label_ids: &[String]) -> SimResult<()> {
        for l in label_ids {
            let label = self
                .label(l)
                .ok_or_else(|| SimError::not_found("IssueLabel"))?;
            if label.team_id.as_deref().is_some_and(|t| t != team) {
                return Err(SimError::input(format!(
                    "label {l} belongs to another team than the issue"
                )));
            }
        }
        Ok(())
    }

    fn check_state(&self, team: &str, state: &str) -> SimResult<()> {
        let s = self
            .wf_state(state)
            .ok_or_else(|| SimError::not_found("WorkflowState"))?;
        if s.team_id != team {
            return Err(SimError::input(
                "workflow state does not belong to the issue's team",
            ));
        }
        Ok(())
    }

    fn check_assignee(&self, user: &str) -> SimResult<()> {
        match self.user(user) {
            Some(u) if u.active => Ok(()),
            _ => Err(SimError::not_found("User")),
        }
    }

    /// The state a new issue lands in without `stateId`: Triage when the team
    /// has it, else the first backlog state (FACTS.md "Create issue" [2]).
    pub(crate) fn default_state(&self, team: &str) -> Option<String> {
        let triage = self.team(team).is_some_and(|t| t.triage_enabled);
        let wanted = if triage { "triage" } else { "backlog" };
        let mut candidates: Vec<&WfState> = self
            .states
            .iter()
            .filter(|s| s.team_id == team && s.archived_at.is_none() && s.kind == wanted)
            .collect();
        candidates.sort_by(|a, b| a.position.total_cmp(&b.position));
        candidates.first().map(|s| s.id.clone())
    }

    pub(crate) fn create_issue(&mut self, new: NewIssue, markdown: bool) -> SimResult<String> {
        let team = self
            .team(&new.team_id)
            .ok_or_else(|| SimError::not_found("Team"))?
            .id
            .clone();
        if let Some(id) = &new.id {
            if !ids::is_uuid_v4(id) {
                return Err(SimError::input(format!("id must be a UUID v4, got `{id}`")));
            }
            // Inference (FACTS.md "Create issue": a retried create with the same
            // id "collides instead of duplicating"): the second create fails.
            if self.issues.iter().any(|i| i.id == *id) {
                return Err(SimError::input(format!(
                    "an issue with id {id} already exists"
                )));
            }
        }
        if let Some(p) = new.priority {
            if !(0..=4).contains(&p) {
                return Err(SimError::input(format!(
                    "priority must be between 0 and 4, got {p}"
                )));
            }
        }
        let state_id = match new.state_id {
            Some(s) => {
                self.check_state(&team, &s)?;
                s
            }
            None => self
                .default_state(&team)
                .ok_or_else(|| SimError::input("team has no default workflow state"))?,
        };
        if let Some(a) = &new.assignee_id {
            self.check_assignee(a)?;
        }
        self.check_labels(&team, &new.label_ids)?;
        let due_date = new.due_date.as_deref().map(parse_due_date).transpose()?;
        let mut label_ids: Vec<String> = Vec::new();
        for l in new.label_ids {
            if !label_ids.contains(&l) {
                label_ids.push(l);
            }
        }
        let t = self
            .teams
            .iter_mut()
            .find(|t| t.id == team)
            .ok_or_else(|| SimError::not_found("Team"))?;
        let number = t.next_number;
        t.next_number += 1;
        let now = Utc::now();
        let id = new.id.unwrap_or_else(ids::uuid_v4);
        self.issues.push(Issue {
            id: id.clone(),
            team_id: team,
            number,
            title: new.title,
            description: new
                .description
                .map(|d| if markdown { render_markdown(&d) } else { d }),
            priority: new.priority.unwrap_or(0),
            state_id,
            assignee_id: new.assignee_id,
            creator_id: new.creator_id,
            label_ids,
            due_date,
            created_at: now,
            updated_at: now,
            archived_at: None,
            trashed: false,
        });
        let created = self.issues.last().cloned().expect("just pushed");
        self.emit_issue("create", &created, None);
        Ok(id)
    }

    pub(crate) fn update_issue(
        &mut self,
        idx: usize,
        patch: IssuePatch,
        markdown: bool,
    ) -> SimResult<()> {
        let team = self.issues[idx].team_id.clone();
        if let Some(s) = &patch.state_id {
            self.check_state(&team, s)?;
        }
        if let Some(Some(a)) = &patch.assignee_id {
            self.check_assignee(a)?;
        }
        if let Some(p) = patch.priority {
            if !(0..=4).contains(&p) {
                return Err(SimError::input(format!(
                    "priority must be between 0 and 4, got {p}"
                )));
            }
        }
        if let Some(ls) = &patch.label_ids {
            self.check_labels(&team, ls)?;
        }
        self.check_labels(&team, &patch.added_label_ids)?;
        let due = match &patch.due_date {
            Some(Some(d)) => Some(Some(parse_due_date(d)?)),
            Some(None) => Some(None),
            None => None,
        };
        if let Some(t) = &patch.title {
            if t.trim().is_empty() {
                return Err(SimError::input("title must not be empty"));
            }
        }
        let before = self.issues[idx].clone();
        let issue = &mut self.issues[idx];
        if let Some(t) = patch.title {
            issue.title = t;
        }
        if let Some(d) = patch.description {
            issue.description = d.map(|d| if markdown { render_markdown(&d) } else { d });
        }
        if let Some(p) = patch.priority {
            issue.priority = p;
        }
        if let Some(s) = patch.state_id {
            issue.state_id = s;
        }
        if let Some(a) = patch.assignee_id {
            issue.assignee_id = a;
        }
        if let Some(ls) = patch.label_ids {
            issue.label_ids.clear();
            for l in ls {
                if !issue.label_ids.contains(&l) {
                    issue.label_ids.push(l);
                }
            }
        }
        for l in patch.added_label_ids {
            if !issue.label_ids.contains(&l) {
                issue.label_ids.push(l);
            }
        }
        issue
            .label_ids
            .retain(|l| !patch.removed_label_ids.contains(l));
        if let Some(d) = due {
            issue.due_date = d;
        }
        if let Some(tr) = patch.trashed {
            issue.trashed = tr;
            issue.archived_at = if tr { Some(Utc::now()) } else { None };
        }
        issue.updated_at = Utc::now();
        let after = issue.clone();
        self.emit_issue("update", &after, Some(&before));
        Ok(())
    }

    /// Creates or updates the attachment with this URL on this issue: the URL
    /// is unique per issue (FACTS.md "Dedupe").
    pub(crate) fn upsert_attachment(
        &mut self,
        issue_id: &str,
        url: &str,
        title: &str,
        subtitle: Option<String>,
        metadata: Option<Value>,
        creator: Option<String>,
    ) -> SimResult<String> {
        if url.trim().is_empty() {
            return Err(SimError::input("attachment url must not be empty"));
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| SimError::input(format!("attachment url `{url}` is invalid: {e}")))?;
        if parsed.cannot_be_a_base() {
            return Err(SimError::input(format!(
                "attachment url `{url}` is not an absolute URL"
            )));
        }
        let now = Utc::now();
        if let Some(a) = self
            .attachments
            .iter_mut()
            .find(|a| a.issue_id == issue_id && a.url == url)
        {
            a.title = title.to_owned();
            if subtitle.is_some() {
                a.subtitle = subtitle;
            }
            if let Some(m) = metadata {
                a.metadata = m;
            }
            a.updated_at = now;
            return Ok(a.id.clone());
        }
        let id = ids::uuid_v4();
        self.attachments.push(Attachment {
            id: id.clone(),
            issue_id: issue_id.to_owned(),
            url: url.to_owned(),
            title: title.to_owned(),
            subtitle,
            metadata: metadata.unwrap_or_else(|| serde_json::json!({})),
            creator_id: creator,
            created_at: now,
            updated_at: now,
        });
        if let Some(i) = self.issues.iter_mut().find(|i| i.id == issue_id) {
            i.updated_at = now;
        }
        Ok(id)
    }

    pub(crate) fn archive_issue(&mut self, idx: usize, trash: bool) {
        let before = self.issues[idx].clone();
        let issue = &mut self.issues[idx];
        let now = Utc::now();
        issue.archived_at = Some(now);
        if trash {
            issue.trashed = true;
        }
        issue.updated_at = now;
        let after = issue.clone();
        self.emit_issue("update", &after, Some(&before));
    }

    /// Restores an archived or trashed issue.
    pub(crate) fn unarchive_issue(&mut self, idx: usize) {
        let before = self.issues[idx].clone();
        let i = &mut self.issues[idx];
        i.archived_at = None;
        i.trashed = false;
        i.updated_at = Utc::now();
        let after = i.clone();
        self.emit_issue("update", &after, Some(&before));
    }

    /// Removes an issue and its attachments for good.
    pub(crate) fn delete_issue(&mut self, idx: usize) {
        let issue = self.issues.remove(idx);
        self.attachments.retain(|a| a.issue_id != issue.id);
        self.emit_issue("remove", &issue, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_normalised_outside_code() {
        let s = "* a\r\n+ b  \n1) c\n```\n* kept\n```";
        assert_eq!(render_markdown(s), "- a\n- b\n1. c\n```\n* kept\n```");
    }

    #[test]
    fn due_dates_and_durations() {
        assert_eq!(parse_due_date("2025-03-01").unwrap(), "2025-03-01");
        assert!(parse_due_date("P2W1D").is_ok());
        assert!(parse_due_date("-P3D").is_ok());
        assert!(parse_due_date("tomorrow").is_err());
        assert!(parse_due_date("2025-02-30").is_err());
    }

    #[test]
    fn scopes_parse() {
        let s = Scopes::parse("read,write").unwrap();
        assert!(s.write);
        assert_eq!(Scopes::parse("read,bogus"), Err("bogus".to_owned()));
    }
}
