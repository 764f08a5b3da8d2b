//! The one place Linear answers become [`PortError`]s (FACTS.md "Errors"): the HTTP
//! status first, then `errors[].extensions` (`code` or `type`, case-insensitive), then
//! the text. Partial data (data and errors together) surfaces the errors, and a
//! mutation payload with `success: false` is an error.

use std::time::Duration;

use serde_json::Value;
use webriskops_ports::PortError;

use crate::ops::{OpKind, Operation};

/// Secrets redacted and outside text cut and escaped: the one copy every HTTP adapter uses.
pub(crate) use webriskops_http::{excerpt, Redactor};

/// Characters of one error message kept; at most [`MAX_ERRORS_SHOWN`] are shown.
const MESSAGE_CHARS: usize = 200;
const MAX_ERRORS_SHOWN: usize = 3;

/// What one GraphQL error means, from its `extensions.code`, `extensions.type` and
/// `extensions.userError`, else its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    // Ordered by precedence when several errors come together: the first decides.
    RateLimited,
    Unauthenticated,
    Forbidden,
    Unavailable,
    NotFound,
    NotSupported,
    UsageLimit,
    InvalidInput,
    Other,
}

/// Lowercase, with `_` and `-` as spaces: `AUTHENTICATION_ERROR` and
/// `authentication error` are the same (FACTS.md: classify on code or type,
/// case-insensitively).
fn norm(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '_' | '-' => ' ',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn class_of_word(w: &str) -> Option<Class> {
    Some(match w {
        "ratelimited" | "rate limited" => Class::RateLimited,
        "authentication error" | "unauthenticated" => Class::Unauthenticated,
        "forbidden" => Class::Forbidden,
        "feature not accessible" => Class::NotSupported,
        "usage limit exceeded" => Class::UsageLimit,
        "invalid input"
        | "user error"
        | "graphql error"
        | "graphql validation failed"
        | "bad user input" => Class::InvalidInput,
        "entity not found" | "not found" => Class::NotFound,
        "internal error" | "lock timeout" | "network error" | "bootstrap error" => {
            Class::Unavailable
        }
        _ => return None,
    })
}

fn class_of_text(t: &str) -> Option<Class> {
    let t = t.to_ascii_lowercase();
    if t.contains("rate limit") || t.contains("ratelimited") {
        Some(Class::RateLimited)
    } else if t.contains("authentication") || t.contains("not authenticated") {
        Some(Class::Unauthenticated)
    } else if t.contains("forbidden") || t.contains("permission") {
        Some(Class::Forbidden)
    } else if t.contains("not found") {
        Some(Class::NotFound)
    } else {
        None
    }
}

/// One error of an answer's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GqlError {
    pub message: String,
    pub code: Option<String>,
    pub kind: Option<String>,
    pub user_error: bool,
    pub path: Option<String>,
}

impl GqlError {
    fn from_json(v: &Value) -> GqlError {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let ext = v.get("extensions");
        GqlError {
            message: s(v.get("message"))
                .or_else(|| s(ext.and_then(|e| e.get("userPresentableMessage"))))
                .unwrap_or_default(),
            code: s(ext.and_then(|e| e.get("code"))),
            kind: s(ext.and_then(|e| e.get("type"))),
            user_error: ext
                .and_then(|e| e.get("userError"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            path: v.get("path").and_then(Value::as_array).map(|p| {
                p.iter()
                    .map(|s| match s {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            }),
        }
    }

    pub(crate) fn class(&self) -> Class {
        let by_word = [self.code.as_deref(), self.kind.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|w| class_of_word(&norm(w)));
        // A missing (or invisible) id comes as `invalid input` with the message
        // "Entity not found: <Type>" (docs/linear-sim.md "Errors", an inference FACTS.md
        // is silent on): by meaning, not found.
        if matches!(by_word, None | Some(Class::InvalidInput))
            && self
                .message
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("entity not found")
        {
            return Class::NotFound;
        }
        by_word
            .or_else(|| class_of_text(&self.message))
            .unwrap_or(if self.user_error {
                Class::InvalidInput
            } else {
                Class::Other
            })
    }
}

/// An answer's body, read as GraphQL: `data` and `errors`, if it is JSON at all.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    Graphql {
        data: Option<Value>,
        errors: Vec<GqlError>,
    },
    /// Not a GraphQL answer: the (lossy UTF-8) text and, if JSON failed, why.
    Text(String),
}

pub(crate) fn parse_body(body: &[u8]) -> Body {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut m)) if m.contains_key("data") || m.contains_key("errors") => {
            let data = m.remove("data").filter(|d| !d.is_null());
            let errors = match m.get("errors") {
                Some(Value::Array(a)) => a.iter().map(GqlError::from_json).collect(),
                _ => Vec::new(),
            };
            Body::Graphql { data, errors }
        }
        Ok(_) => Body::Text(String::from_utf8_lossy(body).trim().to_owned()),
        Err(e) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                Body::Text(String::new())
            } else {
                Body::Text(format!("{text} (not JSON: {e})"))
            }
        }
    }
}

