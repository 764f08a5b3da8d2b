//! The pages: /login, /settings, /settings/{tracker} and /exports. Plain forms that work
//! without JavaScript; a small script adds live export progress and reads the token
//! Trello's authorize page returns in the URL fragment.

use askama::Template;
use axum::extract::{ConnectInfo, Multipart, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use webriskops_domain::{Action, AuthMethod, ProviderKey, Token};
use webriskops_ports::PendingAuthorization;
use webriskops_service::{accounts, integration, SetupChoices, SetupOutcome, Tenancy};

use crate::api::{self, ChoicesBody};
use crate::auth::{clear_cookie, session_cookie, Person, SESSION_COOKIE};
use crate::error::ApiError;
use crate::jobs;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/settings") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/settings", get(settings))
        .route("/settings/{tracker}", get(tracker_page))
        .route("/settings/{tracker}/token", post(token_form))
        .route("/settings/{tracker}/choices", post(choices_form))
        .route("/settings/{tracker}/save", post(save_form))
        .route("/settings/{tracker}/revoke", post(revoke_form))
        .route("/settings/{tracker}/sync", post(sync_form))
        .route("/settings/{tracker}/authorized", get(authorized_page))
        .route("/settings/{tracker}/connect", get(connect))
        .route("/settings/{tracker}/callback", get(callback))
        .route(
            "/exports",
            get(exports_page)
                .post(upload_form)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/exports/{id}", get(export_page))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/app.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/app.js"),
    )
}

