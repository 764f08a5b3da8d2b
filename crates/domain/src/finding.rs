//! Findings (contract `findings-v1`): the finding type, validation with precise
//! errors, and streaming readers for JSON documents and JSON Lines.
//!
//! A finding that breaks the contract is reported with its position, its id when
//! readable, the field and the reason; the readers then go on with the next one.
//! Whatever an error quotes from the input passes [`echo_untrusted`] first: escaped
//! (no terminal escapes, no forged lines) and short.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::FindingId;
use crate::text::{echo_untrusted, escape_untrusted};

mod read;

pub use read::{
    parse_finding, read_document, survey, DocumentFindings, JsonLines, ReadLimits, Survey,
    DEFAULT_MAX_FINDING_BYTES, MAX_FINDING_DEPTH, SUPPORTED_SCHEMA_VERSIONS,
};

/// Scanner severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: &'static [Severity] = &[
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// The business priority a finding gets when it names none
    /// (critical→p1, high→p2, medium→p3, low and info→p4).
    pub fn default_priority(self) -> Priority {
        match self {
            Severity::Critical => Priority::P1,
            Severity::High => Priority::P2,
            Severity::Medium => Priority::P3,
            Severity::Low | Severity::Info => Priority::P4,
        }
    }
}

/// Lifecycle state of a finding in WebRiskOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    InProgress,
    Resolved,
    AcceptedRisk,
    FalsePositive,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Open,
        Status::InProgress,
        Status::Resolved,
        Status::AcceptedRisk,
        Status::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::AcceptedRisk => "accepted_risk",
            Status::FalsePositive => "false_positive",
        }
    }

    /// `resolved`, `accepted_risk` and `false_positive` are closed.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Resolved | Status::AcceptedRisk | Status::FalsePositive
        )
    }
}

/// Business priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: &'static [Priority] = &[Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
            Priority::P4 => "p4",
        }
    }

    /// 1 (most urgent) to 4.
    pub fn rank(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
        }
    }
}

/// One remediation finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: FindingId,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    pub asset: Option<String>,
    pub component: Option<String>,
    pub assignee: Option<String>,
    pub priority: Option<Priority>,
    pub due: Option<NaiveDate>,
    pub description: Option<String>,
    pub remediation_steps: Vec<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub first_seen: Option<DateTime<FixedOffset>>,
    pub last_seen: Option<DateTime<FixedOffset>>,
}

impl Finding {
    /// The priority given, or the default that follows severity.
    pub fn effective_priority(&self) -> Priority {
        self.priority
            .unwrap_or_else(|| self.severity.default_priority())
    }

    /// A minimal valid finding, handy for tests and examples.
    pub fn minimal(id: FindingId, title: impl Into<String>, severity: Severity) -> Self {
        Self {
            id,
            title: title.into(),
            severity,
            status: Status::Open,
            asset: None,
            component: None,
            assignee: None,
            priority: None,
            due: None,
            description: None,
            remediation_steps: Vec::new(),
            references: Vec::new(),
            tags: Vec::new(),
            first_seen: None,
            last_seen: None,
        }
    }
}

/// Where a finding stands in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum Position {
    /// 1-based line of a JSON Lines file.
    Line(u64),
    /// 0-based index in the `findings` array of a JSON document.
    Index(u64),
    /// The document as a whole (e.g. a missing `schema_version`).
    Document,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Index(n) => write!(f, "findings[{n}]"),
            Position::Document => f.write_str("document"),
        }
    }
}

/// A finding (or the file around it) that breaks the contract.
///
/// Built only through [`FindingError::at`] in this crate, so `id`, `field` and `reason`
/// never carry control characters or long input verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct FindingError {
    pub position: Position,
    /// The finding's id, when it could be read.
    pub id: Option<String>,
    /// The offending field, e.g. `severity` or `remediation_steps[3]`.
    pub field: Option<String>,
    pub reason: String,
}

