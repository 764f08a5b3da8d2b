//! The executor: apollo-compiler walks the validated operation (fields,
//! aliases, fragments, `__typename`, variables, arguments) and calls these
//! resolvers, so any valid document over the supported fields returns exactly
//! the fields it selects. Mutations run in document order (GraphQL spec,
//! "Mutation": serial execution).

use std::cell::RefCell;

use apollo_compiler::resolvers::{FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonValue;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::filter::{self, Ent};
use crate::ratelimit::Budget;
use crate::state::{iso, priority_label, IssuePatch, NewIssue, SimError, SimResult, State};

/// Largest `first`/`last` accepted (FACTS.md "Pagination": max 250 [2]).
pub(crate) const MAX_PAGE: i64 = 250;
/// Page size without `first`/`last` (FACTS.md "Pagination": default 50).
pub(crate) const DEFAULT_PAGE: i64 = 50;

/// Everything a resolver may touch while one operation executes.
pub(crate) struct Ctx<'s> {
    pub st: RefCell<&'s mut State>,
    pub auth: Auth,
    pub markdown: bool,
    pub allow_loopback_webhooks: bool,
    pub budget: Budget,
    pub complexity: u64,
    /// Errors resolvers raised, with their `extensions`, in order.
    pub errors: RefCell<Vec<(String, Value)>>,
}

impl Ctx<'_> {
    fn fail(&self, e: SimError) -> FieldError {
        self.errors
            .borrow_mut()
            .push((e.message.clone(), e.extensions()));
        FieldError { message: e.message }
    }
}

#[derive(Debug, Clone)]
struct PageInfo {
    has_next: bool,
    has_prev: bool,
    start: Option<String>,
    end: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    Query,
    Mutation,
    Org,
    Ent(Ent),
    Conn {
        node: &'static str,
        items: Vec<Ent>,
        page: PageInfo,
    },
    Edge {
        node: &'static str,
        ent: Ent,
    },
    PageInfo(PageInfo),
    IssuePayload {
        issue: Option<String>,
        sync: f64,
    },
    ArchivePayload {
        issue: Option<String>,
        sync: f64,
    },
    AttachmentPayload {
        attachment: String,
        sync: f64,
    },
    LabelPayload {
        label: String,
        sync: f64,
    },
    RateLimit,
    RateLimitResult {
        ty: &'static str,
        allowed: u64,
        remaining: u64,
        requested: u64,
        reset: u64,
    },
    PriorityValue(i64),
    Webhook(String),
    WebhookPayload {
        webhook: String,
        sync: f64,
    },
    DeletePayload {
        entity: String,
        sync: f64,
    },
}

/// A GraphQL object: a view on the world.
pub(crate) struct Obj<'c, 's> {
    ctx: &'c Ctx<'s>,
    kind: Kind,
    type_name: String,
}

impl<'c, 's> Obj<'c, 's> {
    fn new(ctx: &'c Ctx<'s>, kind: Kind) -> Self {
        let type_name = match &kind {
            Kind::Query => "Query".to_owned(),
            Kind::Mutation => "Mutation".to_owned(),
            Kind::Org => "Organization".to_owned(),
            Kind::Ent(e) => e.type_name().to_owned(),
            Kind::Conn { node, .. } => format!("{node}Connection"),
            Kind::Edge { node, .. } => format!("{node}Edge"),
            Kind::PageInfo(_) => "PageInfo".to_owned(),
            Kind::IssuePayload { .. } => "IssuePayload".to_owned(),
            Kind::ArchivePayload { .. } => "IssueArchivePayload".to_owned(),
            Kind::AttachmentPayload { .. } => "AttachmentPayload".to_owned(),
            Kind::LabelPayload { .. } => "IssueLabelPayload".to_owned(),
            Kind::RateLimit => "RateLimitPayload".to_owned(),
            Kind::RateLimitResult { .. } => "RateLimitResultPayload".to_owned(),
            Kind::PriorityValue(_) => "IssuePriorityValue".to_owned(),
            Kind::Webhook(_) => "Webhook".to_owned(),
            Kind::WebhookPayload { .. } => "WebhookPayload".to_owned(),
            Kind::DeletePayload { .. } => "DeletePayload".to_owned(),
        };
        Obj {
            ctx,
            kind,
            type_name,
        }
    }

    /// The root object of an operation.
    pub(crate) fn root(ctx: &'c Ctx<'s>, mutation: bool) -> Self {
        Obj::new(
            ctx,
            if mutation {
                Kind::Mutation
            } else {
                Kind::Query
            },
        )
    }
}

type R<'a> = Result<ResolvedValue<'a>, FieldError>;

fn leaf<'a>(v: Value) -> ResolvedValue<'a> {
    ResolvedValue::leaf(serde_json::from_value::<JsonValue>(v).unwrap_or(JsonValue::Null))
}

fn args_of(info: &ResolveInfo<'_>) -> Value {
    serde_json::to_value(info.arguments()).unwrap_or(Value::Null)
}

fn arg_str(args: &Value, name: &str) -> Option<String> {
    args.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(iso(t)))
}

