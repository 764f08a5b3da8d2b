//! Settings: defaults, then the file named by `--config FILE` or `WEBRISKOPS_CONFIG` (never
//! a file found on its own), then the environment.
//!
//! Environment names are explicit, never derived from keys: see `docs/configuration.md`.
//! Why no file is read implicitly: `docs/decisions/0004-explicit-configuration.md`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use webriskops_linear::{
    RateLimits as LinearRateLimits, RetryPolicy as LinearRetryPolicy, DEFAULT_API_URL,
    DEFAULT_FINDING_URL_TEMPLATE,
};
use webriskops_trello::{RateLimits, RetryPolicy, DEFAULT_API_ROOT};

use crate::error::{AppError, AppResult};

/// The file name earlier versions read from the current directory. It is never read
/// now unless named explicitly; when it is present and unnamed, a note says so.
pub const LEGACY_CONFIG_FILE: &str = "webriskops.toml";

/// The environment variable naming the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "WEBRISKOPS_CONFIG";

/// Environment variables and the keys they set.
pub const ENV_DATA_DIR: &str = "WEBRISKOPS_DATA_DIR";
pub const ENV_TENANT: &str = "WEBRISKOPS_TENANT";
pub const ENV_API_ROOT: &str = "WEBRISKOPS_TRELLO_API_ROOT";
pub const ENV_API_KEY: &str = "TRELLO_API_KEY";
pub const ENV_TOKEN: &str = "TRELLO_TOKEN";
pub const ENV_LOG_FORMAT: &str = "WEBRISKOPS_LOG_FORMAT";
/// The tracker the commands work on (like `--tracker`): `trello` or `linear`.
pub const ENV_TRACKER: &str = "WEBRISKOPS_TRACKER";
/// Linear's GraphQL endpoint (`linear.api_url`).
pub const ENV_LINEAR_API_URL: &str = webriskops_linear::API_URL_ENV;
/// The finding URL template with `{id}` (`linear.finding_url`).
pub const ENV_FINDING_URL: &str = "WEBRISKOPS_FINDING_URL";
/// A Linear personal API key. A secret: read from the environment only, never a setting.
pub const ENV_LINEAR_API_KEY: &str = "LINEAR_API_KEY";

/// `(environment variable, settings key)` for every variable that maps to a key.
const ENV_KEYS: &[(&str, &str)] = &[
    (ENV_DATA_DIR, "data_dir"),
    (ENV_TENANT, "tenant"),
    (ENV_API_ROOT, "trello.api_root"),
    (ENV_API_KEY, "trello.api_key"),
    (ENV_LOG_FORMAT, "log_format"),
    (ENV_LINEAR_API_URL, "linear.api_url"),
    (ENV_FINDING_URL, "linear.finding_url"),
];

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// When an export writes the portable bundle instead of Trello cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FallbackMode {
    /// The bundle when Trello cannot be made safe (auth, scope, board, list, deployment).
    #[default]
    Auto,
    /// Never: a blocked setup stops the export (exit 3).
    Never,
    /// Always the bundle, without asking Trello.
    Always,
}

impl FallbackMode {
    /// The service's policy of the same name.
    pub fn policy(self) -> webriskops_service::FallbackPolicy {
        match self {
            FallbackMode::Auto => webriskops_service::FallbackPolicy::Auto,
            FallbackMode::Never => webriskops_service::FallbackPolicy::Never,
            FallbackMode::Always => webriskops_service::FallbackPolicy::Always,
        }
    }
}

/// Everything configurable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the database, the lock and the master key file live.
    pub data_dir: Option<PathBuf>,
    /// The customer tenant the provider record belongs to.
    pub tenant: String,
    pub log_format: LogFormat,
    pub trello: TrelloSettings,
    pub linear: LinearSection,
    pub export: ExportSettings,
}

/// Trello connection settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrelloSettings {
    pub api_root: String,
    /// The application's API key (not a secret on its own, but never printed).
    pub api_key: Option<String>,
    /// Lifetime asked for in the authorize URL: `1hour`, `1day`, `30days` or `never`.
    pub token_expiration: String,
    /// Seconds allowed for one HTTP exchange.
    pub timeout_secs: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub limits: RateLimits,
    pub retry: RetryPolicy,
}

