//! Progress reporting for long work; the app draws it, tests ignore it.

/// Receives progress of a long-running use case. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A new phase starts (`listing`, `planning`, `applying`), with its size if known.
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// Something worth telling the operator.
    fn note(&self, _message: &str) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
