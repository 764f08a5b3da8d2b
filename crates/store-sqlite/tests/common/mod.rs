//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::path::Path;

use chrono::Utc;
use rand::RngCore;
use webriskops_domain::{
    FindingId, ItemId, LedgerEntry, ProviderKey, TargetState, TenantId, Token, TrackerStatus,
};
use webriskops_ports::LedgerScope;
use webriskops_store_sqlite::{MasterKey, SqliteStore, StoreOptions};

pub fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, StoreOptions::default()).expect("open the store")
}

pub fn open_with_key(dir: &Path, key: &MasterKey) -> SqliteStore {
    let opts = StoreOptions {
        master_key: Some(key.clone()),
        ..StoreOptions::default()
    };
    SqliteStore::open(dir, opts).expect("open the store")
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

pub fn scope(tenant_name: &str, container: &str) -> LedgerScope {
    LedgerScope {
        tenant: tenant(tenant_name),
        provider: ProviderKey::TrelloCloud,
        container_id: container.to_owned(),
    }
}

pub fn entry(n: usize) -> LedgerEntry {
    LedgerEntry {
        finding_id: FindingId::new(format!("wro-f-{n:06}")).unwrap(),
        item_id: ItemId::new(format!("card{n}")).unwrap(),
        item_url: (n % 2 == 0).then(|| format!("https://trello.com/c/card{n}")),
        fingerprint: format!("fp-{n}"),
        target: TargetState::Open,
        observed: TrackerStatus::Open,
        updated_at: Utc::now(),
    }
}

/// A token-shaped random value, generated at run time.
pub fn random_token() -> Token {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Token::new(format!("ATTA{hex}")).unwrap()
}
