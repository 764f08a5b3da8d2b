//! The JSON API under `/api/v1`, for API tokens (`Authorization: Bearer`) and for the
//! pages' own progressive enhancement (session cookie). Shapes equal the CLI's `--json`.

use std::path::Path;

use crate::json::{ReadinessJson, StatusJson};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::{IntoParams, ToSchema};
use webriskops_domain::{Action, AuthMethod, ProviderKey, TenantId, Token};
use webriskops_ports::ExportJob;
use webriskops_service::integration::{self, ExportTracker, SaveReport};
use webriskops_service::status::gather;
use webriskops_service::{FallbackPolicy, SetupChoices, SetupOutcome, StatusRequest, Tenancy};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::jobs;
use crate::schema;
use crate::state::AppState;

/// One API route: the methods and path its handler's `#[utoipa::path]` names, the
/// operation the OpenAPI document shows for it, and the handler routed there.
pub struct ApiRoute {
    pub methods: Vec<HttpMethod>,
    pub path: String,
    pub operation: Operation,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    /// The route of `handler`, at the method and path of its annotation `P`, with the
    /// annotation's tags (read as `utoipa`'s own `OpenApi` derive and `utoipa-axum` read
    /// them).
    fn of<P: utoipa::Path + utoipa::__dev::Tags<'static>, H, T>(handler: H) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let methods = P::methods();
        let filter = methods
            .iter()
            .map(|m| match m {
                HttpMethod::Get => MethodFilter::GET,
                HttpMethod::Post => MethodFilter::POST,
                HttpMethod::Put => MethodFilter::PUT,
                HttpMethod::Delete => MethodFilter::DELETE,
                HttpMethod::Options => MethodFilter::OPTIONS,
                HttpMethod::Head => MethodFilter::HEAD,
                HttpMethod::Patch => MethodFilter::PATCH,
                HttpMethod::Trace => MethodFilter::TRACE,
            })
            .reduce(MethodFilter::or)
            .unwrap_or(MethodFilter::GET);
        let mut operation = P::operation();
        let tags = operation.tags.get_or_insert_with(Vec::new);
        for t in P::tags() {
            if !tags.iter().any(|have| have == t) {
                tags.push(t.to_owned());
            }
        }
        Self {
            methods,
            path: P::path(),
            operation,
            handler: on(filter, handler),
        }
    }

    /// The route without the server's body limit (its handler limits what it reads).
    fn without_body_limit(mut self) -> Self {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::disable());
        self
    }
}

/// A method as the OpenAPI document names it.
pub fn method_name(m: &HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Options => "options",
        HttpMethod::Head => "head",
        HttpMethod::Patch => "patch",
        HttpMethod::Trace => "trace",
    }
}

/// Every API route. The router ([`routes`]) and the OpenAPI document
/// ([`crate::openapi_document`]) are both built from this one list, each route at the
/// method and path of its handler's annotation: a route cannot be served undocumented,
/// nor documented and not served.
pub fn table() -> Vec<ApiRoute> {
    vec![
        ApiRoute::of::<__path_integration_status, _, _>(integration_status),
        ApiRoute::of::<__path_put_choices, _, _>(put_choices),
        ApiRoute::of::<__path_hold_token, _, _>(hold_token),
        ApiRoute::of::<__path_save, _, _>(save),
        ApiRoute::of::<__path_revoke, _, _>(revoke),
        ApiRoute::of::<__path_sync, _, _>(sync),
        ApiRoute::of::<__path_list_exports, _, _>(list_exports),
        // The upload streams to a file with its own limit (`max_upload_bytes`).
        ApiRoute::of::<__path_create_export, _, _>(create_export).without_body_limit(),
        ApiRoute::of::<__path_export_status, _, _>(export_status),
        ApiRoute::of::<__path_export_bundle, _, _>(export_bundle),
        ApiRoute::of::<__path_status_events, _, _>(status_events),
        ApiRoute::of::<__path_openapi, _, _>(openapi),
    ]
}

/// Every API route as `(method, path)`, in the OpenAPI document's path syntax.
pub fn route_list() -> Vec<(&'static str, String)> {
    table()
        .iter()
        .flat_map(|r| r.methods.iter().map(|m| (method_name(m), r.path.clone())))
        .collect()
}

