//! Portable export fallback: when a tracker cannot be written safely, the same cards
//! are written as a bundle of files (JSON, CSV, Markdown) with the same identities.
//!
//! [`PortableExport`] implements the `WorkItems` port, so the export service drives it
//! exactly as it drives a tracker; [`PortableBundle::load`] reads a bundle back and
//! verifies it. See `docs/portable-export.md` for the format and its guarantees.

mod bundle;
mod error;
mod export;
mod model;
mod names;

pub use bundle::{sha256_hex, LoadedBundle, PortableBundle};
pub use error::PortableError;
pub use export::{PortableExport, PortableOptions, ITEM_ID_PREFIX};
pub use model::{
    CardRecord, CardsFile, FallbackCause, FallbackTrigger, Manifest, RecordSummary, CARDS_CSV,
    CARDS_DIR, CARDS_JSON, CSV_HEADER, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE,
};
pub use names::{card_file_name, MAX_STEM};
