//! Writing a bundle atomically (staging directory, fsync, rename into place) and
//! reading one back with its checksums verified.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use webriskops_domain::{extract_marker, marker};

use crate::error::PortableError;
use crate::model::{
    CardRecord, CardsFile, Manifest, CARDS_DIR, CARDS_JSON, FORMAT_NAME, FORMAT_VERSION,
    MANIFEST_FILE,
};
use crate::names::is_safe_relative;

/// Hex SHA-256 of everything `reader` yields, e.g. the findings file a bundle is made
/// from (the manifest's `source_checksum`).
///
/// # Errors
/// The reader's error.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// The directory a bundle is written next to, and the bundle's own name in it.
pub(crate) fn split_target(target: &Path) -> Result<(PathBuf, String), PortableError> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| PortableError::InvalidOptions {
            reason: format!(
                "out_dir {} must end in a directory name, e.g. ./webriskops-bundle",
                target.display()
            ),
        })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_owned()))
}

/// Refuses to replace anything but nothing, an empty directory or an earlier bundle.
pub(crate) fn check_replaceable(target: &Path) -> Result<bool, PortableError> {
    let meta = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(PortableError::io("inspect", target)(e)),
    };
    let not_a_bundle = || PortableError::NotABundle {
        path: target.to_owned(),
    };
    if !meta.is_dir() {
        return Err(not_a_bundle());
    }
    let mut entries = fs::read_dir(target).map_err(PortableError::io("read", target))?;
    if entries.next().is_none() {
        return Ok(true);
    }
    let manifest = target.join(MANIFEST_FILE);
    let is_bundle = fs::read(&manifest)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v["format"] == FORMAT_NAME);
    if is_bundle {
        Ok(true)
    } else {
        Err(not_a_bundle())
    }
}

fn sync_dir(dir: &Path) -> Result<(), PortableError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(PortableError::io("sync", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A file being written into the staging directory, hashed as it goes.
pub(crate) struct StagedFile {
    rel: String,
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
}

impl StagedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Builds a bundle in a hidden staging directory next to the target, then swaps it in.
pub(crate) struct BundleWriter {
    target: PathBuf,
    parent: PathBuf,
    staging: tempfile::TempDir,
    files: BTreeMap<String, String>,
    opened: usize,
    fail_after_files: Option<usize>,
}

impl BundleWriter {
    /// Checks the target can be replaced and creates the staging directory.
    pub(crate) fn begin(
        target: &Path,
        fail_after_files: Option<usize>,
    ) -> Result<Self, PortableError> {
        let (parent, name) = split_target(target)?;
        check_replaceable(target)?;
        fs::create_dir_all(&parent).map_err(PortableError::io("create", &parent))?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.staging-"))
            .tempdir_in(&parent)
            .map_err(PortableError::io("create a staging directory in", &parent))?;
        let cards = staging.path().join(CARDS_DIR);
        fs::create_dir(&cards).map_err(PortableError::io("create", &cards))?;
        Ok(BundleWriter {
            target: target.to_owned(),
            parent,
            staging,
            files: BTreeMap::new(),
            opened: 0,
            fail_after_files,
        })
    }

    /// Opens `rel` (a `/`-separated bundle path) for writing.
    pub(crate) fn open(&mut self, rel: &str) -> Result<StagedFile, PortableError> {
        let path = self.staging.path().join(rel);
        if self.fail_after_files.is_some_and(|n| self.opened >= n) {
            return Err(PortableError::Io {
                action: "write",
                path,
                source: io::Error::other("injected failure (fail_after_files)"),
            });
        }
        self.opened += 1;
        let file = File::create(&path).map_err(PortableError::io("create", &path))?;
        Ok(StagedFile {
            rel: rel.to_owned(),
            path,
            out: BufWriter::new(file),
            hasher: Sha256::new(),
        })
    }

    /// Makes a staged file durable and records its checksum for the manifest.
    pub(crate) fn finish(&mut self, file: StagedFile) -> Result<(), PortableError> {
        let StagedFile {
            rel,
            path,
            out,
            hasher,
        } = file;
        let f = out
            .into_inner()
            .map_err(|e| PortableError::io("write", &path)(e.into_error()))?;
        f.sync_all().map_err(PortableError::io("sync", &path))?;
        self.files.insert(rel, hex::encode(hasher.finalize()));
        Ok(())
    }

    /// Writes a whole small file.
    pub(crate) fn write_file(&mut self, rel: &str, bytes: &[u8]) -> Result<(), PortableError> {
        let mut f = self.open(rel)?;
        f.write_all(bytes)
            .map_err(PortableError::io("write", &f.path.clone()))?;
        self.finish(f)
    }

    /// Writes the manifest (with the checksums of every other file) and swaps the
    /// staging directory into place. Until the final rename, the previous bundle (if
    /// any) stays untouched at the target.
    pub(crate) fn commit(mut self, mut manifest: Manifest) -> Result<(), PortableError> {
        manifest.files = std::mem::take(&mut self.files);
        let mut bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| PortableError::io("encode", Path::new(MANIFEST_FILE))(e.into()))?;
        bytes.push(b'\n');
        let mut f = self.open(MANIFEST_FILE)?;
        f.write_all(&bytes)
            .map_err(PortableError::io("write", &f.path.clone()))?;
        self.finish(f)?;
        sync_dir(&self.staging.path().join(CARDS_DIR))?;
        sync_dir(self.staging.path())?;

        // The target may have appeared since `begin`: check again right before the swap.
        let replace = check_replaceable(&self.target)?;
        let staged = self.staging.keep();
        let result = swap_into_place(&staged, &self.target, replace);
        if result.is_err() {
            let _ = fs::remove_dir_all(&staged);
        }
        result?;
        sync_dir(&self.parent)
    }
}

/// Renames `staged` to `target`. An existing target is moved aside first and put back
/// if the rename fails, then removed.
fn swap_into_place(staged: &Path, target: &Path, replace: bool) -> Result<(), PortableError> {
    if !replace {
        return fs::rename(staged, target).map_err(PortableError::io("move the bundle to", target));
    }
    let mut aside = staged.as_os_str().to_owned();
    aside.push(".old");
    let aside = PathBuf::from(aside);
    fs::rename(target, &aside).map_err(PortableError::io("move aside", target))?;
    if let Err(e) = fs::rename(staged, target) {
        let _ = fs::rename(&aside, target);
        return Err(PortableError::io("move the bundle to", target)(e));
    }
    // The new bundle is complete in place; a leftover old copy is only clutter.
    let _ = fs::remove_dir_all(&aside);
    Ok(())
}

/// A portable bundle on disk.
#[derive(Debug, Clone, Copy)]
pub struct PortableBundle;

/// A bundle read back and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedBundle {
    pub manifest: Manifest,
    /// The cards of `cards.json`, sorted by finding id.
    pub cards: Vec<CardRecord>,
}

