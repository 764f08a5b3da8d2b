//! The command line: global flags, commands and their examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{FallbackMode, LogFormat};

/// Set up Trello or Linear, export remediation findings as cards or issues, sync their
/// status back, revoke.
#[derive(Debug, Parser)]
#[command(name = "webriskops", version, about, after_help = concat!(
    "Examples:\n",
    "  webriskops demo                                   # a guided run against local Trello and Linear simulators\n",
    "  TRELLO_API_KEY=… webriskops setup trello          # prints the authorize URL for a token\n",
    "  webriskops setup trello --board-id B --list-id L --confirm-revoke-path --save\n",
    "  LINEAR_API_KEY=… webriskops setup linear           # lists the teams the key sees\n",
    "  webriskops export findings.jsonl\n",
    "  webriskops sync >> status-events.jsonl\n",
    "  webriskops status --json\n\n",
    "Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 blocked (setup is not ready), ",
    "4 partial failure (some findings invalid or not written)."
))]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Machine-readable JSON output (field names are stable, see docs/configuration.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Data directory: database, lock and master key file [env: WEBRISKOPS_DATA_DIR]
    /// [default: the per-user data directory].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (must exist) [env: WEBRISKOPS_CONFIG] [default: none; no file is
    /// read unless named here or in WEBRISKOPS_CONFIG].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr [env: WEBRISKOPS_LOG_FORMAT] [default: text].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// The tracker whose record status, export, sync and revoke work on
    /// [env: WEBRISKOPS_TRACKER] [default: the provider of the tenant's only record].
    #[arg(long, global = true, value_enum)]
    pub tracker: Option<TrackerArg>,
    /// PostgreSQL for `serve`, `migrate`, `tenant`, `user` and `api-token`
    /// (`postgres://user[:password]@host[:port]/database`), shared by every `serve`
    /// replica; needs WEBRISKOPS_MASTER_KEY [default: SQLite in the data directory].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "WEBRISKOPS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// A tracker WebRiskOps connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrackerArg {
    Trello,
    Linear,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect a tracker: check every ready and blocked state, save when ready.
    #[command(
        subcommand,
        after_help = "Examples:\n  webriskops setup trello\n  webriskops setup linear\n  webriskops setup linear --help"
    )]
    Setup(SetupTarget),
    /// Show the integration status: record, live readiness, token expiry, last runs.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops status\n",
        "  webriskops status --json | jq .blocked\n\n",
        "Exits 3 when the integration is blocked."
    ))]
    Status,
    /// Export findings as Trello cards or Linear issues (or as a portable bundle when blocked).
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops export findings.json\n",
        "  webriskops export findings.jsonl --dry-run --json\n",
        "  scanner --jsonl | webriskops export -\n",
        "  webriskops export findings.json --fallback always --out ./bundle\n\n",
        "--fallback auto (default) writes the portable bundle when Trello cannot be made safe\n",
        "(auth, scope, board, list or deployment blocked); a missing revoke-path confirmation\n",
        "still blocks. never: exit 3 when blocked. always: the bundle, without asking Trello.\n\n",
        "Exit codes: 0 ok, 1 error, 3 blocked, 4 some findings invalid or failed."
    ))]
    Export(ExportArgs),
    /// Report cards or issues whose status changed in the tracker, as JSON lines on stdout.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops sync\n",
        "  webriskops sync --json 2>summary.json >>events.jsonl\n\n",
        "Each change is reported once. Event fields: finding_id, tracker, item_id, item_url,\n",
        "tracker_status, previous, observed_at."
    ))]
    Sync,
    /// Revoke the token at the tracker, delete it locally and leave the record blocked.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops revoke\n",
        "  webriskops revoke --yes\n\n",
        "Without a terminal, --yes is required (exit 2 otherwise)."
    ))]
    Revoke(RevokeArgs),
    /// A guided run against local Trello and Linear simulators: setup, export, sync,
    /// re-export, status, for each tracker in turn.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops demo\n",
        "  webriskops demo --data-dir ./demo-state          # keeps demo-state/trello and demo-state/linear\n\n",
        "  webriskops demo --serve                           # the /settings pages against the simulators\n\n",
        "Nothing leaves this machine: both simulators listen on 127.0.0.1 only."
    ))]
    Demo(DemoArgs),
    /// Serve the /settings pages, the JSON API and the webhook receivers for many tenants.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops tenant add acme\n",
        "  webriskops user add --tenant acme --email pm@acme.example --role admin\n",
        "  webriskops serve --listen 127.0.0.1:8080\n",
        "  webriskops serve --listen 0.0.0.0:8080 --public-url https://ops.example.com\n\n",
        "Prints `listening on http://ADDR` on stderr once it accepts connections. SIGTERM or\n",
        "Ctrl-C drains in-flight requests and export jobs, then exits 0. TRELLO_API_KEY and\n",
        "TRELLO_API_SECRET are the application's own Trello key and secret; every tenant\n",
        "brings its own token on /settings. See docs/server.md."
    ))]
    Serve(ServeArgs),
    /// Manage the tenants `serve` hosts.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage the people who sign in to `serve`.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for the `serve` JSON API.
    #[command(subcommand, name = "api-token")]
    ApiToken(ApiTokenCommand),
    /// Apply the PostgreSQL store's pending migrations (`serve` also applies them at start).
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops migrate --database-url postgres://webriskops@db.internal/webriskops\n",
        "  WEBRISKOPS_DATABASE_URL=postgres://… webriskops migrate\n\n",
        "Safe to run from several replicas at once: each migration is applied once. Without\n",
        "--database-url (SQLite in the data directory) there is nothing to do: SQLite migrates\n",
        "when it is opened."
    ))]
    Migrate,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DemoArgs {
    /// Start the simulators and the server, print the URL and a demo login, and serve
    /// until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// With --serve: the address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// The address to listen on [env: WEBRISKOPS_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// The address people and the trackers' webhooks reach, e.g. https://ops.example.com
    /// [env: WEBRISKOPS_PUBLIC_URL] [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant (1 to 64 of A-Z a-z 0-9 . _ -).
    #[command(
        after_help = "Examples:\n  webriskops tenant add acme\n  webriskops tenant add acme --json"
    )]
    Add {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// A role in a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Sets up, saves, exports, syncs and revokes.
    Admin,
    /// Reads status, runs and events.
    Viewer,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a person to a tenant, or set their role and password (their sessions end).
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops user add --tenant acme --email pm@acme.example --role admin\n",
        "  webriskops user add --tenant acme --email ro@acme.example --role viewer --password-file pw.txt\n\n",
        "The password comes from --password-file (first line) or a hidden prompt; it is kept\n",
        "only as an argon2id hash. At least 12 characters."
    ))]
    Add {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        #[arg(long, value_name = "E-MAIL")]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from this file (first line).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create an API token; it is printed once and only its digest is kept.
    #[command(after_help = concat!(
        "Examples:\n",
        "  webriskops api-token create --tenant acme --role admin\n",
        "  webriskops api-token create --tenant acme --role viewer --json   # {\"token\": \"wro_…\"}\n\n",
        "Use it as `Authorization: Bearer <token>` on /api/v1."
    ))]
    Create {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SetupTarget {
    /// Trello cloud: cloud target → board and list → scopes → revoke path.
    #[command(after_help = concat!(
        "Examples:\n",
        "  TRELLO_API_KEY=… webriskops setup trello\n",
        "      prints the authorize URL for a least-privilege token (read,write)\n",
        "  TRELLO_API_KEY=… TRELLO_TOKEN=… webriskops setup trello\n",
        "      lists the boards the token can see\n",
        "  webriskops setup trello --token-file ~/.trello-token --board-id B --list-id L \\\n",
        "      --done-list-id D --confirm-revoke-path --save\n\n",
        "The token comes from TRELLO_TOKEN, --token-file, the stored token, or a hidden\n",
        "prompt on a terminal; never from a flag value. Exits 3 while anything is blocked\n",
        "(also without --save), 0 when ready."
    ))]
    Trello(SetupArgs),
    /// Linear cloud: cloud target → team → workflow state → scope → revoke path.
    #[command(after_help = concat!(
        "Examples:\n",
        "  LINEAR_API_KEY=… webriskops setup linear\n",
        "      lists the teams the key can see (create a personal API key in Linear under\n",
        "      Settings › Security & access)\n",
        "  LINEAR_API_KEY=… webriskops setup linear --team-id T\n",
        "      lists the team's workflow states\n",
        "  webriskops setup linear --token-file ~/.linear-key --team-id T --state-id S \\\n",
        "      --done-state-id D --confirm-revoke-path --save --json\n\n",
        "The key comes from LINEAR_API_KEY, --token-file, the stored key, or a hidden\n",
        "prompt on a terminal; never from a flag value. The API URL is\n",
        "WEBRISKOPS_LINEAR_API_URL or linear.api_url (default https://api.linear.app/graphql).\n",
        "Exits 3 while anything is blocked (also without --save), 0 when ready."
    ))]
    Linear(LinearSetupArgs),
}

