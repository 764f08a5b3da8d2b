//! `GET /metrics`: the operator's counters in the Prometheus text exposition format
//! (version 0.0.4: `# HELP`, `# TYPE`, then `name{label="value",…} number` lines).
//!
//! The counters are this process's, kept in memory since it started (a scraper sums the
//! replicas); the job queue's depth is read from the store at each scrape, so every
//! replica answers the same figures for it. Labels name a tracker and an outcome, never a
//! tenant or anything of a tenant's: the endpoint needs no session, and shows counts only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use sha2::Digest as _;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use webriskops_domain::ProviderKey;
use webriskops_ports::{BudgetUsage, JobKind, QueueDepth};
use webriskops_service::RequestCounts;

use crate::error::ApiError;
use crate::state::AppState;

/// The bearer token a scraper of `/metrics` must show, when the operator sets one
/// (`WEBRISKOPS_METRICS_TOKEN`). Only its SHA-256 digest is kept; `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        Self(sha2::Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `shown` is the token (digests compared, so the comparison takes the same
    /// time however much of it matches).
    fn admits(&self, shown: &str) -> bool {
        let other: [u8; 32] = sha2::Sha256::digest(shown.as_bytes()).into();
        self.0
            .iter()
            .zip(other)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A counter's series: label pairs (in order) to value.
type Series = BTreeMap<Vec<(&'static str, String)>, u64>;

/// This process's counters, by metric name.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, Series>>,
}

/// Every counter: name and help text, in the order they are rendered.
const COUNTERS: &[(&str, &str)] = &[
    (
        "webriskops_job_lease_takeovers_total",
        "Export jobs this process took over from a holder whose lease expired.",
    ),
    (
        "webriskops_jobs_finished_total",
        "Export jobs this process ended, by outcome (done, failed).",
    ),
    (
        "webriskops_webhook_deliveries_total",
        "Webhook deliveries received, by tracker and outcome (accepted, duplicate, rejected, unknown).",
    ),
    (
        "webriskops_syncs_total",
        "Status syncs run by this process, by tracker and outcome (synced, blocked, failed).",
    ),
    (
        "webriskops_status_events_total",
        "Status events the syncs of this process emitted, by tracker.",
    ),
    (
        "webriskops_tracker_requests_total",
        "Requests to the trackers as the adapters counted them, by tracker and kind (read, write), summed after each export and sync.",
    ),
    (
        "webriskops_tracker_rate_limited_total",
        "Tracker answers refused for the rate limit (429), by tracker and kind (token: one customer's token or route; key: the whole application key, every customer's), summed after each export and sync.",
    ),
];

/// The tracker label of a name taken from a request: the tracker's own name, or `other`
/// (so that a path cannot create series).
pub fn tracker_label(name: &str) -> &'static str {
    ProviderKey::ALL
        .iter()
        .map(|p| p.tracker_name())
        .find(|t| *t == name)
        .unwrap_or("other")
}

impl Metrics {
    /// Adds `n` to the series of `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        debug_assert!(COUNTERS.iter().any(|(c, _)| *c == name), "{name}");
        let key = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry(name).or_default().entry(key).or_default() += n;
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds the request counts of an export or a sync with `provider`.
    pub fn requests(&self, provider: ProviderKey, counts: &RequestCounts) {
        let tracker = provider.tracker_name();
        self.add(
            "webriskops_tracker_requests_total",
            &[("tracker", tracker), ("kind", "read")],
            counts.reads,
        );
        self.add(
            "webriskops_tracker_requests_total",
            &[("tracker", tracker), ("kind", "write")],
            counts.writes,
        );
        self.add(
            "webriskops_tracker_rate_limited_total",
            &[("tracker", tracker), ("kind", "key")],
            counts.rate_limited_key,
        );
        self.add(
            "webriskops_tracker_rate_limited_total",
            &[("tracker", tracker), ("kind", "token")],
            counts.rate_limited.saturating_sub(counts.rate_limited_key),
        );
    }

    /// The text exposition of the queue's `depth` (read at `now`) and of every counter.
    pub fn render(&self, depth: Option<&QueueDepth>, now: chrono::DateTime<Utc>) -> String {
        self.render_with(depth, &[], now)
    }

