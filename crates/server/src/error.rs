//! One error shape for the API, `{"error": {"code", "message", "fix"}}`, with the status
//! that fits; never a stack trace, never a secret (messages come from the service, whose
//! texts never quote a token).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use webriskops_domain::BlockedState;
use webriskops_service::ServiceError;

use crate::ComposeError;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fix: String,
    /// For `SETUP_BLOCKED`: the blocked states, each with its field and fix.
    pub blocked: Vec<BlockedState>,
    /// For `INTERNAL`: the id the server's log files the detail under.
    pub request_id: Option<String>,
}

/// Every error answer of the API: `{"error": {"code", "message", "fix"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorDetail<'a>,
}

/// What went wrong and what to do.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// Stable, e.g. `NOT_FOUND`, `SETUP_BLOCKED`, `TOKEN_REQUIRED`.
    code: &'a str,
    message: &'a str,
    /// One line saying what to do.
    fix: &'a str,
    /// For `SETUP_BLOCKED`: the blocked states, each with its field and fix.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<crate::schema::Blocked>, required = false)]
    blocked: &'a [BlockedState],
    /// For `INTERNAL`: the id the server's log files the detail under.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fix: fix.into(),
            blocked: Vec::new(),
            request_id: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "there is nothing here",
            "check the address; ids are only valid within your tenant",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "this needs a signed-in person or an API token",
            "send Authorization: Bearer <token> (webriskops api-token create), or sign in at /login",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "viewers can read but not change the integration",
            "ask an admin of your tenant, or use an admin API token",
        )
    }

    pub fn bad_request(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message, fix)
    }

    /// A failure of the server itself (a store error, say). Its detail can name files,
    /// databases and hosts, so it goes to the log only, under a fresh request id; the
    /// answer says that the request failed and gives the id.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut bytes = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        let id = hex::encode(bytes);
        tracing::error!(request_id = %id, detail = %detail, "request failed");
        Self {
            request_id: Some(id.clone()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("the server could not complete this request (request id {id})"),
                format!(
                    "try again; if it persists, give the operator the request id {id}: the \
                     server's log has the detail"
                ),
            )
        }
    }

    /// The server cannot start or stopped: for the operator who started it, in full.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SERVER",
            message,
            "check the server's configuration and start it again",
        )
    }

    /// Setup is blocked: 409 with the blocked states.
    pub fn blocked(readiness: &webriskops_domain::Readiness) -> Self {
        let codes: Vec<&str> = readiness.codes().iter().map(|c| c.as_str()).collect();
        Self {
            blocked: readiness.blocked.clone(),
            ..Self::new(
                StatusCode::CONFLICT,
                "SETUP_BLOCKED",
                format!("setup is blocked: {}", codes.join(", ")),
                "fix each blocked state (see `blocked`, each with its field and fix), then save again",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // An internal error was logged with its detail when it was made.
        if self.status.is_server_error() && self.request_id.is_none() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                fix: &self.fix,
                blocked: &self.blocked,
                request_id: self.request_id.as_deref(),
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Blocked(r) => ApiError::blocked(&r),
            ServiceError::Input(m) => {
                ApiError::bad_request(m, "correct the request and send it again")
            }
            ServiceError::Port(p) => {
                use webriskops_ports::PortError as P;
                match &p {
                    P::Unauthenticated { .. } => ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "PROVIDER_AUTH_REQUIRED",
                        p.to_string(),
                        "authorize again and hold the new token for setup",
                    ),
                    P::RateLimited { .. } | P::Unavailable { .. } | P::OutcomeUnknown { .. } => {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "TRACKER_UNAVAILABLE",
                            p.to_string(),
                            "the tracker did not answer in time; try again in a minute",
                        )
                    }
                    _ => ApiError::internal(p.to_string()),
                }
            }
        }
    }
}

impl From<ComposeError> for ApiError {
    fn from(e: ComposeError) -> Self {
        if e.server_side {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SERVER_CONFIGURATION",
                e.message,
                e.fix,
            )
        } else {
            ApiError::bad_request(e.message, e.fix)
        }
    }
}

impl From<webriskops_ports::PortError> for ApiError {
    fn from(e: webriskops_ports::PortError) -> Self {
        ServiceError::Port(e).into()
    }
}
