//! `webriskops demo`: a guided run against trello-sim and then linear-sim, both in this
//! process on 127.0.0.1, through the same code paths operators use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use webriskops_domain::{marker, FindingId, ProviderKey};
use webriskops_linear::FindingUrl;
use webriskops_trello::RateLimits;

use super::export::{export_source, ExportRequest};
use crate::app::{App, EnvLookup};
use crate::cli::{LinearSetupArgs, SetupArgs};
use crate::config::{FallbackMode, Settings, ENV_API_KEY, ENV_LINEAR_API_KEY, ENV_TOKEN};
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;
use webriskops_findings_file::FileSource;

/// The sample findings the demo exports (contract `findings-v1`).
pub const SAMPLE_FINDINGS: &str = include_str!("../../assets/sample-findings.json");

/// The simulator's rate-limit window: Trello's 10 s scaled down, so the demo is quick.
const WINDOW: Duration = Duration::from_secs(1);

/// Latency each simulator adds to every answer.
const LATENCY: Duration = Duration::from_millis(20);

/// Where each finding lives in WebRiskOps, as the Linear attachment that ties an issue
/// to its finding.
const DEMO_FINDING_URL: &str = "https://risk.example.test/findings/{id}";

/// The finding a person finishes (Trello) or cancels (Linear) in the walk.
const PERSON_FINDING: &str = "wro-f-0002";

fn part(out: &Out, n: u32, tracker: &str, intro: &str) {
    out.say("");
    out.say(format!("═══ Part {n} of 2: {tracker} ═══"));
    for line in intro.lines() {
        out.say(line);
    }
}

fn step(out: &Out, tracker: &str, n: u32, title: &str, explain: &str) {
    out.say("");
    out.say(format!("── {tracker} step {n}: {title}"));
    for line in explain.lines() {
        out.say(format!("   {line}"));
    }
    out.say("");
}

/// The sample with one finding closed and another retitled.
fn changed_sample() -> AppResult<Vec<u8>> {
    let mut doc: Value = serde_json::from_str(SAMPLE_FINDINGS)
        .map_err(|e| AppError::failed(format!("the embedded sample is not JSON: {e}")))?;
    if let Some(list) = doc.get_mut("findings").and_then(Value::as_array_mut) {
        for f in list.iter_mut() {
            match f.get("id").and_then(Value::as_str) {
                Some("wro-f-0001") => f["status"] = Value::from("resolved"),
                Some("wro-f-0006") => {
                    f["title"] = Value::from("Session cookie lacks Secure and HttpOnly flags")
                }
                _ => {}
            }
        }
    }
    serde_json::to_vec_pretty(&doc)
        .map_err(|e| AppError::failed(format!("cannot write the changed sample: {e}")))
}

fn sample() -> FileSource {
    FileSource::from_bytes("sample-findings.json", SAMPLE_FINDINGS.as_bytes().to_vec())
}

fn changed() -> AppResult<FileSource> {
    Ok(FileSource::from_bytes(
        "sample-findings.json (changed)",
        changed_sample()?,
    ))
}

/// Settings for one tracker's walk, with its data directory's bundle and no fallback.
fn demo_settings(base: &Settings, data_dir: &Path) -> Settings {
    let mut settings = Settings {
        tenant: "demo".into(),
        log_format: base.log_format,
        ..Settings::default()
    };
    settings.export.out_dir = data_dir.join("portable-bundle");
    settings.export.fallback = FallbackMode::Never;
    settings
}

fn export_request(settings: &Settings) -> ExportRequest {
    ExportRequest {
        dry_run: false,
        fallback: FallbackMode::Never,
        out_dir: settings.export.out_dir.clone(),
        concurrency: settings.export.concurrency,
    }
}

