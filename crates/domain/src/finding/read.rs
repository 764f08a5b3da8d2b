//! Reading findings input safely: the format detected by structure, a document's
//! envelope checked before any of its findings is used, and both formats streamed with
//! bounded memory (every line, finding, key and nesting level has a limit).
//!
//! Two passes, both streaming: [`survey`] reads the whole input once (the findings-file
//! adapter runs it while hashing or spooling the file) and refuses input that is not a
//! findings file, or a document whose envelope is wrong; [`JsonLines`] and
//! [`DocumentFindings`] then stream the findings, each rejected alone when it breaks a
//! rule, with its position.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{parse_value, Finding, FindingError, FindingsFormat, Position};
use crate::text::echo_untrusted;

/// The largest line of JSON Lines, or element of a document's `findings` array, read by
/// default: 8 MiB. The largest finding the contract allows (a 200,000-character
/// description plus every list at its limit) takes about 5.5 MiB even when every
/// character is written as a `\u` escape.
pub const DEFAULT_MAX_FINDING_BYTES: usize = 8 << 20;

/// The deepest nesting of arrays and objects in one finding (the finding itself is
/// level 1). serde_json refuses to build values deeper than 128 levels, so the same
/// limit applies to every field, known or not.
pub const MAX_FINDING_DEPTH: usize = 128;

/// The `schema_version` values this reader understands.
pub const SUPPORTED_SCHEMA_VERSIONS: &[u64] = &[1];

/// Keys of a document's top-level object are short names; longer keys are refused.
const MAX_DOCUMENT_KEY_BYTES: usize = 4096;

/// Distinct keys a document's top-level object may hold (each is remembered to find
/// duplicates).
const MAX_DOCUMENT_KEYS: usize = 1024;

/// The bytes of `schema_version`'s value kept to read it.
const MAX_VERSION_BYTES: usize = 64;

/// The keys of a finding the contract defines; the values of all others are skipped
/// unread (unknown fields are ignored, whatever they hold).
const KNOWN_FIELDS: &[&str] = &[
    "id",
    "title",
    "severity",
    "status",
    "asset",
    "component",
    "assignee",
    "priority",
    "due",
    "description",
    "remediation_steps",
    "references",
    "tags",
    "first_seen",
    "last_seen",
];

/// Limits on one findings input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most bytes of one JSON Lines line or one document finding.
    pub max_finding_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_finding_bytes: DEFAULT_MAX_FINDING_BYTES,
        }
    }
}

/// What [`survey`] learned about an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    pub format: FindingsFormat,
    /// How many elements a document's `findings` array holds (`None` for JSON Lines).
    pub findings: Option<u64>,
}

fn document_error(field: Option<&str>, reason: impl Into<String>) -> FindingError {
    FindingError::at(Position::Document, None, field, reason)
}

// ── the byte scanner ─────────────────────────────────────────────────────────────────

/// A failure while walking the JSON text.
enum ScanError {
    Io(io::Error),
    /// Not JSON (or not the shape expected) at `line`.
    Syntax {
        line: u64,
        what: String,
    },
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

impl ScanError {
    fn into_finding_error(self) -> FindingError {
        match self {
            ScanError::Io(e) => document_error(None, format!("unreadable input: {e}")),
            ScanError::Syntax { line, what } => {
                document_error(None, format!("not valid JSON at line {line}: {what}"))
            }
        }
    }
}

type Scan<T> = Result<T, ScanError>;

/// Bytes of one value being kept, up to a limit.
struct Capture {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        if self.over {
            return;
        }
        if self.buf.len() + bytes.len() > self.limit {
            self.over = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
}

/// Walks JSON text byte by byte, validating its grammar with an explicit (bounded)
/// stack instead of recursion, and counting lines. It never holds more than the value
/// it was asked to capture.
struct Scanner<R> {
    r: R,
    line: u64,
    /// The deepest nesting a walk accepts: bounds the stack's memory.
    max_stack: usize,
    capture: Option<Capture>,
    /// The last non-blank byte of the line being read.
    line_last: Option<u8>,
    /// The last non-blank byte of the first line that held any: where a pretty-printer
    /// breaks a document's first line (`{`, `[`, `,` or `:`), a JSON Lines file never does.
    first_line_end: Option<u8>,
}

fn describe_byte(b: Option<u8>) -> String {
    match b {
        None => "the end of the input".into(),
        Some(0) => "byte 0x00 (binary data, not JSON text)".into(),
        Some(b) if b.is_ascii_graphic() => format!("`{}`", b as char),
        Some(b) => format!("byte 0x{b:02x}"),
    }
}

impl<R: BufRead> Scanner<R> {
    fn new(r: R, max_stack: usize) -> Self {
        Self {
            r,
            line: 1,
            max_stack,
            capture: None,
            line_last: None,
            first_line_end: None,
        }
    }

