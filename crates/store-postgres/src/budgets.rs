//! `RequestBudgets` for several replicas: the grants of a key's slots live in
//! `budget_grants`, and an exchange holds the key's row in `budget_keys` (`FOR UPDATE`) from
//! reading the grants to writing its own, so two replicas never both spend the last slot.
//! Time is the database's (`clock_timestamp()`), one clock for every replica. What counts
//! and how the free slots are split is the domain's rule ([`webriskops_ports::budget::decide`]):
//! this file reads rows and writes the decision.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::Transaction;
use webriskops_domain::{GrantRow, Waiting};
use webriskops_ports::budget::{decide, demand_lifetime, usage_of};
use webriskops_ports::{
    BudgetAnswer, BudgetExchange, BudgetUsage, KeyScope, PortResult, RequestBudgets,
};

use crate::error::PgStoreError;
use crate::PgStore;

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl PgStore {
    /// The key's grants (id, row) and pause, and the database's time then. With `lock`
    /// (an exchange), under the key's row lock, held to the end of `tx`; without it (a
    /// reader: status pages, metrics), as they are, without waiting for exchanges.
    async fn budget_rows(
        &self,
        tx: &Transaction<'_>,
        scope: &str,
        lock: bool,
    ) -> Result<(Vec<(i64, GrantRow)>, Option<DateTime<Utc>>, DateTime<Utc>), PgStoreError> {
        let (paused, now): (Option<DateTime<Utc>>, DateTime<Utc>) = if lock {
            tx.execute(
                "INSERT INTO budget_keys (scope) VALUES ($1) ON CONFLICT (scope) DO NOTHING",
                &[&scope],
            )
            .await
            .map_err(|e| self.pg(e))?;
            let key = tx
                .query_one(
                    "SELECT paused_until, clock_timestamp() FROM budget_keys WHERE scope = $1 FOR UPDATE",
                    &[&scope],
                )
                .await
                .map_err(|e| self.pg(e))?;
            (key.get(0), key.get(1))
        } else {
            let key = tx
                .query_one(
                    "SELECT (SELECT paused_until FROM budget_keys WHERE scope = $1), clock_timestamp()",
                    &[&scope],
                )
                .await
                .map_err(|e| self.pg(e))?;
            (key.get(0), key.get(1))
        };
        let rows = tx
            .query(
                "SELECT id, owner, token, n, granted_at, done_at FROM budget_grants WHERE scope = $1",
                &[&scope],
            )
            .await
            .map_err(|e| self.pg(e))?;
        let rows = rows
            .iter()
            .map(|r| {
                let n: i32 = r.get(3);
                (
                    r.get::<_, i64>(0),
                    GrantRow {
                        owner: r.get(1),
                        token: r.get(2),
                        n: u32::try_from(n).unwrap_or(0),
                        granted_at: r.get(4),
                        done_at: r.get(5),
                    },
                )
            })
            .collect();
        Ok((rows, paused, now))
    }

    /// Live demand of the key's holders other than `except` (all when `None`).
    async fn budget_demand(
        &self,
        tx: &Transaction<'_>,
        key: &KeyScope,
        except: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Waiting>, PgStoreError> {
        let fresh = now - delta(demand_lifetime(key.rules.window));
        let rows = tx
            .query(
                "SELECT owner, waiting FROM budget_demand
                 WHERE scope = $1 AND holder IS DISTINCT FROM $2 AND waiting > 0 AND seen_at > $3",
                &[&key.name, &except, &fresh],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(rows
            .iter()
            .map(|r| Waiting {
                owner: r.get(0),
                waiting: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
            })
            .collect())
    }

    async fn exchange_in(&self, x: &BudgetExchange) -> Result<BudgetAnswer, PgStoreError> {
        let mut client = self.control_client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let (mut rows, paused, now) = self.budget_rows(&tx, &x.key.name, true).await?;
        // The ended grants, dated on this clock.
        if !x.released.is_empty() {
            let ids: Vec<i64> = x.released.iter().map(|r| r.grant).collect();
            let ends: Vec<DateTime<Utc>> = x.released.iter().map(|r| now - delta(r.ago)).collect();
            tx.execute(
                "UPDATE budget_grants g SET done_at = r.done_at
                 FROM unnest($2::bigint[], $3::timestamptz[]) AS r(id, done_at)
                 WHERE g.id = r.id AND g.scope = $1 AND g.done_at IS NULL",
                &[&x.key.name, &ids, &ends],
            )
            .await
            .map_err(|e| self.pg(e))?;
            for (id, row) in &mut rows {
                if let Some(pos) = ids.iter().position(|i| i == id) {
                    row.done_at.get_or_insert(ends[pos]);
                }
            }
        }
        // Grants that no longer count are forgotten.
        let (gone, kept): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(_, r)| r.forgettable(now, &x.key.rules));
        if !gone.is_empty() {
            let ids: Vec<i64> = gone.iter().map(|(id, _)| *id).collect();
            tx.execute("DELETE FROM budget_grants WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(|e| self.pg(e))?;
        }
        let kept: Vec<GrantRow> = kept.into_iter().map(|(_, r)| r).collect();
        let others = self
            .budget_demand(&tx, &x.key, Some(&x.holder), now)
            .await?;
        let mut decision = decide(x, &kept, &others, paused, now);
        for (g, ask) in decision.answer.grants.iter_mut().zip(&x.asks) {
            if g.n == 0 {
                continue;
            }
            let n = i32::try_from(g.n).unwrap_or(i32::MAX);
            let row = tx
                .query_one(
                    "INSERT INTO budget_grants (scope, owner, token, holder, n, granted_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&x.key.name, &ask.owner, &ask.token, &x.holder, &n, &now],
                )
                .await
                .map_err(|e| self.pg(e))?;
            g.grant = Some(row.get(0));
        }
        if !decision.waiting.is_empty() {
            let owners: Vec<&str> = decision.waiting.iter().map(|(o, _)| o.as_str()).collect();
            let waiting: Vec<i32> = decision
                .waiting
                .iter()
                .map(|(_, w)| i32::try_from(*w).unwrap_or(i32::MAX))
                .collect();
            tx.execute(
                "INSERT INTO budget_demand (scope, holder, owner, waiting, seen_at)
                 SELECT $1, $2, w.owner, w.waiting, $5
                 FROM unnest($3::text[], $4::integer[]) AS w(owner, waiting)
                 ON CONFLICT (scope, holder, owner)
                 DO UPDATE SET waiting = EXCLUDED.waiting, seen_at = EXCLUDED.seen_at",
                &[&x.key.name, &x.holder, &owners, &waiting, &now],
            )
            .await
            .map_err(|e| self.pg(e))?;
        }
        // Demand nobody renewed is forgotten.
        let stale = now - delta(demand_lifetime(x.key.rules.window));
        tx.execute(
            "DELETE FROM budget_demand WHERE scope = $1 AND seen_at <= $2",
            &[&x.key.name, &stale],
        )
        .await
        .map_err(|e| self.pg(e))?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(decision.answer)
    }
}

#[async_trait]
impl RequestBudgets for PgStore {
    async fn exchange(&self, x: &BudgetExchange) -> PortResult<BudgetAnswer> {
        Ok(self.exchange_in(x).await?)
    }

    async fn pause(&self, scope: &str, for_: Duration) -> PortResult<()> {
        let client = self.control_client().await?;
        client
            .execute(
                "INSERT INTO budget_keys (scope, paused_until)
                 VALUES ($1, clock_timestamp() + make_interval(secs => $2))
                 ON CONFLICT (scope) DO UPDATE
                 SET paused_until = GREATEST(budget_keys.paused_until, EXCLUDED.paused_until)",
                &[&scope, &for_.as_secs_f64()],
            )
            .await
            .map_err(|e| self.pg(e))?;
        Ok(())
    }

    async fn usage(&self, key: &KeyScope) -> PortResult<BudgetUsage> {
        let mut client = self.control_client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg(e))?;
        let (rows, paused, now) = self.budget_rows(&tx, &key.name, false).await?;
        let rows: Vec<GrantRow> = rows.into_iter().map(|(_, r)| r).collect();
        let demand = self.budget_demand(&tx, key, None, now).await?;
        tx.commit().await.map_err(|e| self.pg(e))?;
        Ok(usage_of(key, &rows, &demand, paused, now))
    }
}
