//! The Trello REST adapter: implements the `TrackerIntrospection` and `WorkItems` ports
//! of `webriskops-ports` against `https://api.trello.com/1` (see `docs/trello.md`).
//!
//! - Credentials travel only in `Authorization: OAuth oauth_consumer_key="…",
//!   oauth_token="…"`; never in URLs, logs or error messages. The two token routes
//!   (`GET /tokens/{token}`, `DELETE /tokens/{token}/`) carry the token in the path by
//!   necessity; their URLs are never logged or echoed (traces name the route template).
//! - A sliding-window limiter per token and per API key (shared process-wide, see
//!   [`KeyBudget`]) keeps within Trello's limits; requests run concurrently up to
//!   [`TrelloConfig::concurrency`].
//! - One retry loop: 429 and 5xx for every method, lost answers only for GET, PUT and
//!   DELETE. A POST whose answer is lost reports `OutcomeUnknown` and is never resent.
//!   [`RetryPolicy::deadline_ms`] bounds one request across its retries; each retry is
//!   logged at `warn`.
//! - A hostile server is bounded: rate-limit headers and `Retry-After` are clamped to
//!   the documented window, bodies are read up to [`MAX_BODY_BYTES`], and text echoed
//!   into errors is short and escaped.
//! - One error mapping (status, then JSON body, else text): see `errors.rs`.

mod catalog;
mod config;
mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod limiter;
mod oauth;
pub mod shared;
mod transport;
mod webhooks;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use webriskops_domain::{extract_template_marker, template_marker, FindingId, ItemId, TrelloId};
use webriskops_ports::{
    in_context, oldest_of, Account, Capabilities, CheckItem, Checklist, Container, Destination,
    ItemChanges, ItemPage, Label, ListItemsOptions, Member, NewItem, NewLabel, NewStepTemplate,
    Placement, PortError, PortResult, ReadOptions, RemoteItem, StepTemplate, TokenInfo, Tracker,
    TrackerIntrospection, WorkItems,
};

pub use catalog::{HttpMethod, RequestSpec, SentRequest, Subject};
pub use config::{
    is_loopback, parse_api_root, ConfigError, RateLimits, RetryPolicy, SharedKeyBudget,
    TrelloConfig, API_ROOT_ENV, DEFAULT_API_ROOT,
};
pub use limiter::KeyBudget;
pub use oauth::{
    authorize_url, authorize_url_at, hmac_sha1_signature, signature_base_string, AccessToken,
    AuthorizeOptions, Expiration, OAuth1AuthorizeOptions, OAuth1Client, RequestToken,
    AUTHORIZE_URL, OAUTH_ACCESS_TOKEN_URL, OAUTH_AUTHORIZE_TOKEN_URL, OAUTH_REQUEST_TOKEN_URL,
    SITE_ROOT,
};
pub use transport::{RequestStats, MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};
pub use webhooks::{webhook_signature, TrelloWebhookVerifier, SIGNATURE_HEADER};

use catalog::Op;
use errors::map_status;
use transport::{Call, Transport};
use wire::{WBoard, WCard, WCheckItem, WChecklist, WLabel, WList, WMember, WToken};

/// The largest page `list_items` returns (Trello's `limit` maximum, FACTS.md §2).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Most routes in one `GET /batch` (FACTS.md §8).
pub const MAX_BATCH_ROUTES: usize = 10;

/// What the adapter can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    tracker: "trello",
    list_items: true,
    labels: true,
    create_labels: true,
    checklists: true,
    members: true,
    native_priority: false,
    archive: true,
    move_items: true,
    revoke: true,
    max_page_size: MAX_PAGE_SIZE,
    // Card name and description: 1..16384 (FACTS.md §3, Trello's card.html); a check
    // item takes as much, though the domain also keeps it within the URL budget.
    max_title_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    max_body_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    max_step_chars: webriskops_domain::TRELLO_TEXT_LIMIT,
    // A card takes any number of members.
    max_assignees: u32::MAX,
    copies_step_lists: true,
};

/// Everything a readiness check reads about a board, gathered in one `GET /batch`:
/// the board, its lists, each chosen list, the labels and the members. Each part carries
/// its own answer, so one invisible list does not hide the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessSnapshot {
    pub board: PortResult<Container>,
    /// The lists asked for, in the order given.
    pub lists: Vec<(String, PortResult<Destination>)>,
    /// Every list of the board (open and archived): a chosen list the token cannot see
    /// and that is not among them is on another board, and these are the choices.
    pub board_lists: PortResult<Vec<Destination>>,
    pub labels: PortResult<Vec<Label>>,
    pub members: PortResult<Vec<Member>>,
}

