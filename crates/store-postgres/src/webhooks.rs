//! `WebhookRegistry`: the webhooks the server registered, shared by every replica, so a
//! delivery reaching any replica finds its registration and a retried delivery id is
//! counted once (the primary key of `webhook_deliveries` decides between replicas).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{HookRecord, PortResult, WebhookRegistry};

use crate::error::PgStoreError;
use crate::PgStore;

const HOOK_COLUMNS: &str = "opaque_id, tenant, provider_key, webhook_id, callback_url, scope_id, \
                            created_at, last_delivery_at, deliveries, rejected";

impl PgStore {
    fn hook_of_row(&self, r: &Row) -> Result<HookRecord, PgStoreError> {
        Ok(HookRecord {
            opaque_id: r.get(0),
            tenant: self.tenant_of(r.get(1))?,
            provider: r
                .get::<_, &str>(2)
                .parse::<ProviderKey>()
                .map_err(|e| self.decode("provider key", e))?,
            webhook_id: r.get(3),
            callback_url: r.get(4),
            scope_id: r.get(5),
            created_at: r.get(6),
            last_delivery_at: r.get(7),
            deliveries: r.get(8),
            rejected: r.get(9),
        })
    }

    async fn query_hook(
        &self,
        where_clause: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<HookRecord>, PgStoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE {where_clause}"),
                args,
            )
            .await
            .map_err(|e| self.pg(e))?;
        row.map(|r| self.hook_of_row(&r)).transpose()
    }

    async fn put_hook_once(&self, h: &HookRecord) -> Result<(), PgStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        tx.execute(
            "DELETE FROM webhooks WHERE tenant = $1 AND provider_key = $2",
            &[&h.tenant.as_str(), &h.provider.as_str()],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.execute(
            &format!(
                "INSERT INTO webhooks ({HOOK_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &h.opaque_id,
                &h.tenant.as_str(),
                &h.provider.as_str(),
                &h.webhook_id,
                &h.callback_url,
                &h.scope_id,
                &h.created_at,
                &h.last_delivery_at,
                &h.deliveries,
                &h.rejected,
            ],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))
    }
}

#[async_trait]
impl WebhookRegistry for PgStore {
    /// Replaces the tenancy's registration in one transaction. Two replicas replacing it at
    /// once: the one whose insert meets the other's row tries again and replaces it, so
    /// one registration results.
    async fn put_hook(&self, hook: &HookRecord) -> PortResult<()> {
        match self.put_hook_once(hook).await {
            Err(e) if e.is(&SqlState::UNIQUE_VIOLATION) => Ok(self.put_hook_once(hook).await?),
            other => Ok(other?),
        }
    }

    async fn hook(&self, opaque_id: &str) -> PortResult<Option<HookRecord>> {
        Ok(self.query_hook("opaque_id = $1", &[&opaque_id]).await?)
    }

    async fn hook_of(
        &self,
        tenant: &TenantId,
        provider: ProviderKey,
    ) -> PortResult<Option<HookRecord>> {
        Ok(self
            .query_hook(
                "tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await?)
    }

    async fn delete_hook(&self, tenant: &TenantId, provider: ProviderKey) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM webhooks WHERE tenant = $1 AND provider_key = $2",
                &[&tenant.as_str(), &provider.as_str()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn record_delivery(
        &self,
        opaque_id: &str,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let fresh = tx
            .execute(
                "INSERT INTO webhook_deliveries (opaque_id, delivery_id, received_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&opaque_id, &delivery_id, &now],
            )
            .await
            .map_err(|e| self.pg(e))?
            == 1;
        if fresh {
            tx.execute(
                "UPDATE webhooks SET deliveries = deliveries + 1, last_delivery_at = $2
                 WHERE opaque_id = $1",
                &[&opaque_id, &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        }
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(fresh)
    }

    async fn record_rejection(&self, opaque_id: &str) -> PortResult<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE webhooks SET rejected = rejected + 1 WHERE opaque_id = $1",
                &[&opaque_id],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }
}