/// A page, or its error shown as a page.
fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::internal(format!("cannot render the page: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    person: Option<&'a Person>,
    code: &'a str,
    message: &'a str,
    fix: &'a str,
}

fn error_page(person: Option<&Person>, e: &ApiError) -> Response {
    render(
        e.status,
        &ErrorPage {
            person,
            code: e.code,
            message: &e.message,
            fix: &e.fix,
        },
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    person: Option<&'a Person>,
    error: Option<String>,
    email: String,
}

async fn login_page() -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            person: None,
            error: None,
            email: String::new(),
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let keys = vec![
        format!("email:{}", f.email.trim().to_ascii_lowercase()),
        format!("ip:{}", peer.ip()),
    ];
    let page = |status, error: String| {
        render(
            status,
            &LoginPage {
                person: None,
                error: Some(error),
                email: f.email.clone(),
            },
        )
    };
    let acc = state.composer.accounts();
    // Counted in the store: every replica behind the load balancer sees the same count.
    let wait = match accounts::sign_in_wait(acc.as_ref(), &keys, Utc::now()).await {
        Ok(w) => w,
        Err(e) => return error_page(None, &e.into()),
    };
    if let Some(wait) = wait {
        let mut res = page(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins. Try again in {} minutes.",
                wait.as_secs().div_ceil(60)
            ),
        );
        if let Ok(v) = wait.as_secs().to_string().parse() {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    match accounts::login(acc.as_ref(), &f.email, &f.password, Utc::now()).await {
        Ok(Some(session)) => {
            if let Err(e) = accounts::sign_in_succeeded(acc.as_ref(), &keys).await {
                return error_page(None, &e.into());
            }
            tracing::info!(tenant = %session.principal.tenant, "a person signed in");
            let cookie = session_cookie(
                &session.id,
                state.config.secure_cookies(),
                accounts::SESSION_TTL.num_seconds(),
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/settings")).into_response()
        }
        Ok(None) => {
            if let Err(e) = accounts::sign_in_failed(acc.as_ref(), &keys, Utc::now()).await {
                return error_page(None, &e.into());
            }
            page(
                StatusCode::UNAUTHORIZED,
                "The e-mail or the password is wrong.".into(),
            )
        }
        Err(e) => error_page(None, &e.into()),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = crate::auth::cookie(&headers, SESSION_COOKIE) {
        let acc = state.composer.accounts();
        if let Err(e) = accounts::logout(acc.as_ref(), &id).await {
            return error_page(None, &e.into());
        }
    }
    (
        [(
            header::SET_COOKIE,
            clear_cookie(state.config.secure_cookies()),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A tracker's line on /settings.
struct TrackerRow {
    name: &'static str,
    title: &'static str,
    connected: bool,
    record_state: String,
    ready: bool,
    blocked: Vec<(String, String, String)>,
    token_expires: String,
    last_export: String,
    last_sync: String,
    /// The webhook's health in words.
    webhook: String,
    /// The shared key budget in words, when requests spend one.
    key_budget: Option<String>,
    error: Option<String>,
    next_step: String,
}

fn run_text(v: &Value) -> String {
    if v.is_null() {
        return "never".into();
    }
    let at = v["finished_at"]
        .as_str()
        .or(v["started_at"].as_str())
        .unwrap_or("—");
    at.chars().take(16).collect::<String>().replace('T', " ") + " UTC"
}

fn row(provider: ProviderKey, v: &Value) -> TrackerRow {
    let words = provider.vocabulary();
    let name = provider.tracker_name();
    if let Some(e) = v.get("error") {
        return TrackerRow {
            name,
            title: words.tracker,
            connected: false,
            record_state: "unknown".into(),
            ready: false,
            blocked: vec![],
            token_expires: "—".into(),
            last_export: "—".into(),
            last_sync: "—".into(),
            webhook: "—".into(),
            key_budget: None,
            error: Some(format!(
                "{} ({})",
                e["message"].as_str().unwrap_or_default(),
                e["fix"].as_str().unwrap_or_default()
            )),
            next_step: format!("Open {} setup and check again", words.tracker),
        };
    }
    let record_state = v["record_state"].as_str().unwrap_or("none").to_owned();
    let blocked: Vec<(String, String, String)> = v["blocked"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    (
                        b["code"].as_str().unwrap_or_default().to_owned(),
                        b["field"].as_str().unwrap_or_default().to_owned(),
                        b["fix"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let connected = record_state == "saved";
    let ready = connected && blocked.is_empty();
    let hook = &v["webhook"];
    let next_step = match (record_state.as_str(), ready) {
        ("none", _) => format!("Choose {} setup to connect it", words.tracker),
        ("draft", _) => format!(
            "Finish {} setup: fix the blocked states, then save",
            words.tracker
        ),
        (_, true) if matches!(hook["state"].as_str(), Some("inactive" | "gone")) => format!(
            "Check that the public URL reaches this server, then save {} setup again to register a new webhook",
            words.tracker
        ),
        (_, true) if hook["consecutive_failures"].as_u64().is_some_and(|n| n > 0) => format!(
            "Check that the public URL reaches this server: deliveries from {} are failing",
            words.tracker
        ),
        (_, true) => "Export findings".into(),
        _ => format!("Fix the blocked states in {} setup", words.tracker),
    };
    TrackerRow {
        name,
        title: words.tracker,
        connected,
        record_state,
        ready,
        blocked,
        token_expires: v["token_expires_at"]
            .as_str()
            .map_or_else(|| "no expiry known".into(), |s| s.replace('T', " ")),
        last_export: run_text(&v["last_export"]),
        last_sync: run_text(&v["last_sync"]),
        webhook: webhook_text(&v["webhook"]),
        key_budget: key_budget_text(&v["key_budget"]),
        error: None,
        next_step,
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    person: Option<&'a Person>,
    tenant: String,
    rows: Vec<TrackerRow>,
    checked_at: String,
}

async fn settings(State(state): State<AppState>, person: Person) -> Response {
    let mut rows = Vec::new();
    for p in ProviderKey::ALL.iter().copied() {
        let who = Tenancy {
            tenant: person.principal.tenant.clone(),
            provider: p,
        };
        let v = match api::status_value(&state, &who).await {
            Ok(v) => v,
            Err(e) => serde_json::json!({"error": {"message": e.message, "fix": e.fix}}),
        };
        rows.push(row(p, &v));
    }
    render(
        StatusCode::OK,
        &SettingsPage {
            person: Some(&person),
            tenant: person.principal.tenant.to_string(),
            rows,
            checked_at: when(Some(Utc::now())),
        },
    )
}

/// A choice in a picker.
struct Opt {
    id: String,
    name: String,
    selected: bool,
}

/// A blocked state as the page shows it.
struct Blocked {
    code: String,
    field: String,
    fix: String,
}

#[derive(Template)]
#[template(path = "tracker.html")]
struct TrackerPage<'a> {
    person: Option<&'a Person>,
    can_change: bool,
    name: &'static str,
    title: &'static str,
    container: &'static str,
    destination: &'static str,
    item: &'static str,
    authorize_urls: Vec<(String, String)>,
    /// The one-time value the token form and the authorize links' return carry.
    nonce: String,
    held_until: Option<String>,
    record_state: String,
    token_expires: String,
    ready: Vec<(String, bool)>,
    blocked: Vec<Blocked>,
    notes: Vec<String>,
    base_url: String,
    workspace_id: String,
    /// The workspaces the token's containers belong to, offered for the workspace field.
    workspaces: Vec<String>,
    containers: Vec<Opt>,
    destinations: Vec<Opt>,
    done_destinations: Vec<Opt>,
    container_id: String,
    destination_id: String,
    done_id: String,
    revoke_confirmed: bool,
    can_save: bool,
    message: Option<String>,
    error: Option<String>,
    /// The newest status changes of this tracker: (finding, previous, now, when).
    events: Vec<(String, String, String, String)>,
}

impl TrackerPage<'_> {
    fn container_title(&self) -> String {
        capitalise(self.container)
    }

    fn destination_title(&self) -> String {
        capitalise(self.destination)
    }

    /// The blocked states of the named fields, shown where those fields are.
    fn blocked_at(&self, fields: &str) -> Vec<&Blocked> {
        let fields: Vec<&str> = fields.split(',').collect();
        self.blocked
            .iter()
            .filter(|b| fields.contains(&b.field.as_str()))
            .collect()
    }
}

fn options(items: &[(String, String)], chosen: &str) -> Vec<Opt> {
    items
        .iter()
        .map(|(id, name)| Opt {
            id: id.clone(),
            name: name.clone(),
            selected: id == chosen,
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct PageQuery {
    saved: Option<String>,
    revoked: Option<String>,
    held: Option<String>,
    synced: Option<String>,
}

fn tracker_page_of<'a>(
    state: &AppState,
    person: &'a Person,
    outcome: &SetupOutcome,
    nonce: String,
    held_until: Option<DateTime<Utc>>,
    message: Option<String>,
    error: Option<String>,
) -> TrackerPage<'a> {
    let provider = outcome.record.provider_key;
    let words = provider.vocabulary();
    let name = provider.tracker_name();
    let r = &outcome.record;
    let ready = &outcome.readiness.ready;
    let containers: Vec<(String, String)> = outcome
        .containers
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    let destinations: Vec<(String, String)> = outcome
        .destinations
        .iter()
        .map(|d| (d.id.clone(), d.name.clone()))
        .collect();
    // The token comes back to a page that posts it: only with this session's nonce.
    let return_url = format!(
        "{}/settings/{name}/authorized?nonce={nonce}",
        state.config.public_url
    );
    TrackerPage {
        person: Some(person),
        can_change: person.principal.role.may(Action::Change),
        name,
        title: words.tracker,
        container: words.container,
        destination: words.destination,
        item: words.item,
        authorize_urls: if nonce.is_empty() {
            Vec::new()
        } else {
            state.composer.authorize_urls(provider, &return_url)
        },
        nonce,
        held_until: held_until.map(|t| when(Some(t))),
        record_state: outcome.record_state.as_str().to_owned(),
        token_expires: r
            .token_expires_at
            .map_or_else(|| "no expiry known".into(), |t| when(Some(t))),
        ready: vec![
            ("Cloud target".into(), ready.cloud_target),
            (capitalise(words.container), ready.board),
            (capitalise(words.destination), ready.list),
            ("Scope".into(), ready.scope),
            ("Revoke path".into(), ready.revoke_path),
        ],
        blocked: outcome
            .readiness
            .blocked
            .iter()
            .map(|b| Blocked {
                code: b.code.as_str().to_owned(),
                field: b.field.clone(),
                fix: b.fix.clone(),
            })
            .collect(),
        notes: outcome.readiness.notes.clone(),
        base_url: r.base_url().unwrap_or_default().to_owned(),
        workspace_id: r.workspace_id.clone().unwrap_or_default(),
        workspaces: {
            let mut w: Vec<String> = outcome
                .containers
                .iter()
                .filter_map(|c| c.organization_id.clone())
                .collect();
            w.sort();
            w.dedup();
            w
        },
        containers: options(&containers, r.board_id.as_deref().unwrap_or_default()),
        destinations: options(&destinations, r.list_id.as_deref().unwrap_or_default()),
        done_destinations: options(&destinations, r.done_list_id.as_deref().unwrap_or_default()),
        container_id: r.board_id.clone().unwrap_or_default(),
        destination_id: r.list_id.clone().unwrap_or_default(),
        done_id: r.done_list_id.clone().unwrap_or_default(),
        revoke_confirmed: r.revoke_path_confirmed,
        can_save: outcome.readiness.is_ready() && held_until.is_some(),
        message,
        error,
        events: Vec::new(),
    }
}

/// How far back the setup page looks for its tracker's status changes.
const RECENT_WINDOW: usize = 200;

/// The newest status changes of `who`'s tracker, newest first: the last ten among the
/// tenant's newest events, without reading the whole log on every page view.
async fn recent_events(
    state: &AppState,
    who: &Tenancy,
) -> Result<Vec<(String, String, String, String)>, ApiError> {
    let page = state
        .composer
        .events()
        .latest_events(&who.tenant, RECENT_WINDOW)
        .await?;
    Ok(page
        .iter()
        .filter_map(|e| {
            let v: Value = serde_json::from_str(&e.event_json).ok()?;
            (v["tracker"].as_str() == Some(who.provider.tracker_name())).then(|| {
                let text = |k: &str| v[k].as_str().unwrap_or("—").to_owned();
                (
                    text("finding_id"),
                    text("previous"),
                    text("tracker_status"),
                    text("observed_at")
                        .chars()
                        .take(16)
                        .collect::<String>()
                        .replace('T', " "),
                )
            })
        })
        .take(10)
        .collect())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

async fn show_tracker(
    state: &AppState,
    person: &Person,
    provider: ProviderKey,
    message: Option<String>,
    error: Option<&ApiError>,
) -> Response {
    let who = Tenancy {
        tenant: person.principal.tenant.clone(),
        provider,
    };
    // An admin's page carries a one-time value its token form must post back.
    let nonce = if person.principal.role.may(Action::Change) {
        let accounts = state.composer.accounts();
        match integration::issue_token_nonce(accounts.as_ref(), &person.session, &who, Utc::now())
            .await
        {
            Ok(n) => n,
            Err(e) => return error_page(Some(person), &e.into()),
        }
    } else {
        String::new()
    };
    // Viewers see the live check without keeping anything: the step keeps no new choice.
    match api::setup_step(state, &who, SetupChoices::default()).await {
        Ok((outcome, held)) => {
            let status = error.map_or(StatusCode::OK, |e| e.status);
            let error = error.map(|e| format!("{} {}", e.message, e.fix));
            let mut page = tracker_page_of(state, person, &outcome, nonce, held, message, error);
            match recent_events(state, &who).await {
                Ok(events) => page.events = events,
                Err(e) => return error_page(Some(person), &e),
            }
            render(status, &page)
        }
        Err(e) => error_page(Some(person), &e),
    }
}

async fn tracker_page(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let provider = match api::tracker_of(&tracker) {
        Ok(p) => p,
        Err(e) => return error_page(Some(&person), &e),
    };
    let title = provider.vocabulary().tracker;
    let message = if q.saved.is_some() {
        Some(format!(
            "Saved: {title} is connected. Findings can be exported now."
        ))
    } else if q.revoked.is_some() {
        Some(format!(
            "Revoked: the {title} token was revoked and deleted."
        ))
    } else if q.held.is_some() {
        Some("Token received: it is held for 30 minutes, until you save.".into())
    } else if q.synced.is_some() {
        Some("Synced: status changes were read back.".into())
    } else {
        None
    };
    show_tracker(&state, &person, provider, message, None).await
}

/// The tracker of a form post, refused for viewers.
fn changing(person: &Person, tracker: &str) -> Result<Tenancy, ApiError> {
    crate::auth::tenancy_to_change(&person.principal, tracker)
}

fn back(tracker: &str, flag: &str) -> Response {
    Redirect::to(&format!("/settings/{tracker}?{flag}=1")).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
    /// The one-time value of the page that showed the form (or of the authorize link
    /// whose answer the page posts).
    #[serde(default)]
    nonce: String,
}

/// Holds a token posted from this session's own setup page. The nonce stops a crafted
/// link (`/settings/trello/authorized#token=…`, whose script posts the fragment) from
/// making someone else's token the one held for this tenant.
async fn token_form(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    let accounts = state.composer.accounts();
    match integration::take_token_nonce(
        accounts.as_ref(),
        &person.session,
        &who,
        &f.nonce,
        Utc::now(),
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(tenant = %who.tenant, tracker = %tracker, "refused a setup token posted without this session's nonce");
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                "TOKEN_FORM_NOT_YOURS",
                "this token was not sent from a setup page shown to you (the link may have been \
                 crafted by someone else, the page may be older than an hour, or its token was \
                 already used); nothing was changed",
                format!(
                    "open /settings/{} and authorize again, or paste your token there",
                    who.provider.tracker_name()
                ),
            );
            return error_page(Some(&person), &e);
        }
        Err(e) => return error_page(Some(&person), &e.into()),
    }
    match api::hold(&state, &who, &f.token).await {
        Ok(()) => back(&tracker, "held"),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

#[derive(Deserialize, Default)]
struct ChoicesForm {
    container_id: Option<String>,
    destination_id: Option<String>,
    done_id: Option<String>,
    workspace_id: Option<String>,
    base_url: Option<String>,
    confirm_revoke_path: Option<String>,
}

async fn choices_form(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Form(f): Form<ChoicesForm>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    let (c, d, x) = (f.container_id, f.destination_id, f.done_id);
    let body = match who.provider {
        ProviderKey::TrelloCloud => ChoicesBody {
            board_id: c,
            list_id: d,
            done_list_id: x,
            ..ChoicesBody::default()
        },
        ProviderKey::LinearCloud => ChoicesBody {
            team_id: c,
            state_id: d,
            done_state_id: x,
            ..ChoicesBody::default()
        },
    };
    let body = ChoicesBody {
        workspace_id: f.workspace_id,
        base_url: f.base_url,
        confirm_revoke_path: Some(f.confirm_revoke_path.is_some()),
        ..body
    };
    let result = match body.into_choices(who.provider) {
        Ok(choices) => api::setup_step(&state, &who, choices).await.map(drop),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/settings/{tracker}")).into_response(),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

async fn save_form(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    match api::save_setup(&state, &who).await {
        Ok(_) => back(&tracker, "saved"),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    confirm: Option<String>,
}

async fn revoke_form(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Form(f): Form<RevokeForm>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    if f.confirm.as_deref() != Some("yes") {
        let e = ApiError::bad_request(
            "revoking needs a confirmation",
            "tick “I understand exports stop until setup runs again”, then revoke",
        );
        return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
    }
    match api::revoke_setup(&state, &who).await {
        Ok(_) => back(&tracker, "revoked"),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

async fn sync_form(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    match crate::sync::sync_now(&state, &who).await {
        Ok(_) => back(&tracker, "synced"),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "authorized.html")]
struct AuthorizedPage<'a> {
    person: Option<&'a Person>,
    name: String,
    title: &'static str,
    /// The nonce the authorize link carried back, posted with the token.
    nonce: String,
}

#[derive(Deserialize, Default)]
struct AuthorizedQuery {
    nonce: Option<String>,
}

/// Where Trello's authorize page returns, with the token in the URL fragment (which never
/// reaches a server): the script posts it to the token form; without JavaScript the page
/// says to paste it. The token form refuses the post unless the link carried the nonce
/// this session's setup page issued.
async fn authorized_page(
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Query(q): Query<AuthorizedQuery>,
) -> Response {
    match api::tracker_of(&tracker) {
        Ok(p) => render(
            StatusCode::OK,
            &AuthorizedPage {
                person: Some(&person),
                name: tracker,
                title: p.vocabulary().tracker,
                nonce: q.nonce.unwrap_or_default(),
            },
        ),
        Err(e) => error_page(Some(&person), &e),
    }
}

/// An export run in the list.
struct RunRow {
    id: String,
    tracker: String,
    state: String,
    created: String,
}

#[derive(Template)]
#[template(path = "exports.html")]
struct ExportsPage<'a> {
    person: Option<&'a Person>,
    can_change: bool,
    runs: Vec<RunRow>,
    max_mib: u64,
}

async fn exports_page(State(state): State<AppState>, person: Person) -> Response {
    match state
        .composer
        .jobs()
        .jobs(&person.principal.tenant, 50)
        .await
    {
        Ok(jobs) => render(
            StatusCode::OK,
            &ExportsPage {
                person: Some(&person),
                can_change: person.principal.role.may(Action::Change),
                runs: jobs
                    .iter()
                    .map(|j| RunRow {
                        id: j.id.clone(),
                        tracker: j.provider.vocabulary().tracker.to_owned(),
                        state: j.state.as_str().to_owned(),
                        created: when(Some(j.created_at)),
                    })
                    .collect(),
                max_mib: state.config.max_upload_bytes / (1024 * 1024),
            },
        ),
        Err(e) => error_page(Some(&person), &e.into()),
    }
}

async fn upload_form(
    State(state): State<AppState>,
    person: Person,
    mut multipart: Multipart,
) -> Response {
    if !person.principal.role.may(Action::Change) {
        return error_page(Some(&person), &ApiError::forbidden());
    }
    let id = jobs::new_id();
    let path = jobs::upload_path(&state, &id);
    let mut tracker: Option<String> = None;
    let mut fallback: Option<String> = None;
    let mut got_file = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                let e = ApiError::bad_request(
                    format!("the upload could not be read: {}", e.body_text()),
                    "choose the file again and upload it",
                );
                return error_page(Some(&person), &e);
            }
        };
        match field.name() {
            Some(name @ ("tracker" | "fallback")) => {
                let slot = if name == "tracker" {
                    &mut tracker
                } else {
                    &mut fallback
                };
                match small_text(field).await {
                    Ok(t) => *slot = Some(t),
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&path).await;
                        return error_page(Some(&person), &e);
                    }
                }
            }
            Some("findings") => {
                let stream = futures::stream::unfold(field, |mut f| async move {
                    match f.chunk().await {
                        Ok(Some(c)) => Some((Ok(c), f)),
                        Ok(None) => None,
                        Err(e) => Some((Err(axum::Error::new(e)), f)),
                    }
                });
                let stream = Box::pin(stream);
                if let Err(e) = api::save_upload(stream, &path, state.config.max_upload_bytes).await
                {
                    return error_page(Some(&person), &e);
                }
                got_file = true;
            }
            other => {
                let e = ApiError::bad_request(
                    format!(
                        "the upload has a field {:?} the form does not send",
                        webriskops_domain::echo_untrusted(other.unwrap_or_default())
                    ),
                    "upload with the form on /exports (fields tracker, fallback and findings)",
                );
                let _ = tokio::fs::remove_file(&path).await;
                return error_page(Some(&person), &e);
            }
        }
    }
    if !got_file {
        let e = ApiError::bad_request(
            "no findings file was uploaded",
            "choose a findings file (JSON or JSON Lines) and upload it",
        );
        return error_page(Some(&person), &e);
    }
    let tenant = &person.principal.tenant;
    let fallback = match api::fallback_of(fallback.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return error_page(Some(&person), &e);
        }
    };
    let provider = match api::export_tracker(&state, tenant, tracker.as_deref()).await {
        Ok(p) => p,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return error_page(Some(&person), &e);
        }
    };
    match jobs::enqueue(&state, tenant, provider, id, &path, fallback).await {
        Ok(job) => Redirect::to(&format!("/exports/{}", job.id)).into_response(),
        Err(e) => error_page(Some(&person), &e),
    }
}

/// The most a text field of the upload form may hold: the route has no body limit (the
/// file streams to disk with its own), so these are read with one of their own.
const MAX_FORM_TEXT: usize = 256;

/// A text field of the upload form, refused when longer than [`MAX_FORM_TEXT`] bytes
/// (read chunk by chunk: never more than that is kept) or not UTF-8.
async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut bytes = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(c)) => {
                if bytes.len() + c.len() > MAX_FORM_TEXT {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "FIELD_TOO_LARGE",
                        format!("the form field {name} is longer than {MAX_FORM_TEXT} bytes"),
                        "choose the tracker and the fallback with the form on /exports",
                    ));
                }
                bytes.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::bad_request(
                    format!("the upload could not be read: {}", e.body_text()),
                    "choose the file again and upload it",
                ))
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        ApiError::bad_request(
            format!("the form field {name} is not text"),
            "choose the tracker and the fallback with the form on /exports",
        )
    })
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage<'a> {
    person: Option<&'a Person>,
    id: String,
    tracker: &'static str,
    state: String,
    finished: bool,
    phase: String,
    done: u64,
    /// The phase's size, once known (the applying phase); reading and planning have none.
    total: Option<u64>,
    /// What the count says: see [`progress_count`].
    count: String,
    counts: Vec<(String, String)>,
    routed: Vec<(String, String)>,
    failures: Vec<String>,
    bundle: bool,
    error: Option<String>,
}

async fn export_page(
    State(state): State<AppState>,
    person: Person,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let job = match state
        .composer
        .jobs()
        .job(&person.principal.tenant, &id)
        .await
    {
        Ok(Some(j)) => j,
        Ok(None) => return error_page(Some(&person), &ApiError::not_found()),
        Err(e) => return error_page(Some(&person), &e.into()),
    };
    let v = api::job_value(&job);
    let summary = &v["summary"];
    let counts = summary
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.replace('_', " "), n.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let routed = summary["routed"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), routed_text(v))).collect())
        .unwrap_or_default();
    let failures = summary["failed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["finding_id"].as_str().unwrap_or_default(),
                        f["error"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let finished = matches!(
        job.state,
        webriskops_ports::JobState::Done | webriskops_ports::JobState::Failed
    );
    let done = v["progress"]["done"].as_u64().unwrap_or(0);
    let total = v["progress"]["total"].as_u64();
    render(
        StatusCode::OK,
        &ExportPage {
            person: Some(&person),
            id: job.id.clone(),
            tracker: job.provider.vocabulary().tracker,
            state: job.state.as_str().to_owned(),
            finished,
            phase: v["progress"]["phase"]
                .as_str()
                .unwrap_or("queued")
                .to_owned(),
            done,
            total,
            count: progress_count(done, total),
            counts,
            routed,
            failures,
            bundle: job.bundle_dir.is_some(),
            error: summary["error"]["message"].as_str().map(str::to_owned),
        },
    )
}

/// The export page's count (`static/app.js` says the same while it polls): `done / total`
/// once the phase knows its size; before that (reading the tracker's items, planning) only
/// how many so far, never a total the job does not have (which read "12 / 0").
fn progress_count(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{done} / {total}"),
        None if done > 0 => format!("{done} so far"),
        None => String::new(),
    }
}

