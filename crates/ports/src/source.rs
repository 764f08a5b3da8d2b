//! Where findings come from: a source the service can read more than once (plan, then
//! apply) without holding every finding in memory.

use std::fmt::Debug;

use webriskops_domain::{Finding, FindingError};

use crate::error::PortResult;

/// A stream of findings in file order; invalid findings are errors in the stream.
pub type FindingStream = Box<dyn Iterator<Item = Result<Finding, FindingError>> + Send>;

/// A re-readable source of findings (a file).
pub trait FindingSource: Send + Sync + Debug {
    /// Opens the source from the start.
    ///
    /// # Errors
    /// The source cannot be opened or is not a findings file at all.
    fn open(&self) -> PortResult<FindingStream>;

    /// A short description for messages, e.g. the file path.
    fn describe(&self) -> String;

    /// A checksum of the source's bytes (hex SHA-256), when available.
    fn checksum(&self) -> Option<String> {
        None
    }
}