    /// [`Metrics::render`] with the shared key budgets' use (`budgets`: per tracker), read
    /// from the store at this scrape.
    pub fn render_with(
        &self,
        depth: Option<&QueueDepth>,
        budgets: &[(ProviderKey, BudgetUsage)],
        now: chrono::DateTime<Utc>,
    ) -> String {
        let mut out = String::new();
        render_budgets(&mut out, budgets);
        if let Some(d) = depth {
            let age = d
                .oldest_queued_at
                .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            gauge(
                &mut out,
                "webriskops_jobs_queued",
                "Export jobs queued (every replica's), read from the store at this scrape.",
                &d.queued.to_string(),
            );
            gauge(
                &mut out,
                "webriskops_jobs_running",
                "Export jobs running under a lease (every replica's), read from the store at this scrape.",
                &d.running.to_string(),
            );
            gauge(
                &mut out,
                "webriskops_jobs_oldest_queued_age_seconds",
                "Age of the oldest queued export job, 0 when none is queued.",
                &age.to_string(),
            );
        }
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            match counters.get(name).filter(|s| !s.is_empty()) {
                Some(series) => {
                    for (labels, value) in series {
                        let _ = writeln!(out, "{name}{} {value}", render_labels(labels));
                    }
                }
                // A counter without labels starts at 0; a labelled one shows no series
                // until it moves (its labels are not known before).
                None if !has_labels(name) => {
                    let _ = writeln!(out, "{name} 0");
                }
                None => {}
            }
        }
        out
    }
}

/// The shared key budgets: the key's limit, use and pause, and each tenant's use and
/// wait (every replica's, from the store).
fn render_budgets(out: &mut String, budgets: &[(ProviderKey, BudgetUsage)]) {
    if budgets.is_empty() {
        return;
    }
    let families: [(&str, &str); 5] = [
        ("webriskops_key_budget_limit", "Requests the tracker allows per window on the shared application key."),
        ("webriskops_key_budget_used", "Requests counted in the key's current window, every replica's."),
        ("webriskops_key_budget_paused_seconds", "Seconds left of a pause every replica keeps after the tracker refused the whole key (0: none)."),
        ("webriskops_key_budget_tenant_used", "Requests of each tenant counted in the key's current window (its share in use)."),
        ("webriskops_key_budget_tenant_waiting", "Requests of each tenant waiting for the key's budget now."),
    ];
    for (name, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (provider, u) in budgets {
            let tracker = provider.tracker_name();
            let key = render_labels(&[("tracker", tracker.to_owned())]);
            match name {
                "webriskops_key_budget_limit" => {
                    let _ = writeln!(out, "{name}{key} {}", u.limit);
                }
                "webriskops_key_budget_used" => {
                    let _ = writeln!(out, "{name}{key} {}", u.used);
                }
                "webriskops_key_budget_paused_seconds" => {
                    let secs = u.paused_for.map_or(0.0, |d| d.as_secs_f64());
                    let _ = writeln!(out, "{name}{key} {secs}");
                }
                _ => {
                    for o in &u.owners {
                        let labels = render_labels(&[
                            ("tracker", tracker.to_owned()),
                            ("tenant", o.owner.clone()),
                        ]);
                        let v = if name.ends_with("_used") {
                            o.used
                        } else {
                            o.waiting
                        };
                        let _ = writeln!(out, "{name}{labels} {v}");
                    }
                }
            }
        }
    }
}

fn has_labels(name: &str) -> bool {
    name != "webriskops_job_lease_takeovers_total"
}