/// Syncs twice: the first run prints the person's change, the second must print nothing.
async fn sync_twice(out: &Out, app: &mut App) -> AppResult<()> {
    super::sync::run(app).await?;
    out.say("   Syncing again reports nothing: each change is reported once.");
    let (_, again) = super::sync::sync_events(app).await?;
    if again.is_some_and(|s| s.events != 0) {
        return Err(AppError::failed("the second sync reported events again"));
    }
    Ok(())
}

/// The demo's data directory: the one given, else a temporary one (removed when the
/// returned guard drops).
///
/// # Errors
/// The temporary directory cannot be created.
pub(super) fn data_dir_or_temp(
    data_dir: Option<PathBuf>,
) -> AppResult<(PathBuf, Option<tempfile::TempDir>)> {
    match data_dir {
        Some(d) => Ok((d, None)),
        None => {
            let t = tempfile::tempdir().map_err(|e| {
                AppError::failed(format!(
                    "cannot create a temporary data directory: {e}; pass --data-dir"
                ))
            })?;
            Ok((t.path().to_owned(), Some(t)))
        }
    }
}

/// Runs the demo (human output only): Trello, then Linear, each against its simulator
/// with its own data directory (`data_dir/trello`, `data_dir/linear`). `data_dir` is
/// used when given, else a temporary directory.
///
/// # Errors
/// Any step failing; the demo stops at the first.
pub async fn run(
    base: Settings,
    data_dir: Option<PathBuf>,
    args: &crate::cli::DemoArgs,
) -> AppResult<Exit> {
    if args.serve {
        return super::demo_serve::run(base, data_dir, args).await;
    }
    let out = Out { json: false };
    let (data_dir, temp) = data_dir_or_temp(data_dir)?;

    out.say(
        "WebRiskOps demo: remediation findings → Trello cards and Linear issues, and status back.",
    );
    out.say(
        "Nothing leaves this machine: a Trello simulator and a Linear simulator run inside this\n\
         process on 127.0.0.1.",
    );
    out.say(format!(
        "Data directories: {} and {}{}",
        data_dir.join("trello").display(),
        data_dir.join("linear").display(),
        if temp.is_some() {
            " (temporary, removed at the end)"
        } else {
            ""
        }
    ));

    let trello_writes = trello_walk(&out, &base, &data_dir.join("trello")).await?;
    let linear_writes = linear_walk(&out, &base, &data_dir.join("linear")).await?;

    out.say("");
    out.say("Done. Next: `webriskops setup trello` with your own TRELLO_API_KEY prints the");
    out.say("authorize URL for a least-privilege token; `webriskops setup linear` with a personal");
    out.say("API key in LINEAR_API_KEY lists your teams; see README.md and docs/configuration.md.");
    for (tracker, writes) in [("Trello", trello_writes), ("Linear", linear_writes)] {
        if writes != 0 {
            return Err(AppError::failed(format!(
                "the {tracker} re-export wrote {writes} times; expected none"
            )));
        }
    }
    Ok(Exit::Ok)
}

// ── Trello ───────────────────────────────────────────────────────────────────────────

/// An environment holding only what the demo chooses: the user's own variables
/// (a real token, another data directory) never leak into it.
fn trello_env(fx: &trello_sim::Fixture, with_token: bool) -> EnvLookup {
    let key = fx.api_key.clone();
    let token = fx.tokens.full.clone();
    Arc::new(move |var: &str| match var {
        ENV_API_KEY => Some(key.clone()),
        ENV_TOKEN if with_token => Some(token.clone()),
        _ => None,
    })
}

fn trello_writes_logged(sim: &trello_sim::SimHandle) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

