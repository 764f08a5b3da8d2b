//! Logging to stderr through the redactor: readable text by default, JSON on request.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::redact::RedactingWriter;

/// Default filter: quiet (warnings only) unless `RUST_LOG` says otherwise.
const DEFAULT_FILTER: &str = "warn";

/// Installs the global subscriber. Calling it twice is harmless (the second is ignored).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let writer = || RedactingWriter(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Replaces the panic message with a short, redacted one: no backtrace, no secrets.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "{}",
            crate::redact::redact(&format!(
                "webriskops: internal error{at}: {payload}; nothing secret was printed; please report this with the command you ran"
            ))
        );
    }));
}