/// The Trello adapter. Cheap to share behind an `Arc`; all methods take `&self`.
///
/// Cards carry only their list's id: the adapter reads an item's category from the done
/// list its caller passes on each read (`ListItemsOptions::done_destination`,
/// `ReadOptions::done_destination`, the provider record's done list), because one adapter
/// (one set of credentials) serves every board the token sees. Its state name is the
/// list's name when this adapter has read the board's lists (`destinations`,
/// `destination`, `readiness_snapshot`), else the list's id: reading the lists on every
/// listing would cost a request per export.
pub struct TrelloAdapter {
    transport: Transport,
    token: webriskops_domain::Token,
    me: Mutex<Option<Account>>,
    /// List id → name, from every list read.
    list_names: Mutex<HashMap<String, String>>,
    /// The labels and members the last readiness batch read, for the export that
    /// follows it: each is served once, for its board, while fresh ("labels and members
    /// read once" per export, ADR 0006).
    container_memo: Mutex<Option<ContainerMemo>>,
}

/// Labels and members a readiness batch read.
#[derive(Debug)]
struct ContainerMemo {
    board: String,
    at: std::time::Instant,
    labels: Option<Vec<Label>>,
    members: Option<Vec<Member>>,
}

/// How long a readiness batch's labels and members stand in for a read of their own.
const CONTAINER_MEMO_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl std::fmt::Debug for TrelloAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrelloAdapter")
            .field("transport", &self.transport)
            .field("token", &self.token)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks an id the adapter puts in a path or a field: 24 hex (FACTS.md §0).
fn trello_id(kind: &str, id: &str) -> PortResult<String> {
    TrelloId::new(id.trim())
        .map(|t| t.as_str().to_owned())
        .map_err(|_| PortError::InvalidInput {
            context: Default::default(),
            message: format!(
                "invalid {kind}: {id:?} is not a Trello id (24 hexadecimal characters)"
            ),
        })
}

fn id_list(field: &str, ids: &[String]) -> PortResult<String> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(trello_id(field, id)?);
    }
    Ok(out.join(","))
}

impl TrelloAdapter {
    /// Builds the adapter.
    ///
    /// # Errors
    /// An unusable setting (e.g. a plain-http API root on a non-loopback host).
    pub fn new(config: TrelloConfig) -> Result<Self, ConfigError> {
        let transport = Transport::new(&config)?;
        Ok(TrelloAdapter {
            transport,
            token: config.token,
            me: Mutex::new(None),
            list_names: Mutex::new(HashMap::new()),
            container_memo: Mutex::new(None),
        })
    }

