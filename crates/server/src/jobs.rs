//! Export jobs: an upload becomes a job row, run in the background by the export use
//! case, its progress written to the row as it goes; a stop drains running jobs first,
//! and a job left queued or running by a process that died is run again at start (the
//! export's identity rules make the repeat write nothing twice).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::json::export_value;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_ports::{ExportJob, JobState};
use webriskops_service::export::{ExportDestination, ExportResult};
use webriskops_service::{run_export, ExportRequest, FallbackPolicy, Progress, Tenancy};

use crate::error::ApiError;
use crate::state::AppState;

/// Running jobs, counted so that a stop can wait for them, and the one-at-a-time lock of
/// each tenancy.
#[derive(Clone, Default)]
pub struct JobRunner {
    running: Arc<AtomicUsize>,
    idle: Arc<Notify>,
    tenancies: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
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

    /// Waits until no job is running.
    pub async fn drain(&self) {
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

/// Records a job for the upload at `input` and starts it.
///
/// # Errors
/// Store failures.
pub async fn start(
    state: &AppState,
    tenant: &TenantId,
    provider: ProviderKey,
    id: String,
    input: &Path,
    fallback: FallbackPolicy,
) -> Result<ExportJob, ApiError> {
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
    state.composer.jobs().add_job(&job).await?;
    spawn(state, job.clone());
    Ok(job)
}

fn spawn(state: &AppState, job: ExportJob) {
    let guard = state.jobs.started();
    let state = state.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let id = job.id.clone();
        // The job stays queued while another export or sync of its tenancy runs.
        let _one_at_a_time = state
            .jobs
            .tenancy(&Tenancy {
                tenant: job.tenant.clone(),
                provider: job.provider,
            })
            .await;
        let input = job.input_path.clone();
        let result = run(&state, job.clone()).await;
        // The upload holds the tenant's findings: once the job has ended (its outcome
        // recorded, or its failure below) nothing reads it again, so it is not kept.
        let forget_upload = || async {
            if let Err(e) = tokio::fs::remove_file(&input).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(job = %id, error = %e, "cannot delete the job's upload");
                }
            }
        };
        if result.is_ok() {
            forget_upload().await;
        }
        if let Err(e) = result {
            tracing::error!(job = %id, tenant = %job.tenant, error = %e.message, "export job failed");
            let error =
                serde_json::json!({"error": {"code": e.code, "message": e.message, "fix": e.fix}});
            let failed = ExportJob {
                state: JobState::Failed,
                summary_json: Some(for_tenant(&state, &job, &error.to_string())),
                finished_at: Some(Utc::now()),
                ..job
            };
            match state.composer.jobs().update_job(&failed).await {
                Ok(()) => forget_upload().await,
                Err(e) => tracing::error!(job = %id, error = %e, "cannot record the job's failure"),
            }
        }
    });
}

async fn run(state: &AppState, mut job: ExportJob) -> Result<(), ApiError> {
    let jobs = state.composer.jobs();
    job.state = JobState::Running;
    jobs.update_job(&job).await?;
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
    let recorder = Arc::new(Recorder(Mutex::new(JobProgress::default())));
    // Progress reaches the row a few times a second while the export runs.
    let flusher = {
        let (recorder, jobs, mut job, state) =
            (recorder.clone(), jobs.clone(), job.clone(), state.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                job.progress_json = for_tenant(&state, &job, &recorder.json());
                if jobs.update_job(&job).await.is_err() {
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
    job.progress_json = for_tenant(state, &job, &recorder.json());
    let mut summary = export_value(&outcome, source.as_ref());
    // The tenant sees its upload and bundle as the API names them, not as files of the
    // server.
    summary["source"] = json!("upload");
    if !summary["out_dir"].is_null() {
        summary["out_dir"] = json!(format!("/api/v1/exports/{}/bundle", job.id));
    }
    job.summary_json = Some(for_tenant(state, &job, &summary.to_string()));
    if let ExportResult::Exported {
        destination: ExportDestination::Portable { out_dir, .. },
        ..
    } = &outcome.result
    {
        job.bundle_dir = Some(out_dir.display().to_string());
    }
    job.state = JobState::Done;
    job.finished_at = Some(Utc::now());
    jobs.update_job(&job).await?;
    tracing::info!(job = %job.id, tenant = %job.tenant, "export job finished");
    Ok(())
}

/// Runs again every job a stopped process left queued or running, of those whose upload
/// is in this process's work directory. Replicas sharing one database each have a data
/// directory of their own: a job whose upload is elsewhere was started by another replica,
/// which may be running it now, and is left to it (taking over a dead replica's jobs is
/// the job queue's, with leases, once the server runs jobs through it).
///
/// # Errors
/// Store failures.
pub async fn resume_unfinished(state: &AppState) -> Result<(), ApiError> {
    for job in state.composer.jobs().unfinished_jobs().await? {
        if !Path::new(&job.input_path).starts_with(&state.config.work_dir) {
            tracing::debug!(job = %job.id, tenant = %job.tenant, "an unfinished export job of another replica: left to it");
            continue;
        }
        tracing::info!(job = %job.id, tenant = %job.tenant, "resuming an unfinished export job");
        spawn(state, job);
    }
    Ok(())
}
