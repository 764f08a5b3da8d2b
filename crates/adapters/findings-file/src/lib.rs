//! Findings files (contract `findings-v1`) as a re-openable [`FindingSource`]: JSON Lines
//! streamed line by line, JSON documents streamed by a reader thread through a bounded
//! channel, the format detected from the content. The one reader of findings files: the
//! binary, the end-to-end tests and the benchmarks all read through it.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use sha2::{Digest, Sha256};
use webriskops_domain::{read_document, FindingError, FindingsFormat, JsonLines, Position};
use webriskops_ports::{FindingSource, FindingStream, PortError, PortResult};

/// A findings file that cannot be used; the message says which and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileSourceError(String);

/// Hex SHA-256 of everything `reader` yields.
fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Bytes read to decide the format.
const HEAD_LEN: u64 = 4096;

/// Findings buffered between the document reader thread and the export.
const CHANNEL_BOUND: usize = 1024;

#[derive(Clone)]
enum Input {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

/// A findings file (or bytes already in memory, e.g. stdin or the demo's sample).
#[derive(Clone)]
pub struct FileSource {
    input: Input,
    label: String,
    checksum: String,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// A file on disk; `-` reads stdin into memory (stdin cannot be read twice).
    ///
    /// # Errors
    /// The file cannot be read; the message names it and the fix.
    pub fn open_path(path: &Path) -> Result<Self, FileSourceError> {
        if path == Path::new("-") {
            let mut bytes = Vec::new();
            io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| FileSourceError(format!("cannot read findings from stdin: {e}")))?;
            return Ok(Self::from_bytes("<stdin>", bytes));
        }
        let unreadable = |e: io::Error| {
            FileSourceError(format!(
                "cannot read findings file {}: {e}; check the path and its permissions",
                path.display()
            ))
        };
        if path.is_dir() {
            return Err(FileSourceError(format!(
                "findings file {} is a directory; pass a JSON or JSON Lines file",
                path.display()
            )));
        }
        let file = File::open(path).map_err(unreadable)?;
        let checksum = sha256_hex(BufReader::new(file)).map_err(unreadable)?;
        Ok(Self {
            input: Input::Path(path.to_owned()),
            label: path.display().to_string(),
            checksum,
        })
    }

    /// Findings already in memory, named `label` in messages.
    pub fn from_bytes(label: &str, bytes: Vec<u8>) -> Self {
        let checksum = sha256_hex(bytes.as_slice()).unwrap_or_default();
        Self {
            input: Input::Bytes(Arc::new(bytes)),
            label: label.to_owned(),
            checksum,
        }
    }

    fn reader(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match &self.input {
            Input::Path(p) => Box::new(BufReader::with_capacity(64 * 1024, File::open(p)?)),
            Input::Bytes(b) => Box::new(Cursor::new(SharedBytes(Arc::clone(b)))),
        })
    }

    /// `FILE:LINE: field `x`: reason` (or `FILE:findings[i]: …`), for one invalid finding.
    pub fn describe_error(&self, e: &FindingError) -> String {
        let at = match e.position {
            Position::Line(n) => format!("{}:{n}", self.label),
            Position::Index(i) => format!("{}:findings[{i}]", self.label),
            Position::Document => self.label.clone(),
        };
        let field = e
            .field
            .as_ref()
            .map(|f| format!(" field `{f}`:"))
            .unwrap_or_default();
        let id =
            e.id.as_ref()
                .map(|id| format!(" (finding {id})"))
                .unwrap_or_default();
        format!("{at}:{field} {}{id}", e.reason)
    }
}

/// Shares the bytes of an in-memory source between readers.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl FindingSource for FileSource {
    fn open(&self) -> PortResult<FindingStream> {
        let unreadable = |e: io::Error| PortError::InvalidInput {
            message: format!("cannot read {}: {e}", self.label),
        };
        let mut reader = self.reader().map_err(unreadable)?;
        let mut head = Vec::with_capacity(HEAD_LEN as usize);
        (&mut reader)
            .take(HEAD_LEN)
            .read_to_end(&mut head)
            .map_err(unreadable)?;
        let format = FindingsFormat::detect(&head);
        let whole: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(reader));
        Ok(match format {
            FindingsFormat::JsonLines => Box::new(JsonLines::new(BufReader::new(whole))),
            FindingsFormat::Document => {
                let (tx, rx) = mpsc::sync_channel(CHANNEL_BOUND);
                std::thread::Builder::new()
                    .name("findings-reader".into())
                    .spawn(move || {
                        let mut open = true;
                        let outcome = read_document(whole, |item| {
                            // Once the export stops listening the rest is only parsed.
                            if open && tx.send(item).is_err() {
                                open = false;
                            }
                        });
                        if let Err(e) = outcome {
                            let _ = tx.send(Err(e));
                        }
                    })
                    .map_err(unreadable)?;
                Box::new(rx.into_iter())
            }
        })
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn checksum(&self) -> Option<String> {
        Some(self.checksum.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"id":"f-1","title":"A","severity":"high","status":"open"}"#;

    #[test]
    fn json_lines_and_documents_stream_with_positions() {
        let lines = format!("{VALID}\n{{\"id\":\"f-2\",\"title\":\"B\",\"severity\":\"loud\",\"status\":\"open\"}}\n");
        let src = FileSource::from_bytes("f.jsonl", lines.into_bytes());
        let items: Vec<_> = src.open().unwrap().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        let err = items[1].as_ref().unwrap_err();
        assert_eq!(
            src.describe_error(err),
            format!("f.jsonl:2: field `severity`: {} (finding f-2)", err.reason)
        );
        // Re-openable: the same findings again.
        assert_eq!(src.open().unwrap().count(), 2);

        let doc = format!("{{\"schema_version\": 1, \"findings\": [{VALID}, {{\"id\": 3}}]}}");
        let src = FileSource::from_bytes("f.json", doc.into_bytes());
        let items: Vec<_> = src.open().unwrap().collect();
        assert_eq!(items.len(), 2);
        let msg = src.describe_error(items[1].as_ref().unwrap_err());
        assert!(msg.starts_with("f.json:findings[1]:"), "{msg}");
        assert_eq!(src.checksum().unwrap().len(), 64);
    }

    #[test]
    fn unusable_paths_are_errors_naming_the_file_and_the_fix() {
        let dir = std::env::temp_dir();
        let missing = dir.join("webriskops-no-such-findings.json");
        let e = FileSource::open_path(&missing).unwrap_err().to_string();
        assert!(
            e.contains("webriskops-no-such-findings.json") && e.contains("check the path"),
            "{e}"
        );
        let e = FileSource::open_path(&dir).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_file_streams_and_is_checksummed_by_its_bytes() {
        let path =
            std::env::temp_dir().join(format!("webriskops-findings-{}.jsonl", std::process::id()));
        std::fs::write(&path, format!("{VALID}\n")).unwrap();
        let src = FileSource::open_path(&path).unwrap();
        assert_eq!(src.open().unwrap().filter(Result::is_ok).count(), 1);
        assert_eq!(
            src.checksum(),
            FileSource::from_bytes("x", format!("{VALID}\n").into_bytes()).checksum()
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_broken_document_reports_once_at_document_level() {
        let src = FileSource::from_bytes("d.json", b"{\"findings\": [".to_vec());
        let items: Vec<_> = src.open().unwrap().collect();
        assert_eq!(items.len(), 1);
        assert!(src
            .describe_error(items[0].as_ref().unwrap_err())
            .starts_with("d.json: "));
    }
}