fn gauge(out: &mut String, name: &str, help: &str, value: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// `webriskops_queue_jobs{kind,state}`: the queue's queued and running jobs by kind (exports
/// and syncs), read from the store at this scrape. The unlabelled `webriskops_jobs_*`
/// gauges keep counting exports only.
pub fn render_kinds(out: &mut String, depths: &[(JobKind, QueueDepth)]) {
    if depths.is_empty() {
        return;
    }
    let name = "webriskops_queue_jobs";
    let _ = writeln!(
        out,
        "# HELP {name} Jobs of the queue by kind (export, sync) and state (queued, running), every replica's, read from the store at this scrape."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (kind, d) in depths {
        for (st, n) in [("queued", d.queued), ("running", d.running)] {
            let _ = writeln!(
                out,
                "{name}{{kind=\"{}\",state=\"{st}\"}} {n}",
                kind.as_str()
            );
        }
    }
}

/// `{k="v",…}` with each value escaped (`\\`, `\"`, `\n`), or nothing without labels.
fn render_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// A label value as the text format writes it: backslash, double quote and line feed
/// escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `GET /metrics`: no session (the operator's scraper reads it); counts only. With a
/// metrics token configured, `Authorization: Bearer <token>` is required (401 otherwise).
/// A store that does not answer leaves the queue's gauges out (the counters still show)
/// and answers 503, so the scraper records the failure.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let shown = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !shown.is_some_and(|s| token.admits(s.trim())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "METRICS_TOKEN_REQUIRED",
                "the metrics need the metrics token",
                "send Authorization: Bearer with the value of WEBRISKOPS_METRICS_TOKEN",
            )
            .into_response();
        }
    }
    let depth = state.composer.queue().depth().await;
    let mut budgets = Vec::new();
    for p in ProviderKey::ALL.iter().copied() {
        if let Some(u) = state.composer.key_budget(p).await {
            budgets.push((p, u));
        }
    }
    let mut text = state
        .metrics
        .render_with(depth.as_ref().ok(), &budgets, Utc::now());
    if let Ok(export) = &depth {
        let queue = state.composer.queue();
        if let Ok(sync) = queue.depth_of(JobKind::Sync).await {
            render_kinds(
                &mut text,
                &[(JobKind::Export, *export), (JobKind::Sync, sync)],
            );
        }
    }
    let status = match &depth {
        Ok(_) => StatusCode::OK,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the job queue's depth for /metrics");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), r"x\ny");
        assert_eq!(escape_label_value("plain"), "plain");
        let m = Metrics::default();
        m.inc(
            "webriskops_syncs_total",
            &[("tracker", "tr\"ello"), ("outcome", "a\\b\nc")],
        );
        let text = m.render(None, Utc::now());
        assert!(
            text.contains(
                "webriskops_syncs_total{tracker=\"tr\\\"ello\",outcome=\"a\\\\b\\nc\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_queue_is_counted_by_kind_and_state_in_one_gauge() {
        let mut out = String::new();
        let export = QueueDepth {
            queued: 2,
            running: 1,
            oldest_queued_at: None,
        };
        let sync = QueueDepth {
            queued: 1,
            running: 0,
            oldest_queued_at: None,
        };
        render_kinds(
            &mut out,
            &[(JobKind::Export, export), (JobKind::Sync, sync)],
        );
        assert_eq!(
            out.matches("# TYPE webriskops_queue_jobs gauge").count(),
            1,
            "{out}"
        );
        for line in [
            "webriskops_queue_jobs{kind=\"export\",state=\"queued\"} 2",
            "webriskops_queue_jobs{kind=\"export\",state=\"running\"} 1",
            "webriskops_queue_jobs{kind=\"sync\",state=\"queued\"} 1",
            "webriskops_queue_jobs{kind=\"sync\",state=\"running\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in {out}");
        }
        let mut none = String::new();
        render_kinds(&mut none, &[]);
        assert_eq!(none, "", "a store that did not answer shows no gauge");
    }

    #[test]
    fn every_line_is_help_type_or_a_sample_and_counters_add_up() {
        let m = Metrics::default();
        m.inc("webriskops_jobs_finished_total", &[("outcome", "done")]);
        m.inc("webriskops_jobs_finished_total", &[("outcome", "done")]);
        m.inc("webriskops_jobs_finished_total", &[("outcome", "failed")]);
        m.requests(
            ProviderKey::TrelloCloud,
            &RequestCounts {
                reads: 4,
                writes: 3,
                rate_limited: 3,
                rate_limited_key: 1,
            },
        );
        let now = Utc::now();
        let depth = QueueDepth {
            queued: 2,
            running: 1,
            oldest_queued_at: Some(now - chrono::TimeDelta::seconds(90)),
        };
        let text = m.render(Some(&depth), now);
        for line in text.lines() {
            let ok = line.starts_with("# HELP webriskops_")
                || line.starts_with("# TYPE webriskops_")
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok());
            assert!(ok, "not exposition format: {line}");
        }
        for sample in [
            "webriskops_jobs_queued 2",
            "webriskops_jobs_running 1",
            "webriskops_jobs_oldest_queued_age_seconds 90",
            "webriskops_jobs_finished_total{outcome=\"done\"} 2",
            "webriskops_jobs_finished_total{outcome=\"failed\"} 1",
            "webriskops_job_lease_takeovers_total 0",
            "webriskops_tracker_requests_total{tracker=\"trello\",kind=\"read\"} 4",
            "webriskops_tracker_requests_total{tracker=\"trello\",kind=\"write\"} 3",
            "webriskops_tracker_rate_limited_total{tracker=\"trello\",kind=\"key\"} 1",
            "webriskops_tracker_rate_limited_total{tracker=\"trello\",kind=\"token\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == sample),
                "{sample} missing:\n{text}"
            );
        }
    }

    #[test]
    fn the_metrics_token_admits_itself_only_and_hides_in_debug() {
        let t = MetricsToken::new("scrape-secret-1");
        assert!(t.admits("scrape-secret-1"));
        assert!(!t.admits("scrape-secret-2"));
        assert!(!t.admits(""));
        assert!(!format!("{t:?}").contains("scrape"));
    }

    #[test]
    fn a_tracker_name_from_a_path_cannot_make_a_series() {
        assert_eq!(tracker_label("trello"), "trello");
        assert_eq!(tracker_label("linear"), "linear");
        assert_eq!(tracker_label("anything-else"), "other");
    }
}