/// The API's router, built from [`table`], with the health routes beside it (not part of
/// `/api/v1`, nor of its document).
pub fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(&r.path, r.handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

/// `/readyz`, for load balancers: 200 when the database answers and holds this build's
/// schema (migrations applied), else 503 with the reason, so traffic goes to replicas that
/// can serve it. `/healthz` only says the process is alive.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.composer.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": reason })),
            )
                .into_response()
        }
    }
}

/// A query string, or a 400 in the API's error shape (axum's own rejection is plain text).
fn query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
    fix: &str,
) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::bad_request(
            format!("the query string is not valid: {}", e.body_text()),
            fix,
        )
    })
}

/// A JSON body over the server's limit: 413, not a malformed body's 400.
fn too_large(e: &axum::extract::rejection::JsonRejection) -> Option<ApiError> {
    (e.status() == StatusCode::PAYLOAD_TOO_LARGE).then(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "the request body is larger than this route accepts",
            "send only the fields the route names",
        )
    })
}

/// The tracker named in the path: `trello` or `linear`.
///
/// # Errors
/// 404 for any other name.
pub fn tracker_of(name: &str) -> Result<ProviderKey, ApiError> {
    ProviderKey::ALL
        .iter()
        .copied()
        .find(|p| p.tracker_name() == name)
        .ok_or_else(ApiError::not_found)
}

fn tenancy(caller: &Caller, provider: ProviderKey) -> Tenancy {
    Tenancy {
        tenant: caller.0.tenant.clone(),
        provider,
    }
}

/// One tracker's status, with what a setup in progress holds.
pub async fn status_value(state: &AppState, who: &Tenancy) -> Result<Value, ApiError> {
    let c = &state.composer;
    let tracker = c.tracker(who, None).await?;
    let ports = c.local_ports().with_tracker(tracker);
    let report = gather(
        &ports,
        &StatusRequest {
            tenancy: who.clone(),
        },
        Utc::now(),
    )
    .await?;
    let mut v = serde_json::to_value(StatusJson::new(&report))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let held = c.accounts().held_until(&who.tenant, who.provider).await?;
    v["token_held_until"] = json!(held.filter(|t| *t > Utc::now()));
    v["ready_to_export"] = json!(report.is_ready());
    let hook = webriskops_service::webhooks::status(&ports, c.webhooks().as_ref(), who).await?;
    v["webhook"] = serde_json::to_value(hook).map_err(|e| ApiError::internal(e.to_string()))?;
    // The key budget every replica shares: its totals and this tenant's part only.
    v["key_budget"] = match c.key_budget(who.provider).await {
        Some(u) => serde_json::to_value(u.view_of(who.tenant.as_str()))
            .map_err(|e| ApiError::internal(e.to_string()))?,
        None => Value::Null,
    };
    Ok(v)
}

/// The integration status of every tracker (`status --json` for each).
#[utoipa::path(get, path = "/api/v1/integration", tag = "integration",
    responses((status = 200, description = "Each tracker's status, keyed `trello` and `linear`, each as `webriskops status --json`", body = schema::IntegrationAnswer),
              (status = 401, description = "No API token or session", body = ErrorBody<'static>)))]
pub async fn integration_status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut out = serde_json::Map::new();
    for p in ProviderKey::ALL.iter().copied() {
        let v = match status_value(&state, &tenancy(&caller, p)).await {
            Ok(v) => v,
            // One tracker unreachable does not hide the other's status.
            Err(e) => json!({"error": {"code": e.code, "message": e.message, "fix": e.fix}}),
        };
        out.insert(p.tracker_name().to_owned(), v);
    }
    Ok(Json(
        json!({"tenant": caller.0.tenant.as_str(), "integrations": out}),
    ))
}

/// Setup choices, named as the CLI's flags.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoicesBody {
    /// Trello: the board.
    pub board_id: Option<String>,
    /// Trello: the list new cards go to.
    pub list_id: Option<String>,
    /// Trello: the list for cards of closed findings.
    pub done_list_id: Option<String>,
    /// The customer-owned workspace the board or team must belong to.
    pub workspace_id: Option<String>,
    /// A self-hosted base URL (cloud only: reported as blocked).
    pub base_url: Option<String>,
    /// The person confirms they know how to revoke the token.
    pub confirm_revoke_path: Option<bool>,
    /// Linear: the team.
    pub team_id: Option<String>,
    /// Linear: the workflow state new issues start in.
    pub state_id: Option<String>,
    /// Linear: the state for issues of closed findings.
    pub done_state_id: Option<String>,
    /// Trello: `api_key_token` or `oauth1`.
    #[schema(value_type = Option<String>)]
    pub auth_method: Option<AuthMethod>,
}