    fn remember_lists<'a>(&self, lists: impl IntoIterator<Item = &'a Destination>) {
        let mut names = lock(&self.list_names);
        for l in lists {
            names.insert(l.id.clone(), l.name.clone());
        }
    }

    /// The memo's labels (`labels`) or members of `board`, taken, when fresh.
    fn take_memo<T>(
        &self,
        board: &str,
        part: impl FnOnce(&mut ContainerMemo) -> Option<T>,
    ) -> Option<T> {
        let mut memo = lock(&self.container_memo);
        match memo.as_mut() {
            Some(m) if m.board == board && m.at.elapsed() < CONTAINER_MEMO_TTL => part(m),
            _ => None,
        }
    }

    fn read_card(&self, card: WCard, done_list: Option<&str>) -> PortResult<RemoteItem> {
        card.read(done_list, &lock(&self.list_names))
    }

    /// Requests sent so far, by kind.
    pub fn stats(&self) -> RequestStats {
        self.transport.stats()
    }

    /// The process-wide budget of this adapter's API key.
    pub fn key_budget(&self) -> Arc<KeyBudget> {
        self.transport.key_budget()
    }

    /// Every request the adapter can send: method, path template and parameter names.
    pub fn request_catalog() -> Vec<RequestSpec> {
        catalog::ALL.iter().map(RequestSpec::from).collect()
    }

    /// Starts recording every request sent (for contract tests). Tokens in paths are
    /// recorded as `<token>`.
    pub fn start_recording(&self) {
        self.transport.start_recording();
    }

    /// Requests recorded since [`TrelloAdapter::start_recording`].
    pub fn recorded_requests(&self) -> Vec<SentRequest> {
        self.transport.recorded()
    }

    async fn send<T: DeserializeOwned>(&self, call: Call) -> PortResult<T> {
        let result = self.transport.execute(&call).await;
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, PortError::Unauthenticated { .. }) {
                    *lock(&self.me) = None;
                }
                return Err(e);
            }
        };
        decode(&call, &answer.body, self.transport.redactor())
    }

    fn token_call(&self, op: Op) -> Call {
        Call::new(op, &[self.token.expose()]).secret_path()
    }

    /// Reads up to ten GET routes in one `GET /batch` (FACTS.md §8); each answer is
    /// mapped on its own.
    async fn batch(&self, calls: Vec<Call>) -> PortResult<Vec<PortResult<Value>>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        if calls.len() > MAX_BATCH_ROUTES {
            return Err(PortError::InvalidInput {
                context: Default::default(),
                message: format!(
                    "a batch holds at most {MAX_BATCH_ROUTES} routes, got {}",
                    calls.len()
                ),
            });
        }
        if let Some(c) = calls.iter().find(|c| c.secret_path) {
            // Its route would put the token in the `urls` query of the batch's URL.
            return Err(PortError::other(format!(
                "{} holds the token in its path and cannot go in a batch",
                c.op.template
            )));
        }
        let urls: Vec<String> = calls.iter().map(Call::relative).collect();
        let mut outer = Call::new(catalog::BATCH, &[]).query("urls", urls.join(","));
        outer.inner = calls.iter().map(|c| c.sent(true)).collect();
        let answers: Vec<Value> = self.send(outer).await?;
        if answers.len() != calls.len() {
            return Err(PortError::other(format!(
                "Trello answered {} results to a batch of {}",
                answers.len(),
                calls.len()
            )));
        }
        Ok(calls
            .iter()
            .zip(answers)
            .map(|(call, answer)| batch_element(call, answer, self.transport.redactor()))
            .collect())
    }

    /// Reads the board, its lists, the given lists (at most six), the labels and the members in
    /// one `GET /batch`, for a readiness check. The token itself is not part of the
    /// batch (its route would put the token in the `urls` query): use
    /// [`TrackerIntrospection::token_info`] for it.
    ///
    /// # Errors
    /// Malformed ids, too many lists, or the batch request itself failing (e.g. the
    /// credentials refused); answers about each part are in the snapshot.
    pub async fn readiness_snapshot(
        &self,
        board_id: &str,
        list_ids: &[&str],
    ) -> PortResult<ReadinessSnapshot> {
        let board = trello_id("board id", board_id)?;
        if list_ids.len() > MAX_BATCH_ROUTES - 4 {
            return Err(PortError::InvalidInput {
                context: Default::default(),
                message: format!(
                    "a readiness snapshot reads at most {} lists",
                    MAX_BATCH_ROUTES - 4
                ),
            });
        }
        let lists = list_ids
            .iter()
            .map(|l| trello_id("list id", l))
            .collect::<PortResult<Vec<String>>>()?;
        // No `fields` lists here: `urls` is comma-separated, so inner queries hold no
        // commas; the default fields of these routes include what is read.
        let mut calls = vec![
            Call::new(catalog::BOARD, &[&board]).what(format!("board {board}")),
            Call::new(catalog::BOARD_LABELS, &[&board])
                .query("limit", "1000")
                .what(format!("board {board}")),
            Call::new(catalog::BOARD_MEMBERS, &[&board]).what(format!("board {board}")),
            Call::new(catalog::BOARD_LISTS, &[&board])
                .query("filter", "all")
                .what(format!("board {board}")),
        ];
        for l in &lists {
            calls.push(Call::new(catalog::LIST, &[l]).what(format!("list {l}")));
        }
        let mut answers = self.batch(calls).await?.into_iter();
        let mut next = || {
            answers
                .next()
                .unwrap_or_else(|| Err(PortError::other("missing batch answer")))
        };
        let board_v = next();
        let labels_v = next();
        let members_v = next();
        let board_lists_v = next();
        let lists_v: Vec<_> = lists.iter().map(|_| next()).collect();
        let snapshot = ReadinessSnapshot {
            board: board_v
                .and_then(|v| from_value::<WBoard>(v, "board"))
                .map(Container::from),
            lists: lists
                .into_iter()
                .zip(lists_v)
                .map(|(id, r)| {
                    (
                        id,
                        r.and_then(|v| from_value::<WList>(v, "list"))
                            .map(Destination::from),
                    )
                })
                .collect(),
            labels: labels_v
                .and_then(|v| from_value::<Vec<WLabel>>(v, "labels"))
                .map(|ls| ls.into_iter().map(Label::from).collect()),
            members: members_v
                .and_then(|v| from_value::<Vec<WMember>>(v, "members"))
                .map(|ms| ms.into_iter().map(WMember::member).collect()),
            board_lists: board_lists_v
                .and_then(|v| from_value::<Vec<WList>>(v, "lists"))
                .map(|ls| {
                    ls.into_iter()
                        .map(|mut l| {
                            if l.id_board.is_empty() {
                                l.id_board.clone_from(&board);
                            }
                            Destination::from(l)
                        })
                        .collect()
                }),
        };
        if let Ok(all) = &snapshot.board_lists {
            self.remember_lists(all);
        }
        self.remember_lists(snapshot.lists.iter().filter_map(|(_, l)| l.as_ref().ok()));
        Ok(snapshot)
    }
}

/// The JSON body of `POST /cards` for a new item, and its list's id.
fn card_create_body(item: &NewItem) -> PortResult<(String, Map<String, Value>)> {
    let list = trello_id("list id", &item.destination_id)?;
    let mut body = Map::new();
    body.insert("name".into(), json!(item.title));
    body.insert("desc".into(), json!(item.body));
    body.insert("idList".into(), json!(list));
    body.insert(
        "pos".into(),
        json!(match item.placement {
            Placement::Top => "top",
            Placement::Bottom => "bottom",
        }),
    );
    if !item.label_ids.is_empty() {
        body.insert(
            "idLabels".into(),
            json!(id_list("label id", &item.label_ids)?),
        );
    }
    if !item.member_ids.is_empty() {
        body.insert(
            "idMembers".into(),
            json!(id_list("member id", &item.member_ids)?),
        );
    }
    if let Some(d) = item.due {
        body.insert("due".into(), json!(wire::due_value(d)));
    }
    Ok((list, body))
}