/// Linear connection settings: the adapter's settings (`webriskops_linear::LinearSettings`)
/// plus the finding URL template. The API key is never a setting (`LINEAR_API_KEY`,
/// `--token-file`, the prompt, or the stored key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearSection {
    /// The GraphQL endpoint; plain `http` only on a loopback address.
    pub api_url: String,
    /// Each finding's canonical URL, with `{id}`: the attachment that ties an issue to its
    /// finding. Changing it orphans the issues made with the old one.
    pub finding_url: String,
    /// Milliseconds allowed for one HTTP exchange.
    pub timeout_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub retry: LinearRetryPolicy,
    pub limits: LinearRateLimits,
}

impl Default for LinearSection {
    fn default() -> Self {
        let adapter = webriskops_linear::LinearSettings::default();
        Self {
            api_url: DEFAULT_API_URL.into(),
            finding_url: DEFAULT_FINDING_URL_TEMPLATE.into(),
            timeout_ms: adapter.timeout_ms,
            concurrency: adapter.concurrency,
            retry: adapter.retry,
            limits: adapter.limits,
        }
    }
}

impl LinearSection {
    /// The adapter's settings.
    pub fn adapter_settings(&self) -> webriskops_linear::LinearSettings {
        webriskops_linear::LinearSettings {
            api_url: self.api_url.clone(),
            timeout_ms: self.timeout_ms,
            concurrency: self.concurrency,
            retry: self.retry.clone(),
            limits: self.limits.clone(),
        }
    }
}

/// Defaults of `webriskops export`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSettings {
    pub fallback: FallbackMode,
    /// Where the portable bundle goes.
    pub out_dir: PathBuf,
    /// Card writes in flight at once.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: None,
            tenant: "default".into(),
            log_format: LogFormat::Text,
            trello: TrelloSettings::default(),
            linear: LinearSection::default(),
            export: ExportSettings::default(),
        }
    }
}

impl Default for TrelloSettings {
    fn default() -> Self {
        Self {
            api_root: DEFAULT_API_ROOT.into(),
            api_key: None,
            token_expiration: "30days".into(),
            timeout_secs: 30,
            concurrency: 16,
            limits: RateLimits::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            fallback: FallbackMode::Auto,
            out_dir: PathBuf::from("./webriskops-export"),
            concurrency: 16,
        }
    }
}

/// Loads the settings. The file is `explicit` (`--config FILE`), else the file named by
/// `WEBRISKOPS_CONFIG`; either must exist. No other file is ever read: a file that merely
/// sits in the current directory must not decide where credentials are sent. When
/// `./webriskops.toml` exists and no file was named, a note on stderr says how to use it.
///
/// # Errors
/// A named file that is missing, unreadable or invalid (exit 2).
pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> AppResult<Settings> {
    let from_env = env(ENV_CONFIG)
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from);
    let file = match (explicit, from_env) {
        (Some(p), _) => Some((p.to_owned(), "the --config path")),
        (None, Some(p)) => Some((p, ENV_CONFIG)),
        (None, None) => None,
    };
    if let Some((p, named_by)) = &file {
        if !p.is_file() {
            return Err(AppError::usage(format!(
                "config file {} does not exist; check {named_by}, or leave it out to use the defaults and the environment",
                p.display()
            )));
        }
    } else if Path::new(LEGACY_CONFIG_FILE).is_file() {
        crate::output::Out::default().note(format!(
            "note: ./{LEGACY_CONFIG_FILE} is not read: configuration comes only from --config FILE \
             or {ENV_CONFIG}; pass --config {LEGACY_CONFIG_FILE} to use it (see docs/configuration.md)"
        ));
    }
    let file = file.map(|(p, _)| p);
    let mut builder = config::Config::builder();
    if let Some(f) = &file {
        builder = builder.add_source(
            config::File::from(f.as_path())
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    for (var, key) in ENV_KEYS {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            builder = builder
                .set_override(*key, v)
                .map_err(|e| AppError::usage(format!("environment variable {var}: {e}")))?;
        }
    }
    let where_ = file
        .as_ref()
        .map_or_else(|| "the environment".to_owned(), |f| f.display().to_string());
    builder
        .build()
        .and_then(|c| c.try_deserialize::<Settings>())
        .map_err(|e| {
            AppError::usage(format!(
                "invalid configuration in {where_}: {e}; see docs/configuration.md for every key"
            ))
        })
}