fn open_in(dir: &Path, rel: &str) -> Result<File, PortableError> {
    let path = dir.join(rel);
    File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PortableError::MissingFile {
            dir: dir.to_owned(),
            file: rel.to_owned(),
        },
        _ => PortableError::io("open", &path)(e),
    })
}

impl PortableBundle {
    /// Reads the bundle in `dir`, verifies every checksum of its manifest and returns
    /// its cards.
    ///
    /// # Errors
    /// A missing manifest or file, a file whose checksum differs (named in the error),
    /// an unsupported format version, or a `cards.json` that disagrees with the manifest.
    pub fn load(dir: impl AsRef<Path>) -> Result<LoadedBundle, PortableError> {
        let dir = dir.as_ref();
        let manifest: Manifest =
            serde_json::from_reader(BufReader::new(open_in(dir, MANIFEST_FILE)?))
                .map_err(|e| PortableError::malformed(dir, MANIFEST_FILE, e))?;
        if manifest.format != FORMAT_NAME || manifest.format_version != FORMAT_VERSION {
            return Err(PortableError::malformed(
                dir,
                MANIFEST_FILE,
                format!(
                    "format {} version {} is not supported; this build reads {FORMAT_NAME} version {FORMAT_VERSION}",
                    manifest.format, manifest.format_version
                ),
            ));
        }
        for (rel, expected) in &manifest.files {
            if !is_safe_relative(rel) {
                return Err(PortableError::malformed(
                    dir,
                    MANIFEST_FILE,
                    format!("it lists {rel:?}, a path outside the bundle"),
                ));
            }
            let actual = sha256_hex(open_in(dir, rel)?)
                .map_err(PortableError::io("read", &dir.join(rel)))?;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(PortableError::ChecksumMismatch {
                    dir: dir.to_owned(),
                    file: rel.clone(),
                });
            }
        }
        if !manifest.files.contains_key(CARDS_JSON) {
            return Err(PortableError::malformed(
                dir,
                MANIFEST_FILE,
                "it has no checksum for cards.json",
            ));
        }
        let cards: CardsFile = serde_json::from_reader(BufReader::new(open_in(dir, CARDS_JSON)?))
            .map_err(|e| PortableError::malformed(dir, CARDS_JSON, e))?;
        check_cards(dir, &manifest, &cards.cards)?;
        Ok(LoadedBundle {
            manifest,
            cards: cards.cards,
        })
    }
}

fn check_cards(dir: &Path, manifest: &Manifest, cards: &[CardRecord]) -> Result<(), PortableError> {
    let bad = |reason: String| Err(PortableError::malformed(dir, CARDS_JSON, reason));
    if cards.len() as u64 != manifest.card_count {
        return bad(format!(
            "it holds {} cards but the manifest counts {}",
            cards.len(),
            manifest.card_count
        ));
    }
    if let Some(w) = cards
        .windows(2)
        .find(|w| w[0].finding_id >= w[1].finding_id)
    {
        return bad(format!(
            "cards are not sorted by finding id or repeat one ({} before {})",
            w[0].finding_id, w[1].finding_id
        ));
    }
    for c in cards {
        if c.marker != marker(&c.finding_id)
            || extract_marker(&c.description).as_ref() != Some(&c.finding_id)
        {
            return bad(format!("the card of {} lost its marker", c.finding_id));
        }
        if !manifest.files.contains_key(&c.file) {
            return bad(format!(
                "the card of {} names {}, which the manifest does not list",
                c.finding_id, c.file
            ));
        }
    }
    Ok(())
}