/// Characters of a decode error (which may quote the answer) kept in an error message.
const DECODE_ERROR_CHARS: usize = 200;

fn decode<T: DeserializeOwned>(
    call: &Call,
    body: &[u8],
    redactor: &errors::Redactor,
) -> PortResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        PortError::other(format!(
            "unexpected answer from Trello to {} {} ({} bytes): {}",
            call.op.method.as_str(),
            call.op.template,
            body.len(),
            redactor.excerpt(&e.to_string(), DECODE_ERROR_CHARS)
        ))
    })
}

fn from_value<T: DeserializeOwned>(v: Value, what: &str) -> PortResult<T> {
    serde_json::from_value(v).map_err(|e| {
        PortError::other(format!(
            "unexpected {what} from Trello: {}",
            errors::excerpt(&e.to_string(), DECODE_ERROR_CHARS)
        ))
    })
}

/// One element of a batch answer: `{"200": body}` or `{name, message, statusCode}`.
fn batch_element(call: &Call, answer: Value, redactor: &errors::Redactor) -> PortResult<Value> {
    if let Value::Object(mut m) = answer {
        if let Some(v) = m.remove("200") {
            return Ok(v);
        }
        let status = m
            .get("statusCode")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(500);
        let message = m
            .get("message")
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        return Err(map_status(
            status,
            message.as_bytes(),
            &call.context(),
            redactor,
            None,
        ));
    }
    Err(PortError::other("unexpected batch element from Trello"))
}

impl Tracker for TrelloAdapter {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
}

#[async_trait]
impl TrackerIntrospection for TrelloAdapter {
    /// `GET /members/me`, cached: `/1/members/` allows 100 requests per 900 s.
    async fn whoami(&self) -> PortResult<Account> {
        in_context(self, "whoami", async {
            if let Some(me) = lock(&self.me).clone() {
                return Ok(me);
            }
            let me: WMember = self
                .send(Call::new(catalog::WHOAMI, &["me"]).query("fields", wire::ME_FIELDS))
                .await?;
            let me = me.account();
            *lock(&self.me) = Some(me.clone());
            Ok(me)
        })
        .await
    }