/// The per-user data directory used when none is configured.
///
/// # Errors
/// No home directory is known (exit 2: pass `--data-dir`).
pub fn default_data_dir() -> AppResult<PathBuf> {
    directories::ProjectDirs::from("com", "WebRiskOps", "webriskops")
        .map(|d| d.data_dir().to_owned())
        .ok_or_else(|| {
            AppError::usage(format!(
                "no per-user data directory is known for this account; pass --data-dir or set {ENV_DATA_DIR}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "tenant = \"acme\"\n[trello]\nconcurrency = 4\n[trello.limits]\ntoken_limit = 50\n[export]\nfallback = \"never\"\n",
        )
        .unwrap();
        let s = load(Some(&path), &env_of(&[(ENV_TENANT, "globex")])).unwrap();
        assert_eq!(s.tenant, "globex");
        assert_eq!(s.trello.concurrency, 4);
        assert_eq!(s.trello.limits.token_limit, 50);
        assert_eq!(s.trello.limits.key_limit, 300);
        assert_eq!(s.export.fallback, FallbackMode::Never);
        assert_eq!(s.trello.api_root, DEFAULT_API_ROOT);
    }

    #[test]
    fn the_linear_section_reads_the_file_and_its_two_environment_variables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "[linear]\ntimeout_ms = 5000\n[linear.limits]\napi_key_requests = 100\n[linear.retry]\nmax_retries = 1\n",
        )
        .unwrap();
        let s = load(Some(&path), &env_of(&[])).unwrap();
        assert_eq!(s.linear.api_url, DEFAULT_API_URL);
        assert_eq!(s.linear.finding_url, DEFAULT_FINDING_URL_TEMPLATE);
        assert_eq!(s.linear.timeout_ms, 5000);
        assert_eq!(s.linear.limits.api_key_requests, 100);
        assert_eq!(s.linear.retry.max_retries, 1);
        let s = load(
            Some(&path),
            &env_of(&[
                (ENV_LINEAR_API_URL, "http://127.0.0.1:9/graphql"),
                (ENV_FINDING_URL, "https://risk.example/f/{id}"),
            ]),
        )
        .unwrap();
        assert_eq!(s.linear.api_url, "http://127.0.0.1:9/graphql");
        assert_eq!(s.linear.finding_url, "https://risk.example/f/{id}");
        assert_eq!(s.linear.adapter_settings().timeout_ms, 5000);
        std::fs::write(&path, "[linear]\napi_key = \"lin_api_x\"\n").unwrap();
        let err = load(Some(&path), &env_of(&[])).unwrap_err();
        assert!(err.message.contains("api_key"), "{}", err.message);
    }

    #[test]
    fn webriskops_config_names_the_file_and_a_missing_one_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "tenant = \"acme\"\n").unwrap();
        let named = path.display().to_string();
        let s = load(None, &env_of(&[(ENV_CONFIG, named.as_str())])).unwrap();
        assert_eq!(s.tenant, "acme");
        let missing = dir.path().join("none.toml").display().to_string();
        let err = load(None, &env_of(&[(ENV_CONFIG, missing.as_str())])).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::Usage);
        assert!(err.message.contains(ENV_CONFIG), "{}", err.message);
        // --config wins over the variable.
        let other = dir.path().join("o.toml");
        std::fs::write(&other, "tenant = \"globex\"\n").unwrap();
        let s = load(Some(&other), &env_of(&[(ENV_CONFIG, named.as_str())])).unwrap();
        assert_eq!(s.tenant, "globex");
    }

    #[test]
    fn missing_explicit_file_and_unknown_keys_are_usage_errors() {
        let err = load(Some(Path::new("/nonexistent/w.toml")), &env_of(&[])).unwrap_err();
        assert_eq!(err.exit, crate::error::Exit::Usage);
        assert!(err.message.contains("does not exist"), "{}", err.message);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "tennant = \"x\"\n").unwrap();
        let err = load(Some(&path), &env_of(&[])).unwrap_err();
        assert!(err.message.contains("tennant"), "{}", err.message);
    }
}
