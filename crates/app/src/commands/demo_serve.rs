//! `webriskops demo --serve`: the Trello and Linear simulators, a tenant with an admin, and
//! the server, so the /settings pages can be tried in a browser with nothing to set up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use rand::Rng;
use webriskops_domain::{Role, TenantId};
use webriskops_service::accounts;

use super::serve::{serve_with, server_config, AppComposer, DEFAULT_LISTEN};
use crate::app::EnvLookup;
use crate::cli::{DemoArgs, ServeArgs};
use crate::config::{Settings, ENV_API_KEY};
use crate::error::{AppError, AppResult, Exit};
use crate::output::Out;

/// The demo's tenant and admin.
pub const DEMO_TENANT: &str = "demo";
pub const DEMO_EMAIL: &str = "admin@demo.example";

/// Runs `demo --serve`.
///
/// # Errors
/// A simulator or the server cannot start.
pub async fn run(base: Settings, data_dir: Option<PathBuf>, args: &DemoArgs) -> AppResult<Exit> {
    let out = Out { json: false };
    let (root, temp) = super::demo::data_dir_or_temp(data_dir)?;
    let data_dir = root.join("serve");
    let trello = trello_sim::SimServer::start(trello_sim::SimConfig::default())
        .await
        .map_err(|e| AppError::failed(format!("cannot start the Trello simulator: {e}")))?;
    let tfx = trello.handle().seed_standard();
    let linear = linear_sim::SimServer::start(linear_sim::SimConfig {
        // Linear delivers only to public https URLs; the demo server is on loopback.
        allow_loopback_webhooks: true,
        ..linear_sim::SimConfig::default()
    })
    .await
    .map_err(|e| AppError::failed(format!("cannot start the Linear simulator: {e}")))?;
    let lfx = linear.handle().seed_standard();

    let mut settings = Settings {
        log_format: base.log_format,
        ..Settings::default()
    };
    settings.trello.api_root = trello.base_url();
    settings.linear.api_url = linear.base_url();
    let (key, secret) = (tfx.api_key.clone(), tfx.api_secret.clone());
    let env: EnvLookup = Arc::new(move |var: &str| match var {
        ENV_API_KEY => Some(key.clone()),
        super::serve::ENV_API_SECRET => Some(secret.clone()),
        _ => None,
    });
    let listen: SocketAddr = args
        .listen
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let config = server_config(
        &ServeArgs {
            listen: Some(listen),
            public_url: None,
        },
        &env,
        &data_dir,
        &settings,
    )?;
    let composer = Arc::new(AppComposer::new(settings, data_dir.clone(), env, None)?);
    let tenant = TenantId::new(DEMO_TENANT).map_err(|e| AppError::failed(e.to_string()))?;
    let password: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    {
        use webriskops_server::Composer;
        let acc = composer.accounts();
        let fail = |e: webriskops_service::ServiceError| AppError::failed(e.to_string());
        accounts::add_tenant(acc.as_ref(), &tenant, Utc::now())
            .await
            .map_err(fail)?;
        accounts::add_user(
            acc.as_ref(),
            &tenant,
            DEMO_EMAIL,
            Role::Admin,
            &password,
            Utc::now(),
        )
        .await
        .map_err(fail)?;
    }
    let (ttoken, lkey) = (tfx.tokens.full.clone(), lfx.keys.admin.clone());
    // The simulators live as long as the server: only their addresses go to the banner.
    let (trello_url, linear_url) = (trello.base_url(), linear.base_url());
    serve_with(config, composer, move |addr| {
        out.say("WebRiskOps demo server: the /settings pages against local Trello and Linear simulators.");
        out.say(format!("Trello simulator: {trello_url}"));
        out.say(format!("Linear simulator: {linear_url}"));
        out.say(format!("Data directory:   {}", data_dir.display()));
        out.say("");
        out.say(format!("Open  http://{addr}/login"));
        out.say(format!("Sign in as {DEMO_EMAIL} with the password {password}"));
        out.say(format!("Trello token to paste on /settings/trello: {ttoken}"));
        out.say(format!("Linear API key to paste on /settings/linear: {lkey}"));
        out.say("Press Ctrl-C to stop.");
        eprintln!("listening on http://{addr}");
    })
    .await?;
    drop((trello, linear, temp));
    Ok(Exit::Ok)
}
