//! `webriskops`: set up Trello or Linear, export findings as cards or issues, sync status,
//! revoke, demo.

mod app;
mod cli;
mod commands;
mod config;
mod error;
mod logging;
mod output;
mod progress;
mod redact;
mod store;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use webriskops_domain::ProviderKey;

use crate::app::{App, EnvLookup};
use crate::cli::{Cli, Command, SetupTarget};
use crate::error::{AppResult, Exit};
use crate::output::Out;

fn main() -> ExitCode {
    logging::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and version exit 0; every usage error exits 2.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let out = Out {
        json: cli.global.json,
    };
    match run(cli, out) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            if out.json {
                out.json_note(&serde_json::json!({
                    "error": redact::redact(&e.message),
                    "exit_code": e.exit.code(),
                }));
            } else {
                out.note(format!("error: {}", e.message));
            }
            ExitCode::from(e.exit.code())
        }
    }
}

fn run(cli: Cli, out: Out) -> AppResult<Exit> {
    let env: EnvLookup = Arc::new(|k: &str| std::env::var(k).ok());
    let settings = config::load(cli.global.config.as_deref(), env.as_ref())?;
    logging::init(cli.global.log_format.unwrap_or(settings.log_format));
    let data_dir = match (&cli.global.data_dir, &settings.data_dir) {
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => config::default_data_dir()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::AppError::failed(format!("cannot start the async runtime: {e}")))?;
    let database_url = database_url(cli.global.database_url.as_deref(), &cli.command)?;
    runtime.block_on(async move {
        // PostgreSQL, when --database-url names it, opened (and migrated) once.
        let pg = || async {
            match &database_url {
                Some(url) => Ok(Some(
                    store::Stores::postgres(url, env(store::MASTER_KEY_ENV)).await?,
                )),
                None => Ok::<_, error::AppError>(None),
            }
        };
        let accounts_app = || async {
            let mut a = App::new(settings.clone(), data_dir.clone(), out, env.clone())?;
            if let Some(s) = pg().await? {
                a.use_store(s);
            }
            Ok::<App, error::AppError>(a)
        };
        let app = || App::new(settings.clone(), data_dir.clone(), out, env.clone());
        let tracker = cli.global.tracker;
        // The tracker a command works on: the setup target, else --tracker,
        // WEBRISKOPS_TRACKER or the tenant's only record.
        let chosen = || async {
            let mut a = app()?;
            a.choose_provider(tracker).await?;
            Ok::<App, error::AppError>(a)
        };
        let for_setup = |target: ProviderKey| {
            if let Some(t) = tracker.map(app::provider_of).filter(|t| *t != target) {
                return Err(error::AppError::usage(format!(
                    "--tracker {} contradicts `setup {}`: leave --tracker out",
                    t.tracker_name(),
                    target.tracker_name()
                )));
            }
            let mut a = app()?;
            a.set_provider(target);
            Ok(a)
        };
        match cli.command {
            Command::Setup(SetupTarget::Trello(args)) => {
                commands::setup::run(&mut for_setup(ProviderKey::TrelloCloud)?, &args).await
            }
            Command::Setup(SetupTarget::Linear(args)) => {
                commands::setup_linear::run(&mut for_setup(ProviderKey::LinearCloud)?, &args).await
            }
            Command::Status => commands::status::run(&mut chosen().await?).await,
            Command::Export(args) => commands::export::run(&mut chosen().await?, &args).await,
            Command::Sync => commands::sync::run(&mut chosen().await?).await,
            Command::Revoke(args) => commands::revoke::run(&mut chosen().await?, args).await,
            Command::Demo(args) => {
                commands::demo::run(settings.clone(), cli.global.data_dir, &args).await
            }
            Command::Serve(args) => {
                let store = pg().await?;
                commands::serve::run(
                    settings.clone(),
                    data_dir.clone(),
                    env.clone(),
                    &args,
                    store,
                )
                .await
            }
            Command::Tenant(cmd) => {
                commands::accounts::tenant(&mut accounts_app().await?, &cmd).await
            }
            Command::User(cmd) => commands::accounts::user(&mut accounts_app().await?, &cmd).await,
            Command::ApiToken(cmd) => {
                commands::accounts::api_token(&mut accounts_app().await?, &cmd).await
            }
            Command::Migrate => {
                let said = store::migrate(database_url.as_deref()).await?;
                if out.json {
                    out.json_doc(&serde_json::json!({ "message": said }));
                } else {
                    out.say(said);
                }
                Ok(Exit::Ok)
            }
        }
    })
}

/// The PostgreSQL URL of `--database-url` / `WEBRISKOPS_DATABASE_URL`, checked: only
/// `postgres://` (or `postgresql://`), and only for the commands that run on PostgreSQL.
/// The tracker commands keep their state in the data directory (SQLite), so a URL given
/// to them is refused rather than silently ignored.
fn database_url(given: Option<&str>, command: &Command) -> AppResult<Option<String>> {
    let Some(url) = given.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    // The URL may hold a password: never echoed.
    redact::register(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(error::AppError::usage(
            "--database-url (WEBRISKOPS_DATABASE_URL) must be a postgres:// URL; leave it out \
             for SQLite in the data directory",
        ));
    }
    let name = match command {
        Command::Serve(_)
        | Command::Migrate
        | Command::Tenant(_)
        | Command::User(_)
        | Command::ApiToken(_) => return Ok(Some(url.to_owned())),
        Command::Setup(_) => "setup",
        Command::Status => "status",
        Command::Export(_) => "export",
        Command::Sync => "sync",
        Command::Revoke(_) => "revoke",
        Command::Demo(_) => "demo",
    };
    Err(error::AppError::usage(format!(
        "`webriskops {name}` keeps its state in the data directory (SQLite) and does not run on \
         PostgreSQL; unset --database-url / WEBRISKOPS_DATABASE_URL for it (on a server, use \
         the /settings pages or the API of `webriskops serve --database-url …` instead)"
    )))
}