/// What an answer amounts to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `data`, with no error and no `success: false`.
    Data(Value),
    /// A failure; `retry` says whether the same request may be sent again.
    Failed { error: PortError, retry: bool },
}

/// The one mapping of an answer: `status`, then the GraphQL errors, then the text.
/// `retry_after` is the wait Linear announced (reset headers, `Retry-After`), passed
/// on with a rate-limit error. Nothing of a secret survives: every echoed text goes
/// through `redactor`, is cut short and escaped.
pub(crate) fn map_answer(
    op: &Operation,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    redactor: &Redactor,
) -> Outcome {
    let parsed = parse_body(body);
    let what = format!("Linear {} {}", kind_word(op), op.name);
    let describe = |errors: &[GqlError]| describe(errors, redactor);
    let text_of = |p: &Body| match p {
        Body::Graphql { errors, .. } if !errors.is_empty() => describe(errors),
        Body::Graphql { .. } => "no errors given".to_owned(),
        Body::Text(t) if t.is_empty() => "empty answer".to_owned(),
        Body::Text(t) => redactor.excerpt(t, 300),
    };
    let rate_limited = |detail: String| Outcome::Failed {
        error: PortError::RateLimited {
            context: Default::default(),
            retry_after,
            message: format!("{what}: {detail}"),
        },
        retry: true,
    };
    // The status first.
    match status {
        401 => {
            return failed(PortError::Unauthenticated {
                context: Default::default(),
                message: format!(
                    "Linear refused the credentials on {what} ({}); check the API key or reconnect",
                    text_of(&parsed)
                ),
            })
        }
        403 => {
            return failed(PortError::PermissionDenied {
                context: Default::default(),
                message: format!(
                    "{what} is not allowed for this credential: {}",
                    text_of(&parsed)
                ),
            })
        }
        429 => return rate_limited(text_of(&parsed)),
        500..=599 => {
            let message = format!("Linear answered {status} to {what}: {}", text_of(&parsed));
            return match op.kind {
                OpKind::Query => Outcome::Failed {
                    error: PortError::Unavailable {
                        context: Default::default(),
                        message,
                    },
                    retry: true,
                },
                // A server error after a write may come after it was applied: never
                // resent; the caller reconciles (by attachment URL, then client id).
                OpKind::Mutation => failed(PortError::OutcomeUnknown {
                    context: Default::default(),
                    message: format!("{message}; the write may have been applied"),
                }),
            };
        }
        _ => {}
    }
    let (data, errors) = match parsed {
        Body::Graphql { data, errors } => (data, errors),
        Body::Text(t) => {
            let t = if t.is_empty() {
                "empty answer".to_owned()
            } else {
                redactor.excerpt(&t, 300)
            };
            return failed(match status {
                200..=299 => match op.kind {
                    OpKind::Query => PortError::Other {
                        context: Default::default(),
                        message: format!("cannot read Linear's answer to {what}: {t}"),
                    },
                    OpKind::Mutation => PortError::OutcomeUnknown {
                        context: Default::default(),
                        message: format!(
                            "cannot read Linear's answer to {what} (the write may have been applied): {t}"
                        ),
                    },
                },
                400 | 404 | 405 | 413 | 415 | 422 => PortError::InvalidInput {
                    context: Default::default(),
                    message: format!("Linear refused {what} with {status}: {t}"),
                },
                _ => PortError::Other {
                    context: Default::default(),
                    message: format!("Linear answered {status} to {what}: {t}"),
                },
            });
        }
    };
    if !errors.is_empty() {
        let class = errors
            .iter()
            .map(GqlError::class)
            .min()
            .unwrap_or(Class::Other);
        let detail = describe(&errors);
        let mut applied = applied_fields(op, data.as_ref());
        if data.is_none() {
            applied = applied_before_failure(op, &errors);
        }
        if class == Class::RateLimited && applied.is_empty() {
            return rate_limited(detail);
        }
        if !applied.is_empty() {
            // Partial success of a write: part of it happened. Never resent.
            return failed(PortError::OutcomeUnknown {
                context: Default::default(),
                message: format!(
                    "partial answer to {what}: {} applied, but {detail}",
                    applied.join(", ")
                ),
            });
        }
        let partial = if data.is_some() {
            "partial answer to "
        } else {
            ""
        };
        let message = format!("{partial}{what} failed: {detail}");
        return match class {
            Class::RateLimited => rate_limited(detail),
            Class::Unauthenticated => failed(PortError::Unauthenticated {
                context: Default::default(),
                message,
            }),
            Class::Forbidden => failed(PortError::PermissionDenied {
                context: Default::default(),
                message,
            }),
            Class::NotFound => failed(PortError::NotFound {
                context: Default::default(),
                what: format!("{what}: {detail}"),
            }),
            Class::NotSupported => failed(PortError::NotSupported {
                context: Default::default(),
                what: format!("{what}: {detail}"),
            }),
            Class::UsageLimit => failed(PortError::PermissionDenied {
                context: Default::default(),
                message: format!(
                    "{message} (the workspace's plan limit; raise it in Linear's billing settings)"
                ),
            }),
            Class::InvalidInput => failed(PortError::InvalidInput {
                context: Default::default(),
                message,
            }),
            Class::Unavailable => Outcome::Failed {
                error: PortError::Unavailable {
                    context: Default::default(),
                    message,
                },
                retry: op.kind == OpKind::Query,
            },
            Class::Other => failed(PortError::Other {
                context: Default::default(),
                message,
            }),
        };
    }
    let Some(data) = data else {
        return failed(if (200..300).contains(&status) {
            PortError::Other {
                context: Default::default(),
                message: format!("Linear answered {what} with neither data nor errors"),
            }
        } else {
            PortError::Other {
                context: Default::default(),
                message: format!("Linear answered {status} to {what} without errors"),
            }
        });
    };
    if !(200..300).contains(&status) {
        return failed(PortError::Other {
            context: Default::default(),
            message: format!("Linear answered {status} to {what} with data and no errors"),
        });
    }
    if op.kind == OpKind::Mutation {
        let refused = declined_fields(&data);
        if !refused.is_empty() {
            let applied = applied_fields(op, Some(&data));
            let message = format!(
                "Linear declined {what}: {} answered success: false",
                refused.join(", ")
            );
            return failed(if applied.is_empty() {
                PortError::Other {
                    context: Default::default(),
                    message,
                }
            } else {
                PortError::OutcomeUnknown {
                    context: Default::default(),
                    message: format!("{message}, after {} applied", applied.join(", ")),
                }
            });
        }
    }
    Outcome::Data(data)
}

