//! Export jobs through the job queue: an upload is kept in the store (`JobUploads`) and
//! becomes a queued job row; every process runs a worker ([`work`]) that claims queued jobs
//! under a lease (`JobQueue`), renews the lease while the export runs, writes progress and
//! the outcome through it (fenced: a worker whose lease was taken over writes nothing), and
//! deletes the upload once the job has ended. A process that dies stops renewing: once its
//! lease has expired, another worker takes the job over and runs it again from its start
//! (the export's identity rules make the repeat write nothing twice). A stop drains the
//! claimed jobs first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::json::export_value;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{Claim, ExportJob, JobEnd, JobState, Lease};
use webriskops_service::export::{ExportDestination, ExportResult};
use webriskops_service::{run_export, ExportRequest, FallbackPolicy, Progress, Tenancy};

use crate::error::ApiError;
use crate::state::AppState;

/// Most jobs one process holds claimed at once (running, or waiting for their tenancy):
/// the rest stay queued for other replicas.
const MAX_CLAIMED: usize = 8;

/// Size of the chunks an upload is kept in.
const UPLOAD_CHUNK: usize = 1 << 20;

/// This process's worker: its claimed jobs, counted so that a stop can wait for them, the
/// one-at-a-time lock of each tenancy, and its id as a lease owner.
#[derive(Clone)]
pub struct JobRunner {
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
    /// Wakes the worker: a job was queued here, or a claimed one ended.
    wake: Arc<Notify>,
    stop: Arc<watch::Sender<bool>>,
    tenancies: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The lease owner: unique across replicas and restarts.
    owner: Arc<str>,
}

impl Default for JobRunner {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| "host".into());
        let random = new_id();
        Self {
            running: Arc::default(),
            idle: Arc::default(),
            wake: Arc::default(),
            stop: Arc::new(watch::channel(false).0),
            tenancies: Arc::default(),
            owner: format!("{host}-{}-{}", std::process::id(), &random[..8]).into(),
        }
    }
}

/// Held while an export or a sync of one tenancy runs.
pub type TenancyGuard = tokio::sync::OwnedMutexGuard<()>;

impl JobRunner {
    fn tenancy_mutex(&self, who: &Tenancy) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}\n{}", who.tenant, who.provider.tracker_name());
        let mut map = self.tenancies.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    }

    /// Waits until no export or sync of `who` runs, and holds it off until the guard is
    /// dropped. Exports and syncs of one tenancy run one at a time, as the CLI's store lock
    /// makes them: two at once would both write the cards of the same findings, or both
    /// emit the same status events.
    pub async fn tenancy(&self, who: &Tenancy) -> TenancyGuard {
        self.tenancy_mutex(who).lock_owned().await
    }

    /// The tenancy's guard if nothing of it runs now.
    pub fn tenancy_if_idle(&self, who: &Tenancy) -> Option<TenancyGuard> {
        self.tenancy_mutex(who).try_lock_owned().ok()
    }

    /// Stops claiming jobs (the worker returns), then waits until no claimed job runs.
    pub async fn drain(&self) {
        self.stop.send_replace(true);
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn started(&self) -> RunningGuard {
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self.clone())
    }
}

struct RunningGuard(JobRunner);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
        self.0.wake.notify_one();
    }
}

/// A job's progress as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobProgress {
    pub phase: String,
    pub total: Option<u64>,
    pub done: u64,
    pub notes: Vec<String>,
}

struct Recorder(Mutex<JobProgress>);

impl Progress for Recorder {
    fn phase(&self, name: &str, total: Option<u64>) {
        let mut p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        p.phase = name.to_owned();
        p.total = total;
        p.done = 0;
    }
    fn advance(&self, n: u64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).done += n;
    }
    fn note(&self, message: &str) {
        let mut p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if p.notes.len() < 20 {
            p.notes.push(message.to_owned());
        }
    }
}

impl Recorder {
    fn json(&self) -> String {
        let p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&*p).unwrap_or_else(|_| "{}".into())
    }
}

/// A new unguessable job id.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    hex::encode(b)
}

/// Where a job's upload is kept.
pub fn upload_path(state: &AppState, id: &str) -> PathBuf {
    state
        .config
        .work_dir
        .join("uploads")
        .join(format!("{id}.findings"))
}

fn bundle_dir(state: &AppState, id: &str) -> PathBuf {
    state.config.work_dir.join("bundles").join(id)
}

