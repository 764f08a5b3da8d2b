//! `ProviderStore`: one JSON provider record per tenant and provider.

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use webriskops_domain::{ProviderKey, ProviderRecord, TenantId};
use webriskops_ports::{PortResult, ProviderStore};

use crate::error::StoreError;
use crate::{decode, time_text, SqliteStore};

#[async_trait]
impl ProviderStore for SqliteStore {
    async fn load(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<ProviderRecord>> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT record_json FROM provider_records WHERE tenant = ?1 AND provider_key = ?2",
                    params![tenant, provider.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| StoreError::sqlite(path, e))?;
            json.map(|j| serde_json::from_str(&j).map_err(|e| decode(path, "provider record", e)))
                .transpose()
        })
        .await
    }

    async fn save(&self, record: &ProviderRecord) -> PortResult<()> {
        let tenant = record.tenant.as_str().to_owned();
        let provider = record.provider_key;
        let json = serde_json::to_string(record).map_err(|e| {
            webriskops_ports::PortError::other(format!("cannot encode the provider record: {e}"))
        })?;
        self.run(move |conn, path| {
            conn.execute(
                "INSERT INTO provider_records (tenant, provider_key, record_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, provider_key)
                 DO UPDATE SET record_json = excluded.record_json, updated_at = excluded.updated_at",
                params![tenant, provider.as_str(), json, time_text(Utc::now())],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let tenant = tenant.as_str().to_owned();
        self.run(move |conn, path| {
            conn.execute(
                "DELETE FROM provider_records WHERE tenant = ?1 AND provider_key = ?2",
                params![tenant, provider.as_str()],
            )
            .map_err(|e| StoreError::sqlite(path, e))?;
            Ok(())
        })
        .await
    }
}