fn failed(error: PortError) -> Outcome {
    Outcome::Failed {
        error,
        retry: false,
    }
}

fn kind_word(op: &Operation) -> &'static str {
    match op.kind {
        OpKind::Query => "query",
        OpKind::Mutation => "mutation",
    }
}

/// Top-level fields of a mutation's data that report `success: true`.
fn applied_fields(op: &Operation, data: Option<&Value>) -> Vec<String> {
    if op.kind != OpKind::Mutation {
        return Vec::new();
    }
    fields_with_success(data, true)
}

/// The mutations of `op` that ran before the one an error names, when the error nulled
/// the whole `data`: mutations run serially in document order, and a failed non-null
/// payload nulls `data` although those before it were applied (GraphQL spec, "Handling
/// Field Errors"; docs/linear-sim.md "Partial data").
fn applied_before_failure(op: &Operation, errors: &[GqlError]) -> Vec<String> {
    if op.kind != OpKind::Mutation {
        return Vec::new();
    }
    let keys = root_keys(op.document);
    let failed_at = errors
        .iter()
        .filter_map(|e| e.path.as_deref())
        .filter_map(|p| {
            keys.iter()
                .position(|k| p == k || p.starts_with(&format!("{k}.")))
        })
        .min();
    match failed_at {
        Some(i) => keys[..i].iter().map(|k| excerpt(k, 64)).collect(),
        None => Vec::new(),
    }
}