/// `text` (JSON) for the tenant: the server's own paths (the upload, the work directory)
/// are not shown, in messages and notes either.
fn for_tenant(state: &AppState, job: &ExportJob, text: &str) -> String {
    let esc = |p: &str| {
        let quoted = serde_json::to_string(p).unwrap_or_default();
        quoted.trim_matches('"').to_owned()
    };
    let work = state.config.work_dir.display().to_string();
    text.replace(&esc(&job.input_path), "the uploaded file")
        .replace(&esc(&work), "(server)")
}

/// The fallback policy's name, as the export's JSON writes it.
pub fn policy_name(p: FallbackPolicy) -> &'static str {
    match p {
        FallbackPolicy::Auto => "auto",
        FallbackPolicy::Never => "never",
        FallbackPolicy::Always => "always",
    }
}

/// The policy a name stands for.
pub fn parse_policy(name: &str) -> Option<FallbackPolicy> {
    [
        FallbackPolicy::Auto,
        FallbackPolicy::Never,
        FallbackPolicy::Always,
    ]
    .into_iter()
    .find(|p| policy_name(*p) == name)
}

/// Keeps the upload at `input` in the store, deletes the file, and queues a job for it:
/// whichever process's worker claims the job runs it.
///
/// # Errors
/// The file cannot be read; store failures (nothing is queued then).
pub async fn enqueue(
    state: &AppState,
    tenant: &TenantId,
    provider: ProviderKey,
    id: String,
    input: &Path,
    fallback: FallbackPolicy,
) -> Result<ExportJob, ApiError> {
    let uploads = state.composer.uploads();
    let stored = store_upload(state, &id, input).await;
    // The store holds the upload now (or nothing is queued): the file is not kept.
    forget_file(&id, input).await;
    if let Err(e) = stored {
        let _ = uploads.delete_upload(&id).await;
        return Err(e);
    }
    let job = ExportJob {
        id,
        tenant: tenant.clone(),
        provider,
        state: JobState::Queued,
        progress_json: "{}".into(),
        summary_json: None,
        bundle_dir: None,
        input_path: input.display().to_string(),
        fallback: policy_name(fallback).to_owned(),
        created_at: Utc::now(),
        finished_at: None,
    };
    if let Err(e) = state.composer.jobs().add_job(&job).await {
        let _ = uploads.delete_upload(&job.id).await;
        return Err(e.into());
    }
    state.jobs.wake.notify_one();
    Ok(job)
}

/// Copies the file at `input` into the store as chunks 0, 1, … (chunk 0 even when empty).
async fn store_upload(state: &AppState, id: &str, input: &Path) -> Result<(), ApiError> {
    let uploads = state.composer.uploads();
    let unreadable = |e: std::io::Error| ApiError::internal(format!("cannot read the upload: {e}"));
    let mut file = tokio::fs::File::open(input).await.map_err(unreadable)?;
    let mut seq = 0u32;
    loop {
        let mut chunk = Vec::with_capacity(UPLOAD_CHUNK);
        let n = (&mut file)
            .take(UPLOAD_CHUNK as u64)
            .read_to_end(&mut chunk)
            .await
            .map_err(unreadable)?;
        uploads.put_upload_chunk(id, seq, &chunk).await?;
        if n < UPLOAD_CHUNK {
            return Ok(());
        }
        seq += 1;
    }
}

/// Writes the job's upload from the store to a file of this process's work directory.
/// A job queued by an older build has no upload in the store: its file, where that build
/// left it, is used when this process can read it.
async fn fetch_upload(state: &AppState, job: &ExportJob) -> Result<PathBuf, ApiError> {
    let uploads = state.composer.uploads();
    let Some(first) = uploads.upload_chunk(&job.id, 0).await? else {
        let legacy = Path::new(&job.input_path);
        if legacy.starts_with(&state.config.work_dir) && legacy.is_file() {
            return Ok(legacy.to_owned());
        }
        return Err(ApiError::bad_request(
            "the job's upload is no longer available",
            "upload the findings file again",
        ));
    };
    let path = upload_path(state, &job.id);
    let unwritable = |e: std::io::Error| {
        ApiError::internal(format!(
            "cannot write the job's upload to the work directory: {e}"
        ))
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(unwritable)?;
    }
    let mut file = tokio::fs::File::create(&path).await.map_err(unwritable)?;
    file.write_all(&first).await.map_err(unwritable)?;
    let mut seq = 1u32;
    while let Some(chunk) = uploads.upload_chunk(&job.id, seq).await? {
        file.write_all(&chunk).await.map_err(unwritable)?;
        seq += 1;
    }
    file.flush().await.map_err(unwritable)?;
    Ok(path)
}