/// Where a tracker's authorization returns.
fn callback_url(state: &AppState, tracker: &str) -> String {
    format!("{}/settings/{tracker}/callback", state.config.public_url)
}

/// How long an authorization may take.
const AUTHORIZE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Starts the tracker's server-side authorization and sends the person there. A link,
/// not a form: the page's CSP (`form-action 'self'`) forbids a form whose answer
/// redirects to another site, and starting changes nothing but a pending state bound to
/// this person's tenant.
async fn connect(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    let start = match state
        .composer
        .authorize_start(who.provider, &callback_url(&state, &tracker))
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            let e = ApiError::bad_request(
                format!(
                    "this server is not registered with {} for sign-in",
                    who.provider.vocabulary().tracker
                ),
                "paste a token instead, or ask the operator to configure the application (docs/server.md)",
            );
            return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
        }
        Err(e) => return show_tracker(&state, &person, who.provider, None, Some(&e.into())).await,
    };
    // Kept in the store, not in this process: the callback may reach another replica.
    let pending = PendingAuthorization {
        digest: accounts::digest(&start.state),
        tenant: who.tenant.clone(),
        provider: who.provider,
        secret: match start.secret.as_deref().map(Token::new) {
            Some(Ok(t)) => Some(t),
            Some(Err(_)) => {
                let e = ApiError::bad_request(
                    format!(
                        "{} answered an unusable request-token secret",
                        who.provider.vocabulary().tracker
                    ),
                    "start the authorization again, or paste a token instead",
                );
                return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
            }
            None => None,
        },
        auth_method: start.auth_method.map(|m| m.as_str().to_owned()),
        expires_at: Utc::now() + AUTHORIZE_TTL,
    };
    if let Err(e) = state.composer.accounts().put_authorization(&pending).await {
        let e = ApiError::from(webriskops_service::ServiceError::from(e));
        return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
    }
    Redirect::to(&start.url).into_response()
}

