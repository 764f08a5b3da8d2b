//! The one place Trello answers become [`PortError`]s (FACTS.md §9-10): status first,
//! then the body as JSON (`{message, error}` or `{code, message}`), else as text.

use std::time::Duration;

use webriskops_ports::PortError;

use crate::catalog::{HttpMethod, Subject};

/// What was asked, to word the error and to read a 401.
#[derive(Debug, Clone)]
pub(crate) struct ErrorContext {
    pub method: HttpMethod,
    /// The route template (never the raw path, which may hold a token).
    pub route: &'static str,
    pub subject: Subject,
    /// The object, e.g. `board 5f0c…`; `None` for credential routes.
    pub what: Option<String>,
}

impl ErrorContext {
    fn request(&self) -> String {
        format!("{} {}", self.method.as_str(), self.route)
    }

    fn about(&self) -> String {
        match &self.what {
            Some(w) => format!("{w} ({})", self.request()),
            None => self.request(),
        }
    }
}

/// Secrets redacted and outside text cut and escaped: the one copy every HTTP adapter uses.
pub(crate) use webriskops_http::{excerpt, Redactor};

/// An error body: its human text and machine code, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub text: String,
    pub code: Option<String>,
}

/// Reads a body as Trello's JSON error shapes, else as plain text.
pub(crate) fn parse_body(body: &[u8]) -> ErrorBody {
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(m)) => {
            let s = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let message = s("message");
            let code = s("error").or_else(|| s("code"));
            ErrorBody {
                text: message
                    .or_else(|| code.clone())
                    .unwrap_or_else(|| raw.to_owned()),
                code,
            }
        }
        Ok(serde_json::Value::String(text)) => ErrorBody { text, code: None },
        _ => ErrorBody {
            text: raw.to_owned(),
            code: None,
        },
    }
}

/// Characters of an answer's error code (`API_TOKEN_LIMIT_EXCEEDED`, …) kept in a message.
const CODE_CHARS: usize = 64;