/// The response keys (alias, else field name) of the first operation's root selection
/// set, in document order. Enough GraphQL for the adapter's own documents: comments,
/// strings, arguments and nested selections are skipped.
pub(crate) fn root_keys(document: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut chars = document.chars().peekable();
    let mut pending: Option<String> = None;
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some(n) = chars.next() {
                    match n {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '(' => parens += 1,
            ')' => parens = parens.saturating_sub(1),
            '{' => {
                braces += 1;
            }
            '}' => {
                braces = braces.saturating_sub(1);
                if braces == 0 && !keys.is_empty() {
                    break;
                }
            }
            c if braces == 1 && parens == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                let mut name = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                match (chars.peek(), pending.take()) {
                    // `alias: field`: the alias is the key; the field name follows.
                    (Some(':'), _) => {
                        chars.next();
                        keys.push(name.clone());
                        pending = Some(name);
                    }
                    // The field name after an alias.
                    (_, Some(_)) => {}
                    (_, None) => keys.push(name),
                }
            }
            _ => {}
        }
    }
    keys
}

fn declined_fields(data: &Value) -> Vec<String> {
    fields_with_success(Some(data), false)
}

fn fields_with_success(data: Option<&Value>, want: bool) -> Vec<String> {
    let Some(Value::Object(m)) = data else {
        return Vec::new();
    };
    m.iter()
        .filter(|(_, v)| v.get("success").and_then(Value::as_bool) == Some(want))
        .map(|(k, _)| excerpt(k, 64))
        .collect()
}