    fn syntax<T>(&self, what: impl Into<String>) -> Scan<T> {
        Err(ScanError::Syntax {
            line: self.line,
            what: what.into(),
        })
    }

    fn peek(&mut self) -> Scan<Option<u8>> {
        Ok(self.r.fill_buf()?.first().copied())
    }

    /// Consumes the byte `peek` returned.
    fn bump(&mut self, b: u8) {
        self.r.consume(1);
        if b == b'\n' {
            if self.first_line_end.is_none() {
                self.first_line_end = self.line_last;
            }
            self.line_last = None;
            self.line += 1;
        } else if !b.is_ascii_whitespace() {
            self.line_last = Some(b);
        }
        if let Some(c) = &mut self.capture {
            c.push(&[b]);
        }
    }

    fn next(&mut self) -> Scan<Option<u8>> {
        let b = self.peek()?;
        if let Some(b) = b {
            self.bump(b);
        }
        Ok(b)
    }

    fn expect(&mut self, want: u8, context: &str) -> Scan<()> {
        match self.peek()? {
            Some(b) if b == want => {
                self.bump(b);
                Ok(())
            }
            other => self.syntax(format!(
                "expected `{}` {context}, found {}",
                want as char,
                describe_byte(other)
            )),
        }
    }

    /// Skips JSON whitespace; returns the next byte (not consumed).
    fn ws(&mut self) -> Scan<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b @ (b' ' | b'\t' | b'\r' | b'\n')) => self.bump(b),
                other => return Ok(other),
            }
        }
    }

    /// The rest of a string after its opening quote, validated (escapes, no raw control
    /// characters). Plain runs are consumed a buffer at a time.
    fn string_body(&mut self) -> Scan<()> {
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return self.syntax("the input ends inside a string");
            }
            let run = buf
                .iter()
                .position(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
                .unwrap_or(buf.len());
            if run > 0 {
                if let Some(c) = &mut self.capture {
                    c.push(&buf[..run]);
                }
                self.r.consume(run);
                continue;
            }
            match self.next()? {
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next()? {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            match self.next()? {
                                Some(h) if h.is_ascii_hexdigit() => {}
                                other => {
                                    return self.syntax(format!(
                                        "a `\\u` escape needs four hex digits, found {}",
                                        describe_byte(other)
                                    ))
                                }
                            }
                        }
                    }
                    other => {
                        return self.syntax(format!(
                            "invalid escape in a string: {}",
                            describe_byte(other)
                        ))
                    }
                },
                Some(b) => {
                    return self.syntax(format!(
                        "control character {} inside a string (it must be escaped)",
                        describe_byte(Some(b))
                    ))
                }
                None => return self.syntax("the input ends inside a string"),
            }
        }
    }

    fn digits(&mut self) -> Scan<usize> {
        let mut n = 0;
        while let Some(b @ b'0'..=b'9') = self.peek()? {
            self.bump(b);
            n += 1;
        }
        Ok(n)
    }

    /// A number's grammar only: its size does not matter here.
    fn number(&mut self) -> Scan<()> {
        if let Some(b'-') = self.peek()? {
            self.bump(b'-');
        }
        match self.peek()? {
            Some(b'0') => self.bump(b'0'),
            Some(b'1'..=b'9') => {
                self.digits()?;
            }
            other => {
                return self.syntax(format!("expected a digit, found {}", describe_byte(other)))
            }
        }
        if let Some(b'.') = self.peek()? {
            self.bump(b'.');
            if self.digits()? == 0 {
                return self.syntax("expected a digit after the decimal point");
            }
        }
        if let Some(b @ (b'e' | b'E')) = self.peek()? {
            self.bump(b);
            if let Some(s @ (b'+' | b'-')) = self.peek()? {
                self.bump(s);
            }
            if self.digits()? == 0 {
                return self.syntax("expected a digit in the exponent");
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Scan<()> {
        for want in word {
            match self.next()? {
                Some(b) if b == *want => {}
                _ => return self.syntax(format!("expected `{}`", String::from_utf8_lossy(word))),
            }
        }
        Ok(())
    }

    /// A key and its colon, inside an object.
    fn key(&mut self) -> Scan<()> {
        match self.ws()? {
            Some(b'"') => {
                self.bump(b'"');
                self.string_body()?;
            }
            other => {
                return self.syntax(format!(
                    "expected a key in quotes, found {}",
                    describe_byte(other)
                ))
            }
        }
        self.ws()?;
        self.expect(b':', "after a key")
    }

    /// One complete JSON value, validated; containers use an explicit stack.
    fn value(&mut self) -> Scan<()> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            // A value starts here.
            match self.ws()? {
                Some(b @ (b'{' | b'[')) => {
                    self.bump(b);
                    let close = if b == b'{' { b'}' } else { b']' };
                    if self.ws()? == Some(close) {
                        self.bump(close);
                    } else {
                        if stack.len() >= self.max_stack {
                            return self.syntax(format!(
                                "arrays and objects nested more than {} levels deep",
                                self.max_stack
                            ));
                        }
                        stack.push(b);
                        if b == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.bump(b'"');
                    self.string_body()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                other => {
                    return self.syntax(format!("expected a value, found {}", describe_byte(other)))
                }
            }
            // A value ended: close containers until one wants another value.
            loop {
                let Some(&open) = stack.last() else {
                    return Ok(());
                };
                let close = if open == b'{' { b'}' } else { b']' };
                match self.ws()? {
                    Some(b',') => {
                        self.bump(b',');
                        if open == b'{' {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b) if b == close => {
                        self.bump(b);
                        stack.pop();
                    }
                    other => {
                        return self.syntax(format!(
                            "expected `,` or `{}`, found {}",
                            close as char,
                            describe_byte(other)
                        ))
                    }
                }
            }
        }
    }

    /// A key of the top-level object, decoded; `None` when longer than the limit.
    fn root_key(&mut self) -> Scan<Option<String>> {
        match self.ws()? {
            Some(b'"') => {}
            other => {
                return self.syntax(format!(
                    "expected a key in quotes, found {}",
                    describe_byte(other)
                ))
            }
        }
        self.capture = Some(Capture {
            buf: Vec::new(),
            limit: MAX_DOCUMENT_KEY_BYTES + 2,
            over: false,
        });
        self.bump(b'"');
        let walked = self.string_body();
        let captured = self.capture.take().expect("capture set above");
        walked?;
        let key = if captured.over {
            None
        } else {
            Some(
                serde_json::from_slice::<String>(&captured.buf).unwrap_or_else(|_| {
                    // Valid JSON escapes that are not valid Unicode (a lone surrogate).
                    String::from_utf8_lossy(&captured.buf[1..captured.buf.len() - 1]).into_owned()
                }),
            )
        };
        self.ws()?;
        self.expect(b':', "after a key")?;
        Ok(key)
    }

    /// Walks one value keeping its bytes up to `limit`; `None` when it was longer.
    fn captured_value(&mut self, limit: usize) -> Scan<Option<Vec<u8>>> {
        self.ws()?;
        self.capture = Some(Capture {
            buf: Vec::new(),
            limit,
            over: false,
        });
        let walked = self.value();
        let captured = self.capture.take().expect("capture set above");
        walked?;
        Ok((!captured.over).then_some(captured.buf))
    }

    /// After a member of the top-level object: `true` when another key follows.
    fn root_continues(&mut self) -> Scan<bool> {
        match self.ws()? {
            Some(b',') => {
                self.bump(b',');
                Ok(true)
            }
            Some(b'}') => {
                self.bump(b'}');
                Ok(false)
            }
            other => self.syntax(format!(
                "expected `,` or `}}` in the top-level object, found {}",
                describe_byte(other)
            )),
        }
    }
}

/// A reader after [`without_bom`].
type Unmarked<R> = BufReader<io::Chain<Cursor<Vec<u8>>, R>>;

/// `reader` without a UTF-8 byte order mark at its start (editors on Windows write one).
fn without_bom<R: Read>(mut reader: R) -> io::Result<Unmarked<R>> {
    let mut head = Vec::with_capacity(3);
    (&mut reader).take(3).read_to_end(&mut head)?;
    if head == b"\xEF\xBB\xBF" {
        head.clear();
    }
    Ok(BufReader::with_capacity(
        64 * 1024,
        Cursor::new(head).chain(reader),
    ))
}

// ── the survey: format, envelope, well-formedness ────────────────────────────────────

/// What the walk over the first top-level object found.
#[derive(Default)]
struct Root {
    findings_seen: bool,
    findings_is_array: Option<&'static str>,
    findings_count: u64,
    version: Option<Vec<u8>>,
    /// The first rule the object breaks that does not stop the walk (a duplicate key).
    problem: Option<FindingError>,
    start_line: u64,
    end_line: u64,
}

fn kind_of_first_byte(b: Option<u8>) -> &'static str {
    match b {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn walk_root<R: BufRead>(sc: &mut Scanner<R>, root: &mut Root) -> Scan<()> {
    root.start_line = sc.line;
    sc.expect(b'{', "at the start")?;
    let mut keys: HashSet<String> = HashSet::new();
    if sc.ws()? == Some(b'}') {
        sc.bump(b'}');
        root.end_line = sc.line;
        return Ok(());
    }
    loop {
        sc.ws()?;
        let line = sc.line;
        let key = sc.root_key()?;
        let problem = match &key {
            None => Some(document_error(
                None,
                format!(
                    "line {line}: a key longer than {MAX_DOCUMENT_KEY_BYTES} bytes; findings-v1 keys are short names"
                ),
            )),
            Some(k) if keys.contains(k) => Some(document_error(
                Some(k),
                format!("line {line}: the key appears more than once in the document; each key may appear once"),
            )),
            Some(_) if keys.len() >= MAX_DOCUMENT_KEYS => Some(document_error(
                None,
                format!("line {line}: more than {MAX_DOCUMENT_KEYS} keys in the document's top-level object"),
            )),
            Some(k) => {
                keys.insert(k.clone());
                None
            }
        };
        if root.problem.is_none() {
            root.problem = problem;
        }
        match key.as_deref() {
            Some("findings") => {
                root.findings_seen = true;
                let first = sc.ws()?;
                if first == Some(b'[') {
                    sc.bump(b'[');
                    if sc.ws()? == Some(b']') {
                        sc.bump(b']');
                    } else {
                        loop {
                            sc.value()?;
                            root.findings_count += 1;
                            match sc.ws()? {
                                Some(b',') => sc.bump(b','),
                                Some(b']') => {
                                    sc.bump(b']');
                                    break;
                                }
                                other => {
                                    return sc.syntax(format!(
                                        "expected `,` or `]` in the findings array, found {}",
                                        describe_byte(other)
                                    ))
                                }
                            }
                        }
                    }
                } else {
                    root.findings_is_array = Some(kind_of_first_byte(first));
                    sc.value()?;
                }
            }
            Some("schema_version") => {
                let bytes = sc.captured_value(MAX_VERSION_BYTES)?;
                root.version = Some(bytes.unwrap_or_else(|| b"(a long value)".to_vec()));
            }
            _ => sc.value()?,
        }
        if !sc.root_continues()? {
            root.end_line = sc.line;
            return Ok(());
        }
    }
}

fn check_version(raw: Option<&[u8]>) -> Result<(), FindingError> {
    let supported = SUPPORTED_SCHEMA_VERSIONS
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let Some(raw) = raw else {
        return Err(document_error(
            Some("schema_version"),
            format!("is required; this reader supports version {supported} (findings-v1)"),
        ));
    };
    let found = serde_json::from_slice::<Value>(raw).ok();
    if let Some(v) = found.as_ref().and_then(Value::as_u64) {
        if SUPPORTED_SCHEMA_VERSIONS.contains(&v) {
            return Ok(());
        }
    }
    let shown = String::from_utf8_lossy(raw);
    Err(document_error(
        Some("schema_version"),
        format!(
            "is {}; this reader supports version {supported} (findings-v1), so no finding \
             was read; ask the producer for version {supported}",
            echo_untrusted(&shown),
        ),
    ))
}

/// Reads a whole findings input once and decides what it is, by structure:
///
/// - a **document** is one JSON object with a `findings` array (its keys in any order,
///   on as many lines as it likes). Its envelope is checked here, before any finding is
///   used: `schema_version` present and supported, no key twice, nothing after it, and
///   the whole text well-formed.
/// - **JSON Lines** is one finding object per line; lines are checked as they stream.
///
/// Input whose first character is not `{` (binary data, `/dev/zero`, an HTML error
/// page) is refused at once, without reading further.
///
/// # Errors
/// Input that is not findings, or a document whose envelope breaks the contract; the
/// error is at [`Position::Document`] and says what and where (line).
pub fn survey<R: Read>(reader: R, limits: &ReadLimits) -> Result<Survey, FindingError> {
    let unreadable = |e: io::Error| document_error(None, format!("unreadable input: {e}"));
    let mut sc = Scanner::new(
        without_bom(reader).map_err(unreadable)?,
        limits.max_finding_bytes.max(MAX_FINDING_DEPTH),
    );
    let first = sc.ws().map_err(ScanError::into_finding_error)?;
    match first {
        None => {
            return Err(document_error(
                None,
                "the input is empty: a findings file is a JSON document \
                 {\"schema_version\": 1, \"findings\": [...]} or JSON Lines (one finding object a line)",
            ))
        }
        Some(b'{') => {}
        other => {
            return Err(document_error(
                None,
                format!(
                    "not a findings file: found {} at line {} where a JSON object (`{{`) must start; \
                     pass a findings-v1 JSON document or JSON Lines file",
                    describe_byte(other),
                    sc.line
                ),
            ))
        }
    }
    let mut root = Root::default();
    let walked = walk_root(&mut sc, &mut root);
    let json_lines = Survey {
        format: FindingsFormat::JsonLines,
        findings: None,
    };
    if let Err(e) = walked {
        if let ScanError::Io(e) = e {
            return Err(unreadable(e));
        }
        // Broken before any `findings` key: a bad first line of JSON Lines (reported
        // with its line number when the lines are read), unless the first object went on
        // past a first line that a pretty-printer broke: JSON Lines never spans lines, so
        // that is a broken document, refused whole rather than mined for lines that
        // happen to parse.
        let spans_lines = sc.line > root.start_line
            && matches!(sc.first_line_end, Some(b'{' | b'[' | b',' | b':'));
        return if root.findings_seen || spans_lines {
            Err(e.into_finding_error())
        } else {
            Ok(json_lines)
        };
    }
    let after = sc.ws().map_err(ScanError::into_finding_error)?;
    let single = after.is_none();
    let one_line = root.start_line == root.end_line;
    if root.findings_seen && (single || !one_line) {
        if let Some(p) = root.problem {
            return Err(p);
        }
        if !single {
            return Err(document_error(
                None,
                format!(
                    "line {}: data after the end of the findings document; a document is one JSON object",
                    sc.line
                ),
            ));
        }
        if let Some(kind) = root.findings_is_array {
            return Err(document_error(
                Some("findings"),
                format!("must be an array of findings, got {kind}"),
            ));
        }
        check_version(root.version.as_deref())?;
        return Ok(Survey {
            format: FindingsFormat::Document,
            findings: Some(root.findings_count),
        });
    }
    if single && root.version.is_some() {
        // `{"schema_version": 1}` and nothing else: a document without findings.
        return Err(document_error(
            Some("findings"),
            "is required (an array of findings)",
        ));
    }
    Ok(json_lines)
}

// ── one finding from its bytes ───────────────────────────────────────────────────────

/// How deep arrays and objects nest in `bytes` (JSON text), strings skipped; counting
/// stops past `limit`.
fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// What the object visitor saw before it stopped.
#[derive(Default)]
struct Seen {
    id: Option<String>,
    /// The known field whose value was being read.
    current: Option<String>,
    duplicate: Option<String>,
}

struct FindingObject<'a>(&'a mut Seen);

impl<'de> DeserializeSeed<'de> for FindingObject<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindingObject<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a finding object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        let mut keys: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                self.0.duplicate = Some(key);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            if KNOWN_FIELDS.contains(&key.as_str()) {
                self.0.current = Some(key.clone());
                let value: Value = map.next_value()?;
                self.0.current = None;
                if key == "id" {
                    self.0.id = value.as_str().map(super::readable_id);
                }
                out.insert(key, value);
            } else {
                // Unknown fields are ignored whatever they hold (numbers of any size
                // included), as long as they are well-formed JSON.
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// Parses and validates one finding from its JSON text (one line of JSON Lines, or one
/// element of a document's `findings` array).
///
/// Rejected with `position`: text that is not JSON, not an object, nested deeper than
/// [`MAX_FINDING_DEPTH`], a key given twice, a known field of the wrong shape; unknown
/// fields are skipped without looking at their values.
///
/// # Errors
/// The first rule the finding breaks, with position, id (when readable) and field.
pub fn parse_finding(bytes: &[u8], position: Position) -> Result<Finding, FindingError> {
    let first = bytes
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    if first != Some(b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(bytes) {
            Err(e) => FindingError::at(position, None, None, format!("not valid JSON: {e}")),
            Ok(_) => FindingError::at(
                position,
                None,
                None,
                format!(
                    "a finding must be a JSON object, got {}",
                    kind_of_first_byte(first)
                ),
            ),
        });
    }
    let depth = nesting_depth(bytes, MAX_FINDING_DEPTH);
    if depth > MAX_FINDING_DEPTH {
        return Err(FindingError::at(
            position,
            None,
            None,
            format!(
                "arrays and objects nest more than {MAX_FINDING_DEPTH} levels deep; \
                 findings-v1 fields nest at most 2"
            ),
        ));
    }
    let mut seen = Seen::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = FindingObject(&mut seen)
        .deserialize(&mut de)
        .and_then(|map| de.end().map(|()| map));
    match parsed {
        Ok(map) => parse_value(&Value::Object(map), position),
        Err(e) => Err(match seen.duplicate {
            Some(key) => FindingError::at(
                position,
                seen.id,
                Some(&key),
                "appears more than once in this finding; each key may appear once",
            ),
            None => FindingError::at(
                position,
                seen.id,
                seen.current.as_deref(),
                format!("not valid JSON: {e}"),
            ),
        }),
    }
}

// ── JSON Lines ───────────────────────────────────────────────────────────────────────

/// Streams findings from JSON Lines, one result per non-blank line.
///
/// A line longer than [`ReadLimits::max_finding_bytes`] is reported and skipped without
/// being held; a line that is not UTF-8 is reported and skipped; a UTF-8 byte order mark
/// at the start of the file is ignored. When the reader itself fails, the error is
/// reported once and the stream ends (its position is no longer known).
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    line_no: u64,
    buf: Vec<u8>,
    limits: ReadLimits,
    failed: bool,
}

impl<R: BufRead> JsonLines<R> {
    pub fn new(reader: R) -> Self {
        Self::with_limits(reader, ReadLimits::default())
    }

    pub fn with_limits(reader: R, limits: ReadLimits) -> Self {
        Self {
            reader,
            line_no: 0,
            buf: Vec::new(),
            limits,
            failed: false,
        }
    }

    /// Reads one line into `buf` (without holding more than the limit); `None` at the
    /// end, `Some(true)` when the line was longer than the limit.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut any = false;
        let mut over = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(any.then_some(over));
            }
            any = true;
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !over {
                if self.buf.len() + take > self.limits.max_finding_bytes + 1 {
                    over = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(take);
            if done {
                return Ok(Some(over));
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<Finding, FindingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.line_no += 1;
            let pos = Position::Line(self.line_no);
            // Bytes, not a `String`: a line that is not UTF-8 is reported alone.
            let over = match self.read_line() {
                Ok(None) => return None,
                Ok(Some(over)) => over,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(FindingError::at(
                        pos,
                        None,
                        None,
                        format!("unreadable input: {e}"),
                    )));
                }
            };
            if over {
                return Some(Err(FindingError::at(
                    pos,
                    None,
                    None,
                    format!(
                        "the line is longer than {} bytes, the limit for one finding; it was skipped",
                        self.limits.max_finding_bytes
                    ),
                )));
            }
            let mut bytes = self.buf.as_slice();
            if self.line_no == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(text) => text.trim(),
                Err(e) => {
                    return Some(Err(FindingError::at(
                        pos,
                        None,
                        None,
                        format!("unreadable line: not UTF-8 ({e})"),
                    )))
                }
            };
            if line.is_empty() {
                continue;
            }
            return Some(parse_finding(line.as_bytes(), pos));
        }
    }
}