impl ChoicesBody {
    /// The service's choices; the other tracker's names are refused.
    ///
    /// # Errors
    /// 400 naming a field the tracker does not have.
    pub fn into_choices(self, provider: ProviderKey) -> Result<SetupChoices, ApiError> {
        let wrong = |field: &str, right: &str| {
            ApiError::bad_request(
                format!("{field} is not a {} setup field", provider.tracker_name()),
                format!("use {right}"),
            )
        };
        let (board, list, done) = match provider {
            ProviderKey::TrelloCloud => {
                if self.team_id.is_some() {
                    return Err(wrong("team_id", "board_id"));
                }
                if self.state_id.is_some() || self.done_state_id.is_some() {
                    return Err(wrong("state_id", "list_id and done_list_id"));
                }
                (self.board_id, self.list_id, self.done_list_id)
            }
            ProviderKey::LinearCloud => {
                if self.board_id.is_some() {
                    return Err(wrong("board_id", "team_id"));
                }
                if self.list_id.is_some() || self.done_list_id.is_some() {
                    return Err(wrong("list_id", "state_id and done_state_id"));
                }
                (self.team_id, self.state_id, self.done_state_id)
            }
        };
        Ok(SetupChoices {
            board_id: board,
            list_id: list,
            done_list_id: done,
            workspace_id: self.workspace_id,
            base_url: self.base_url,
            confirm_revoke_path: self.confirm_revoke_path.unwrap_or(false),
            auth_method: self.auth_method,
        })
    }
}

/// The readiness JSON of a setup step: `setup --json`'s names, with the pickers named in
/// the tracker's words (`boards`/`lists`, `teams`/`states`).
pub fn setup_value(outcome: &SetupOutcome, held_until: Option<DateTime<Utc>>) -> Value {
    let provider = outcome.record.provider_key;
    let words = provider.vocabulary();
    let mut v = serde_json::to_value(ReadinessJson::new(&outcome.readiness, provider))
        .unwrap_or_else(|_| json!({}));
    v["saved"] = json!(outcome.saved);
    v["record_state"] = json!(outcome.record_state.as_str());
    v["draft_kept"] = json!(outcome.draft_kept);
    v["record"] = serde_json::to_value(&outcome.record).unwrap_or(Value::Null);
    v["token_expires_at"] = json!(outcome.record.token_expires_at);
    v["token_held_until"] = json!(held_until);
    let (containers, destinations) = match provider {
        ProviderKey::TrelloCloud => ("boards", "lists"),
        ProviderKey::LinearCloud => ("teams", "states"),
    };
    let _ = words;
    v[containers] = outcome
        .containers
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "workspace_id": c.organization_id}))
        .collect();
    v[destinations] = outcome
        .destinations
        .iter()
        .map(|d| json!({"id": d.id, "name": d.name}))
        .collect();
    v
}

/// One setup step for the caller's tenant: merge `choices` into those kept, check
/// readiness with the held token (else the stored one).
pub async fn setup_step(
    state: &AppState,
    who: &Tenancy,
    choices: SetupChoices,
) -> Result<(SetupOutcome, Option<DateTime<Utc>>), ApiError> {
    let root = Some(state.composer.api_root(who.provider)?);
    integration::check_step(&state.setup_ports(), state, who, choices, root, Utc::now()).await
}

/// Holds a token for setup (sealed, for 30 minutes) and checks readiness with it.
pub async fn hold(state: &AppState, who: &Tenancy, raw: &str) -> Result<(), ApiError> {
    let raw = raw.trim();
    state.composer.register_secret(raw);
    let token = Token::new(raw).map_err(|e| {
        ApiError::bad_request(
            format!("the token is not usable: {e}"),
            "paste the whole token the tracker showed",
        )
    })?;
    let c = &state.composer;
    integration::hold_token(
        &c.local_ports(),
        c.accounts().as_ref(),
        who,
        &token,
        Utc::now(),
    )
    .await?;
    Ok(())
}