/// The tracker's answer: the `state` (or OAuth 1.0 request token) must be one this
/// server sent for this person's tenant and tracker, unused and fresh.
async fn callback(
    State(state): State<AppState>,
    person: Person,
    UrlPath(tracker): UrlPath<String>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let who = match changing(&person, &tracker) {
        Ok(w) => w,
        Err(e) => return error_page(Some(&person), &e),
    };
    let key = params
        .get("state")
        .or_else(|| params.get("oauth_token"))
        .cloned()
        .unwrap_or_default();
    let taken = state
        .composer
        .accounts()
        .take_authorization(&accounts::digest(&key), Utc::now())
        .await;
    let pending = match taken {
        Ok(p) => p.filter(|p| p.tenant == who.tenant && p.provider == who.provider),
        Err(e) => {
            let e = ApiError::from(webriskops_service::ServiceError::from(e));
            return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
        }
    };
    let Some(pending) = pending else {
        let e = ApiError::bad_request(
            "this authorization answer does not match one started here (or it is older than ten minutes)",
            "start the authorization again from this page",
        );
        return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
    };
    let auth_method = match pending
        .auth_method
        .as_deref()
        .map(|m| m.parse::<AuthMethod>().ok())
    {
        Some(Some(m)) => Some(m),
        Some(None) => {
            let e = ApiError::bad_request(
                "this authorization was started by another version of the server",
                "start the authorization again from this page",
            );
            return show_tracker(&state, &person, who.provider, None, Some(&e)).await;
        }
        None => None,
    };
    let start = crate::AuthorizeStart {
        url: String::new(),
        state: key,
        secret: pending.secret.as_ref().map(|t| t.expose().to_owned()),
        auth_method,
    };
    let token = match state
        .composer
        .authorize_finish(
            who.provider,
            &callback_url(&state, &tracker),
            &start,
            &params,
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return show_tracker(&state, &person, who.provider, None, Some(&e.into())).await,
    };
    state.composer.register_secret(token.expose());
    let held = async {
        let root = Some(state.composer.api_root(who.provider)?);
        integration::hold_authorized(
            &state.setup_ports(),
            &state,
            &who,
            &token,
            start.auth_method,
            root,
            Utc::now(),
        )
        .await
    };
    match held.await {
        Ok(_) => back(&tracker, "held"),
        Err(e) => show_tracker(&state, &person, who.provider, None, Some(&e)).await,
    }
}