// ── documents ────────────────────────────────────────────────────────────────────────

enum DocState {
    Start,
    /// Inside the `findings` array; `true` before its first element.
    InFindings(bool),
    Done,
}

/// Streams the findings of a JSON document `{"schema_version": 1, "findings": [...]}`
/// one element at a time: each element's bytes (at most
/// [`ReadLimits::max_finding_bytes`]) are parsed alone, so an element that is too large,
/// too deep or malformed is rejected with its index and the next one is still read.
///
/// Run [`survey`] over the same input first: it checks the envelope (version, duplicate
/// keys, well-formedness) before any finding is used. A document-level problem met here
/// anyway (the input changed in between) is reported once at [`Position::Document`]
/// and ends the stream.
pub struct DocumentFindings<R: Read> {
    sc: Option<Scanner<Unmarked<R>>>,
    pending: Option<R>,
    limits: ReadLimits,
    state: DocState,
    index: u64,
}

impl<R: Read> fmt::Debug for DocumentFindings<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentFindings")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> DocumentFindings<R> {
    pub fn new(reader: R, limits: ReadLimits) -> Self {
        Self {
            sc: None,
            pending: Some(reader),
            limits,
            state: DocState::Start,
            index: 0,
        }
    }

    fn step(&mut self) -> Scan<Option<Result<Finding, FindingError>>> {
        if let Some(reader) = self.pending.take() {
            let max_stack = self.limits.max_finding_bytes.max(MAX_FINDING_DEPTH);
            self.sc = Some(Scanner::new(without_bom(reader)?, max_stack));
        }
        let Some(sc) = self.sc.as_mut() else {
            return Ok(None);
        };
        loop {
            match self.state {
                DocState::Done => return Ok(None),
                DocState::Start => {
                    sc.ws()?;
                    sc.expect(b'{', "at the start of the document")?;
                    if sc.ws()? == Some(b'}') {
                        sc.bump(b'}');
                        self.state = DocState::Done;
                        continue;
                    }
                    loop {
                        let key = sc.root_key()?;
                        if key.as_deref() == Some("findings") && sc.ws()? == Some(b'[') {
                            sc.bump(b'[');
                            self.state = DocState::InFindings(true);
                            break;
                        }
                        sc.value()?;
                        if !sc.root_continues()? {
                            self.state = DocState::Done;
                            break;
                        }
                    }
                }
                DocState::InFindings(first) => {
                    let b = sc.ws()?;
                    if b == Some(b']') {
                        sc.bump(b']');
                        // The rest of the top-level object, walked to its end.
                        while sc.root_continues()? {
                            sc.root_key()?;
                            sc.value()?;
                        }
                        self.state = DocState::Done;
                        continue;
                    }
                    if !first {
                        sc.expect(b',', "between findings")?;
                    }
                    self.state = DocState::InFindings(false);
                    let position = Position::Index(self.index);
                    self.index += 1;
                    let bytes = sc.captured_value(self.limits.max_finding_bytes)?;
                    return Ok(Some(match bytes {
                        Some(bytes) => parse_finding(&bytes, position),
                        None => Err(FindingError::at(
                            position,
                            None,
                            None,
                            format!(
                                "is larger than {} bytes, the limit for one finding; it was skipped",
                                self.limits.max_finding_bytes
                            ),
                        )),
                    }));
                }
            }
        }
    }
}

impl<R: Read> Iterator for DocumentFindings<R> {
    type Item = Result<Finding, FindingError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(item) => item,
            Err(e) => {
                self.state = DocState::Done;
                self.sc = None;
                Some(Err(e.into_finding_error()))
            }
        }
    }
}

/// Reads a JSON document held in memory: the envelope is checked first ([`survey`]),
/// then each finding is validated and handed to `each` in order.
///
/// # Errors
/// A document-level problem (not a findings document, an unsupported or missing
/// `schema_version`, a duplicate key, malformed JSON); then no finding is handed over.
pub fn read_document(
    input: &[u8],
    mut each: impl FnMut(Result<Finding, FindingError>),
) -> Result<(), FindingError> {
    let limits = ReadLimits::default();
    let found = survey(input, &limits)?;
    if found.format != FindingsFormat::Document {
        return Err(document_error(
            Some("findings"),
            "is required: a findings document is one JSON object with a `findings` array",
        ));
    }
    for item in DocumentFindings::new(input, limits) {
        match item {
            Err(e) if e.position == Position::Document => return Err(e),
            other => each(other),
        }
    }
    Ok(())
}
