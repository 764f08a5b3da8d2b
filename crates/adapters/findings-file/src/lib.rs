//! Findings files (contract `findings-v1`) as a re-openable [`FindingSource`]: the one
//! reader of findings files (the binary, the end-to-end tests and the benchmarks all
//! read through it).
//!
//! Opening a source reads it once, streaming: it is hashed (the checksum), surveyed
//! (format detected by structure, a document's envelope checked, input that is not
//! findings refused at its first byte) and, when it is not a regular file (a pipe,
//! `<(cmd)`, `/dev/stdin`, `-`), spooled to a private temporary file so that it can be
//! read again. Each [`FindingSource::open`] then streams the findings with bounded memory.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use webriskops_domain::text::escape_untrusted;
use webriskops_domain::{
    survey, DocumentFindings, FindingError, FindingsFormat, JsonLines, Position, ReadLimits,
};
use webriskops_ports::{FindingSource, FindingStream, PortError, PortResult};

/// A findings file that cannot be used; the message says which and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileSourceError(String);

/// The most bytes read by default from input that is not a regular file: 1 GiB.
pub const DEFAULT_SPOOL_LIMIT: u64 = 1 << 30;

/// How findings input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSourceOptions {
    /// Limits on one line or one finding.
    pub limits: ReadLimits,
    /// The most bytes taken from input that is not a regular file (it is spooled to a
    /// temporary file); past it the input is refused.
    pub spool_limit: u64,
}

impl Default for FileSourceOptions {
    fn default() -> Self {
        Self {
            limits: ReadLimits::default(),
            spool_limit: DEFAULT_SPOOL_LIMIT,
        }
    }
}

/// What identifies the version of a regular file that was surveyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

#[derive(Clone)]
enum Input {
    /// A regular file, read again on each open.
    Path {
        path: PathBuf,
        stamp: Stamp,
    },
    /// A pipe or device, read once into a private temporary file (mode 0600, removed
    /// when the source is dropped).
    Spool(Arc<tempfile::NamedTempFile>),
    Bytes(Arc<Vec<u8>>),
}