/// Maps a non-2xx answer. `retry_after` is passed on for 429.
pub(crate) fn map_status(
    status: u16,
    body: &[u8],
    ctx: &ErrorContext,
    redactor: &Redactor,
    retry_after: Option<Duration>,
) -> PortError {
    let parsed = parse_body(body);
    let text = redactor.excerpt(&parsed.text, 300);
    let lower = text.to_ascii_lowercase();
    let about = ctx.about();
    match status {
        400 if ctx.subject == Subject::Webhook && lower.contains("already exists") => {
            // "A webhook with that callback, model, and token already exists" (FACTS.md §7).
            PortError::Conflict {
                context: Default::default(),
                message: format!("a webhook with that callback, model and token already exists ({about})"),
            }
        }
        400 if ctx.subject == Subject::Webhook && lower.contains("did not return 200") => {
            // Trello's HEAD check of the callback failed (FACTS.md §7).
            PortError::InvalidInput {
                context: Default::default(),
                message: format!(
                    "Trello could not confirm the callback URL of {about}: it must be reachable from Trello and answer 200 to HEAD ({text})"
                ),
            }
        }
        400 => {
            let message = if lower.starts_with("invalid id") {
                format!(
                    "invalid id: Trello refused the {} id of {about}",
                    ctx.subject.noun()
                )
            } else if let Some(field) = lower
                .strip_prefix("invalid value for ")
                .map(|_| text["invalid value for ".len()..].trim().to_owned())
            {
                format!("invalid value for {field} in {about}")
            } else if lower.contains("invalid objectid") {
                format!(
                    "Invalid objectId in {about}: a member (idMembers) or label (idLabels) id is not on the board"
                )
            } else {
                format!("Trello refused {about}: {text}")
            };
            PortError::InvalidInput {
                context: Default::default(),
                message,
            }
        }
        401 => {
            let credentials_refused = ["invalid token", "invalid key", "expired token", "token expired", "token revoked", "invalid app token"]
                .iter()
                .any(|m| lower.contains(m));
            let permission = lower.starts_with("unauthorized") || lower.contains("permission");
            if credentials_refused {
                PortError::Unauthenticated {
                    context: Default::default(),
                    message: format!("Trello refused the credentials ({text}) on {}", ctx.request()),
                }
            } else if permission || ctx.subject != Subject::Credentials {
                // An id the token cannot see answers 401, not 404 (FACTS.md §10.2).
                PortError::PermissionDenied {
                    context: Default::default(),
                    message: format!("the token may not access {about}: {text}"),
                }
            } else {
                PortError::Unauthenticated {
                    context: Default::default(),
                    message: format!("Trello refused the credentials ({text}) on {}", ctx.request()),
                }
            }
        }
        403 => PortError::PermissionDenied {
            context: Default::default(),
            message: format!("the token may not access {about}: {text}"),
        },
        404 => PortError::NotFound {
            context: Default::default(),
            what: match &ctx.what {
                Some(w) => format!("{w} ({text})"),
                None => format!("{} ({text})", ctx.request()),
            },
        },
        413 | 414 => PortError::InvalidInput {
            context: Default::default(),
            message: format!(
                "request too long: Trello answered {status} to {about}; long text must travel in a JSON body, and URLs stay under about 8 KB"
            ),
        },
        429 => PortError::RateLimited {
            context: Default::default(),
            retry_after,
            message: format!(
                "{} on {}",
                // The code is outside text too: redacted, escaped and cut like the rest
                // (found by the trello_answers fuzz target: a code holding the key).
                parsed.code.as_deref().map_or(text.clone(), |c| {
                    format!("{}: {text}", redactor.excerpt(c, CODE_CHARS))
                }),
                ctx.request()
            ),
        },
        500..=599 => PortError::Unavailable {
            context: Default::default(),
            message: format!("Trello answered {status} to {}: {text}", ctx.request()),
        },
        _ => PortError::Other {
            context: Default::default(),
            message: format!("Trello answered {status} to {about}: {text}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(subject: Subject, what: Option<&str>) -> ErrorContext {
        ErrorContext {
            method: HttpMethod::Get,
            route: "/boards/{id}",
            subject,
            what: what.map(str::to_owned),
        }
    }

    fn map(status: u16, body: &str, subject: Subject) -> PortError {
        map_status(
            status,
            body.as_bytes(),
            &ctx(subject, Some("board 5f0c0c0c0c0c0c0c0c0c0c0c")),
            &Redactor::new(&["SECRETTOKEN"]),
            None,
        )
    }

    #[test]
    fn credentials_refused_are_unauthenticated() {
        for body in [
            "invalid token",
            "invalid key",
            "expired token",
            "Invalid Token",
        ] {
            assert!(
                matches!(
                    map(401, body, Subject::Board),
                    PortError::Unauthenticated { .. }
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn permission_answers_are_permission_denied() {
        for body in [
            "unauthorized permission requested",
            "unauthorized member permission requested.",
            "unauthorized organization.",
        ] {
            assert!(
                matches!(
                    map(401, body, Subject::Credentials),
                    PortError::PermissionDenied { .. }
                ),
                "{body}"
            );
        }
        // An unknown 401 body about an object id: not visible to the token.
        assert!(matches!(
            map(401, "nope", Subject::Board),
            PortError::PermissionDenied { .. }
        ));
        // An unknown 401 body on a credential route: the credentials.
        assert!(matches!(
            map(401, "nope", Subject::Credentials),
            PortError::Unauthenticated { .. }
        ));
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = map(400, "invalid value for idList", Subject::List);
        assert!(
            matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idList")),
            "{e}"
        );
        let e = map(400, "invalid id", Subject::Board);
        assert!(
            matches!(&e, PortError::InvalidInput { message, .. } if message.contains("board id")),
            "{e}"
        );
        let e = map(
            400,
            r#"{"message":"Invalid objectId","error":"ERROR"}"#,
            Subject::Card,
        );
        assert!(
            matches!(&e, PortError::InvalidInput { message, .. } if message.contains("idMembers")),
            "{e}"
        );
        let e = map(414, "Request-URI Too Large", Subject::Card);
        assert!(
            matches!(&e, PortError::InvalidInput { message, .. } if message.contains("request too long")),
            "{e}"
        );
    }

    #[test]
    fn other_statuses() {
        assert!(matches!(
            map(404, "The requested resource was not found.", Subject::Board),
            PortError::NotFound { .. }
        ));
        let e = map(
            429,
            r#"{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#,
            Subject::Board,
        );
        assert!(
            matches!(&e, PortError::RateLimited { message, .. } if message.contains("API_TOKEN_LIMIT_EXCEEDED")),
            "{e}"
        );
        assert!(matches!(
            map(503, "Service Unavailable", Subject::Board),
            PortError::Unavailable { .. }
        ));
        assert!(matches!(
            map(500, "", Subject::Board),
            PortError::Unavailable { .. }
        ));
        assert!(matches!(
            map(403, "forbidden", Subject::Board),
            PortError::PermissionDenied { .. }
        ));
    }

    #[test]
    fn secrets_in_bodies_are_redacted() {
        let e = map(400, "bad token SECRETTOKEN here", Subject::Board);
        assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");
        assert!(e.to_string().contains("<redacted>"));
    }

    #[test]
    fn echoed_text_is_short_and_escaped() {
        let e = map(
            500,
            &format!("\u{1b}[31mfake\nlog line{}", "x".repeat(1_000_000)),
            Subject::Board,
        );
        let m = e.to_string();
        assert!(m.len() < 400, "{} bytes", m.len());
        assert!(m.contains("\\u{1b}[31mfake\\nlog line"), "{m}");
        assert!(!m.contains('\n') && !m.contains('\u{1b}'));
        assert!(m.ends_with('…'));
        assert_eq!(excerpt("été", 2), "ét…");
        assert_eq!(excerpt("ok", 2), "ok");
    }

    #[test]
    fn bodies_parse_as_json_or_text() {
        assert_eq!(
            parse_body(br#"{"code":"x","message":"y"}"#),
            ErrorBody {
                text: "y".into(),
                code: Some("x".into())
            }
        );
        assert_eq!(parse_body(b"  plain \n").text, "plain");
        assert_eq!(parse_body(br#""quoted""#).text, "quoted");
    }
}