/// The Trello walk; returns the writes of its final re-export (0 expected).
async fn trello_walk(out: &Out, base: &Settings, data_dir: &Path) -> AppResult<usize> {
    const T: &str = "Trello";
    let out = *out;
    part(
        &out,
        1,
        T,
        "Findings become cards on a Trello board; cards people finish come back as status events.",
    );
    let server = trello_sim::SimServer::start(trello_sim::SimConfig {
        latency: LATENCY,
        window: WINDOW,
        ..trello_sim::SimConfig::default()
    })
    .await
    .map_err(|e| AppError::failed(format!("cannot start the Trello simulator: {e}")))?;
    let sim = server.handle();
    let fx = sim.seed_standard();
    out.say(format!(
        "Trello simulator: {} (20 ms per answer; rate-limit window scaled from 10 s to 1 s).",
        server.base_url()
    ));

    let mut settings = demo_settings(base, data_dir);
    settings.trello.api_root = server.base_url();
    settings.trello.limits = RateLimits::scaled(WINDOW);

    let mut setup_app = App::new(
        settings.clone(),
        data_dir.to_owned(),
        out,
        trello_env(&fx, true),
    )?;
    setup_app.set_provider(ProviderKey::TrelloCloud);
    step(
        &out,
        T,
        1,
        "setup without a destination",
        "The operator has an API key and a token (in TRELLO_API_KEY and TRELLO_TOKEN) but has\n\
         not chosen a board yet. Setup checks every state and lists the boards the token sees.",
    );
    super::setup::run(&mut setup_app, &SetupArgs::default()).await?;

    step(
        &out,
        T,
        2,
        "setup with board, lists and the revoke path confirmed",
        "Board \"Security Remediation\", new cards in \"To Do\", closed findings to \"Done\".\n\
         Everything is ready, so --save stores the record and then the token, encrypted.",
    );
    let args = SetupArgs {
        board_id: Some(fx.board_id.clone()),
        list_id: Some(fx.list_id.clone()),
        done_list_id: Some(fx.done_list_id.clone()),
        confirm_revoke_path: true,
        save: true,
        ..SetupArgs::default()
    };
    let exit = super::setup::run(&mut setup_app, &args).await?;
    drop(setup_app);
    if exit != Exit::Ok {
        return Err(AppError::failed(
            "the demo's Trello setup is unexpectedly blocked",
        ));
    }

    // From here on the stored token is used, as after a real setup.
    let mut app = App::new(
        settings.clone(),
        data_dir.to_owned(),
        out,
        trello_env(&fx, false),
    )?;
    app.set_provider(ProviderKey::TrelloCloud);
    let req = export_request(&settings);
    step(
        &out,
        T,
        3,
        "export 12 sample findings",
        "Each open finding becomes one card: Markdown description with a hidden identity marker,\n\
         labels for severity, priority and component, a Remediation checklist, the assignee as\n\
         a member when they are on the board (else a note), and the due date. Closed findings\n\
         without a card are skipped.",
    );
    export_source(&mut app, &sample(), &req).await?;
    out.say(format!(
        "   The board now holds {} cards.",
        sim.cards(&fx.board_id).len()
    ));

    step(
        &out,
        T,
        4,
        "the findings change, and the export runs again",
        "wro-f-0001 was fixed (status resolved) and wro-f-0006 got a better title.\n\
         The export updates cards in place: the fixed one moves to Done, the other is renamed.",
    );
    let changed = changed()?;
    export_source(&mut app, &changed, &req).await?;

    step(
        &out,
        T,
        5,
        "a person finishes a card in Trello, and sync reports it",
        "Someone drags the card of wro-f-0002 to Done. Sync prints one JSON status event per\n\
         change on stdout (for WebRiskOps to mark the finding fixed) and a summary on stderr.",
    );
    let wanted = FindingId::new(PERSON_FINDING)
        .map(|f| marker(&f))
        .map_err(|e| AppError::failed(format!("demo finding id: {e}")))?;
    let card = sim
        .cards(&fx.board_id)
        .into_iter()
        .find(|c| c.desc.contains(&wanted))
        .ok_or_else(|| AppError::failed("the demo card of wro-f-0002 is missing"))?;
    sim.person_move_card(&card.id, &fx.done_list_id);
    out.say(format!(
        "   (simulated person moved card {} to Done)",
        card.id
    ));
    sync_twice(&out, &mut app).await?;

    step(
        &out,
        T,
        6,
        "re-export: nothing to write",
        "The same findings again. Every card already matches, and the card the person moved\n\
         stays in Done (people own status once they act). Trello sees reads only.",
    );
    let before = trello_writes_logged(&sim);
    export_source(&mut app, &changed, &req).await?;
    let writes = trello_writes_logged(&sim) - before;
    out.say(format!(
        "   Write requests Trello received during this export: {writes}."
    ));

    step(
        &out,
        T,
        7,
        "integration status",
        "What an operator checks any time: the record, readiness re-checked live, last runs.",
    );
    super::status::run(&mut app).await?;
    drop(app);
    server.shutdown().await;
    Ok(writes)
}