/// A finding's routed fields as a line: `priority → new label P2 · severity → …`.
fn routed_text(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(field, how)| {
                let how = how.as_str().map_or_else(|| how.to_string(), str::to_owned);
                let how = match how.split_once(':') {
                    Some((kind, what)) => format!("{} {what}", kind.replace('_', " ")),
                    None => how.replace('_', " "),
                };
                format!("{field} → {how}")
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The shared key budget as /settings says it: the key's use by every customer, this
/// tenant's part and its fair share (`None` when each process limits its own requests).
fn key_budget_text(v: &Value) -> Option<String> {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    v.is_object().then(|| {
        let mut text = format!(
            "{} of {} requests in the current window, all customers together; yours {} ({} waiting), your fair share now {}",
            n("used"),
            n("limit"),
            n("owner_used"),
            n("owner_waiting"),
            n("fair_share"),
        );
        if let Some(ms) = v["paused_for_ms"].as_u64() {
            text.push_str(&format!(
                "; paused {:.1} s more: the tracker refused the key",
                ms as f64 / 1000.0
            ));
        }
        text
    })
}

/// A webhook's health as /settings says it.
fn webhook_text(v: &Value) -> String {
    let last = v["last_delivery_at"]
        .as_str()
        .map(|t| t.chars().take(16).collect::<String>().replace('T', " ") + " UTC");
    let n = v["deliveries"].as_i64().unwrap_or(0);
    let counts = format!(
        "{n} {}{}",
        if n == 1 { "delivery" } else { "deliveries" },
        match v["rejected"].as_i64().unwrap_or(0) {
            0 => String::new(),
            n => format!(", {n} refused (bad signature)"),
        }
    );
    // Failed attempts in a row, as the tracker counts them (Trello does; Linear does not
    // say).
    let failures = v["consecutive_failures"].as_u64().filter(|n| *n > 0);
    let failed = |n: u64| {
        format!(
            "{n} consecutive failed {}",
            if n == 1 { "delivery" } else { "deliveries" }
        )
    };
    match v["state"].as_str().unwrap_or("none") {
        "active" => match (failures, last) {
            (Some(n), _) => format!(
                "failing: {} to this server ({counts}); the tracker deactivates a webhook that keeps failing — check that the public URL reaches this server; the scheduled sync continues",
                failed(n)
            ),
            (None, Some(l)) => format!("active: last delivery {l}, {counts}"),
            (None, None) => format!("active: no delivery yet, {counts}"),
        },
        "inactive" => format!(
            "deactivated by the tracker after {} ({counts}); the scheduled sync continues — check that the public URL reaches this server, then save the setup again to register a new one",
            failures.map_or_else(|| "failed deliveries".to_owned(), failed)
        ),
        "gone" => "deleted at the tracker; the scheduled sync continues — save the setup again to register a new one".into(),
        "unknown" => format!("registered ({counts}); the tracker could not be asked now"),
        _ => "not registered: status comes from the scheduled sync".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_page(phase: &str, done: u64, total: Option<u64>) -> String {
        ExportPage {
            person: None,
            id: "job1".into(),
            tracker: "Trello",
            state: "running".into(),
            finished: false,
            phase: phase.into(),
            done,
            total,
            count: progress_count(done, total),
            counts: vec![],
            routed: vec![],
            failures: vec![],
            bundle: false,
            error: None,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn a_phase_without_a_total_shows_no_total() {
        let page = export_page("listing cards", 12, None);
        assert!(!page.contains("12 / 0"), "{page}");
        assert!(
            page.contains(r#"<span id="job-count">12 so far</span>"#),
            "{page}"
        );
        // No value: the bar shows activity, not a fraction of nothing.
        assert!(page.contains(r#"<progress id="job-progress">"#), "{page}");
        assert!(page.contains("listing cards"), "{page}");
        let page = export_page("planning", 0, None);
        assert!(page.contains(r#"<span id="job-count"></span>"#), "{page}");
    }

    #[test]
    fn a_phase_with_a_total_shows_done_of_total() {
        let page = export_page("applying", 12, Some(20));
        assert!(
            page.contains(r#"<span id="job-count">12 / 20</span>"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<progress id="job-progress" max="20" value="12">"#),
            "{page}"
        );
    }
}