    /// Two requests: the token (its route holds the token, so it cannot go in a batch)
    /// and one `GET /batch` of the board, its labels, members and lists and the chosen
    /// lists ([`TrelloAdapter::readiness_snapshot`]). The labels and members it read are
    /// served to the export's own reads of them that follow. `None` (the full check)
    /// when the record names no well-formed board.
    async fn observe_for_export(
        &self,
        record: &webriskops_domain::ProviderRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> PortResult<Option<webriskops_domain::TrackerObservations>> {
        use webriskops_domain::readiness::BoardList;
        use webriskops_domain::{
            BoardObservation, ListObservation, Observations, TokenObservation,
        };
        let present = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && TrelloId::new(*s).is_ok())
                .map(str::to_owned)
        };
        let Some(board) = present(&record.board_id) else {
            return Ok(None);
        };
        in_context(self, "observe_for_export", async {
            let list = present(&record.list_id);
            let done = present(&record.done_list_id);
            let ids: Vec<&str> = list.iter().chain(done.iter()).map(String::as_str).collect();
            // Both at once: one round trip instead of two. The batch is wasted only when
            // the token turns out unusable.
            let (token, snap) =
                futures::join!(self.token_info(), self.readiness_snapshot(&board, &ids));
            let token = match token {
                Ok(info) => TokenObservation::Valid {
                    permissions: info.permissions,
                    expires_at: info.expires_at,
                },
                Err(PortError::Unauthenticated { message, .. }) => {
                    TokenObservation::Rejected { reason: message }
                }
                Err(e @ (PortError::NotFound { .. } | PortError::PermissionDenied { .. })) => {
                    TokenObservation::Rejected {
                        reason: format!("the tracker does not recognise the token ({e})"),
                    }
                }
                Err(e) => return Err(e),
            };
            let mut obs = Observations::new(now, token);
            let token_ok = matches!(&obs.token, TokenObservation::Valid { expires_at, .. } if expires_at.is_none_or(|at| at > now));
            if !token_ok {
                return Ok(Some(obs.into()));
            }
            let snap = match snap {
                Ok(s) => s,
                Err(PortError::Unauthenticated { message, .. }) => {
                    obs.token = TokenObservation::Rejected { reason: message };
                    return Ok(Some(obs.into()));
                }
                Err(e) => return Err(e),
            };
            // What a part's answer means: decisive answers are observations, anything
            // transient fails the check.
            fn decisive<T>(r: &PortResult<T>) -> PortResult<()> {
                match r {
                    Ok(_)
                    | Err(
                        PortError::NotFound { .. }
                        | PortError::InvalidInput { .. }
                        | PortError::PermissionDenied { .. }
                        | PortError::Unauthenticated { .. },
                    ) => Ok(()),
                    Err(e) => Err(e.clone()),
                }
            }
            decisive(&snap.board)?;
            decisive(&snap.labels)?;
            decisive(&snap.members)?;
            match &snap.board {
                Ok(c) => {
                    obs.board = Some(BoardObservation::Found {
                        name: c.name.clone(),
                        closed: c.closed,
                        organization_id: c.organization_id.clone(),
                    });
                    obs.labels_readable = Some(snap.labels.is_ok());
                    obs.members_readable = Some(snap.members.is_ok());
                    if let Ok(lists) = &snap.board_lists {
                        obs.board_lists = Some(
                            lists
                                .iter()
                                .map(|d| BoardList {
                                    id: d.id.clone(),
                                    name: d.name.clone(),
                                    closed: d.closed,
                                })
                                .collect(),
                        );
                    }
                }
                Err(PortError::Unauthenticated { message, .. }) => {
                    obs.token = TokenObservation::Rejected {
                        reason: message.clone(),
                    };
                }
                Err(PortError::PermissionDenied { .. }) => {
                    obs.board = Some(BoardObservation::NoAccess);
                }
                Err(_) => obs.board = Some(BoardObservation::NotFound),
            }
            let mut seen = std::collections::HashMap::new();
            for (id, r) in &snap.lists {
                decisive(r)?;
                let o = match r {
                    Ok(d) => ListObservation::Found {
                        name: d.name.clone(),
                        closed: d.closed,
                        board_id: d.container_id.clone(),
                    },
                    Err(PortError::NotFound { .. } | PortError::InvalidInput { .. }) => {
                        ListObservation::NotFound
                    }
                    Err(_) => ListObservation::NoAccess,
                };
                seen.insert(id.clone(), o);
            }
            obs.list = list.and_then(|l| seen.get(&l).cloned());
            obs.done_list = done.and_then(|l| seen.get(&l).cloned());
            *lock(&self.container_memo) = Some(ContainerMemo {
                board: board.clone(),
                at: std::time::Instant::now(),
                labels: snap.labels.ok(),
                members: snap.members.ok(),
            });
            Ok(Some(obs.into()))
        })
        .await
    }

    async fn token_info(&self) -> PortResult<TokenInfo> {
        in_context(self, "token_info", async {
            let t: WToken = self
                .send(
                    self.token_call(catalog::TOKEN_INFO)
                        .query("fields", wire::TOKEN_FIELDS),
                )
                .await?;
            Ok(t.info())
        })
        .await
    }

    async fn containers(&self) -> PortResult<Vec<Container>> {
        in_context(self, "containers", async {
            let boards: Vec<WBoard> = self
                .send(
                    Call::new(catalog::MY_BOARDS, &["me"])
                        .query("filter", "open")
                        .query("fields", wire::BOARD_FIELDS),
                )
                .await?;
            Ok(boards.into_iter().map(Container::from).collect())
        })
        .await
    }

    async fn container(&self, id: &str) -> PortResult<Container> {
        in_context(self, "container", async {
            let id = trello_id("board id", id)?;
            let b: WBoard = self
                .send(
                    Call::new(catalog::BOARD, &[&id])
                        .query("fields", wire::BOARD_FIELDS)
                        .what(format!("board {id}")),
                )
                .await?;
            Ok(b.into())
        })
        .await
    }

    async fn destinations(&self, container_id: &str) -> PortResult<Vec<Destination>> {
        in_context(self, "destinations", async {
            let id = trello_id("board id", container_id)?;
            let lists: Vec<WList> = self
                .send(
                    Call::new(catalog::BOARD_LISTS, &[&id])
                        .query("filter", "all")
                        .query("fields", wire::LIST_FIELDS)
                        .what(format!("board {id}")),
                )
                .await?;
            let lists: Vec<Destination> = lists
                .into_iter()
                .map(|mut l| {
                    if l.id_board.is_empty() {
                        l.id_board.clone_from(&id);
                    }
                    Destination::from(l)
                })
                .collect();
            self.remember_lists(&lists);
            Ok(lists)
        })
        .await
    }

    async fn destination(&self, id: &str) -> PortResult<Destination> {
        in_context(self, "destination", async {
            let id = trello_id("list id", id)?;
            let l: WList = self
                .send(
                    Call::new(catalog::LIST, &[&id])
                        .query("fields", wire::LIST_FIELDS)
                        .what(format!("list {id}")),
                )
                .await?;
            let l = Destination::from(l);
            self.remember_lists([&l]);
            Ok(l)
        })
        .await
    }

    /// `limit=1000`: Trello's default of 50 silently drops the rest (FACTS.md §3); 1000
    /// is also the per-board label limit, so the list is complete.
    async fn labels(&self, container_id: &str) -> PortResult<Vec<Label>> {
        in_context(self, "labels", async {
            let id = trello_id("board id", container_id)?;
            if let Some(labels) = self.take_memo(&id, |m| m.labels.take()) {
                return Ok(labels);
            }
            let labels: Vec<WLabel> = self
                .send(
                    Call::new(catalog::BOARD_LABELS, &[&id])
                        .query("limit", "1000")
                        .query("fields", wire::LABEL_FIELDS)
                        .what(format!("board {id}")),
                )
                .await?;
            Ok(labels.into_iter().map(Label::from).collect())
        })
        .await
    }

    /// `GET /boards/{id}/members`, not `/members/…` (which has its own small budget).
    async fn members(&self, container_id: &str) -> PortResult<Vec<Member>> {
        in_context(self, "members", async {
            let id = trello_id("board id", container_id)?;
            if let Some(members) = self.take_memo(&id, |m| m.members.take()) {
                return Ok(members);
            }
            let members: Vec<WMember> = self
                .send(
                    Call::new(catalog::BOARD_MEMBERS, &[&id])
                        .query("fields", wire::MEMBER_FIELDS)
                        .what(format!("board {id}")),
                )
                .await?;
            Ok(members.into_iter().map(WMember::member).collect())
        })
        .await
    }

    async fn revoke_token(&self) -> PortResult<()> {
        in_context(self, "revoke_token", async {
            let _: Value = self.send(self.token_call(catalog::REVOKE)).await?;
            *lock(&self.me) = None;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl WorkItems for TrelloAdapter {
    /// Every request this adapter sent (a `/batch` counts once as a read).
    fn request_stats(&self) -> Option<webriskops_ports::RequestStats> {
        let s = self.transport.stats();
        Some(webriskops_ports::RequestStats {
            reads: s.reads,
            writes: s.writes,
            rate_limited: s.rate_limited_429s,
            rate_limited_key: s.key_rate_limited_429s,
            retries: s.retries,
        })
    }

    /// `GET /boards/{id}/cards?filter=all|open&limit=…&before=<cursor>`: newest first;
    /// the cursor is the oldest card id of a full page (FACTS.md §2).
    async fn list_items(&self, opts: &ListItemsOptions) -> PortResult<ItemPage> {
        in_context(self, "list_items", async {
            let board = trello_id("board id", &opts.container_id)?;
            let limit = match opts.page_size {
                0 => MAX_PAGE_SIZE,
                n => n.min(MAX_PAGE_SIZE),
            };
            let mut call = Call::new(catalog::BOARD_CARDS, &[&board])
                .query("filter", if opts.include_archived { "all" } else { "open" })
                .query("limit", limit.to_string())
                .what(format!("board {board}"));
            if let Some(c) = &opts.cursor {
                call = call.query("before", trello_id("cursor", c)?);
            }
            let call = call.query("fields", wire::CARD_FIELDS).query(
                "checklists",
                if opts.with_checklists { "all" } else { "none" },
            );
            let cards: Vec<WCard> = self.send(call).await?;
            let full = cards.len() >= limit as usize;
            let mut items = cards
                .into_iter()
                .map(|c| {
                    let mut item = self.read_card(c, opts.done_destination.as_deref())?;
                    if !opts.with_checklists {
                        item.checklists = None;
                    } else if item.checklists.is_none() {
                        item.checklists = Some(Vec::new());
                    }
                    Ok(item)
                })
                .collect::<PortResult<Vec<RemoteItem>>>()?;
            items.sort_by(|a, b| {
                b.id.as_str()
                    .to_ascii_lowercase()
                    .cmp(&a.id.as_str().to_ascii_lowercase())
            });
            let next_cursor = if full {
                items.last().map(|i| i.id.as_str().to_owned())
            } else {
                None
            };
            // The exporter's step templates carry their own marker and no finding's
            // (ADR 0006): they are never items of findings or of people.
            let (templates, items): (Vec<RemoteItem>, Vec<RemoteItem>) =
                items.into_iter().partition(|i| {
                    i.finding_id.is_none() && extract_template_marker(&i.body).is_some()
                });
            let step_templates = templates
                .into_iter()
                .filter_map(|t| {
                    Some(StepTemplate {
                        key: extract_template_marker(&t.body)?,
                        id: t.id.as_str().to_owned(),
                        destination_id: t.destination_id,
                        hidden: t.archived,
                        checklists: t.checklists.unwrap_or_default(),
                    })
                })
                .collect();
            Ok(ItemPage {
                items,
                next_cursor,
                step_templates,
            })
        })
        .await
    }

    /// `POST /cards` with a JSON body carrying the marker in `desc`: one request, so a
    /// lost answer can be reconciled by listing markers. Never retried once sent.
    async fn create_item(&self, item: &NewItem) -> PortResult<RemoteItem> {
        in_context(self, "create_item", async {
            let (list, body) = card_create_body(item)?;
            let card: WCard = self
                .send(
                    Call::new(catalog::CARD_CREATE, &[])
                        .body(body)
                        .what(format!("list {list}")),
                )
                .await?;
            card.item()
        })
        .await
    }

    /// `PUT /cards/{id}` with only the given fields; label and member lists replace the
    /// card's whole lists (FACTS.md §1).
    async fn update_item(&self, id: &ItemId, changes: &ItemChanges) -> PortResult<RemoteItem> {
        in_context(self, "update_item", async {
            let card = trello_id("card id", id.as_str())?;
            if changes.is_empty() {
                let c: WCard = self
                    .send(
                        Call::new(catalog::CARD, &[&card])
                            .query("fields", wire::CARD_FIELDS)
                            .what(format!("card {card}")),
                    )
                    .await?;
                return c.item();
            }
            let mut body = Map::new();
            if let Some(t) = &changes.title {
                body.insert("name".into(), json!(t));
            }
            if let Some(b) = &changes.body {
                body.insert("desc".into(), json!(b));
            }
            if let Some(l) = &changes.label_ids {
                body.insert("idLabels".into(), json!(id_list("label id", l)?));
            }
            if let Some(m) = &changes.member_ids {
                body.insert("idMembers".into(), json!(id_list("member id", m)?));
            }
            if let Some(due) = &changes.due {
                body.insert(
                    "due".into(),
                    due.map_or(Value::Null, |d| json!(wire::due_value(d))),
                );
            }
            if let Some(dest) = &changes.destination_id {
                body.insert("idList".into(), json!(trello_id("list id", dest)?));
            }
            if let Some(a) = changes.archived {
                body.insert("closed".into(), json!(a));
            }
            let c: WCard = self
                .send(
                    Call::new(catalog::CARD_UPDATE, &[&card])
                        .body(body)
                        .what(format!("card {card}")),
                )
                .await?;
            c.item()
        })
        .await
    }

    async fn create_checklist(&self, item: &ItemId, name: &str) -> PortResult<Checklist> {
        in_context(self, "create_checklist", async {
            let card = trello_id("card id", item.as_str())?;
            let cl: WChecklist = self
                .send(
                    Call::new(catalog::CHECKLIST_CREATE, &[&card])
                        .query("name", name)
                        .what(format!("card {card}")),
                )
                .await?;
            Ok(cl.into())
        })
        .await
    }

    /// `pos` is the given position, so items added concurrently keep their order.
    async fn add_check_item(
        &self,
        checklist_id: &str,
        name: &str,
        position: u32,
    ) -> PortResult<CheckItem> {
        in_context(self, "add_check_item", async {
            let cl = trello_id("checklist id", checklist_id)?;
            let pos = if position == 0 {
                "top".to_owned()
            } else {
                position.to_string()
            };
            let item: WCheckItem = self
                .send(
                    Call::new(catalog::CHECK_ITEM_CREATE, &[&cl])
                        .query("name", name)
                        .query("pos", pos)
                        .what(format!("checklist {cl}")),
                )
                .await?;
            Ok(item.into())
        })
        .await
    }

    /// `GET /cards/{id}?checklists=all|none`: one card as it is now.
    async fn get_item(&self, id: &ItemId, opts: &ReadOptions) -> PortResult<RemoteItem> {
        in_context(self, "get_item", async {
            let with_checklists = opts.with_checklists;
            let card = trello_id("card id", id.as_str())?;
            let c: WCard = self
                .send(
                    Call::new(catalog::CARD, &[&card])
                        .query("fields", wire::CARD_FIELDS)
                        .query("checklists", if with_checklists { "all" } else { "none" })
                        .what(format!("card {card}")),
                )
                .await?;
            let mut item = self.read_card(c, opts.done_destination.as_deref())?;
            if !with_checklists {
                item.checklists = None;
            } else if item.checklists.is_none() {
                item.checklists = Some(Vec::new());
            }
            Ok(item)
        })
        .await
    }

    /// One `GET /boards/{id}/cards` of the newest page (up to 1000 cards, archived
    /// included): a create being reconciled was sent moments ago, so its card, if Trello
    /// made it, is among the newest; reading every page would cost a request per 1000
    /// cards for nothing.
    async fn find_by_finding(
        &self,
        container_id: &str,
        finding: &FindingId,
        opts: &ReadOptions,
    ) -> PortResult<Option<RemoteItem>> {
        in_context(self, "find_by_finding", async {
            let page = self
                .list_items(&ListItemsOptions {
                    container_id: container_id.to_owned(),
                    cursor: None,
                    page_size: 0,
                    include_archived: true,
                    with_checklists: opts.with_checklists,
                    done_destination: opts.done_destination.clone(),
                })
                .await?;
            Ok(oldest_of(page.items, finding))
        })
        .await
    }

    /// `POST /boards/{id}/labels`; a label without colour is sent as `color=null`.
    async fn create_label(&self, label: &NewLabel) -> PortResult<Label> {
        in_context(self, "create_label", async {
            let board = trello_id("board id", &label.container_id)?;
            let l: WLabel = self
                .send(
                    Call::new(catalog::LABEL_CREATE, &[&board])
                        .query("name", label.name.clone())
                        .query(
                            "color",
                            label.color.clone().unwrap_or_else(|| "null".into()),
                        )
                        .what(format!("board {board}")),
                )
                .await?;
            Ok(l.into())
        })
        .await
    }
    /// `POST /cards` with `idCardSource` and `keepFromSource=checklists`: one request that
    /// makes the card, with its marker in `desc`, and copies the template's checklists
    /// into it (FACTS.md §1, ADR 0006). Name, description, labels, members and due are
    /// the request's own; nothing else is taken from the template.
    ///
    /// Trello refuses a source card that is gone with 400 `invalid value for
    /// idCardSource`; that one refusal is the port's `NotFound` (the template is gone,
    /// nothing was created). Every other refusal (`invalid value for idList`, a label or
    /// member not on the board) is about the card and stays `InvalidInput`.
    async fn create_item_copying(
        &self,
        item: &NewItem,
        template_id: &str,
    ) -> PortResult<RemoteItem> {
        in_context(self, "create_item_copying", async {
            let (list, mut body) = card_create_body(item)?;
            let template = trello_id("template card id", template_id)?;
            body.insert("idCardSource".into(), json!(template));
            body.insert("keepFromSource".into(), json!("checklists"));
            let card: WCard = self
                .send(
                    Call::new(catalog::CARD_CREATE, &[])
                        .body(body)
                        .what(format!("list {list}")),
                )
                .await
                .map_err(|e| match e {
                    PortError::InvalidInput { message, context }
                        if message.starts_with("invalid value for idCardSource") =>
                    {
                        PortError::NotFound {
                            what: format!("template card {template} ({message})"),
                            context,
                        }
                    }
                    other => other,
                })?;
            if card.closed {
                // Nothing documents whether a copy of an archived card is archived too
                // (FACTS.md §1a); if Trello made it so, it is put on the list, where
                // every new card belongs.
                let mut open = Map::new();
                open.insert("closed".into(), json!(false));
                let reopened: WCard = self
                    .send(
                        Call::new(catalog::CARD_UPDATE, &[&card.id])
                            .body(open)
                            .what(format!("card {}", card.id)),
                    )
                    .await?;
                return reopened.item();
            }
            card.item()
        })
        .await
    }

    /// A card with the template marker in `desc`, archived at once (it is on the list
    /// only between these two requests), then its checklist and items. A template left
    /// half-made by a failure reads as not intact on the next listing.
    async fn create_step_template(&self, t: &NewStepTemplate) -> PortResult<StepTemplate> {
        in_context(self, "create_step_template", async {
            let list = trello_id("list id", &t.destination_id)?;
            let mut body = Map::new();
            body.insert("name".into(), json!(t.title));
            body.insert(
                "desc".into(),
                json!(format!("{}\n\n{}", t.body, template_marker(&t.key))),
            );
            body.insert("idList".into(), json!(list));
            body.insert("pos".into(), json!("bottom"));
            let card: WCard = self
                .send(
                    Call::new(catalog::CARD_CREATE, &[])
                        .body(body)
                        .what(format!("list {list}")),
                )
                .await?;
            let card_id = ItemId::new(&card.id)
                .map_err(|e| PortError::other(format!("Trello sent an unusable card id: {e}")))?;
            let mut hide = Map::new();
            hide.insert("closed".into(), json!(true));
            let _: WCard = self
                .send(
                    Call::new(catalog::CARD_UPDATE, &[&card.id])
                        .body(hide)
                        .what(format!("card {}", card.id)),
                )
                .await?;
            let mut checklist = self.create_checklist(&card_id, &t.checklist_name).await?;
            let adds = t.steps.iter().enumerate().map(|(i, step)| {
                let id = checklist.id.clone();
                async move { self.add_check_item(&id, step, i as u32 + 1).await }
            });
            for r in futures::future::join_all(adds).await {
                checklist.items.push(r?);
            }
            Ok(StepTemplate {
                id: card.id,
                key: t.key.clone(),
                destination_id: list,
                hidden: true,
                checklists: vec![checklist],
            })
        })
        .await
    }

    /// `DELETE /cards/{id}` of a step template.
    async fn delete_step_template(&self, id: &str) -> PortResult<()> {
        in_context(self, "delete_step_template", async {
            let card = trello_id("template card id", id)?;
            let _: Value = self
                .send(Call::new(catalog::CARD_DELETE, &[&card]).what(format!("card {card}")))
                .await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_lists_every_operation_once() {
        let cat = TrelloAdapter::request_catalog();
        assert_eq!(cat.len(), catalog::ALL.len());
        let mut keys: Vec<_> = cat
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.path_template))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), cat.len());
        assert!(cat
            .iter()
            .all(|r| !r.query_params.iter().any(|q| q == "key" || q == "token")));
    }

    #[test]
    fn ids_are_checked_before_sending() {
        assert!(trello_id("board id", "5f0c0c0c0c0c0c0c0c0c0c0c").is_ok());
        let e = trello_id("board id", "Security Remediation").unwrap_err();
        assert!(matches!(e, PortError::InvalidInput { .. }));
        assert!(e.to_string().contains("board id"));
    }
}
