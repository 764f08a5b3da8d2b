//! The job queue: queued jobs claimed by one worker at a time under a lease.
//!
//! A worker claims a job for a while (the lease), renews the lease while it works (the
//! heartbeat) and finishes the job through the lease. A worker that dies stops renewing;
//! once its lease has expired, another worker's claim takes the job over. Every write of a
//! lease holder is fenced by its lease: after a takeover, the old holder's heartbeat and
//! finish answer that the lease is lost and change nothing. Handlers stay idempotent,
//! because a job taken over runs again from its start.
//!
//! Times are passed in (`now`) rather than read from a clock, so that every replica and
//! every test decides expiry the same way.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use webriskops_domain::{ProviderKey, TenantId};

use crate::accounts::ExportJob;
use crate::PortResult;

/// What a queued job does. Rows written before kinds existed are exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    /// An export of an uploaded findings file.
    Export,
    /// A status sync of the tenancy (scheduled, or after a webhook delivery).
    Sync,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [JobKind::Export, JobKind::Sync];

    /// The name stored in the job's row.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Export => "export",
            JobKind::Sync => "sync",
        }
    }

    /// The kind a stored name stands for.
    #[must_use]
    pub fn parse(name: &str) -> Option<JobKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One worker's hold on one job, until `until`. `attempt` counts the claims of the job
/// (1 for the first) and fences the holder: a takeover makes a new attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub job_id: String,
    /// Who holds it: a worker id unique across replicas (e.g. host, process and a random part).
    pub owner: String,
    pub attempt: i64,
    pub until: DateTime<Utc>,
}

/// A job handed to a worker, with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The job as stored when claimed (state `running`). A sync job's row carries no
    /// upload (`input_path` is empty).
    pub job: ExportJob,
    pub kind: JobKind,
    pub lease: Lease,
    /// The worker whose expired lease this claim took over, if any.
    pub taken_over_from: Option<String>,
}

/// How a job ended, written through its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// `true` for done, `false` for failed.
    pub succeeded: bool,
    pub progress_json: String,
    pub summary_json: Option<String>,
    pub bundle_dir: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// How deep the queue is, for operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueDepth {
    pub queued: u64,
    pub running: u64,
    /// When the oldest queued job was created.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// Queued jobs (every tenant's: exports and syncs), claimed under leases.
#[async_trait]
pub trait JobQueue: Send + Sync + Debug {
    /// Claims the oldest job that is queued, or running under a lease that expired before
    /// `now` (a takeover), for `owner` until `now + lease_for`. Concurrent claims, from
    /// any number of workers and replicas, never return the same job while its lease
    /// holds, nor a job of a tenancy (tenant and provider) that has another job running
    /// under a lease that holds at `now`: a tenancy's exports run one at a time across
    /// replicas, whatever their kind (a sync never runs beside an export of its tenancy).
    /// `None` when no job is claimable.
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> PortResult<Option<Claim>>;

    /// Extends a held lease to `now + lease_for`. `None` when the lease is lost: the job
    /// was taken over (another attempt) or finished; nothing is changed then.
    async fn heartbeat(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> PortResult<Option<Lease>>;

    /// Ends the job through its lease: state done or failed, the outcome written, the
    /// lease released. `false` when the lease is lost (nothing is written).
    async fn finish(&self, lease: &Lease, end: &JobEnd) -> PortResult<bool>;

    /// Writes the job's progress through its lease. `false` when the lease is lost
    /// (nothing is written): a holder that lost its job never overwrites the new
    /// holder's progress.
    async fn record_progress(&self, lease: &Lease, progress_json: &str) -> PortResult<bool>;

    /// Counts of queued and running export jobs and the oldest queued one's creation.
    async fn depth(&self) -> PortResult<QueueDepth> {
        self.depth_of(JobKind::Export).await
    }

    /// Counts of queued and running jobs of `kind` and the oldest queued one's creation.
    async fn depth_of(&self, kind: JobKind) -> PortResult<QueueDepth>;

    /// Queues a sync of the tenancy as job `id` (created at `now`), unless a sync of it is
    /// queued and not yet claimed: that one is joined, as it reads everything this one
    /// would. A sync that runs (claimed) is not joined: it may have read the tracker before
    /// the change that asks for this one. `true` when a job was added.
    async fn enqueue_sync(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
    ) -> PortResult<bool>;

    /// The schedule's tick: queues a sync of the tenancy as job `id` only when no sync of
    /// it was queued (by any worker, for any reason) less than `interval` before `now`, and
    /// none is queued. Decided atomically across replicas: however many replicas tick, a
    /// tenancy gets at most one scheduled sync per `interval`. Finished syncs of the
    /// tenancy older than a day (and than `interval`) are deleted on the way. `true` when
    /// a job was added.
    async fn enqueue_sync_if_due(
        &self,
        id: &str,
        tenant: &TenantId,
        provider: ProviderKey,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> PortResult<bool>;
}

/// The uploaded input of queued jobs, kept in the store so that whichever replica claims a
/// job reads it. An upload is a sequence of chunks numbered from 0, written before the job
/// is queued and deleted once the job has ended.
#[async_trait]
pub trait JobUploads: Send + Sync + Debug {
    /// Stores chunk `seq` of `job_id`'s upload; writing a chunk again replaces it.
    async fn put_upload_chunk(&self, job_id: &str, seq: u32, bytes: &[u8]) -> PortResult<()>;

    /// Chunk `seq` of `job_id`'s upload; `None` past its last chunk (or when there is no
    /// upload).
    async fn upload_chunk(&self, job_id: &str, seq: u32) -> PortResult<Option<Vec<u8>>>;

    /// Deletes every chunk of `job_id`'s upload (nothing when there is none).
    async fn delete_upload(&self, job_id: &str) -> PortResult<()>;
}