// ── Linear ───────────────────────────────────────────────────────────────────────────

/// The demo's environment for Linear: the simulator's full-access key while setting up,
/// nothing afterwards (the stored key is used).
fn linear_env(fx: &linear_sim::Fixture, with_key: bool) -> EnvLookup {
    let key = fx.keys.full.clone();
    Arc::new(move |var: &str| match var {
        ENV_LINEAR_API_KEY if with_key => Some(key.clone()),
        _ => None,
    })
}

/// GraphQL mutations linear-sim answered: any root field that writes.
fn linear_mutations_logged(sim: &linear_sim::SimHandle) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| {
            r.root_fields.iter().any(|f| {
                ["Create", "Update", "Archive", "Unarchive", "Delete"]
                    .iter()
                    .any(|w| f.ends_with(w))
            })
        })
        .count()
}

/// The issue tied to `finding` by its attachment URL.
fn linear_issue_of(
    sim: &linear_sim::SimHandle,
    team: &str,
    urls: &FindingUrl,
    finding: &str,
) -> AppResult<linear_sim::SimIssue> {
    let id =
        FindingId::new(finding).map_err(|e| AppError::failed(format!("demo finding id: {e}")))?;
    let url = urls.url(&id);
    sim.issues(team)
        .into_iter()
        .find(|i| i.attachments.iter().any(|a| a.url == url))
        .ok_or_else(|| AppError::failed(format!("the demo issue of {finding} is missing")))
}

