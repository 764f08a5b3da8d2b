//! `ExportLedger`: finding → item rows keyed by scope, written in batches of one transaction.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use webriskops_domain::{FindingId, ItemId, LedgerEntry};
use webriskops_ports::{ExportLedger, LedgerScope, PortResult};

use crate::error::StoreError;
use crate::{decode, keyword, parse_time, time_text, SqliteStore};

const COLUMNS: &str = "finding_id, item_id, item_url, fingerprint, target, observed, updated_at";

/// The scope's key columns as owned text, for moving into a blocking task.
#[derive(Clone)]
struct ScopeKey {
    tenant: String,
    provider: &'static str,
    container: String,
}

impl From<&LedgerScope> for ScopeKey {
    fn from(s: &LedgerScope) -> Self {
        Self {
            tenant: s.tenant.as_str().to_owned(),
            provider: s.provider.as_str(),
            container: s.container_id.clone(),
        }
    }
}

fn entry_from_row(row: &Row<'_>, path: &Path) -> Result<LedgerEntry, StoreError> {
    let text = |i: usize| {
        row.get::<_, String>(i)
            .map_err(|e| StoreError::sqlite(path, e))
    };
    Ok(LedgerEntry {
        finding_id: FindingId::new(text(0)?).map_err(|e| decode(path, "ledger finding id", e))?,
        item_id: ItemId::new(text(1)?).map_err(|e| decode(path, "ledger item id", e))?,
        item_url: row.get(2).map_err(|e| StoreError::sqlite(path, e))?,
        fingerprint: text(3)?,
        target: keyword(path, "ledger target", &text(4)?)?,
        observed: keyword(path, "ledger observed status", &text(5)?)?,
        updated_at: parse_time(path, "ledger time", &text(6)?)?,
    })
}

fn upsert(
    conn: &Connection,
    path: &Path,
    scope: &ScopeKey,
    entries: &[LedgerEntry],
) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO ledger (tenant, provider, container_id, finding_id, item_id,
                 item_url, fingerprint, target, observed, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(sql)?;
    for e in entries {
        stmt.execute(params![
            scope.tenant,
            scope.provider,
            scope.container,
            e.finding_id.as_str(),
            e.item_id.as_str(),
            e.item_url,
            e.fingerprint,
            e.target.as_str(),
            e.observed.as_str(),
            time_text(e.updated_at),
        ])
        .map_err(sql)?;
    }
    Ok(())
}

#[async_trait]
impl ExportLedger for SqliteStore {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>> {
        let scope = ScopeKey::from(scope);
        let finding = finding.as_str().to_owned();
        self.run(move |conn, path| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM ledger
                     WHERE tenant = ?1 AND provider = ?2 AND container_id = ?3 AND finding_id = ?4"
                ))
                .map_err(|e| StoreError::sqlite(path, e))?;
            stmt.query_row(
                params![scope.tenant, scope.provider, scope.container, finding],
                |row| Ok(entry_from_row(row, path)),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(path, e))?
            .transpose()
        })
        .await
    }

    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        let scope = ScopeKey::from(scope);
        self.run(move |conn, path| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM ledger
                     WHERE tenant = ?1 AND provider = ?2 AND container_id = ?3
                     ORDER BY finding_id"
                ))
                .map_err(|e| StoreError::sqlite(path, e))?;
            let mut rows = stmt
                .query(params![scope.tenant, scope.provider, scope.container])
                .map_err(|e| StoreError::sqlite(path, e))?;
            let mut entries = Vec::new();
            while let Some(row) = rows.next().map_err(|e| StoreError::sqlite(path, e))? {
                entries.push(entry_from_row(row, path)?);
            }
            Ok(entries)
        })
        .await
    }

    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        self.put_many(scope, std::slice::from_ref(entry)).await
    }

    async fn put_many(&self, scope: &LedgerScope, entries: &[LedgerEntry]) -> PortResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let scope = ScopeKey::from(scope);
        let entries = entries.to_vec();
        self.run(move |conn, path| {
            let tx = conn
                .transaction()
                .map_err(|e| StoreError::sqlite(path, e))?;
            upsert(&tx, path, &scope, &entries)?;
            tx.commit().map_err(|e| StoreError::sqlite(path, e))
        })
        .await
    }

    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        let scope = ScopeKey::from(scope);
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "DELETE FROM ledger WHERE tenant = ?1 AND provider = ?2 AND container_id = ?3",
                    params![scope.tenant, scope.provider, scope.container],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(n as u64)
        })
        .await
    }
}