/// Saves the setup with the held token and registers the webhook, or says what blocks it.
pub async fn save_setup(state: &AppState, who: &Tenancy) -> Result<SetupOutcome, ApiError> {
    let root = Some(state.composer.api_root(who.provider)?);
    let report = integration::save_and_connect(
        &state.setup_ports(),
        state,
        who,
        root,
        &state.config.public_url,
        Utc::now(),
    )
    .await?;
    match report {
        SaveReport::Saved { outcome, .. } => Ok(*outcome),
        SaveReport::NoTokenHeld => Err(ApiError::new(
            StatusCode::CONFLICT,
            "TOKEN_REQUIRED",
            "no token is held for this setup (none was given, or it expired after 30 minutes)",
            format!(
                "authorize {} again and hold the token (POST /api/v1/integration/{}/token)",
                who.provider.vocabulary().tracker,
                who.provider.tracker_name()
            ),
        )),
    }
}

/// Revokes the tenant's token at the tracker and forgets it, with any setup in progress
/// and the webhook.
pub async fn revoke_setup(state: &AppState, who: &Tenancy) -> Result<Value, ApiError> {
    let report = integration::revoke_setup(&state.setup_ports(), state, who).await?;
    serde_json::to_value(report).map_err(|e| ApiError::internal(e.to_string()))
}

/// Sets the setup choices of a tracker (names as the CLI's flags); answers the readiness
/// and keeps a draft while blocked.
#[utoipa::path(put, path = "/api/v1/integration/{tracker}", tag = "integration",
    params(("tracker" = String, Path, description = "`trello` or `linear`")),
    request_body = ChoicesBody,
    responses((status = 200, description = "The readiness, as `webriskops setup --json`", body = schema::SetupAnswer),
              (status = 400, description = "A field the tracker does not have", body = ErrorBody<'static>),
              (status = 403, description = "Viewers cannot change the setup", body = ErrorBody<'static>)))]
pub async fn put_choices(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(tracker): UrlPath<String>,
    body: Result<Json<ChoicesBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.to_change(&tracker)?;
    let Json(body) = body.map_err(|e| {
        too_large(&e).unwrap_or_else(|| {
            ApiError::bad_request(
                format!(
                    "the setup choices are not valid JSON for this API: {}",
                    e.body_text()
                ),
                "send an object with board_id, list_id, done_list_id, workspace_id, base_url, \
             confirm_revoke_path (Trello) or team_id, state_id, done_state_id (Linear)",
            )
        })
    })?;
    let (outcome, held) = setup_step(&state, &who, body.into_choices(who.provider)?).await?;
    Ok(Json(setup_value(&outcome, held)))
}

/// A token for setup.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The tracker token (Trello) or API key / access token (Linear).
    pub token: String,
}

/// Holds a token for setup (sealed server side, for 30 minutes or until saved) and
/// answers the readiness checked with it.
#[utoipa::path(post, path = "/api/v1/integration/{tracker}/token", tag = "integration",
    params(("tracker" = String, Path, description = "`trello` or `linear`")),
    request_body = TokenBody,
    responses((status = 200, description = "The readiness with the held token", body = schema::SetupAnswer),
              (status = 400, description = "Not a usable token", body = ErrorBody<'static>)))]
pub async fn hold_token(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(tracker): UrlPath<String>,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.to_change(&tracker)?;
    let Json(body) = body.map_err(|e| {
        too_large(&e).unwrap_or_else(|| {
            ApiError::bad_request(
                "the body must be {\"token\": \"…\"}",
                "send the token as a JSON object with one field, token",
            )
        })
    })?;
    hold(&state, &who, &body.token).await?;
    let (outcome, held) = setup_step(&state, &who, SetupChoices::default()).await?;
    Ok(Json(setup_value(&outcome, held)))
}

/// Saves the setup (record and token, encrypted) when nothing is blocked.
#[utoipa::path(post, path = "/api/v1/integration/{tracker}/save", tag = "integration",
    params(("tracker" = String, Path, description = "`trello` or `linear`")),
    responses((status = 200, description = "Saved: the readiness, `saved: true`", body = schema::SetupAnswer),
              (status = 409, description = "Blocked (`SETUP_BLOCKED` with `blocked`) or no token held (`TOKEN_REQUIRED`)", body = ErrorBody<'static>)))]
pub async fn save(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(tracker): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.to_change(&tracker)?;
    let outcome = save_setup(&state, &who).await?;
    Ok(Json(setup_value(&outcome, None)))
}

/// Revokes the tenant's token at the tracker and deletes it.
#[utoipa::path(post, path = "/api/v1/integration/{tracker}/revoke", tag = "integration",
    params(("tracker" = String, Path, description = "`trello` or `linear`")),
    responses((status = 200, description = "As `webriskops revoke --json`", body = schema::RevokeAnswer)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(tracker): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.to_change(&tracker)?;
    Ok(Json(revoke_setup(&state, &who).await?))
}

/// Syncs the tracker's status now (the server also syncs on a timer and on webhooks).
#[utoipa::path(post, path = "/api/v1/integration/{tracker}/sync", tag = "integration",
    params(("tracker" = String, Path, description = "`trello` or `linear`")),
    responses((status = 200, description = "As `webriskops sync --json`", body = schema::SyncAnswer)))]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(tracker): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.to_change(&tracker)?;
    let outcome = crate::sync::sync_now(&state, &who).await?;
    serde_json::to_value(outcome)
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The job as the API shows it.
pub fn job_value(job: &ExportJob) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "id": job.id,
        "tracker": job.provider.tracker_name(),
        "state": job.state.as_str(),
        "progress": parse(&job.progress_json),
        "summary": job.summary_json.as_deref().map(parse),
        "bundle": job.bundle_dir.is_some(),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    })
}

/// Which tracker an export goes to.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `trello` or `linear`; without it, the tracker of the tenant's only saved
    /// integration.
    pub tracker: Option<String>,
    /// `auto` (default: the portable bundle when the tracker is blocked in a way a
    /// file can stand in for), `never`, or `always` (the bundle, without asking the
    /// tracker), as `export --fallback`.
    pub fallback: Option<String>,
}

