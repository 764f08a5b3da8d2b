//! `webriskops demo`: a guided run against trello-sim in this process, through the same
//! code paths operators use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use trello_sim::{Fixture, SimConfig, SimHandle, SimServer};
use webriskops_domain::{marker, FindingId};
use webriskops_trello::RateLimits;

use super::export::{export_source, ExportRequest};
use crate::app::{App, EnvLookup};
use crate::cli::SetupArgs;
use crate::config::{FallbackMode, Settings, ENV_API_KEY, ENV_TOKEN};
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;
use webriskops_findings_file::FileSource;

/// The sample findings the demo exports (contract `findings-v1`).
pub const SAMPLE_FINDINGS: &str = include_str!("../../assets/sample-findings.json");

/// The simulator's rate-limit window: Trello's 10 s scaled down, so the demo is quick.
const WINDOW: Duration = Duration::from_secs(1);

/// Latency the simulator adds to every answer.
const LATENCY: Duration = Duration::from_millis(20);

fn step(out: &Out, n: u32, title: &str, explain: &str) {
    out.say("");
    out.say(format!("── Step {n}: {title}"));
    for line in explain.lines() {
        out.say(format!("   {line}"));
    }
    out.say("");
}

/// An environment holding only what the demo chooses: the user's own variables
/// (a real token, another data directory) never leak into it.
fn demo_env(fx: &Fixture, with_token: bool) -> EnvLookup {
    let key = fx.api_key.clone();
    let token = fx.tokens.full.clone();
    Arc::new(move |var: &str| match var {
        ENV_API_KEY => Some(key.clone()),
        ENV_TOKEN if with_token => Some(token.clone()),
        _ => None,
    })
}

fn writes_logged(sim: &SimHandle) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
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

/// Runs the demo (human output only). `data_dir` is used when given, else a temporary
/// directory.
///
/// # Errors
/// Any step failing; the demo stops at the first.
pub async fn run(base: Settings, data_dir: Option<PathBuf>) -> AppResult<Exit> {
    let out = Out { json: false };
    let temp = match &data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| {
            AppError::failed(format!(
                "cannot create a temporary data directory: {e}; pass --data-dir"
            ))
        })?),
    };
    let data_dir = data_dir
        .or_else(|| temp.as_ref().map(|t| t.path().to_owned()))
        .unwrap_or_default();

    out.say("WebRiskOps demo: remediation findings → Trello cards, and status back.");
    out.say(
        "Nothing leaves this machine: a Trello simulator runs inside this process on 127.0.0.1.",
    );
    let server = SimServer::start(SimConfig {
        latency: LATENCY,
        window: WINDOW,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| AppError::failed(format!("cannot start the Trello simulator: {e}")))?;
    let sim = server.handle();
    let fx = sim.seed_standard();
    out.say(format!(
        "Simulator: {} (20 ms per answer; rate-limit window scaled from 10 s to 1 s).",
        server.base_url()
    ));
    out.say(format!(
        "Data directory: {}{}",
        data_dir.display(),
        if temp.is_some() {
            " (temporary, removed at the end)"
        } else {
            ""
        }
    ));

    let mut settings = Settings {
        tenant: "demo".into(),
        log_format: base.log_format,
        ..Settings::default()
    };
    settings.trello.api_root = server.base_url();
    settings.trello.limits = RateLimits::scaled(WINDOW);
    settings.export.out_dir = data_dir.join("portable-bundle");
    settings.export.fallback = FallbackMode::Never;

    let mut setup_app = App::new(settings.clone(), data_dir.clone(), out, demo_env(&fx, true))?;
    step(
        &out,
        1,
        "setup without a destination",
        "The operator has an API key and a token (in TRELLO_API_KEY and TRELLO_TOKEN) but has\n\
         not chosen a board yet. Setup checks every state and lists the boards the token sees.",
    );
    super::setup::run(&mut setup_app, &SetupArgs::default()).await?;

    step(
        &out,
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
        return Err(AppError::failed("the demo setup is unexpectedly blocked"));
    }

    // From here on the stored token is used, as after a real setup.
    let mut app = App::new(
        settings.clone(),
        data_dir.clone(),
        out,
        demo_env(&fx, false),
    )?;
    let req = ExportRequest {
        dry_run: false,
        fallback: FallbackMode::Never,
        out_dir: settings.export.out_dir.clone(),
        concurrency: settings.export.concurrency,
    };
    step(
        &out,
        3,
        "export 12 sample findings",
        "Each open finding becomes one card: Markdown description with a hidden identity marker,\n\
         labels for severity, priority and component, a Remediation checklist, the assignee as\n\
         a member when they are on the board (else a note), and the due date. Closed findings\n\
         without a card are skipped.",
    );
    let sample =
        FileSource::from_bytes("sample-findings.json", SAMPLE_FINDINGS.as_bytes().to_vec());
    export_source(&mut app, &sample, &req).await?;
    out.say(format!(
        "   The board now holds {} cards.",
        sim.cards(&fx.board_id).len()
    ));

    step(
        &out,
        4,
        "the findings change, and the export runs again",
        "wro-f-0001 was fixed (status resolved) and wro-f-0006 got a better title.\n\
         The export updates cards in place: the fixed one moves to Done, the other is renamed.",
    );
    let changed = FileSource::from_bytes("sample-findings.json (changed)", changed_sample()?);
    export_source(&mut app, &changed, &req).await?;

    step(
        &out,
        5,
        "a person finishes a card in Trello, and sync reports it",
        "Someone drags the card of wro-f-0002 to Done. Sync prints one JSON status event per\n\
         change on stdout (for WebRiskOps to mark the finding fixed) and a summary on stderr.",
    );
    let wanted = FindingId::new("wro-f-0002")
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
    super::sync::run(&mut app).await?;
    out.say("   Syncing again reports nothing: each change is reported once.");
    let (_, again) = super::sync::sync_events(&mut app).await?;
    if again.is_some_and(|s| s.events != 0) {
        return Err(AppError::failed("the second sync reported events again"));
    }

    step(
        &out,
        6,
        "re-export: nothing to write",
        "The same findings again. Every card already matches, and the card the person moved\n\
         stays in Done (people own status once they act). Trello sees reads only.",
    );
    let before = writes_logged(&sim);
    export_source(&mut app, &changed, &req).await?;
    let writes = writes_logged(&sim) - before;
    out.say(format!(
        "   Write requests Trello received during this export: {writes}."
    ));

    step(
        &out,
        7,
        "integration status",
        "What an operator checks any time: the record, readiness re-checked live, last runs.",
    );
    super::status::run(&mut app).await?;
    drop(app);

    out.say("");
    out.say("Done. Next: `webriskops setup trello` with your own TRELLO_API_KEY prints the");
    out.say("authorize URL for a least-privilege token; see README.md and docs/configuration.md.");
    server.shutdown().await;
    if writes != 0 {
        return Err(AppError::failed(format!(
            "the re-export wrote {writes} times; expected none"
        )));
    }
    Ok(Exit::Ok)
}
