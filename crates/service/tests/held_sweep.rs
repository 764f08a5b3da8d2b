//! The sweep of expired held setup tokens, on the embedded SQLite store: a token held for
//! setup is deleted once it has expired, though its tenant never reads it again; so is a
//! setup-page nonce never posted back.

use std::sync::Arc;

use chrono::{Duration, Utc};
use webriskops_domain::{ProviderKey, TenantId, Token};
use webriskops_ports::{Accounts, SecretStore};
use webriskops_service::integration::{
    held_binding, held_ref, held_token, hold_token, issue_token_nonce, sweep_expired_holds,
    take_token_nonce, SweptHolds, HOLD_TTL, TOKEN_NONCE_TTL,
};
use webriskops_service::{ServicePorts, Tenancy};
use webriskops_store_sqlite::{MasterKey, SqliteStore, StoreOptions};

fn who(tenant: &str) -> Tenancy {
    Tenancy {
        tenant: TenantId::new(tenant).unwrap(),
        provider: ProviderKey::TrelloCloud,
    }
}

fn store(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(
            dir.path(),
            StoreOptions {
                master_key: Some(MasterKey::generate()),
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn an_expired_held_token_is_deleted_without_its_tenant_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let ports = ServicePorts::from_store(store.clone());
    let accounts: &dyn Accounts = store.as_ref();
    let now = Utc::now();
    let (acme, globex) = (who("acme"), who("globex"));
    // Acme's was held 31 minutes ago and has expired; Globex's is fresh.
    let long_ago = now - HOLD_TTL - Duration::minutes(1);
    hold_token(
        &ports,
        accounts,
        &acme,
        &Token::new("acme-held-1").unwrap(),
        long_ago,
    )
    .await
    .unwrap();
    hold_token(
        &ports,
        accounts,
        &globex,
        &Token::new("globex-held-2").unwrap(),
        now,
    )
    .await
    .unwrap();
    let sealed = |w: &Tenancy| {
        let store = store.clone();
        let w = w.clone();
        async move {
            store
                .get_token(&held_ref(&w), &held_binding(&w))
                .await
                .unwrap()
        }
    };
    assert!(sealed(&acme).await.is_some(), "kept until the sweep");

    assert_eq!(
        sweep_expired_holds(&ports, accounts, now).await.unwrap(),
        SweptHolds {
            tokens: 1,
            authorizations: 0
        }
    );
    // Gone from the secret store and from the accounts, read directly (never through
    // `held_token`, which would delete it itself).
    assert!(sealed(&acme).await.is_none());
    assert_eq!(
        accounts
            .held_until(&acme.tenant, acme.provider)
            .await
            .unwrap(),
        None
    );
    assert_eq!(accounts.expired_holds(now).await.unwrap(), vec![]);
    // Globex's fresh one stays, and a second sweep finds nothing.
    assert_eq!(sealed(&globex).await.unwrap().expose(), "globex-held-2");
    assert_eq!(
        sweep_expired_holds(&ports, accounts, now).await.unwrap(),
        SweptHolds::default()
    );
    let held = held_token(&ports, accounts, &globex, now).await.unwrap();
    assert_eq!(held.unwrap().expose(), "globex-held-2");
}

#[tokio::test]
async fn an_expired_setup_page_nonce_is_deleted_though_never_posted_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let ports = ServicePorts::from_store(store.clone());
    let accounts: &dyn Accounts = store.as_ref();
    let now = Utc::now();
    let acme = who("acme");
    // Two views of the setup page: one over an hour ago, never posted; one just now.
    let long_ago = now - TOKEN_NONCE_TTL - Duration::minutes(1);
    issue_token_nonce(accounts, "session-1", &acme, long_ago)
        .await
        .unwrap();
    let fresh = issue_token_nonce(accounts, "session-1", &acme, now)
        .await
        .unwrap();

    assert_eq!(
        sweep_expired_holds(&ports, accounts, now).await.unwrap(),
        SweptHolds {
            tokens: 0,
            authorizations: 1
        },
        "the expired nonce is deleted, the fresh one kept"
    );
    assert_eq!(
        sweep_expired_holds(&ports, accounts, now).await.unwrap(),
        SweptHolds::default(),
        "nothing is left to delete"
    );
    assert!(
        take_token_nonce(accounts, "session-1", &acme, &fresh, now)
            .await
            .unwrap(),
        "the fresh nonce still works once"
    );
}