/// A findings file (or bytes already in memory, e.g. the demo's sample).
#[derive(Clone)]
pub struct FileSource {
    input: Input,
    label: String,
    checksum: String,
    /// The survey's verdict; an open of input that failed it fails the same way.
    format: Result<FindingsFormat, FindingError>,
    limits: ReadLimits,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Reads through to `inner`, hashing every byte and, when `spool` is set, copying it
/// there, up to `limit` bytes.
struct Tee<R> {
    inner: R,
    hasher: Sha256,
    spool: Option<BufWriter<File>>,
    read: u64,
    limit: u64,
    over: bool,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.over = true;
            return Err(io::Error::other("the input is larger than the limit"));
        }
        self.hasher.update(&buf[..n]);
        if let Some(out) = &mut self.spool {
            out.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

fn prefix(label: &str, e: &FindingError) -> String {
    let at = match e.position {
        Position::Line(n) => format!("{label}:{n}"),
        Position::Index(i) => format!("{label}:findings[{i}]"),
        Position::Document => label.to_owned(),
    };
    // The domain already escaped and shortened what it quotes; escaping again is a
    // no-op for that text and keeps errors made elsewhere just as safe to print.
    let field = e
        .field
        .as_ref()
        .map(|f| format!(" field `{}`:", escape_untrusted(f)))
        .unwrap_or_default();
    let id =
        e.id.as_ref()
            .map(|id| format!(" (finding {})", escape_untrusted(id)))
            .unwrap_or_default();
    format!("{at}:{field} {}{id}", escape_untrusted(&e.reason))
}

impl FileSource {
    /// A findings file with the default options; see [`FileSource::open_path_with`].
    ///
    /// # Errors
    /// See [`FileSource::open_path_with`].
    pub fn open_path(path: &Path) -> Result<Self, FileSourceError> {
        Self::open_path_with(path, &FileSourceOptions::default())
    }

    /// A findings file, read once now (hashed and surveyed). `-`, pipes (`<(cmd)`,
    /// `/dev/stdin`) and devices are spooled to a private temporary file, at most
    /// `opts.spool_limit` bytes, so that the export can read them twice.
    ///
    /// # Errors
    /// The file cannot be read, is not findings (refused at its first byte that cannot
    /// start one: `/dev/zero` fails at once), is a document whose envelope breaks the
    /// contract (unsupported `schema_version`, a duplicate key, malformed JSON), or a
    /// stream larger than the spool limit. The message names the file and the fix.
    pub fn open_path_with(path: &Path, opts: &FileSourceOptions) -> Result<Self, FileSourceError> {
        if path == Path::new("-") {
            return Self::spool(io::stdin().lock(), "<stdin>", opts);
        }
        let label = escape_untrusted(&path.display().to_string()).into_owned();
        let unreadable = |e: io::Error| {
            FileSourceError(format!(
                "cannot read findings file {label}: {e}; check the path and its permissions"
            ))
        };
        let meta = fs::metadata(path).map_err(unreadable)?;
        if meta.is_dir() {
            return Err(FileSourceError(format!(
                "findings file {label} is a directory; pass a JSON or JSON Lines file"
            )));
        }
        let file = File::open(path).map_err(unreadable)?;
        if !meta.is_file() {
            return Self::spool(file, &label, opts);
        }
        let stamp = Stamp::of(&file.metadata().map_err(unreadable)?);
        let mut tee = Tee {
            inner: file,
            hasher: Sha256::new(),
            spool: None,
            read: 0,
            limit: u64::MAX,
            over: false,
        };
        let format = survey(&mut tee, &opts.limits)
            .map_err(|e| FileSourceError(prefix(&label, &e)))?
            .format;
        io::copy(&mut tee, &mut io::sink()).map_err(unreadable)?;
        Ok(Self {
            input: Input::Path {
                path: path.to_owned(),
                stamp,
            },
            label,
            checksum: hex::encode(tee.hasher.finalize()),
            format: Ok(format),
            limits: opts.limits,
        })
    }

    /// Reads `reader` once into a private temporary file (mode 0600, removed on drop;
    /// `tempfile` creates it so: docs.rs/tempfile, `Builder::permissions`).
    fn spool(
        reader: impl Read,
        label: &str,
        opts: &FileSourceOptions,
    ) -> Result<Self, FileSourceError> {
        let tmp = tempfile::Builder::new()
            .prefix("webriskops-findings-")
            .tempfile()
            .map_err(|e| {
                FileSourceError(format!(
                    "cannot create a temporary file to hold the findings from {label}: {e}; \
                     set TMPDIR to a writable directory, or pass a regular file"
                ))
            })?;
        let spool = tmp.reopen().map_err(|e| {
            FileSourceError(format!("cannot write the temporary copy of {label}: {e}"))
        })?;
        let mut tee = Tee {
            inner: reader,
            hasher: Sha256::new(),
            spool: Some(BufWriter::new(spool)),
            read: 0,
            limit: opts.spool_limit,
            over: false,
        };
        let too_large = || {
            FileSourceError(format!(
                "{label} holds more than {} bytes, the limit for findings read from a pipe, \
                 stdin or a device; write them to a regular file and pass its path",
                opts.spool_limit
            ))
        };
        let unreadable =
            |e: io::Error| FileSourceError(format!("cannot read findings from {label}: {e}"));
        let surveyed = survey(&mut tee, &opts.limits);
        if tee.over {
            return Err(too_large());
        }
        let format = surveyed
            .map_err(|e| FileSourceError(prefix(label, &e)))?
            .format;
        if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
            return Err(if tee.over { too_large() } else { unreadable(e) });
        }
        if let Some(mut out) = tee.spool.take() {
            out.flush().map_err(|e| {
                FileSourceError(format!("cannot write the temporary copy of {label}: {e}"))
            })?;
        }
        Ok(Self {
            input: Input::Spool(Arc::new(tmp)),
            label: label.to_owned(),
            checksum: hex::encode(tee.hasher.finalize()),
            format: Ok(format),
            limits: opts.limits,
        })
    }

    /// Findings already in memory, named `label` in messages. Input that is not
    /// findings is reported when the source is opened.
    pub fn from_bytes(label: &str, bytes: Vec<u8>) -> Self {
        let limits = ReadLimits::default();
        let format = survey(bytes.as_slice(), &limits).map(|s| s.format);
        Self {
            checksum: hex::encode(Sha256::digest(&bytes)),
            input: Input::Bytes(Arc::new(bytes)),
            label: escape_untrusted(label).into_owned(),
            format,
            limits,
        }
    }

    fn reader(&self) -> Result<Box<dyn Read + Send>, String> {
        let unreadable = |e: io::Error| format!("cannot read {}: {e}", self.label);
        Ok(match &self.input {
            Input::Path { path, stamp } => {
                let file = File::open(path).map_err(unreadable)?;
                if Stamp::of(&file.metadata().map_err(unreadable)?) != *stamp {
                    return Err(format!(
                        "{} changed while the export was reading it; run the export again once \
                         it is complete",
                        self.label
                    ));
                }
                Box::new(file)
            }
            Input::Spool(tmp) => Box::new(tmp.reopen().map_err(unreadable)?),
            Input::Bytes(b) => Box::new(Cursor::new(SharedBytes(Arc::clone(b)))),
        })
    }

    /// `FILE:LINE: field `x`: reason (finding ID)` (or `FILE:findings[i]: …`, or
    /// `FILE: …` for the file as a whole), for one invalid finding. Everything quoted
    /// from the input is escaped and short (see `webriskops_domain::text::echo_untrusted`).
    pub fn describe_error(&self, e: &FindingError) -> String {
        prefix(&self.label, e)
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
        let invalid = |message: String| PortError::InvalidInput {
            context: Default::default(),
            message,
        };
        let format = self
            .format
            .clone()
            .map_err(|e| invalid(self.describe_error(&e)))?;
        let reader = self.reader().map_err(invalid)?;
        Ok(match format {
            FindingsFormat::JsonLines => Box::new(JsonLines::with_limits(
                BufReader::with_capacity(64 * 1024, reader),
                self.limits,
            )),
            FindingsFormat::Document => Box::new(DocumentFindings::new(reader, self.limits)),
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, format!("{VALID}\n")).unwrap();
        let src = FileSource::open_path(&path).unwrap();
        assert_eq!(src.open().unwrap().filter(Result::is_ok).count(), 1);
        assert_eq!(
            src.checksum(),
            FileSource::from_bytes("x", format!("{VALID}\n").into_bytes()).checksum()
        );
    }

    #[test]
    fn a_broken_document_is_refused_before_any_finding_is_used() {
        let src = FileSource::from_bytes("d.json", b"{\"findings\": [".to_vec());
        let e = src.open().err().expect("a broken document does not open");
        assert!(e.to_string().contains("d.json: "), "{e}");
        let e = FileSource::from_bytes(
            "d.json",
            format!("{{\"findings\": [{VALID}], \"schema_version\": 1").into_bytes(),
        )
        .open()
        .err()
        .expect("a truncated document does not open");
        assert!(e.to_string().contains("the end of the input"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_spooled_stream_is_private_and_removed_with_the_source() {
        use std::os::unix::fs::PermissionsExt;

        let lines = format!("{VALID}\n");
        let src =
            FileSource::spool(lines.as_bytes(), "<pipe>", &FileSourceOptions::default()).unwrap();
        let Input::Spool(tmp) = &src.input else {
            panic!("a stream is spooled");
        };
        let path = tmp.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert_eq!(src.open().unwrap().filter(Result::is_ok).count(), 1);
        drop(src);
        assert!(!path.exists(), "the spool outlived its source");
    }
}