/// The errors as one line: up to three, each `message [code/type] at path`, secrets
/// redacted, cut and escaped.
fn describe(errors: &[GqlError], redactor: &Redactor) -> String {
    let mut parts: Vec<String> = errors
        .iter()
        .take(MAX_ERRORS_SHOWN)
        .map(|e| {
            let mut s = redactor.excerpt(&e.message, MESSAGE_CHARS);
            if s.is_empty() {
                s.push_str("(no message)");
            }
            let tags: Vec<String> = [e.code.as_deref(), e.kind.as_deref()]
                .into_iter()
                .flatten()
                .map(|t| redactor.excerpt(t, 40))
                .collect();
            if !tags.is_empty() {
                s.push_str(&format!(" [{}]", tags.join("/")));
            }
            if let Some(p) = &e.path {
                s.push_str(&format!(" at {}", redactor.excerpt(p, 80)));
            }
            s
        })
        .collect();
    if errors.len() > MAX_ERRORS_SHOWN {
        parts.push(format!("and {} more", errors.len() - MAX_ERRORS_SHOWN));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;

    fn map(op: &Operation, status: u16, body: &str) -> Outcome {
        map_answer(
            op,
            status,
            body.as_bytes(),
            Some(Duration::from_secs(2)),
            &Redactor::new(&["lin_api_SECRETKEY"]),
        )
    }

    fn err(op: &Operation, status: u16, body: &str) -> (PortError, bool) {
        match map(op, status, body) {
            Outcome::Failed { error, retry } => (error, retry),
            Outcome::Data(d) => panic!("expected an error, got data {d}"),
        }
    }

    fn gql_error(ext: &str) -> String {
        format!(r#"{{"errors":[{{"message":"boom","extensions":{ext}}}]}}"#)
    }

    #[test]
    fn root_keys_are_read_in_document_order() {
        assert_eq!(
            root_keys(ops::ISSUE_CREATE_WITH_ATTACHMENT.document),
            ["issueCreate", "attachmentCreate"]
        );
        assert_eq!(root_keys(ops::ISSUE_UPDATE.document), ["issueUpdate"]);
        assert_eq!(
            root_keys(ops::ISSUE_BY_FINDING.document),
            ["attachmentsForURL", "byClientId"]
        );
        assert_eq!(
            root_keys(
                "# a { comment }\nmutation M($s: String = \"{x}\") { a: b(x: {y: 1}) { c } d }"
            ),
            ["a", "d"]
        );
    }

    /// The attachment failed after the issue was made: `data` is null (the payloads are
    /// non-null), the error's path names the second mutation, and the first was applied.
    #[test]
    fn a_later_mutation_failing_after_an_earlier_one_applied_is_outcome_unknown() {
        let body = r#"{"data":null,"errors":[{"message":"attachment url is invalid","path":["attachmentCreate"],"extensions":{"code":"INPUT_ERROR","type":"invalid input","userError":true}}]}"#;
        let (e, retry) = err(&ops::ISSUE_CREATE_WITH_ATTACHMENT, 200, body);
        assert_eq!(e.kind(), "outcome_unknown", "{e}");
        assert!(e.to_string().contains("issueCreate applied"), "{e}");
        assert!(!retry, "never resent");
        // The first mutation failing: nothing was applied, the error is what it says.
        let body = body.replace(r#"["attachmentCreate"]"#, r#"["issueCreate"]"#);
        let (e, _) = err(&ops::ISSUE_CREATE_WITH_ATTACHMENT, 200, &body);
        assert_eq!(e.kind(), "invalid_input", "{e}");
    }

    #[test]
    fn ratelimited_is_http_400_and_transient_with_the_wait() {
        for ext in [
            r#"{"code":"RATELIMITED"}"#,
            r#"{"type":"Ratelimited"}"#,
            r#"{"code":"ratelimited","type":"ratelimited"}"#,
        ] {
            let (e, retry) = err(&ops::TEAMS, 400, &gql_error(ext));
            assert!(
                matches!(&e, PortError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(2)),
                "{ext}: {e:?}"
            );
            assert!(retry && e.is_transient());
            // A mutation refused as rate limited was not applied: retried too.
            let (e, retry) = err(&ops::ISSUE_UPDATE, 400, &gql_error(ext));
            assert!(matches!(e, PortError::RateLimited { .. }) && retry);
        }
        assert!(matches!(
            err(&ops::TEAMS, 429, "").0,
            PortError::RateLimited { .. }
        ));
    }

    #[test]
    fn each_code_and_type_maps_by_meaning() {
        let cases: &[(&str, &str)] = &[
            (r#"{"code":"AUTHENTICATION_ERROR"}"#, "unauthenticated"),
            (r#"{"type":"authentication error"}"#, "unauthenticated"),
            (r#"{"type":"Forbidden"}"#, "permission_denied"),
            (r#"{"code":"FORBIDDEN"}"#, "permission_denied"),
            (r#"{"type":"invalid input"}"#, "invalid_input"),
            (r#"{"code":"INVALID_INPUT"}"#, "invalid_input"),
            (r#"{"type":"user error"}"#, "invalid_input"),
            (r#"{"type":"graphql error"}"#, "invalid_input"),
            (r#"{"userError":true}"#, "invalid_input"),
            (r#"{"type":"feature not accessible"}"#, "not_supported"),
            (r#"{"type":"usage limit exceeded"}"#, "permission_denied"),
            (r#"{"type":"internal error"}"#, "unavailable"),
            (r#"{"type":"lock timeout"}"#, "unavailable"),
            (r#"{"code":"ENTITY_NOT_FOUND"}"#, "not_found"),
            (r#"{"type":"other"}"#, "other"),
            (r#"{}"#, "other"),
        ];
        for (ext, kind) in cases {
            let (e, _) = err(&ops::TEAMS, 200, &gql_error(ext));
            assert_eq!(e.kind(), *kind, "{ext}: {e}");
        }
        // Unavailable is retried for a query, never for a mutation.
        assert!(err(&ops::TEAMS, 200, &gql_error(r#"{"type":"internal error"}"#)).1);
        assert!(
            !err(
                &ops::ISSUE_ARCHIVE,
                200,
                &gql_error(r#"{"type":"internal error"}"#)
            )
            .1
        );
        // Without code or type, the text decides.
        let (e, _) = err(
            &ops::ISSUE,
            200,
            r#"{"errors":[{"message":"Entity not found: Issue"}]}"#,
        );
        assert_eq!(e.kind(), "not_found", "{e}");
        // Linear's missing entity: `invalid input` by type, not found by meaning.
        let (e, _) = err(
            &ops::TEAM,
            200,
            r#"{"errors":[{"message":"Entity not found: Team - Could not find referenced Team.","extensions":{"code":"INPUT_ERROR","type":"invalid input","userError":true}}]}"#,
        );
        assert_eq!(e.kind(), "not_found", "{e}");
        // The first error by precedence decides.
        let (e, _) = err(
            &ops::TEAMS,
            400,
            r#"{"errors":[{"message":"a","extensions":{"type":"invalid input"}},{"message":"b","extensions":{"code":"RATELIMITED"}}]}"#,
        );
        assert_eq!(e.kind(), "rate_limited");
    }

    #[test]
    fn status_comes_first() {
        let body = gql_error(r#"{"type":"invalid input"}"#);
        assert_eq!(err(&ops::TEAMS, 401, &body).0.kind(), "unauthenticated");
        assert_eq!(err(&ops::TEAMS, 403, &body).0.kind(), "permission_denied");
        let (e, retry) = err(&ops::TEAMS, 503, &body);
        assert!(e.kind() == "unavailable" && retry);
        let (e, retry) = err(&ops::ISSUE_CREATE_WITH_ATTACHMENT, 502, "bad gateway");
        assert!(e.may_have_applied() && !retry, "{e}");
        assert_eq!(err(&ops::TEAMS, 400, "not json").0.kind(), "invalid_input");
        let (e, _) = err(&ops::TEAMS, 200, "{not json");
        assert!(e.to_string().contains("cannot read"), "{e}");
        let (e, _) = err(&ops::ISSUE_UPDATE, 200, "{not json");
        assert!(e.may_have_applied(), "{e}");
    }

    #[test]
    fn partial_data_surfaces_the_errors() {
        let (e, retry) = err(
            &ops::TEAMS,
            200,
            r#"{"data":{"teams":null},"errors":[{"message":"cannot see team","path":["teams"],"extensions":{"type":"forbidden"}}]}"#,
        );
        assert_eq!(e.kind(), "permission_denied");
        assert!(!retry);
        assert!(
            e.to_string().contains("partial answer") && e.to_string().contains("at teams"),
            "{e}"
        );
        // The issue was created but its attachment failed: part of the write happened.
        let (e, retry) = err(
            &ops::ISSUE_CREATE_WITH_ATTACHMENT,
            200,
            r#"{"data":{"issueCreate":{"success":true,"issue":{"id":"x"}},"attachmentCreate":null},"errors":[{"message":"rate limited","path":["attachmentCreate"],"extensions":{"code":"RATELIMITED"}}]}"#,
        );
        assert!(e.may_have_applied() && !retry, "{e}");
        assert!(e.to_string().contains("issueCreate applied"), "{e}");
    }

    #[test]
    fn success_false_is_an_error() {
        let (e, retry) = err(
            &ops::ISSUE_ARCHIVE,
            200,
            r#"{"data":{"issueArchive":{"success":false}}}"#,
        );
        assert_eq!(e.kind(), "other");
        assert!(!retry);
        assert!(
            e.to_string()
                .contains("issueArchive answered success: false"),
            "{e}"
        );
        let (e, _) = err(
            &ops::ISSUE_CREATE_WITH_ATTACHMENT,
            200,
            r#"{"data":{"issueCreate":{"success":true},"attachmentCreate":{"success":false}}}"#,
        );
        assert!(e.may_have_applied(), "{e}");
        assert!(matches!(
            map(
                &ops::ISSUE_ARCHIVE,
                200,
                r#"{"data":{"issueArchive":{"success":true}}}"#
            ),
            Outcome::Data(_)
        ));
        // `success` in a query's data is just data.
        assert!(matches!(
            map(&ops::TEAMS, 200, r#"{"data":{"x":{"success":false}}}"#),
            Outcome::Data(_)
        ));
    }

    #[test]
    fn echoed_text_is_redacted_short_and_escaped() {
        let body = format!(
            r#"{{"errors":[{{"message":"key lin_api_SECRETKEY \u001b[31mfake\nline {}","extensions":{{"code":"lin_api_SECRETKEY"}}}}]}}"#,
            "x".repeat(1_000_000)
        );
        let (e, _) = err(&ops::TEAMS, 400, &body);
        let m = e.to_string();
        assert!(!m.contains("SECRETKEY"), "{m}");
        assert!(m.len() < 600, "{} bytes", m.len());
        assert!(!m.contains('\n') && !m.contains('\u{1b}'), "{m}");
        assert!(m.contains("\\u{1b}[31mfake\\nline"), "{m}");
        let (e, _) = err(
            &ops::TEAMS,
            500,
            &format!("lin_api_SECRETKEY{}", "y".repeat(100_000)),
        );
        assert!(!e.to_string().contains("SECRETKEY") && e.to_string().len() < 500);
    }
}