impl ObjectValue for Obj<'_, '_> {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> R<'a> {
        let args = args_of(info);
        let res = match &self.kind {
            Kind::Query => self.query(info.field_name(), &args),
            Kind::Mutation => self.mutation(info.field_name(), &args),
            _ => self.object_field(info.field_name(), &args),
        };
        res.map_err(|e| self.ctx.fail(e))
    }
}

impl<'c, 's> Obj<'c, 's> {
    fn obj(&self, kind: Kind) -> ResolvedValue<'c> {
        ResolvedValue::object(Obj::new(self.ctx, kind))
    }

    fn ent(&self, e: Ent) -> ResolvedValue<'c> {
        self.obj(Kind::Ent(e))
    }

    fn opt_ent(&self, e: Option<Ent>) -> ResolvedValue<'c> {
        match e {
            Some(e) => self.ent(e),
            None => ResolvedValue::null(),
        }
    }

    fn unsupported(&self, field: &str) -> SimError {
        SimError::unsupported(format!(
            "field `{}.{field}` is not supported by linear-sim; supported fields are listed in docs/linear-sim.md",
            self.type_name
        ))
    }

    fn auth(&self) -> &Auth {
        &self.ctx.auth
    }

    // ---- visibility -------------------------------------------------------

    fn team_visible(&self, st: &State, team: &str) -> bool {
        st.team(team).is_some() && self.auth().sees_team(team)
    }

    fn visible(&self, st: &State, e: &Ent) -> bool {
        match e {
            Ent::Team(t) => self.team_visible(st, t),
            Ent::Issue(i) => st
                .issue(i)
                .is_some_and(|i| self.team_visible(st, &i.team_id)),
            Ent::State(s) => st
                .wf_state(s)
                .is_some_and(|s| self.team_visible(st, &s.team_id)),
            Ent::Label(l) => st.label(l).is_some_and(|l| {
                l.team_id
                    .as_deref()
                    .is_none_or(|t| self.team_visible(st, t))
            }),
            Ent::User(u) => st.user(u).is_some(),
            Ent::Attachment(a) => st.attachment(a).is_some_and(|a| {
                st.issue(&a.issue_id)
                    .is_some_and(|i| self.team_visible(st, &i.team_id))
            }),
        }
    }

    fn archived(st: &State, e: &Ent) -> bool {
        match e {
            Ent::Issue(i) => st.issue(i).is_some_and(|i| i.archived_at.is_some()),
            Ent::State(s) => st.wf_state(s).is_some_and(|s| s.archived_at.is_some()),
            Ent::Label(l) => st.label(l).is_some_and(|l| l.archived_at.is_some()),
            _ => false,
        }
    }

    fn created(st: &State, e: &Ent) -> (String, String) {
        let (c, u) = match e {
            Ent::Issue(i) => st
                .issue(i)
                .map(|i| (i.created_at, i.updated_at))
                .unwrap_or_default(),
            Ent::Team(t) => st
                .team(t)
                .map(|t| (t.created_at, t.created_at))
                .unwrap_or_default(),
            Ent::State(s) => st
                .wf_state(s)
                .map(|s| (s.created_at, s.created_at))
                .unwrap_or_default(),
            Ent::Label(l) => st
                .label(l)
                .map(|l| (l.created_at, l.created_at))
                .unwrap_or_default(),
            Ent::User(u) => st
                .user(u)
                .map(|u| (u.created_at, u.created_at))
                .unwrap_or_default(),
            Ent::Attachment(a) => st
                .attachment(a)
                .map(|a| (a.created_at, a.updated_at))
                .unwrap_or_default(),
        };
        (iso(c), iso(u))
    }

    /// Filters, orders and pages a list of entities into a connection
    /// (Relay style, FACTS.md "Pagination").
    fn connection(&self, node: &'static str, items: Vec<Ent>, args: &Value) -> SimResult<Kind> {
        let st = self.ctx.st.borrow();
        let include_archived = args
            .get("includeArchived")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let filter_v = args.get("filter").cloned().unwrap_or(Value::Null);
        filter::check(node, &filter_v)?;
        let mut kept = Vec::new();
        for e in items {
            if !self.visible(&st, &e) || (!include_archived && Self::archived(&st, &e)) {
                continue;
            }
            if filter::matches(&st, &e, &filter_v)? {
                kept.push(e);
            }
        }
        if args.get("orderBy").and_then(Value::as_str) == Some("updatedAt") {
            kept.sort_by_cached_key(|e| Self::created(&st, e).1);
        }
        if args.get("sort").is_some_and(|v| !v.is_null()) {
            return Err(SimError::unsupported(
                "argument `sort` is not supported by linear-sim; use orderBy",
            ));
        }
        let first = args.get("first").and_then(Value::as_i64);
        let last = args.get("last").and_then(Value::as_i64);
        for (name, n) in [("first", first), ("last", last)] {
            if let Some(n) = n {
                if !(0..=MAX_PAGE).contains(&n) {
                    return Err(SimError::input(format!(
                        "argument `{name}` must be between 0 and {MAX_PAGE}, got {n}"
                    )));
                }
            }
        }
        let pos = |c: &str, what: &str| {
            kept.iter().position(|e| e.id() == c).ok_or_else(|| {
                SimError::input(format!(
                    "cursor `{c}` in `{what}` does not point into this list"
                ))
            })
        };
        let mut lo = 0usize;
        let mut hi = kept.len();
        if let Some(a) = arg_str(args, "after") {
            lo = pos(&a, "after")? + 1;
        }
        if let Some(b) = arg_str(args, "before") {
            hi = pos(&b, "before")?.max(lo);
        }
        let (from, to) = match (first, last) {
            (Some(f), _) => {
                let f = usize::try_from(f).unwrap_or(0);
                (lo, (lo + f).min(hi))
            }
            (None, Some(l)) => {
                let l = usize::try_from(l).unwrap_or(0);
                (hi.saturating_sub(l).max(lo), hi)
            }
            (None, None) => (
                lo,
                (lo + usize::try_from(DEFAULT_PAGE).unwrap_or(50)).min(hi),
            ),
        };
        let page_items: Vec<Ent> = kept[from..to].to_vec();
        let page = PageInfo {
            has_next: to < hi,
            has_prev: from > lo || lo > 0,
            start: page_items.first().map(|e| e.id().to_owned()),
            end: page_items.last().map(|e| e.id().to_owned()),
        };
        Ok(Kind::Conn {
            node,
            items: page_items,
            page,
        })
    }

    fn conn(
        &self,
        node: &'static str,
        items: Vec<Ent>,
        args: &Value,
    ) -> SimResult<ResolvedValue<'c>> {
        let k = self.connection(node, items, args)?;
        Ok(self.obj(k))
    }

    fn need_write(&self, op: &str, create_ok: bool) -> SimResult<()> {
        let s = &self.auth().scopes;
        if s.write || (create_ok && s.issues_create) {
            Ok(())
        } else {
            Err(SimError::forbidden(format!(
                "invalid scope: `{op}` needs the `write` scope{}",
                if create_ok { " or `issues:create`" } else { "" }
            )))
        }
    }

    /// Webhooks: "Only workspace admins, or OAuth applications with the admin scope,
    /// can create or read webhooks" (developers.linear.app/docs/graphql/webhooks).
    fn need_admin(&self, op: &str) -> SimResult<()> {
        if self.auth().scopes.admin {
            Ok(())
        } else {
            Err(SimError::forbidden(format!(
                "invalid scope: `{op}` needs the `admin` scope"
            )))
        }
    }

    fn find_issue(&self, st: &State, id: &str) -> SimResult<usize> {
        let idx = st
            .issue_index(id)
            .ok_or_else(|| SimError::not_found("Issue"))?;
        if !self.team_visible(st, &st.issues[idx].team_id) {
            return Err(SimError::not_found("Issue"));
        }
        Ok(idx)
    }

    // ---- Query ------------------------------------------------------------

    fn query(&self, field: &str, args: &Value) -> SimResult<ResolvedValue<'c>> {
        let all = |f: &dyn Fn(&State) -> Vec<Ent>| f(&self.ctx.st.borrow());
        match field {
            "viewer" => Ok(self.ent(Ent::User(self.auth().user_id.clone()))),
            "organization" => Ok(self.obj(Kind::Org)),
            "teams" => {
                let items = all(&|st| st.teams.iter().map(|t| Ent::Team(t.id.clone())).collect());
                self.conn("Team", items, args)
            }
            "team" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                let team = st
                    .teams
                    .iter()
                    .find(|t| t.id == id || t.key.eq_ignore_ascii_case(&id))
                    .filter(|t| self.auth().sees_team(&t.id))
                    .ok_or_else(|| SimError::not_found("Team"))?;
                Ok(self.ent(Ent::Team(team.id.clone())))
            }
            "workflowStates" => {
                let items = all(&|st| st.states.iter().map(|s| Ent::State(s.id.clone())).collect());
                self.conn("WorkflowState", items, args)
            }
            "workflowState" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                let e = Ent::State(id);
                if !self.visible(&st, &e) {
                    return Err(SimError::not_found("WorkflowState"));
                }
                Ok(self.ent(e))
            }
            "issueLabels" => {
                let items = all(&|st| st.labels.iter().map(|l| Ent::Label(l.id.clone())).collect());
                self.conn("IssueLabel", items, args)
            }
            "issueLabel" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                let e = Ent::Label(id);
                if !self.visible(&st, &e) {
                    return Err(SimError::not_found("IssueLabel"));
                }
                Ok(self.ent(e))
            }
            "users" => {
                let include_disabled = args
                    .get("includeDisabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let items = all(&|st| {
                    st.users
                        .iter()
                        .filter(|u| include_disabled || u.active)
                        .map(|u| Ent::User(u.id.clone()))
                        .collect()
                });
                self.conn("User", items, args)
            }
            "user" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                if st.user(&id).is_none() {
                    return Err(SimError::not_found("User"));
                }
                Ok(self.ent(Ent::User(id)))
            }
            "issue" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                let idx = self.find_issue(&st, &id)?;
                Ok(self.ent(Ent::Issue(st.issues[idx].id.clone())))
            }
            "issues" => {
                let items = all(&|st| st.issues.iter().map(|i| Ent::Issue(i.id.clone())).collect());
                self.conn("Issue", items, args)
            }
            "attachment" => {
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                let e = Ent::Attachment(id);
                if !self.visible(&st, &e) {
                    return Err(SimError::not_found("Attachment"));
                }
                Ok(self.ent(e))
            }
            "attachmentsForURL" => {
                let url = arg_str(args, "url").unwrap_or_default();
                let items = all(&|st| {
                    st.attachments
                        .iter()
                        .filter(|a| a.url == url)
                        .map(|a| Ent::Attachment(a.id.clone()))
                        .collect()
                });
                self.conn("Attachment", items, args)
            }
            "rateLimitStatus" => Ok(self.obj(Kind::RateLimit)),
            "webhook" => {
                self.need_admin("webhook")?;
                let id = arg_str(args, "id").unwrap_or_default();
                let st = self.ctx.st.borrow();
                if !st.webhooks.iter().any(|w| w.id == id) {
                    return Err(SimError::not_found("Webhook"));
                }
                Ok(self.obj(Kind::Webhook(id)))
            }
            "issuePriorityValues" => {
                let list: Vec<ResolvedValue<'c>> =
                    (0..=4).map(|p| self.obj(Kind::PriorityValue(p))).collect();
                Ok(ResolvedValue::list(list))
            }
            other => Err(SimError::unsupported(format!(
                "query field `{other}` is not supported by linear-sim; supported root fields are listed in docs/linear-sim.md"
            ))),
        }
    }

    // ---- Mutation ---------------------------------------------------------

    fn mutation(&self, field: &str, args: &Value) -> SimResult<ResolvedValue<'c>> {
        let input = args.get("input").cloned().unwrap_or(Value::Null);
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let list = |v: &Value, k: &str| -> Option<Vec<String>> {
            v.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
        };
        match field {
            "issueCreate" => {
                self.need_write("issueCreate", true)?;
                let mut st = self.ctx.st.borrow_mut();
                let team_id = s(&input, "teamId").unwrap_or_default();
                if !self.team_visible(&st, &team_id) {
                    return Err(SimError::not_found("Team"));
                }
                for k in ["projectId", "parentId", "cycleId", "templateId", "projectMilestoneId"] {
                    if input.get(k).is_some_and(|v| !v.is_null()) {
                        return Err(SimError::unsupported(format!(
                            "input field `IssueCreateInput.{k}` is not supported by linear-sim"
                        )));
                    }
                }
                let new = NewIssue {
                    id: s(&input, "id"),
                    team_id,
                    title: s(&input, "title").unwrap_or_default(),
                    description: s(&input, "description"),
                    priority: input.get("priority").and_then(Value::as_i64),
                    state_id: s(&input, "stateId"),
                    assignee_id: s(&input, "assigneeId"),
                    label_ids: list(&input, "labelIds").unwrap_or_default(),
                    due_date: s(&input, "dueDate"),
                    creator_id: Some(self.auth().user_id.clone()),
                };
                let id = st.create_issue(new, self.ctx.markdown)?;
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::IssuePayload {
                    issue: Some(id),
                    sync,
                }))
            }
            "issueUpdate" => {
                self.need_write("issueUpdate", false)?;
                let mut st = self.ctx.st.borrow_mut();
                let idx = self.find_issue(&st, &s(args, "id").unwrap_or_default())?;
                for k in ["teamId", "projectId", "parentId", "cycleId", "estimate", "subscriberIds"] {
                    if input.get(k).is_some_and(|v| !v.is_null()) {
                        return Err(SimError::unsupported(format!(
                            "input field `IssueUpdateInput.{k}` is not supported by linear-sim"
                        )));
                    }
                }
                let nullable = |k: &str| -> Option<Option<String>> {
                    input
                        .get(k)
                        .map(|v| v.as_str().map(str::to_owned))
                };
                let patch = IssuePatch {
                    title: s(&input, "title"),
                    description: nullable("description"),
                    priority: input.get("priority").and_then(Value::as_i64),
                    state_id: s(&input, "stateId"),
                    assignee_id: nullable("assigneeId"),
                    label_ids: list(&input, "labelIds"),
                    added_label_ids: list(&input, "addedLabelIds").unwrap_or_default(),
                    removed_label_ids: list(&input, "removedLabelIds").unwrap_or_default(),
                    due_date: nullable("dueDate"),
                    trashed: input.get("trashed").and_then(Value::as_bool),
                };
                st.update_issue(idx, patch, self.ctx.markdown)?;
                let id = st.issues[idx].id.clone();
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::IssuePayload {
                    issue: Some(id),
                    sync,
                }))
            }
            "issueAddLabel" | "issueRemoveLabel" => {
                self.need_write(field, false)?;
                let mut st = self.ctx.st.borrow_mut();
                let idx = self.find_issue(&st, &s(args, "id").unwrap_or_default())?;
                let label = s(args, "labelId").unwrap_or_default();
                let mut patch = IssuePatch::default();
                if field == "issueAddLabel" {
                    patch.added_label_ids = vec![label];
                } else {
                    patch.removed_label_ids = vec![label];
                }
                st.update_issue(idx, patch, self.ctx.markdown)?;
                let id = st.issues[idx].id.clone();
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::IssuePayload {
                    issue: Some(id),
                    sync,
                }))
            }
            "issueArchive" | "issueUnarchive" | "issueDelete" => {
                self.need_write(field, false)?;
                let mut st = self.ctx.st.borrow_mut();
                let idx = self.find_issue(&st, &s(args, "id").unwrap_or_default())?;
                let id = st.issues[idx].id.clone();
                let issue = match field {
                    "issueArchive" => {
                        let trash = args.get("trash").and_then(Value::as_bool).unwrap_or(false);
                        st.archive_issue(idx, trash);
                        Some(id)
                    }
                    "issueUnarchive" => {
                        st.unarchive_issue(idx);
                        Some(id)
                    }
                    _ => {
                        if args
                            .get("permanentlyDelete")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                        {
                            if !self.auth().scopes.admin {
                                return Err(SimError::forbidden(
                                    "invalid scope: permanentlyDelete needs the `admin` scope",
                                ));
                            }
                            st.delete_issue(idx);
                            None
                        } else {
                            // Deleting moves the issue to the trash (archived and trashed).
                            st.archive_issue(idx, true);
                            Some(id)
                        }
                    }
                };
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::ArchivePayload { issue, sync }))
            }
            "attachmentCreate" | "attachmentLinkURL" => {
                self.need_write(field, true)?;
                let src = if field == "attachmentCreate" { &input } else { args };
                let mut st = self.ctx.st.borrow_mut();
                let idx = self.find_issue(&st, &s(src, "issueId").unwrap_or_default())?;
                let issue_id = st.issues[idx].id.clone();
                let url = s(src, "url").unwrap_or_default();
                let title = s(src, "title").unwrap_or_else(|| url.clone());
                let metadata = src.get("metadata").filter(|v| !v.is_null()).cloned();
                if metadata.as_ref().is_some_and(|m| !m.is_object()) {
                    return Err(SimError::input("attachment metadata must be a JSON object"));
                }
                let id = st.upsert_attachment(
                    &issue_id,
                    &url,
                    &title,
                    s(src, "subtitle"),
                    metadata,
                    Some(self.auth().user_id.clone()),
                )?;
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::AttachmentPayload {
                    attachment: id,
                    sync,
                }))
            }
            "issueLabelCreate" => {
                self.need_write("issueLabelCreate", false)?;
                let mut st = self.ctx.st.borrow_mut();
                let team = s(&input, "teamId");
                if let Some(t) = &team {
                    if !self.team_visible(&st, t) {
                        return Err(SimError::not_found("Team"));
                    }
                }
                if input.get("parentId").is_some_and(|v| !v.is_null()) {
                    return Err(SimError::unsupported(
                        "input field `IssueLabelCreateInput.parentId` is not supported by linear-sim",
                    ));
                }
                let id = st.create_label(
                    team.as_deref(),
                    &s(&input, "name").unwrap_or_default(),
                    s(&input, "color").as_deref(),
                    s(&input, "description").as_deref(),
                )?;
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::LabelPayload { label: id, sync }))
            }
            "webhookCreate" => {
                self.need_admin("webhookCreate")?;
                let mut st = self.ctx.st.borrow_mut();
                let url = s(&input, "url").unwrap_or_default();
                crate::webhooks::check_url(&url, self.ctx.allow_loopback_webhooks)?;
                let team_id = s(&input, "teamId");
                let all_public_teams = input
                    .get("allPublicTeams")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let team_id = match team_id {
                    Some(t) => {
                        // `teamId` takes "the identifier or key of the team".
                        let found = st
                            .teams
                            .iter()
                            .find(|x| x.id == t || x.key == t)
                            .map(|x| x.id.clone())
                            .filter(|id| self.team_visible(&st, id))
                            .ok_or_else(|| SimError::not_found("Team"))?;
                        Some(found)
                    }
                    None if all_public_teams => None,
                    None => {
                        return Err(SimError::input(
                            "a webhook needs a teamId or allPublicTeams: true",
                        ))
                    }
                };
                let resource_types = list(&input, "resourceTypes").unwrap_or_default();
                if resource_types.is_empty() {
                    return Err(SimError::input("resourceTypes must not be empty"));
                }
                let id = match s(&input, "id") {
                    Some(id) if !crate::ids::is_uuid_v4(&id) => {
                        return Err(SimError::input(format!("id must be a UUID v4, got `{id}`")))
                    }
                    Some(id) if st.webhooks.iter().any(|w| w.id == id) => {
                        return Err(SimError::input(format!("a webhook with id {id} already exists")))
                    }
                    Some(id) => id,
                    None => crate::ids::uuid_v4(),
                };
                let secret = s(&input, "secret").unwrap_or_else(crate::ids::secret_hex);
                st.granted.push(secret.clone());
                st.webhooks.push(crate::webhooks::Webhook {
                    id: id.clone(),
                    url,
                    secret,
                    label: s(&input, "label"),
                    team_id,
                    all_public_teams,
                    resource_types,
                    enabled: input.get("enabled").and_then(Value::as_bool).unwrap_or(true),
                    creator_id: self.auth().user_id.clone(),
                    created_at: chrono::Utc::now(),
                });
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::WebhookPayload { webhook: id, sync }))
            }
            "webhookDelete" => {
                self.need_admin("webhookDelete")?;
                let mut st = self.ctx.st.borrow_mut();
                let id = s(args, "id").unwrap_or_default();
                let before = st.webhooks.len();
                st.webhooks.retain(|w| w.id != id);
                if st.webhooks.len() == before {
                    return Err(SimError::not_found("Webhook"));
                }
                let sync = st.next_sync_id();
                Ok(self.obj(Kind::DeletePayload { entity: id, sync }))
            }
            other => Err(SimError::unsupported(format!(
                "mutation `{other}` is not supported by linear-sim; supported mutations are listed in docs/linear-sim.md"
            ))),
        }
    }

    // ---- objects ----------------------------------------------------------

    fn webhook_field(&self, id: &str, field: &str) -> SimResult<ResolvedValue<'c>> {
        let w = {
            let st = self.ctx.st.borrow();
            st.webhooks
                .iter()
                .find(|w| w.id == id)
                .cloned()
                .ok_or_else(|| SimError::not_found("Webhook"))?
        };
        let at = json!(iso(w.created_at));
        Ok(match field {
            "id" => leaf(json!(w.id)),
            "url" => leaf(json!(w.url)),
            "enabled" => leaf(json!(w.enabled)),
            "secret" => leaf(json!(w.secret)),
            "label" => leaf(json!(w.label)),
            "resourceTypes" => ResolvedValue::list(
                w.resource_types
                    .iter()
                    .map(|r| leaf(json!(r)))
                    .collect::<Vec<_>>(),
            ),
            "allPublicTeams" => leaf(json!(w.all_public_teams)),
            "createdAt" | "updatedAt" => leaf(at),
            "archivedAt" => leaf(Value::Null),
            "team" => return Ok(self.opt_ent(w.team_id.map(Ent::Team))),
            "creator" => return Ok(self.ent(Ent::User(w.creator_id))),
            _ => return Err(self.unsupported(field)),
        })
    }

    fn object_field(&self, field: &str, args: &Value) -> SimResult<ResolvedValue<'c>> {
        match &self.kind {
            Kind::Ent(e) => self.entity_field(e, field, args),
            Kind::Org => self.org_field(field, args),
            Kind::Conn { node, items, page } => match field {
                "nodes" => {
                    let v: Vec<ResolvedValue<'c>> =
                        items.iter().map(|e| self.ent(e.clone())).collect();
                    Ok(ResolvedValue::list(v))
                }
                "edges" => {
                    let v: Vec<ResolvedValue<'c>> = items
                        .iter()
                        .map(|e| {
                            self.obj(Kind::Edge {
                                node,
                                ent: e.clone(),
                            })
                        })
                        .collect();
                    Ok(ResolvedValue::list(v))
                }
                "pageInfo" => Ok(self.obj(Kind::PageInfo(page.clone()))),
                _ => Err(self.unsupported(field)),
            },
            Kind::Edge { ent, .. } => match field {
                "node" => Ok(self.ent(ent.clone())),
                "cursor" => Ok(leaf(json!(ent.id()))),
                _ => Err(self.unsupported(field)),
            },
            Kind::PageInfo(p) => Ok(leaf(match field {
                "hasNextPage" => json!(p.has_next),
                "hasPreviousPage" => json!(p.has_prev),
                "startCursor" => json!(p.start),
                "endCursor" => json!(p.end),
                _ => return Err(self.unsupported(field)),
            })),
            Kind::IssuePayload { issue, sync } | Kind::ArchivePayload { issue, sync } => {
                match field {
                    "success" => Ok(leaf(json!(true))),
                    "lastSyncId" => Ok(leaf(json!(sync))),
                    "issue" | "entity" => Ok(self.opt_ent(issue.clone().map(Ent::Issue))),
                    _ => Err(self.unsupported(field)),
                }
            }
            Kind::AttachmentPayload { attachment, sync } => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(sync))),
                "attachment" => Ok(self.ent(Ent::Attachment(attachment.clone()))),
                _ => Err(self.unsupported(field)),
            },
            Kind::WebhookPayload { webhook, sync } => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(sync))),
                "webhook" => Ok(self.obj(Kind::Webhook(webhook.clone()))),
                _ => Err(self.unsupported(field)),
            },
            Kind::DeletePayload { entity, sync } => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(sync))),
                "entityId" => Ok(leaf(json!(entity))),
                _ => Err(self.unsupported(field)),
            },
            Kind::Webhook(id) => self.webhook_field(id, field),
            Kind::LabelPayload { label, sync } => match field {
                "success" => Ok(leaf(json!(true))),
                "lastSyncId" => Ok(leaf(json!(sync))),
                "issueLabel" => Ok(self.ent(Ent::Label(label.clone()))),
                _ => Err(self.unsupported(field)),
            },
            Kind::RateLimit => {
                let b = self.ctx.budget;
                match field {
                    "identifier" => Ok(leaf(json!(self.auth().user_id))),
                    "kind" => Ok(leaf(json!(match self.auth().kind {
                        crate::auth::CredKind::ApiKey => "api key",
                        crate::auth::CredKind::OAuth { .. } => "oauth",
                    }))),
                    "limits" => {
                        let v = vec![
                            self.obj(Kind::RateLimitResult {
                                ty: "requestLimit",
                                allowed: b.requests_limit,
                                remaining: b.requests_remaining,
                                requested: 1,
                                reset: b.requests_reset_ms,
                            }),
                            self.obj(Kind::RateLimitResult {
                                ty: "complexityLimit",
                                allowed: b.complexity_limit,
                                remaining: b.complexity_remaining,
                                requested: self.ctx.complexity,
                                reset: b.complexity_reset_ms,
                            }),
                        ];
                        Ok(ResolvedValue::list(v))
                    }
                    _ => Err(self.unsupported(field)),
                }
            }
            Kind::RateLimitResult {
                ty,
                allowed,
                remaining,
                requested,
                reset,
            } => Ok(leaf(match field {
                "type" => json!(ty),
                "allowedAmount" => json!(allowed),
                "remainingAmount" => json!(remaining),
                "requestedAmount" => json!(requested),
                "reset" => json!(reset),
                "period" => json!(self.ctx.budget.period_ms),
                _ => return Err(self.unsupported(field)),
            })),
            Kind::PriorityValue(p) => Ok(leaf(match field {
                "priority" => json!(p),
                "label" => json!(priority_label(*p)),
                _ => return Err(self.unsupported(field)),
            })),
            Kind::Query | Kind::Mutation => Err(self.unsupported(field)),
        }
    }

    fn org_field(&self, field: &str, args: &Value) -> SimResult<ResolvedValue<'c>> {
        let st = self.ctx.st.borrow();
        let o = &st.org;
        let v = match field {
            "id" => json!(o.id),
            "name" => json!(o.name),
            "urlKey" => json!(o.url_key),
            "createdAt" | "updatedAt" => json!(iso(o.created_at)),
            "archivedAt" => Value::Null,
            "userCount" => json!(st.users.iter().filter(|u| u.active).count()),
            "teams" => {
                let items = st.teams.iter().map(|t| Ent::Team(t.id.clone())).collect();
                drop(st);
                return self.conn("Team", items, args);
            }
            "users" => {
                let items = st.users.iter().map(|u| Ent::User(u.id.clone())).collect();
                drop(st);
                return self.conn("User", items, args);
            }
            "labels" => {
                let items = st.labels.iter().map(|l| Ent::Label(l.id.clone())).collect();
                drop(st);
                return self.conn("IssueLabel", items, args);
            }
            _ => return Err(self.unsupported(field)),
        };
        Ok(leaf(v))
    }

    #[allow(clippy::too_many_lines)]
    fn entity_field(&self, e: &Ent, field: &str, args: &Value) -> SimResult<ResolvedValue<'c>> {
        let st = self.ctx.st.borrow();
        let gone = || SimError::not_found(e.type_name());
        let v: Value = match e {
            Ent::Issue(id) => {
                let i = st.issue(id).ok_or_else(gone)?;
                match field {
                    "id" => json!(i.id),
                    "identifier" => json!(st.identifier(i)),
                    "number" => json!(f64::from(i.number)),
                    "url" => json!(st.issue_url(i)),
                    "title" => json!(i.title),
                    "description" => json!(i.description),
                    #[allow(clippy::cast_precision_loss)]
                    "priority" => json!(i.priority as f64),
                    "priorityLabel" => json!(priority_label(i.priority)),
                    "dueDate" => json!(i.due_date),
                    "createdAt" => json!(iso(i.created_at)),
                    "updatedAt" => json!(iso(i.updated_at)),
                    "archivedAt" => opt_time(i.archived_at),
                    "trashed" => {
                        if i.trashed {
                            json!(true)
                        } else {
                            Value::Null
                        }
                    }
                    "labelIds" => json!(i.label_ids),
                    "branchName" => json!(format!(
                        "{}-{}",
                        st.identifier(i).to_ascii_lowercase(),
                        i.title
                            .to_ascii_lowercase()
                            .split(|c: char| !c.is_ascii_alphanumeric())
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                            .join("-")
                    )),
                    "state" => return Ok(self.ent(Ent::State(i.state_id.clone()))),
                    "team" => return Ok(self.ent(Ent::Team(i.team_id.clone()))),
                    "assignee" => return Ok(self.opt_ent(i.assignee_id.clone().map(Ent::User))),
                    "creator" => return Ok(self.opt_ent(i.creator_id.clone().map(Ent::User))),
                    "labels" => {
                        let items = i.label_ids.iter().cloned().map(Ent::Label).collect();
                        drop(st);
                        return self.conn("IssueLabel", items, args);
                    }
                    "attachments" => {
                        let items = st
                            .attachments
                            .iter()
                            .filter(|a| a.issue_id == i.id)
                            .map(|a| Ent::Attachment(a.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Attachment", items, args);
                    }
                    _ => return Err(self.unsupported(field)),
                }
            }
            Ent::Team(id) => {
                let t = st.team(id).ok_or_else(gone)?;
                let state_of = |kind: &str| {
                    st.states
                        .iter()
                        .filter(|s| s.team_id == t.id && s.kind == kind && s.archived_at.is_none())
                        .min_by(|a, b| a.position.total_cmp(&b.position))
                        .map(|s| Ent::State(s.id.clone()))
                };
                match field {
                    "id" => json!(t.id),
                    "key" => json!(t.key),
                    "name" | "displayName" => json!(t.name),
                    "description" | "archivedAt" | "icon" | "color" => Value::Null,
                    "createdAt" | "updatedAt" => json!(iso(t.created_at)),
                    "triageEnabled" => json!(t.triage_enabled),
                    "private" => json!(false),
                    "organization" => return Ok(self.obj(Kind::Org)),
                    "defaultIssueState" => {
                        let d = st.default_state(&t.id).map(Ent::State);
                        return Ok(self.opt_ent(d));
                    }
                    "triageIssueState" => return Ok(self.opt_ent(state_of("triage"))),
                    "markedAsDuplicateWorkflowState" => {
                        return Ok(self.opt_ent(state_of("duplicate")))
                    }
                    "states" => {
                        let items = st
                            .states
                            .iter()
                            .filter(|s| s.team_id == t.id)
                            .map(|s| Ent::State(s.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("WorkflowState", items, args);
                    }
                    "labels" => {
                        let items = st
                            .labels
                            .iter()
                            .filter(|l| l.team_id.as_deref() == Some(t.id.as_str()))
                            .map(|l| Ent::Label(l.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("IssueLabel", items, args);
                    }
                    "issues" => {
                        let items = st
                            .issues
                            .iter()
                            .filter(|i| i.team_id == t.id)
                            .map(|i| Ent::Issue(i.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Issue", items, args);
                    }
                    "members" => {
                        let items = t.members.iter().cloned().map(Ent::User).collect();
                        drop(st);
                        return self.conn("User", items, args);
                    }
                    _ => return Err(self.unsupported(field)),
                }
            }
            Ent::State(id) => {
                let s = st.wf_state(id).ok_or_else(gone)?;
                match field {
                    "id" => json!(s.id),
                    "name" => json!(s.name),
                    "type" => json!(s.kind),
                    "position" => json!(s.position),
                    "color" => json!(s.color),
                    "description" => Value::Null,
                    "createdAt" | "updatedAt" => json!(iso(s.created_at)),
                    "archivedAt" => opt_time(s.archived_at),
                    "team" => return Ok(self.ent(Ent::Team(s.team_id.clone()))),
                    "issues" => {
                        let items = st
                            .issues
                            .iter()
                            .filter(|i| i.state_id == s.id)
                            .map(|i| Ent::Issue(i.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Issue", items, args);
                    }
                    _ => return Err(self.unsupported(field)),
                }
            }
            Ent::Label(id) => {
                let l = st.label(id).ok_or_else(gone)?;
                match field {
                    "id" => json!(l.id),
                    "name" => json!(l.name),
                    "color" => json!(l.color),
                    "description" => json!(l.description),
                    "isGroup" => json!(false),
                    "createdAt" | "updatedAt" => json!(iso(l.created_at)),
                    "archivedAt" => opt_time(l.archived_at),
                    "parent" => return Ok(ResolvedValue::null()),
                    "team" => return Ok(self.opt_ent(l.team_id.clone().map(Ent::Team))),
                    "issues" => {
                        let items = st
                            .issues
                            .iter()
                            .filter(|i| i.label_ids.contains(&l.id))
                            .map(|i| Ent::Issue(i.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Issue", items, args);
                    }
                    _ => return Err(self.unsupported(field)),
                }
            }
            Ent::User(id) => {
                let u = st.user(id).ok_or_else(gone)?;
                match field {
                    "id" => json!(u.id),
                    "name" => json!(u.name),
                    "displayName" => json!(u.display_name),
                    "email" => json!(u.email),
                    "active" => json!(u.active),
                    "admin" => json!(u.admin),
                    "guest" | "app" => json!(false),
                    "isMe" => json!(u.id == self.auth().user_id),
                    "createdAt" | "updatedAt" => json!(iso(u.created_at)),
                    "archivedAt" | "avatarUrl" => Value::Null,
                    "url" => json!(format!(
                        "https://linear.app/{}/profiles/{}",
                        st.org.url_key, u.display_name
                    )),
                    "organization" => return Ok(self.obj(Kind::Org)),
                    "teams" => {
                        let items = st
                            .teams
                            .iter()
                            .filter(|t| t.members.contains(&u.id))
                            .map(|t| Ent::Team(t.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Team", items, args);
                    }
                    "assignedIssues" => {
                        let items = st
                            .issues
                            .iter()
                            .filter(|i| i.assignee_id.as_deref() == Some(u.id.as_str()))
                            .map(|i| Ent::Issue(i.id.clone()))
                            .collect();
                        drop(st);
                        return self.conn("Issue", items, args);
                    }
                    _ => return Err(self.unsupported(field)),
                }
            }
            Ent::Attachment(id) => {
                let a = st.attachment(id).ok_or_else(gone)?;
                match field {
                    "id" => json!(a.id),
                    "url" => json!(a.url),
                    "title" => json!(a.title),
                    "subtitle" => json!(a.subtitle),
                    "metadata" => a.metadata.clone(),
                    "groupBySource" => json!(false),
                    "createdAt" => json!(iso(a.created_at)),
                    "updatedAt" => json!(iso(a.updated_at)),
                    "archivedAt" | "source" | "sourceType" | "bodyData" => Value::Null,
                    "issue" => return Ok(self.ent(Ent::Issue(a.issue_id.clone()))),
                    "creator" => return Ok(self.opt_ent(a.creator_id.clone().map(Ent::User))),
                    _ => return Err(self.unsupported(field)),
                }
            }
        };
        Ok(leaf(v))
    }
}