/// The Linear walk; returns the mutations of its final re-export (0 expected).
async fn linear_walk(out: &Out, base: &Settings, data_dir: &Path) -> AppResult<usize> {
    const T: &str = "Linear";
    let out = *out;
    part(
        &out,
        2,
        T,
        "The same findings become issues in a Linear team; issues people close or cancel come\n\
         back as status events.",
    );
    let server = linear_sim::SimServer::start(linear_sim::SimConfig {
        latency: LATENCY,
        ..linear_sim::SimConfig::default()
    })
    .await
    .map_err(|e| AppError::failed(format!("cannot start the Linear simulator: {e}")))?;
    let sim = server.handle();
    let fx = sim.seed_standard();
    out.say(format!(
        "Linear simulator: {} (GraphQL, 20 ms per answer; Linear's hourly limits).",
        server.base_url()
    ));

    let mut settings = demo_settings(base, data_dir);
    settings.linear.api_url = server.base_url();
    settings.linear.finding_url = DEMO_FINDING_URL.into();
    let urls = FindingUrl::new(DEMO_FINDING_URL)
        .map_err(|e| AppError::failed(format!("the demo finding URL: {e}")))?;

    let mut setup_app = App::new(
        settings.clone(),
        data_dir.to_owned(),
        out,
        linear_env(&fx, true),
    )?;
    setup_app.set_provider(ProviderKey::LinearCloud);
    step(
        &out,
        T,
        1,
        "setup without a team",
        "The operator has a personal API key (in LINEAR_API_KEY) but has not chosen a team yet.\n\
         Setup checks every state and lists the teams the key sees.",
    );
    super::setup_linear::run(&mut setup_app, &LinearSetupArgs::default()).await?;

    step(
        &out,
        T,
        2,
        "setup with team, states and the revoke path confirmed",
        "Team \"Engineering\", new issues in \"Todo\", closed findings to \"Done\".\n\
         Everything is ready, so --save stores the record and then the key, encrypted.",
    );
    let args = LinearSetupArgs {
        team_id: Some(fx.eng.id.clone()),
        state_id: Some(fx.eng.todo.clone()),
        done_state_id: Some(fx.eng.done.clone()),
        confirm_revoke_path: true,
        save: true,
        ..LinearSetupArgs::default()
    };
    let exit = super::setup_linear::run(&mut setup_app, &args).await?;
    drop(setup_app);
    if exit != Exit::Ok {
        return Err(AppError::failed(
            "the demo's Linear setup is unexpectedly blocked",
        ));
    }

    // From here on the stored key is used, as after a real setup.
    let mut app = App::new(
        settings.clone(),
        data_dir.to_owned(),
        out,
        linear_env(&fx, false),
    )?;
    app.set_provider(ProviderKey::LinearCloud);
    let req = export_request(&settings);
    step(
        &out,
        T,
        3,
        "export 12 sample findings",
        "Each open finding becomes one issue, created together with an attachment that links\n\
         it to its finding (so a retry or a lost database cannot duplicate it): Markdown\n\
         description with the remediation steps as a task list, Linear's own priority, labels\n\
         for severity and component, the assignee when Linear knows them, and the due date.",
    );
    export_source(&mut app, &sample(), &req).await?;
    out.say(format!(
        "   The team now holds {} issues.",
        sim.issues(&fx.eng.id).len()
    ));
    let first = linear_issue_of(&sim, &fx.eng.id, &urls, "wro-f-0001")?;
    out.say(format!(
        "   {} \"{}\" carries its steps as a task list:",
        first.identifier, first.title
    ));
    for line in first
        .description
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim_start().starts_with("- ["))
    {
        out.say(format!("     {line}"));
    }

    step(
        &out,
        T,
        4,
        "the findings change, and the export runs again",
        "wro-f-0001 was fixed (status resolved) and wro-f-0006 got a better title.\n\
         The export updates issues in place: the fixed one moves to Done, the other is renamed.",
    );
    let changed = changed()?;
    export_source(&mut app, &changed, &req).await?;
    let fixed = linear_issue_of(&sim, &fx.eng.id, &urls, "wro-f-0001")?;
    out.say(format!(
        "   {} is now in \"{}\".",
        fixed.identifier, fixed.state_name
    ));

    step(
        &out,
        T,
        5,
        "a person cancels an issue in Linear, and sync reports it",
        "Someone moves the issue of wro-f-0002 to Canceled. Sync prints one JSON status event\n\
         per change on stdout (for WebRiskOps to decide what a canceled fix means) and a\n\
         summary on stderr.",
    );
    let issue = linear_issue_of(&sim, &fx.eng.id, &urls, PERSON_FINDING)?;
    sim.person_move_issue(&issue.id, &fx.eng.canceled);
    out.say(format!(
        "   (simulated person moved issue {} to Canceled)",
        issue.identifier
    ));
    sync_twice(&out, &mut app).await?;

    step(
        &out,
        T,
        6,
        "re-export: nothing to write",
        "The same findings again. Every issue already matches, and the issue the person\n\
         canceled stays Canceled (people own status once they act). Linear sees reads only.",
    );
    let before = linear_mutations_logged(&sim);
    export_source(&mut app, &changed, &req).await?;
    let writes = linear_mutations_logged(&sim) - before;
    out.say(format!(
        "   Mutations Linear received during this export: {writes}."
    ));

    step(
        &out,
        T,
        7,
        "integration status",
        "The same check for the Linear record: team and state, readiness re-checked live,\n\
         last runs.",
    );
    super::status::run(&mut app).await?;
    drop(app);
    server.shutdown().await;
    Ok(writes)
}
