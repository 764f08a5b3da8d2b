//! `ProviderStore`, `ExportLedger` and `RunJournal`: the integration's own state.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use webriskops_domain::{FindingId, ItemId, LedgerEntry, ProviderKey, ProviderRecord, TenantId};
use webriskops_ports::{
    ExportLedger, IntentOutcome, JournalIntent, LedgerScope, PortError, PortResult, ProviderStore,
    RunId, RunJournal, RunKind, RunRecord,
};

use crate::error::PgStoreError;
use crate::PgStore;

#[async_trait]
impl ProviderStore for PgStore {
    async fn load(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<ProviderRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record_json FROM provider_records WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|e| self.decode("provider record", e))
            })
            .transpose()?)
    }

    async fn save(&self, record: &ProviderRecord) -> PortResult<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| PortError::other(format!("cannot encode the provider record: {e}")))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO provider_records (tenant, provider_key, record_json, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, provider_key)
                 DO UPDATE SET record_json = excluded.record_json, updated_at = excluded.updated_at",
                &[
                    &record.tenant.as_str(),
                    &record.provider_key.as_str(),
                    &json,
                    &Utc::now(),
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM provider_records WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }
}

const LEDGER_COLUMNS: &str =
    "finding_id, item_id, item_url, fingerprint, target, observed, updated_at";

/// How many entries one statement of `put_many` writes.
const LEDGER_CHUNK: usize = 2_000;

impl PgStore {
    fn entry_from_row(&self, row: &Row) -> Result<LedgerEntry, PgStoreError> {
        Ok(LedgerEntry {
            finding_id: FindingId::new(row.get::<_, String>(0))
                .map_err(|e| self.decode("ledger finding id", e))?,
            item_id: ItemId::new(row.get::<_, String>(1))
                .map_err(|e| self.decode("ledger item id", e))?,
            item_url: row.get(2),
            fingerprint: row.get(3),
            target: self.keyword("ledger target", row.get(4))?,
            observed: self.keyword("ledger observed status", row.get(5))?,
            updated_at: row.get(6),
        })
    }
}

#[async_trait]
impl ExportLedger for PgStore {
    async fn get(
        &self,
        scope: &LedgerScope,
        finding: &FindingId,
    ) -> PortResult<Option<LedgerEntry>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {LEDGER_COLUMNS} FROM ledger
                     WHERE tenant = $1 AND provider = $2 AND container_id = $3 AND finding_id = $4"
                ),
                &[
                    &scope.tenant.as_str(),
                    &scope.provider.as_str(),
                    &scope.container_id,
                    &finding.as_str(),
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(row.map(|r| self.entry_from_row(&r)).transpose()?)
    }

    async fn all(&self, scope: &LedgerScope) -> PortResult<Vec<LedgerEntry>> {
        let client = self.client().await?;
        // Byte order, as SQLite's: independent of the database's collation.
        let rows = client
            .query(
                &format!(
                    "SELECT {LEDGER_COLUMNS} FROM ledger
                     WHERE tenant = $1 AND provider = $2 AND container_id = $3
                     ORDER BY finding_id COLLATE \"C\""
                ),
                &[
                    &scope.tenant.as_str(),
                    &scope.provider.as_str(),
                    &scope.container_id,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| self.entry_from_row(r))
            .collect::<Result<_, _>>()?)
    }

    async fn put(&self, scope: &LedgerScope, entry: &LedgerEntry) -> PortResult<()> {
        self.put_many(scope, std::slice::from_ref(entry)).await
    }

    /// One transaction; entries go as arrays (`unnest`), a few thousand per statement. A
    /// finding given twice keeps its last entry, as SQLite's `INSERT OR REPLACE` does.
    async fn put_many(&self, scope: &LedgerScope, entries: &[LedgerEntry]) -> PortResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            last.insert(e.finding_id.as_str(), i);
        }
        let kept: Vec<&LedgerEntry> = entries
            .iter()
            .enumerate()
            .filter(|(i, e)| last.get(e.finding_id.as_str()) == Some(i))
            .map(|(_, e)| e)
            .collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let stmt = tx
            .prepare(
                "INSERT INTO ledger (tenant, provider, container_id, finding_id, item_id, item_url,
                     fingerprint, target, observed, updated_at)
                 SELECT $1, $2, $3, * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::timestamptz[])
                 ON CONFLICT (tenant, provider, container_id, finding_id) DO UPDATE SET
                     item_id = excluded.item_id, item_url = excluded.item_url,
                     fingerprint = excluded.fingerprint, target = excluded.target,
                     observed = excluded.observed, updated_at = excluded.updated_at",
            )
            .await
            .map_err(|e| self.pg(e))?;
        for chunk in kept.chunks(LEDGER_CHUNK) {
            let finding: Vec<&str> = chunk.iter().map(|e| e.finding_id.as_str()).collect();
            let item: Vec<&str> = chunk.iter().map(|e| e.item_id.as_str()).collect();
            let url: Vec<Option<&str>> = chunk.iter().map(|e| e.item_url.as_deref()).collect();
            let fingerprint: Vec<&str> = chunk.iter().map(|e| e.fingerprint.as_str()).collect();
            let target: Vec<&str> = chunk.iter().map(|e| e.target.as_str()).collect();
            let observed: Vec<&str> = chunk.iter().map(|e| e.observed.as_str()).collect();
            let updated: Vec<DateTime<Utc>> = chunk.iter().map(|e| e.updated_at).collect();
            tx.execute(
                &stmt,
                &[
                    &scope.tenant.as_str(),
                    &scope.provider.as_str(),
                    &scope.container_id,
                    &finding,
                    &item,
                    &url,
                    &fingerprint,
                    &target,
                    &observed,
                    &updated,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn clear(&self, scope: &LedgerScope) -> PortResult<u64> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM ledger WHERE tenant = $1 AND provider = $2 AND container_id = $3",
                &[
                    &scope.tenant.as_str(),
                    &scope.provider.as_str(),
                    &scope.container_id,
                ],
            )
            .await
            .map_err(|e| self.pg(e))?)
    }
}

