//! Tenants, people and API tokens, and who a request comes from: the use cases a
//! multi-tenant front end runs before any integration use case.
//!
//! Passwords are kept only as argon2id hashes (PHC strings with their own salt); API
//! tokens and session ids are 256-bit random values shown once and kept only as their
//! SHA-256 digests, so a copy of the database gives no way in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use webriskops_domain::{Role, TenantId};
use webriskops_ports::{Accounts, Principal};

use crate::ServiceError;

/// The prefix of every API token, so that a leaked one is recognisable in a scan.
pub const API_TOKEN_PREFIX: &str = "wro_";

/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A fresh random secret: 32 bytes, URL-safe hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The digest a token or session id is kept and looked up by.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt.
///
/// # Errors
/// `Input` for a password shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServiceError::Input(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Input(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the stored `hash` (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A normalised e-mail: trimmed, lower case, with one `@` between non-empty parts.
///
/// # Errors
/// `Input` naming what is wrong.
pub fn normalise_email(email: &str) -> Result<String, ServiceError> {
    let e = email.trim().to_ascii_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && !host.is_empty() && !host.contains('@') && host.contains('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(ServiceError::Input(format!(
            "{:?} is not an e-mail address: use the form name@example.com",
            webriskops_domain::echo_untrusted(email)
        )))
    }
}

/// Adds a tenant; `false` when it existed already.
///
/// # Errors
/// Store failures.
pub async fn add_tenant(
    accounts: &dyn Accounts,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    Ok(accounts.add_tenant(tenant, now).await?)
}

async fn require_tenant(accounts: &dyn Accounts, tenant: &TenantId) -> Result<(), ServiceError> {
    if accounts.tenant_exists(tenant).await? {
        Ok(())
    } else {
        Err(ServiceError::Input(format!(
            "there is no tenant {tenant}: add it first with `webriskops tenant add {tenant}`"
        )))
    }
}

/// Adds a person to a tenant, or sets the role and password of the tenant's person with
/// this e-mail (their sessions end).
///
/// # Errors
/// `Input` for an unknown tenant, a malformed e-mail, a short password or an e-mail that
/// belongs to another tenant; store failures.
pub async fn add_user(
    accounts: &dyn Accounts,
    tenant: &TenantId,
    email: &str,
    role: Role,
    password: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    require_tenant(accounts, tenant).await?;
    let email = normalise_email(email)?;
    let hash = hash_password(password)?;
    if accounts.put_user(tenant, &email, role, &hash, now).await? {
        Ok(())
    } else {
        Err(ServiceError::Input(format!(
            "{email} already belongs to another tenant: use another e-mail address"
        )))
    }
}

/// Creates an API token for a tenant and returns it; only its digest is kept, so this is
/// the only time it is seen.
///
/// # Errors
/// `Input` for an unknown tenant; store failures.
pub async fn create_api_token(
    accounts: &dyn Accounts,
    tenant: &TenantId,
    role: Role,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    require_tenant(accounts, tenant).await?;
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    accounts
        .add_api_token(tenant, role, &digest(&token), now)
        .await?;
    Ok(token)
}

/// The caller an API token stands for.
///
/// # Errors
/// Store failures.
pub async fn authenticate_token(
    accounts: &dyn Accounts,
    token: &str,
) -> Result<Option<Principal>, ServiceError> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(accounts.api_token(&digest(token)).await?)
}

/// A session started by [`login`]: the id for the cookie and when it ends.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
}

/// Checks a person's e-mail and password and starts a session. A wrong e-mail and a wrong
/// password answer alike (`None`), and both cost one password check, so that the answer
/// and its timing do not tell which e-mails exist.
///
/// # Errors
/// Store failures.
pub async fn login(
    accounts: &dyn Accounts,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Option<NewSession>, ServiceError> {
    let user = match normalise_email(email) {
        Ok(e) => accounts.user_by_email(&e).await?,
        Err(_) => None,
    };
    // The hash of a random password keeps the work equal for unknown e-mails.
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default());
    let hash = user
        .as_ref()
        .map_or(decoy.as_str(), |u| u.password_hash.as_str());
    let ok = verify_password(password, hash);
    let Some(user) = user.filter(|_| ok) else {
        return Ok(None);
    };
    let id = random_secret();
    let expires_at = now + SESSION_TTL;
    accounts
        .add_session(&digest(&id), user.id, expires_at)
        .await?;
    Ok(Some(NewSession {
        id,
        principal: Principal {
            tenant: user.tenant,
            role: user.role,
            subject: user.email,
        },
        expires_at,
    }))
}

/// The caller of a live session id.
///
/// # Errors
/// Store failures.
pub async fn authenticate_session(
    accounts: &dyn Accounts,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Principal>, ServiceError> {
    if session_id.len() != 64 || !session_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(accounts.session(&digest(session_id), now).await?)
}

/// Ends a session server side.
///
/// # Errors
/// Store failures.
pub async fn logout(accounts: &dyn Accounts, session_id: &str) -> Result<(), ServiceError> {
    Ok(accounts.end_session(&digest(session_id)).await?)
}

/// Failed sign-ins that throttle a key (an e-mail, a client address): after this many
/// within [`SIGN_IN_WINDOW`], further sign-ins are refused until the window has passed,
/// whatever the password. Counted in the store, so every replica counts the same.
pub const SIGN_IN_LIMIT: u32 = 5;

/// The window failed sign-ins are counted in, from the first of them.
pub const SIGN_IN_WINDOW: Duration = Duration::minutes(15);

/// How long a sign-in for any of `keys` must wait, if one of them is throttled.
///
/// # Errors
/// Store failures.
pub async fn sign_in_wait(
    accounts: &dyn Accounts,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Option<std::time::Duration>, ServiceError> {
    let mut wait = None;
    for key in keys {
        if let Some(f) = accounts
            .sign_in_failures(&digest(key), now, SIGN_IN_WINDOW)
            .await?
            .filter(|f| f.count >= SIGN_IN_LIMIT)
        {
            let left = (f.since + SIGN_IN_WINDOW - now)
                .to_std()
                .unwrap_or_default();
            wait = wait.max(Some(left));
        }
    }
    Ok(wait)
}

/// Counts a failed sign-in against each of `keys` (kept as their digests).
///
/// # Errors
/// Store failures.
pub async fn sign_in_failed(
    accounts: &dyn Accounts,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    for key in keys {
        accounts
            .sign_in_failed(&digest(key), now, SIGN_IN_WINDOW)
            .await?;
    }
    Ok(())
}

/// Forgets the failed sign-ins of each of `keys` (a successful sign-in).
///
/// # Errors
/// Store failures.
pub async fn sign_in_succeeded(
    accounts: &dyn Accounts,
    keys: &[String],
) -> Result<(), ServiceError> {
    for key in keys {
        accounts.forget_sign_in_failures(&digest(key)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify_only_themselves() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("anything", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn digests_are_stable_and_hide_the_secret() {
        let d = digest("wro_abc");
        assert_eq!(d, digest("wro_abc"));
        assert_eq!(d.len(), 64);
        assert!(!d.contains("abc"));
        assert_ne!(random_secret(), random_secret());
    }

    #[test]
    fn emails_are_normalised_or_refused_with_the_form() {
        assert_eq!(
            normalise_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.io",
            "a b@x.io",
            "a@b@c.io",
            "a@localhost",
        ] {
            let e = normalise_email(bad).unwrap_err().to_string();
            assert!(e.contains("name@example.com"), "{bad}: {e}");
        }
    }
}
