//! `RunJournal`: runs and their announced writes; an intent is committed before its call returns.

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{FindingId, ProviderKey, TenantId};
use webriskops_ports::{
    IntentOutcome, JournalIntent, PortError, PortResult, RunId, RunJournal, RunKind, RunRecord,
};

use crate::error::StoreError;
use crate::{decode, keyword, parse_time, time_text, SqliteStore};

/// SQLite's extended result code for a violated foreign key.
const FOREIGN_KEY_VIOLATION: i32 = 787;

fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == FOREIGN_KEY_VIOLATION)
}

#[async_trait]
impl RunJournal for SqliteStore {
    async fn start_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<RunId> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO runs (tenant, provider_key, kind, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    tenant,
                    provider.as_str(),
                    kind.as_str(),
                    time_text(Utc::now())
                ],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(RunId(conn.last_insert_rowid()))
        })
        .await
    }

    async fn record_intent(
        &self,
        run: RunId,
        finding: &FindingId,
        action: &str,
    ) -> PortResult<i64> {
        let finding = finding.as_str().to_owned();
        let action = action.to_owned();
        // An autocommit INSERT under synchronous=FULL is on disk when `execute` returns.
        self.run(move |conn, path| {
            match conn.execute(
                "INSERT INTO intents (run, finding_id, action, recorded_at) VALUES (?1, ?2, ?3, ?4)",
                params![run.0, finding, action, time_text(Utc::now())],
            ) {
                Ok(_) => Ok(conn.last_insert_rowid()),
                Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                    what: format!("run {} in the journal", run.0),
                }),
                Err(e) => Err(StoreError::sqlite(path, e)),
            }
        })
        .await
    }

    async fn record_outcome(&self, intent: i64, outcome: &IntentOutcome) -> PortResult<()> {
        let json = serde_json::to_string(outcome)
            .map_err(|e| PortError::other(format!("cannot encode the intent outcome: {e}")))?;
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "UPDATE intents SET outcome = ?2 WHERE id = ?1",
                    params![intent, json],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: format!("intent {intent} in the journal"),
                });
            }
            Ok(())
        })
        .await
    }

    async fn finish_run(&self, run: RunId, summary_json: &str) -> PortResult<()> {
        let summary = summary_json.to_owned();
        self.run(move |conn, path| {
            let n = conn
                .execute(
                    "UPDATE runs SET finished_at = ?2, summary_json = ?3 WHERE id = ?1",
                    params![run.0, time_text(Utc::now()), summary],
                )
                .map_err(|e| StoreError::sqlite(path, e))?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: format!("run {} in the journal", run.0),
                });
            }
            Ok(())
        })
        .await
    }

    async fn unfinished(&self, tenant: &TenantId) -> PortResult<Vec<JournalIntent>> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            let sql = |e| StoreError::sqlite(path, e);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.id, i.run, i.finding_id, i.action, i.recorded_at
                     FROM intents i JOIN runs r ON r.id = i.run
                     WHERE r.tenant = ?1 AND i.outcome IS NULL AND i.settled_by IS NULL
                     ORDER BY i.id",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![tenant], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(sql)?;
            let mut intents = Vec::new();
            for row in rows {
                let (id, run, finding, action, recorded_at) = row.map_err(sql)?;
                intents.push(JournalIntent {
                    id,
                    run: RunId(run),
                    finding_id: FindingId::new(finding)
                        .map_err(|e| decode(path, "journal finding id", e))?,
                    action,
                    recorded_at: parse_time(path, "journal time", &recorded_at)?,
                });
            }
            Ok(intents)
        })
        .await
    }

    async fn settle_unfinished(&self, tenant: &TenantId, by: RunId) -> PortResult<u64> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            match conn.execute(
                "UPDATE intents SET settled_by = ?2
                 WHERE outcome IS NULL AND settled_by IS NULL
                   AND run IN (SELECT id FROM runs WHERE tenant = ?1)",
                params![tenant, by.0],
            ) {
                Ok(n) => Ok(n as u64),
                Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                    what: format!("run {} in the journal", by.0),
                }),
                Err(e) => Err(StoreError::sqlite(path, e)),
            }
        })
        .await
    }

    async fn last_run(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
        kind: RunKind,
    ) -> PortResult<Option<RunRecord>> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            let row = conn
                .query_row(
                    "SELECT id, kind, started_at, finished_at, summary_json FROM runs
                     WHERE tenant = ?1 AND provider_key = ?2 AND kind = ?3
                     ORDER BY id DESC LIMIT 1",
                    params![tenant, provider.as_str(), kind.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            let Some((id, kind, started, finished, summary_json)) = row else {
                return Ok(None);
            };
            Ok(Some(RunRecord {
                id: RunId(id),
                kind: keyword(path, "run kind", &kind)?,
                started_at: parse_time(path, "run start", &started)?,
                finished_at: finished
                    .map(|f| parse_time(path, "run end", &f))
                    .transpose()?,
                summary_json,
            }))
        })
        .await
    }
}