#[derive(Debug, Args, Default, Clone)]
pub struct LinearSetupArgs {
    /// The team for remediation issues (its UUID, not its key such as ENG).
    #[arg(long, value_name = "ID")]
    pub team_id: Option<String>,
    /// The workflow state new issues start in (a state of the team).
    #[arg(long, value_name = "ID")]
    pub state_id: Option<String>,
    /// The state issues of closed findings move to (completed or canceled; default: the
    /// team's first completed state).
    #[arg(long, value_name = "ID")]
    pub done_state_id: Option<String>,
    /// The Linear workspace (organization) the team must belong to.
    #[arg(long, value_name = "ID")]
    pub workspace_id: Option<String>,
    /// A self-hosted base URL. Linear is cloud-only: any value is reported as blocked.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Confirm you know how to revoke access (`webriskops revoke`, or in Linear:
    /// Settings › Security & access).
    #[arg(long)]
    pub confirm_revoke_path: bool,
    /// Save the record and the key (encrypted) when nothing is blocked.
    #[arg(long)]
    pub save: bool,
    /// Read the API key from this file (first line).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// How the token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum AuthMethodArg {
    ApiKeyToken,
    Oauth1,
}

#[derive(Debug, Args, Default, Clone)]
pub struct SetupArgs {
    /// The board for remediation cards (24 hex).
    #[arg(long, value_name = "ID")]
    pub board_id: Option<String>,
    /// The list where new cards go.
    #[arg(long, value_name = "ID")]
    pub list_id: Option<String>,
    /// The list for cards of closed findings (without it they are archived).
    #[arg(long, value_name = "ID")]
    pub done_list_id: Option<String>,
    /// The customer-owned workspace the board must belong to.
    #[arg(long, value_name = "ID")]
    pub workspace_id: Option<String>,
    /// A self-hosted base URL. Trello is cloud-only: any value is reported as blocked.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Confirm you know how to revoke the token (`webriskops revoke`, or Trello → Settings → Applications).
    #[arg(long)]
    pub confirm_revoke_path: bool,
    /// Save the record and the token when nothing is blocked.
    #[arg(long)]
    pub save: bool,
    /// Read the token from this file (first line).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// How the token was obtained.
    #[arg(long, value_enum, value_name = "METHOD")]
    pub auth_method: Option<AuthMethodArg>,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// Findings file: a JSON document or JSON Lines (detected by content); `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Plan only: read Trello, write nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
    /// When to write the portable bundle instead of cards [default: auto].
    #[arg(long, value_enum)]
    pub fallback: Option<FallbackMode>,
    /// Where the portable bundle goes [default: ./webriskops-export].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Card writes in flight at once [default: 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct RevokeArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent_and_every_command_has_examples() {
        Cli::command().debug_assert();
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let nested = sub.get_subcommands().all(|s| {
                s.get_after_help()
                    .is_some_and(|h| h.to_string().contains("Examples"))
            });
            assert!(
                help.contains("Examples") || (sub.has_subcommands() && nested),
                "{} lacks examples",
                sub.get_name()
            );
        }
    }
}