/// The fallback policy named in a request.
///
/// # Errors
/// 400 for another word.
pub fn fallback_of(named: Option<&str>) -> Result<FallbackPolicy, ApiError> {
    match named.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(FallbackPolicy::Auto),
        Some(n) => jobs::parse_policy(n).ok_or_else(|| {
            ApiError::bad_request(
                format!(
                    "fallback {:?} is not auto, never or always",
                    webriskops_domain::echo_untrusted(n)
                ),
                "use ?fallback=auto, ?fallback=never or ?fallback=always",
            )
        }),
    }
}

/// The tracker an export goes to: the one named, else the only one saved (or drafted).
pub async fn export_tracker(
    state: &AppState,
    tenant: &TenantId,
    named: Option<&str>,
) -> Result<ProviderKey, ApiError> {
    let named = match named.filter(|n| !n.is_empty()) {
        Some(n) => Some(tracker_of(n).map_err(|_| {
            ApiError::bad_request(
                format!(
                    "tracker {:?} is not trello or linear",
                    webriskops_domain::echo_untrusted(n)
                ),
                "use ?tracker=trello or ?tracker=linear",
            )
        })?),
        None => None,
    };
    let records = state.composer.local_ports().records;
    match integration::export_tracker(records.as_ref(), tenant, named).await? {
        ExportTracker::Chosen(p) => Ok(p),
        ExportTracker::NoneSetUp => Err(ApiError::new(
            StatusCode::CONFLICT,
            "DESTINATION_BOARD_REQUIRED",
            "no tracker is set up for this tenant",
            "set up Trello or Linear on /settings first",
        )),
        ExportTracker::Several => Err(ApiError::bad_request(
            "this tenant has Trello and Linear set up",
            "name the tracker: ?tracker=trello or ?tracker=linear",
        )),
    }
}

/// Streams `body` to `dest`, refusing more than `limit` bytes (the partial file is
/// removed).
pub async fn save_upload(
    body: impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin,
    dest: &Path,
    limit: u64,
) -> Result<u64, ApiError> {
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| ApiError::internal(format!("cannot create the upload directory: {e}")))?;
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
    let mut written = 0u64;
    let mut body = body;
    let result = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    format!("the upload was interrupted: {e}"),
                    "send the file again",
                )
            })?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "UPLOAD_TOO_LARGE",
                    format!("the findings file is larger than {limit} bytes"),
                    "split the file, or ask the operator to raise WEBRISKOPS_MAX_UPLOAD_BYTES",
                ));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
        }
        file.sync_all()
            .await
            .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
        if written == 0 {
            return Err(ApiError::bad_request(
                "the findings file is empty",
                "send a findings file (JSON or JSON Lines, see docs/contracts/findings-v1.md)",
            ));
        }
        Ok(written)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