fn unknown_run(run: RunId) -> PgStoreError {
    PgStoreError::NotFound {
        what: format!("run {} in the journal", run.0),
    }
}

#[async_trait]
impl RunJournal for PgStore {
    async fn start_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<RunId> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO runs (tenant, provider_key, kind, started_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &tenant.as_str(),
                    &provider.as_str(),
                    &kind.as_str(),
                    &Utc::now(),
                ],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(RunId(row.get(0)))
    }

    /// An autocommit INSERT: committed (and, with the server's default
    /// `synchronous_commit`, flushed) when the call returns.
    async fn record_intent(
        &self,
        run: RunId,
        finding: &FindingId,
        action: &str,
    ) -> PortResult<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO intents (run, finding_id, action, recorded_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&run.0, &finding.as_str(), &action, &Utc::now()],
            )
            .await
            .map_err(|e| self.pg(e));
        match row {
            Ok(row) => Ok(row.get(0)),
            Err(e) if e.is(&SqlState::FOREIGN_KEY_VIOLATION) => Err(unknown_run(run).into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn record_outcome(&self, intent: i64, outcome: &IntentOutcome) -> PortResult<()> {
        let json = serde_json::to_string(outcome)
            .map_err(|e| PortError::other(format!("cannot encode the intent outcome: {e}")))?;
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE intents SET outcome = $2 WHERE id = $1",
                &[&intent, &json],
            )
            .await
            .map_err(|e| self.pg(e))?;
        if n == 0 {
            return Err(PgStoreError::NotFound {
                what: format!("intent {intent} in the journal"),
            }
            .into());
        }
        Ok(())
    }

    async fn finish_run(&self, run: RunId, summary_json: &str) -> PortResult<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE runs SET finished_at = $2, summary_json = $3 WHERE id = $1",
                &[&run.0, &Utc::now(), &summary_json],
            )
            .await
            .map_err(|e| self.pg(e))?;
        if n == 0 {
            return Err(unknown_run(run).into());
        }
        Ok(())
    }

    async fn unfinished(&self, tenant: &TenantId) -> PortResult<Vec<JournalIntent>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT i.id, i.run, i.finding_id, i.action, i.recorded_at
                 FROM intents i JOIN runs r ON r.id = i.run
                 WHERE r.tenant = $1 AND i.outcome IS NULL AND i.settled_by IS NULL
                 ORDER BY i.id",
                &[&tenant.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let mut intents = Vec::with_capacity(rows.len());
        for r in rows {
            intents.push(JournalIntent {
                id: r.get(0),
                run: RunId(r.get(1)),
                finding_id: FindingId::new(r.get::<_, String>(2))
                    .map_err(|e| self.decode("journal finding id", e))?,
                action: r.get(3),
                recorded_at: r.get(4),
            });
        }
        Ok(intents)
    }

    async fn settle_unfinished(&self, tenant: &TenantId, by: RunId) -> PortResult<u64> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE intents SET settled_by = $2
                 WHERE outcome IS NULL AND settled_by IS NULL
                   AND run IN (SELECT id FROM runs WHERE tenant = $1)",
                &[&tenant.as_str(), &by.0],
            )
            .await
            .map_err(|e| self.pg(e));
        match n {
            Ok(n) => Ok(n),
            Err(e) if e.is(&SqlState::FOREIGN_KEY_VIOLATION) => Err(unknown_run(by).into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn last_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<Option<RunRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id, kind, started_at, finished_at, summary_json FROM runs
                 WHERE tenant = $1 AND provider_key = $2 AND kind = $3
                 ORDER BY id DESC LIMIT 1",
                &[&tenant.as_str(), &provider.as_str(), &kind.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(RunRecord {
            id: RunId(r.get(0)),
            kind: self.keyword("run kind", r.get(1))?,
            started_at: r.get(2),
            finished_at: r.get(3),
            summary_json: r.get(4),
        }))
    }
}