impl fmt::Display for FindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl FindingError {
    /// `id` must already be echoed ([`echo_untrusted`]); the field name is echoed here
    /// (it can be a key read from the input) and the reason escaped.
    fn at(
        position: Position,
        id: Option<String>,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            position,
            id,
            field: field.map(|f| echo_untrusted(f).into_owned()),
            reason: escape_untrusted(&reason.into()).into_owned(),
        }
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    position: Position,
    id: Option<String>,
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> FindingError {
        FindingError::at(self.position, self.id.clone(), Some(field), reason)
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    fn string(
        &self,
        field: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Result<Option<String>, FindingError> {
        match self.get(field) {
            None if required => Err(self.err(field, "is required")),
            None => Ok(None),
            Some(Value::String(s)) => {
                check_len(s, min, max).map_err(|r| self.err(field, r))?;
                Ok(Some(s.clone()))
            }
            Some(other) => Err(self.err(field, format!("must be a string, got {}", kind(other)))),
        }
    }

    fn keyword<T: Copy>(
        &self,
        field: &str,
        all: &[T],
        name: fn(T) -> &'static str,
        required: bool,
    ) -> Result<Option<T>, FindingError> {
        let Some(s) = self.string(field, 0, usize::MAX, required)? else {
            return Ok(None);
        };
        all.iter()
            .copied()
            .find(|v| name(*v) == s)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
                self.err(
                    field,
                    format!(
                        "\"{}\" is not one of: {}",
                        echo_untrusted(&s),
                        names.join(", ")
                    ),
                )
            })
    }

    fn strings(
        &self,
        field: &str,
        max_items: usize,
        min: usize,
        max: usize,
    ) -> Result<Vec<String>, FindingError> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(self.err(
                        field,
                        format!("has {} items; at most {max_items} are allowed", items.len()),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => check_len(s, min, max)
                            .map(|()| s.clone())
                            .map_err(|r| self.err(&format!("{field}[{i}]"), r)),
                        other => Err(self.err(
                            &format!("{field}[{i}]"),
                            format!("must be a string, got {}", kind(other)),
                        )),
                    })
                    .collect()
            }
            Some(other) => Err(self.err(
                field,
                format!("must be an array of strings, got {}", kind(other)),
            )),
        }
    }

    fn timestamp(&self, field: &str) -> Result<Option<DateTime<FixedOffset>>, FindingError> {
        let Some(s) = self.string(field, 0, 64, false)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&s).map(Some).map_err(|e| {
            self.err(
                field,
                format!(
                    "\"{}\" is not an RFC 3339 timestamp ({e})",
                    echo_untrusted(&s)
                ),
            )
        })
    }
}