/// Deletes a file of the job's upload, if it is there.
async fn forget_file(id: &str, path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(job = %id, error = %e, "cannot delete the job's upload file");
        }
    }
}

/// The worker: claims queued jobs (and jobs whose holder's lease expired) and runs each in
/// a task of its own, until [`JobRunner::drain`] stops it.
pub async fn work(state: AppState) {
    let lease_for = state.config.job_lease;
    // Claims are tried when a job is queued here or ends here, and at least this often for
    // the jobs other replicas queued or lost.
    let poll = (lease_for / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut stop = state.jobs.stop.subscribe();
    let queue = state.composer.queue();
    tracing::info!(worker = %state.jobs.owner, lease_secs = lease_for.as_secs(), "export job worker started");
    loop {
        if *stop.borrow() {
            return;
        }
        if state.jobs.running.load(Ordering::SeqCst) < MAX_CLAIMED {
            match queue.claim(&state.jobs.owner, Utc::now(), lease_for).await {
                Ok(Some(claim)) => {
                    if *stop.borrow() {
                        // Claimed as the stop came: run it all the same (the drain waits).
                        spawn_claimed(&state, claim);
                        return;
                    }
                    spawn_claimed(&state, claim);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim export jobs"),
            }
        }
        tokio::select! {
            () = state.jobs.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

fn spawn_claimed(state: &AppState, claim: Claim) {
    let guard = state.jobs.started();
    let state = state.clone();
    tokio::spawn(async move {
        let _guard = guard;
        run_claimed(&state, claim).await;
    });
}

/// Runs a claimed job under its lease, renewed every third of its length, and ends it
/// through the lease. A lost lease (another worker took the job over) stops the export
/// at once, and nothing more is written.
async fn run_claimed(state: &AppState, claim: Claim) {
    let Claim {
        job,
        lease,
        taken_over_from,
    } = claim;
    let id = job.id.clone();
    tracing::info!(job = %id, tenant = %job.tenant, worker = %lease.owner, attempt = lease.attempt,
        "claimed export job {id}");
    if let Some(from) = &taken_over_from {
        tracing::info!(job = %id, tenant = %job.tenant, from = %from, attempt = lease.attempt,
            "took over an export job whose lease expired");
        state
            .metrics
            .inc("webriskops_job_lease_takeovers_total", &[]);
    }
    let queue = state.composer.queue();
    let lease_for = state.config.job_lease;
    let (lost_tx, mut lost_rx) = tokio::sync::oneshot::channel::<()>();
    let heartbeat = {
        let (queue, lease) = (queue.clone(), lease.clone());
        tokio::spawn(async move {
            let mut until = lease.until;
            loop {
                tokio::time::sleep(lease_for / 3).await;
                // Bounded: a heartbeat waiting for a pooled connection (the pool waits up
                // to its connect timeout) must not keep the holder writing past its lease.
                let renewed = tokio::time::timeout(
                    lease_for / 3,
                    queue.heartbeat(&lease, Utc::now(), lease_for),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(webriskops_ports::PortError::Other {
                        message: "the database did not answer the heartbeat in time".into(),
                        context: Default::default(),
                    })
                });
                match renewed {
                    Ok(Some(renewed)) => until = renewed.until,
                    Ok(None) => {
                        let _ = lost_tx.send(());
                        return;
                    }
                    // The database may answer again before the lease ends. If it does not,
                    // the holder stops on its own a third of a lease before the end, so
                    // that it is not still writing cards when another replica takes the job
                    // over (the tracker's writes are not fenced by the lease).
                    Err(e) => {
                        tracing::warn!(job = %lease.job_id, error = %e, "cannot renew the export job's lease");
                        let margin = chrono::TimeDelta::from_std(lease_for / 3).unwrap_or_default();
                        if Utc::now() + margin >= until {
                            let _ = lost_tx.send(());
                            return;
                        }
                    }
                }
            }
        })
    };
    let ended = tokio::select! {
        end = attempt(state, job.clone(), &lease) => Some(end),
        Ok(()) = &mut lost_rx => None,
    };
    heartbeat.abort();
    let local = upload_path(state, &id);
    let Some(end) = ended else {
        tracing::warn!(job = %id, "lost the export job's lease (taken over, or not renewed in time): stopped, writing nothing more");
        forget_file(&id, &local).await;
        return;
    };
    match queue.finish(&lease, &end).await {
        Ok(true) => {
            let outcome = if end.succeeded { "done" } else { "failed" };
            state
                .metrics
                .inc("webriskops_jobs_finished_total", &[("outcome", outcome)]);
            // The upload holds the tenant's findings: once the job has ended nothing reads
            // it again, so it is not kept, in the store or in files.
            if let Err(e) = state.composer.uploads().delete_upload(&id).await {
                tracing::warn!(job = %id, error = %e, "cannot delete the job's upload");
            }
            forget_file(&id, &local).await;
            let legacy = Path::new(&job.input_path);
            if legacy.starts_with(&state.config.work_dir) {
                forget_file(&id, legacy).await;
            }
            if end.succeeded {
                tracing::info!(job = %id, tenant = %job.tenant, "export job finished");
            }
        }
        Ok(false) => {
            tracing::warn!(job = %id, "lost the export job's lease (another worker took it over): its outcome is not written");
            forget_file(&id, &local).await;
        }
        Err(e) => {
            tracing::error!(job = %id, error = %e, "cannot record the export job's end; another worker runs it again once the lease ends");
            forget_file(&id, &local).await;
        }
    }
}

/// One run of a claimed job, from its upload to its end (done or failed).
async fn attempt(state: &AppState, mut job: ExportJob, lease: &Lease) -> JobEnd {
    let recorder = Arc::new(Recorder(Mutex::new(JobProgress::default())));
    let who = Tenancy {
        tenant: job.tenant.clone(),
        provider: job.provider,
    };
    // The job stays claimed (its lease renewed) while another export or sync of its
    // tenancy runs in this process.
    let _one_at_a_time = state.jobs.tenancy(&who).await;
    let result = match fetch_upload(state, &job).await {
        Ok(input) => {
            job.input_path = input.display().to_string();
            run(state, &job, lease, &recorder).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(end) => end,
        Err(e) => {
            tracing::error!(job = %job.id, tenant = %job.tenant, error = %e.message, "export job failed");
            let error = json!({"error": {"code": e.code, "message": e.message, "fix": e.fix}});
            JobEnd {
                succeeded: false,
                progress_json: for_tenant(state, &job, &recorder.json()),
                summary_json: Some(for_tenant(state, &job, &error.to_string())),
                bundle_dir: None,
                finished_at: Utc::now(),
            }
        }
    }
}

async fn run(
    state: &AppState,
    job: &ExportJob,
    lease: &Lease,
    recorder: &Arc<Recorder>,
) -> Result<JobEnd, ApiError> {
    let who = Tenancy {
        tenant: job.tenant.clone(),
        provider: job.provider,
    };
    let source = state.composer.open_findings(Path::new(&job.input_path))?;
    let tracker = state.composer.tracker(&who, None).await?;
    let ports = state.composer.local_ports().with_tracker(tracker);
    let request = ExportRequest {
        tenancy: who,
        fallback: parse_policy(&job.fallback).unwrap_or_default(),
        out_dir: bundle_dir(state, &job.id),
        dry_run: false,
        concurrency: state.config.export_concurrency.max(1),
    };
    // Progress reaches the row a few times a second while the export runs, through the
    // lease: a holder that lost the job stops writing it.
    let flusher = {
        let (recorder, queue, job, lease, state) = (
            recorder.clone(),
            state.composer.queue(),
            job.clone(),
            lease.clone(),
            state.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let progress = for_tenant(&state, &job, &recorder.json());
                if !matches!(queue.record_progress(&lease, &progress).await, Ok(true)) {
                    return;
                }
            }
        })
    };
    let portable = state.composer.portable();
    let outcome = run_export(
        &ports,
        portable.as_ref(),
        source.as_ref(),
        &request,
        recorder.as_ref(),
        Utc::now(),
    )
    .await;
    flusher.abort();
    let _ = flusher.await;
    let outcome = outcome?;
    if let Some(done) = outcome.summary() {
        // The adapter's counts (the app fills them in from it), whichever way the job ends.
        state.metrics.requests(job.provider, &done.requests);
    }
    let mut summary = export_value(&outcome, source.as_ref());
    // The tenant sees its upload and bundle as the API names them, not as files of the
    // server.
    summary["source"] = json!("upload");
    if !summary["out_dir"].is_null() {
        summary["out_dir"] = json!(format!("/api/v1/exports/{}/bundle", job.id));
    }
    let bundle_dir = match &outcome.result {
        ExportResult::Exported {
            destination: ExportDestination::Portable { out_dir, .. },
            ..
        } => Some(out_dir.display().to_string()),
        _ => None,
    };
    Ok(JobEnd {
        succeeded: true,
        progress_json: for_tenant(state, job, &recorder.json()),
        summary_json: Some(for_tenant(state, job, &summary.to_string())),
        bundle_dir,
        finished_at: Utc::now(),
    })
}