/// Starts an export of the findings file in the body (JSON or JSON Lines, streamed).
#[utoipa::path(post, path = "/api/v1/exports", tag = "exports", params(ExportQuery),
    request_body(content = String, description = "The findings file (JSON or JSON Lines)", content_type = "application/x-ndjson"),
    responses((status = 202, description = "`{\"id\"}` of the queued export", body = schema::ExportCreated),
              (status = 413, description = "The file is larger than the server accepts", body = ErrorBody<'static>)))]
pub async fn create_export(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    caller.may(Action::Change)?;
    let q = query(
        q,
        "use ?tracker=trello or ?tracker=linear and ?fallback=auto|never|always, or no query",
    )?;
    let fallback = fallback_of(q.fallback.as_deref())?;
    let provider = export_tracker(&state, &caller.0.tenant, q.tracker.as_deref()).await?;
    let id = jobs::new_id();
    let path = jobs::upload_path(&state, &id);
    save_upload(
        body.into_data_stream(),
        &path,
        state.config.max_upload_bytes,
    )
    .await?;
    let job = jobs::enqueue(&state, &caller.0.tenant, provider, id, &path, fallback).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"id": job.id}))).into_response())
}

/// The tenant's export runs, newest first.
#[utoipa::path(get, path = "/api/v1/exports", tag = "exports",
    responses((status = 200, description = "`{\"exports\": [job…]}`, newest first", body = schema::ExportList)))]
pub async fn list_exports(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let jobs = state.composer.jobs().jobs(&caller.0.tenant, 50).await?;
    Ok(Json(
        json!({"exports": jobs.iter().map(job_value).collect::<Vec<_>>()}),
    ))
}

/// One export: its state, progress and summary (as `export --json`).
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "exports",
    params(("id" = String, Path, description = "The export's id")),
    responses((status = 200, description = "`{id, state: queued|running|done|failed, progress, summary}`", body = schema::Job),
              (status = 404, description = "No such export in your tenant", body = ErrorBody<'static>)))]
pub async fn export_status(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let job = state
        .composer
        .jobs()
        .job(&caller.0.tenant, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(job_value(&job)))
}

/// A tar of a directory's files (flat: a bundle has no subdirectories).
fn tar_of(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        if e.file_type()?.is_file() {
            builder.append_path_with_name(e.path(), Path::new("bundle").join(e.file_name()))?;
        }
    }
    builder.into_inner()
}

/// The portable bundle of an export that went to the fallback, as a tar file.
#[utoipa::path(get, path = "/api/v1/exports/{id}/bundle", tag = "exports",
    params(("id" = String, Path, description = "The export's id")),
    responses((status = 200, description = "A tar of the bundle", content_type = "application/x-tar"),
              (status = 404, description = "No such export in your tenant, or it wrote no bundle", body = ErrorBody<'static>)))]
pub async fn export_bundle(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let job = state
        .composer
        .jobs()
        .job(&caller.0.tenant, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let dir = job.bundle_dir.ok_or_else(ApiError::not_found)?;
    let bytes = tokio::task::spawn_blocking(move || tar_of(Path::new(&dir)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("cannot read the bundle: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"webriskops-bundle-{}.tar\"", job.id),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Where to read status events from.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The last cursor read (0 or absent: from the start). Cursors are the tenant's own
    /// sequence, 1, 2, 3…: other tenants' events take no numbers from it.
    pub after: Option<i64>,
    /// At most this many (default and maximum 500).
    pub limit: Option<usize>,
}

/// The status events of the findings contract, in order, after a cursor; each once (a
/// sync stopped between appending an event and recording it emits it again, and the log
/// skips it: an event equal to the finding's last one in `finding_id`, `item_id`,
/// `previous` and `tracker_status` is not appended).
#[utoipa::path(get, path = "/api/v1/status-events", tag = "events", params(EventsQuery),
    responses((status = 200, description = "`{events: [{cursor, event}], next_cursor}`; the cursors are the tenant's own sequence (1, 2, 3…, no gaps for other tenants' events); pass next_cursor as `after` to read on", body = schema::EventsPage)))]
pub async fn status_events(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(
        q,
        "pass after= the next_cursor of the last page (a whole number) and limit= 1 to 500",
    )?;
    let after = q.after.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(500).clamp(1, 500);
    let events = state
        .composer
        .events()
        .events_after(&caller.0.tenant, after, limit)
        .await?;
    let next = events.last().map_or(after, |e| e.cursor);
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"cursor": e.cursor, "event": serde_json::from_str::<Value>(&e.event_json).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(Json(json!({"events": events, "next_cursor": next})))
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::openapi_document())
}
