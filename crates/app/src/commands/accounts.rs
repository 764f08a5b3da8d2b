//! `webriskops tenant add`, `user add` and `api-token create`: the tenants, people and
//! API tokens `serve` hosts, kept in the data directory's store, or in PostgreSQL with
//! `--database-url`.

use std::path::Path;

use chrono::Utc;
use serde_json::json;
use webriskops_domain::{Role, TenantId};
use webriskops_service::accounts;

use crate::app::App;
use crate::cli::{ApiTokenCommand, RoleArg, TenantCommand, UserCommand};
use crate::error::{AppError, AppResult, Exit};
use crate::redact;

fn role(r: RoleArg) -> Role {
    match r {
        RoleArg::Admin => Role::Admin,
        RoleArg::Viewer => Role::Viewer,
    }
}

fn tenant_id(name: &str) -> AppResult<TenantId> {
    TenantId::new(name.trim()).map_err(|e| {
        AppError::usage(format!(
            "tenant {:?}: {e}",
            webriskops_domain::echo_untrusted(name)
        ))
    })
}

fn service_error(e: webriskops_service::ServiceError) -> AppError {
    match e {
        webriskops_service::ServiceError::Input(m) => AppError::usage(m),
        other => AppError::failed(other.to_string()),
    }
}

/// Runs `tenant add`.
///
/// # Errors
/// A malformed name (exit 2); store failures.
pub async fn tenant(app: &mut App, cmd: &TenantCommand) -> AppResult<Exit> {
    let TenantCommand::Add { name } = cmd;
    let t = tenant_id(name)?;
    let store = app.store()?;
    let added = accounts::add_tenant(store.accounts.as_ref(), &t, Utc::now())
        .await
        .map_err(service_error)?;
    if app.out.json {
        app.out
            .json_doc(&json!({"tenant": t.as_str(), "added": added}));
    } else if added {
        app.out.say(format!(
            "Added tenant {t}. Add a person: webriskops user add --tenant {t} --email E --role admin"
        ));
    } else {
        app.out
            .say(format!("Tenant {t} exists already; nothing changed."));
    }
    Ok(Exit::Ok)
}

fn read_password(path: Option<&Path>, interactive: bool) -> AppResult<String> {
    if let Some(p) = path {
        let text = std::fs::read_to_string(p).map_err(|e| {
            AppError::usage(format!(
                "cannot read --password-file {}: {e}; check the path",
                p.display()
            ))
        })?;
        let first = text.lines().next().unwrap_or_default().to_owned();
        redact::register(&first);
        return Ok(first);
    }
    if !interactive {
        return Err(AppError::usage(
            "no password: give --password-file PATH (first line), or run on a terminal to be asked",
        ));
    }
    let first = rpassword::prompt_password("Password (at least 12 characters, hidden): ")
        .map_err(|e| AppError::failed(format!("cannot read the password: {e}")))?;
    let again = rpassword::prompt_password("Password again: ")
        .map_err(|e| AppError::failed(format!("cannot read the password: {e}")))?;
    if first != again {
        return Err(AppError::usage(
            "the two passwords differ; run the command again",
        ));
    }
    redact::register(&first);
    Ok(first)
}

/// Runs `user add`.
///
/// # Errors
/// An unknown tenant, a malformed e-mail, a short password (exit 2); store failures.
pub async fn user(app: &mut App, cmd: &UserCommand) -> AppResult<Exit> {
    let UserCommand::Add {
        tenant: name,
        email,
        role: r,
        password_file,
    } = cmd;
    let t = tenant_id(name)?;
    let password = read_password(password_file.as_deref(), app.interactive)?;
    let store = app.store()?;
    accounts::add_user(
        store.accounts.as_ref(),
        &t,
        email,
        role(*r),
        &password,
        Utc::now(),
    )
    .await
    .map_err(service_error)?;
    let email = accounts::normalise_email(email).map_err(service_error)?;
    if app.out.json {
        app.out
            .json_doc(&json!({"tenant": t.as_str(), "email": email, "role": role(*r).as_str()}));
    } else {
        app.out.say(format!(
            "{email} can sign in to tenant {t} as {} (webriskops serve, then /login).",
            role(*r).as_str()
        ));
    }
    Ok(Exit::Ok)
}

/// Runs `api-token create`.
///
/// # Errors
/// An unknown tenant (exit 2); store failures.
pub async fn api_token(app: &mut App, cmd: &ApiTokenCommand) -> AppResult<Exit> {
    let ApiTokenCommand::Create {
        tenant: name,
        role: r,
    } = cmd;
    let t = tenant_id(name)?;
    let store = app.store()?;
    let token = accounts::create_api_token(store.accounts.as_ref(), &t, role(*r), Utc::now())
        .await
        .map_err(service_error)?;
    // The token is shown this once, on purpose: it goes around the redactor.
    if app.out.json {
        app.out.say_unredacted(&json!({"token": token}).to_string());
    } else {
        app.out.note(format!(
            "API token for tenant {t} ({}); it is shown once, only its digest is kept:",
            role(*r).as_str()
        ));
        app.out.say_unredacted(&token);
    }
    Ok(Exit::Ok)
}
