//! The webhook receivers: `HEAD` and `POST /hooks/{tracker}/{opaque id}`. A delivery is
//! verified before anything in it is trusted (401 and nothing changed otherwise),
//! de-duplicated on its delivery id, and taken as a hint: a sync of the tenancy is queued
//! (joining one that waits) and answered 200 at once; whichever replica's worker claims the
//! job reads the items again and emits each change once.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use webriskops_service::webhooks::{self, Acceptance};

use crate::error::ApiError;
use crate::state::AppState;

/// The largest delivery accepted (Trello's action payloads are a few KiB).
const MAX_DELIVERY_BYTES: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/hooks/{tracker}/{id}",
        post(deliver)
            // Trello checks a callback with HEAD, without a signature, before it creates
            // the webhook: it must answer 200 (FACTS.md, webhooks).
            .head(|| async { StatusCode::OK })
            .layer(axum::extract::DefaultBodyLimit::max(MAX_DELIVERY_BYTES)),
    )
}

async fn deliver(
    State(state): State<AppState>,
    UrlPath((tracker, id)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let c = &state.composer;
    let secrets = c.local_ports().secrets;
    let registry = c.webhooks();
    let composer = c.clone();
    let verifier_for = move |p, s| composer.webhook_verifier(p, s);
    let accepted = webhooks::accept(
        secrets.as_ref(),
        registry.as_ref(),
        &webhooks::Delivery {
            opaque_id: &id,
            tracker_name: &tracker,
            headers: &headers,
            raw_body: &body,
        },
        &verifier_for,
        Utc::now(),
    )
    .await;
    let outcome = match &accepted {
        Ok(Acceptance::Unknown) => Some("unknown"),
        Ok(Acceptance::Rejected(_)) => Some("rejected"),
        Ok(Acceptance::Duplicate) => Some("duplicate"),
        Ok(Acceptance::Fresh { .. }) => Some("accepted"),
        Err(_) => None,
    };
    if let Some(outcome) = outcome {
        state.metrics.inc(
            "webriskops_webhook_deliveries_total",
            &[
                ("tracker", crate::metrics::tracker_label(&tracker)),
                ("outcome", outcome),
            ],
        );
    }
    match accepted {
        Ok(Acceptance::Unknown) => StatusCode::GONE.into_response(),
        Ok(Acceptance::Rejected(why)) => {
            tracing::warn!(tracker = %tracker, reason = %why, "refused a webhook delivery");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "WEBHOOK_REJECTED",
                format!("the delivery was refused: {why}"),
                "deliveries must be signed by the tracker for this callback",
            )
            .into_response()
        }
        Ok(Acceptance::Duplicate) => StatusCode::OK.into_response(),
        Ok(Acceptance::Fresh { who, event }) => {
            match crate::sync::queue_sync(&state, &who).await {
                Ok(added) => {
                    tracing::info!(tenant = %who.tenant, tracker = %tracker, kind = %event.kind,
                        joined = !added, "webhook delivery: sync queued");
                }
                // The delivery is counted as seen: a retry would be taken as a duplicate.
                // The schedule syncs the tenancy within its interval all the same.
                Err(e) => {
                    tracing::warn!(tenant = %who.tenant, error = %e.message, "cannot queue the sync after a webhook delivery; the scheduled sync will catch up");
                }
            }
            StatusCode::OK.into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