/// The id of a finding, as its errors show it: whole when it is a valid id (a safe,
/// short alphabet), else echoed ([`echo_untrusted`]).
fn readable_id(s: &str) -> String {
    match FindingId::new(s) {
        Ok(_) => s.to_owned(),
        Err(_) => echo_untrusted(s).into_owned(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_len(s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n < min {
        return Err(if min == 1 {
            "must not be empty".into()
        } else {
            format!("must be at least {min} characters")
        });
    }
    if n > max {
        return Err(format!("is {n} characters; at most {max} are allowed"));
    }
    Ok(())
}

/// Validates one finding object against the contract.
///
/// # Errors
/// The first rule the object breaks, with position, id (when readable) and field.
pub fn parse_value(value: &Value, position: Position) -> Result<Finding, FindingError> {
    let Value::Object(obj) = value else {
        return Err(FindingError::at(
            position,
            None,
            None,
            format!("a finding must be a JSON object, got {}", kind(value)),
        ));
    };
    let readable_id = obj.get("id").and_then(Value::as_str).map(readable_id);
    let f = Fields {
        obj,
        position,
        id: readable_id,
    };
    let id_text = f.string("id", 1, 128, true)?.unwrap_or_default();
    let id = FindingId::new(id_text).map_err(|e| f.err("id", echo_untrusted(&e.reason)))?;
    let due = match f.string("due", 0, 32, false)? {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .ok()
                .filter(|_| s.len() == 10)
                .ok_or_else(|| {
                    f.err(
                        "due",
                        format!(
                            "\"{}\" is not a date of the form YYYY-MM-DD",
                            echo_untrusted(&s)
                        ),
                    )
                })?,
        ),
    };
    Ok(Finding {
        id,
        title: f.string("title", 1, 512, true)?.unwrap_or_default(),
        severity: f
            .keyword("severity", Severity::ALL, Severity::as_str, true)?
            .unwrap_or(Severity::Info),
        status: f
            .keyword("status", Status::ALL, Status::as_str, true)?
            .unwrap_or(Status::Open),
        asset: f.string("asset", 0, 2048, false)?,
        component: f.string("component", 1, 64, false)?,
        assignee: f.string("assignee", 1, 254, false)?,
        priority: f.keyword("priority", Priority::ALL, Priority::as_str, false)?,
        due,
        description: f.string("description", 0, 200_000, false)?,
        remediation_steps: f.strings("remediation_steps", 50, 1, 1000)?,
        references: f.strings("references", 100, 0, 2048)?,
        tags: f.strings("tags", 20, 1, 64)?,
        first_seen: f.timestamp("first_seen")?,
        last_seen: f.timestamp("last_seen")?,
    })
}

/// The two file shapes of the contract, told apart by structure ([`survey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingsFormat {
    /// `{"schema_version": 1, "findings": [...]}`.
    Document,
    /// One finding object per line.
    JsonLines,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_finding_parses() {
        let v = json!({"id": "wro-1", "title": "XSS", "severity": "high", "status": "open",
            "component": "web", "priority": "p1", "due": "2026-12-15",
            "remediation_steps": ["a", "b"], "tags": ["pci"], "first_seen": "2026-11-02T08:14:00Z",
            "unknown_future_field": {"x": 1}});
        let f = parse_value(&v, Position::Line(1)).unwrap();
        assert_eq!(f.id.as_str(), "wro-1");
        assert_eq!(f.effective_priority(), Priority::P1);
        assert_eq!(f.due, NaiveDate::from_ymd_opt(2026, 12, 15));
        assert_eq!(f.remediation_steps, vec!["a", "b"]);
    }

    #[test]
    fn errors_name_position_id_field_and_reason() {
        let v = json!({"id": "wro-2", "title": "t", "severity": "urgent", "status": "open"});
        let e = parse_value(&v, Position::Line(7)).unwrap_err();
        assert_eq!(e.to_string(), "line 7 (id wro-2): field `severity`: \"urgent\" is not one of: critical, high, medium, low, info");
        let v = json!({"id": "wro-3", "title": "t", "severity": "low", "status": "open", "remediation_steps": ["ok", ""]});
        let e = parse_value(&v, Position::Index(4)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "findings[4] (id wro-3): field `remediation_steps[1]`: must not be empty"
        );
        let v = json!({"title": "t", "severity": "low", "status": "open"});
        assert_eq!(
            parse_value(&v, Position::Line(1))
                .unwrap_err()
                .field
                .as_deref(),
            Some("id")
        );
        let v = json!({"id": "x", "title": "t", "severity": "low", "status": "open", "due": "15/12/2026"});
        assert_eq!(
            parse_value(&v, Position::Line(1))
                .unwrap_err()
                .field
                .as_deref(),
            Some("due")
        );
    }

    #[test]
    fn json_lines_report_bad_lines_and_continue() {
        let input = "{\"id\":\"a\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"open\"}\n\nnot json\n{\"id\":\"b\",\"title\":\"t\",\"severity\":\"low\",\"status\":\"closed\"}\n{\"id\":\"c\",\"title\":\"t\",\"severity\":\"info\",\"status\":\"resolved\"}";
        let out: Vec<_> = JsonLines::new(input.as_bytes()).collect();
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok());
        assert_eq!(out[1].as_ref().unwrap_err().position, Position::Line(3));
        assert_eq!(
            out[2].as_ref().unwrap_err().field.as_deref(),
            Some("status")
        );
        assert!(out[3].is_ok());
    }

    #[test]
    fn documents_stream_and_check_the_version() {
        let doc = r#"{"findings":[{"id":"a","title":"t","severity":"low","status":"open"},{"id":"b"}],"schema_version":1}"#;
        let mut seen = Vec::new();
        read_document(doc.as_bytes(), |r| seen.push(r)).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].as_ref().unwrap_err().position, Position::Index(1));
        let bad = r#"{"schema_version":2,"findings":[]}"#;
        assert_eq!(
            read_document(bad.as_bytes(), |_| {})
                .unwrap_err()
                .field
                .as_deref(),
            Some("schema_version")
        );
        assert!(read_document("[1,2]".as_bytes(), |_| {}).is_err());
    }

    #[test]
    fn format_is_detected_by_structure_not_by_the_first_key() {
        let format =
            |input: &str| survey(input.as_bytes(), &ReadLimits::default()).map(|s| s.format);
        assert_eq!(
            format(" {\n \"schema_version\": 1, \"findings\": []}"),
            Ok(FindingsFormat::Document)
        );
        assert_eq!(
            format("{\"generated_at\": \"x\", \"findings\": [], \"schema_version\": 1}"),
            Ok(FindingsFormat::Document)
        );
        assert_eq!(format("{\"id\":\"a\"}\n"), Ok(FindingsFormat::JsonLines));
        // One object per line, each with a schema_version of its own: JSON Lines.
        assert_eq!(
            format("{\"schema_version\":1,\"id\":\"a\"}\n{\"schema_version\":1,\"id\":\"b\"}\n"),
            Ok(FindingsFormat::JsonLines)
        );
    }
}
