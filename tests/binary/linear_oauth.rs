//! A Linear OAuth2 token set stored by `setup linear --token-file` (one line of JSON, see
//! docs/linear.md) and refreshed routinely: against linear-sim whose access tokens live
//! four minutes, inside the five-minute refresh margin, so every command refreshes first.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use linear_sim::{Fixture, SimConfig, SimHandle, SimServer};
use serde_json::Value;
use tempfile::TempDir;
use webriskops_domain::{ProviderKey, TenantId};
use webriskops_linear::{LinearSecret, OAuthClient, StoredOAuth};
use webriskops_ports::{PortError, ProviderStore, SecretStore};
use webriskops_store_sqlite::{SqliteStore, StoreOptions};

use crate::common::{finding, Run};

struct World {
    sim: SimHandle,
    fx: Fixture,
    root: String,
    api_url: String,
    dir: TempDir,
    _server: SimServer,
    rt: tokio::runtime::Runtime,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(SimServer::start(SimConfig {
                access_token_ttl: Duration::from_secs(240),
                ..SimConfig::default()
            }))
            .unwrap();
        let sim = server.handle();
        let fx = sim.seed_standard();
        World {
            root: server.root_url(),
            api_url: server.base_url(),
            sim,
            fx,
            dir: tempfile::tempdir().unwrap(),
            _server: server,
            rt,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn oauth(&self) -> OAuthClient {
        let o = &self.fx.oauth;
        OAuthClient::with_endpoints(
            &o.client_id,
            LinearSecret::new("client secret", o.client_secret.clone()).unwrap(),
            &format!("{}/oauth/token", self.root),
            &format!("{}/oauth/revoke", self.root),
        )
        .unwrap()
    }

    /// secops authorizes the application: the code from the simulator's authorize
    /// redirect (one plain HTTP/1.1 GET on loopback), exchanged for a token set.
    fn authorize(&self) -> StoredOAuth {
        use std::io::{Read, Write};
        let o = &self.fx.oauth;
        let url = url::Url::parse(&self.root).unwrap();
        let mut conn = std::net::TcpStream::connect((
            url.host_str().unwrap(),
            url.port_or_known_default().unwrap(),
        ))
        .unwrap();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &o.client_id)
            .append_pair("redirect_uri", &o.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "read,write")
            .append_pair("state", "s")
            .finish();
        write!(
            conn,
            "GET {}oauth/authorize?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            url.path().trim_end_matches('/').to_owned() + "/",
            url.authority()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        let location = answer
            .lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or(l.strip_prefix("Location: "))
            })
            .unwrap_or_else(|| panic!("no redirect: {answer}"));
        let code = url::Url::parse(location.trim())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let tokens = self
            .rt
            .block_on(self.oauth().exchange_code(
                &LinearSecret::new("code", code).unwrap(),
                &url::Url::parse(&o.redirect_uri).unwrap(),
            ))
            .unwrap();
        StoredOAuth {
            tokens,
            client_id: o.client_id.clone(),
            client_secret: LinearSecret::new("client secret", o.client_secret.clone()).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let out: Output = std::process::Command::new(assert_cmd::cargo::cargo_bin("webriskops"))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("WEBRISKOPS_DATA_DIR", self.data_dir())
            .env("WEBRISKOPS_LINEAR_API_URL", &self.api_url)
            .env(
                "WEBRISKOPS_LINEAR_OAUTH_TOKEN_URL",
                format!("{}/oauth/token", self.root),
            )
            .env(
                "WEBRISKOPS_FINDING_URL",
                "https://risk.example.test/findings/{id}",
            )
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `setup linear --token-file` with the set, saved.
    fn setup_saved(&self, set: &StoredOAuth) -> Run {
        let file = self.dir.path().join("linear-oauth.json");
        std::fs::write(&file, set.to_text() + "\n").unwrap();
        self.run(&[
            "setup",
            "linear",
            "--json",
            "--token-file",
            file.to_str().unwrap(),
            "--team-id",
            &self.fx.eng.id,
            "--state-id",
            &self.fx.eng.todo,
            "--done-state-id",
            &self.fx.eng.done,
            "--confirm-revoke-path",
            "--save",
        ])
    }

    /// The token set stored for the tenant's Linear record, read as the binary reads it.
    fn stored(&self) -> StoredOAuth {
        self.rt.block_on(async {
            let store = SqliteStore::open(
                &self.data_dir(),
                StoreOptions {
                    key_file: true,
                    ..StoreOptions::default()
                },
            )
            .unwrap();
            let record = store
                .load(&TenantId::new("default").unwrap(), ProviderKey::LinearCloud)
                .await
                .unwrap()
                .expect("a saved linear record");
            let token = store
                .get_token(
                    record.credential.as_ref().unwrap(),
                    &webriskops_service::secret_binding(&record),
                )
                .await
                .unwrap()
                .expect("a stored token set");
            StoredOAuth::parse(token.expose()).unwrap()
        })
    }

    fn refresh_works(&self, set: &StoredOAuth) -> Result<(), PortError> {
        let rt = set.tokens.refresh_token.as_ref().unwrap();
        self.rt.block_on(self.oauth().refresh(rt)).map(|_| ())
    }
}

#[test]
fn an_expiring_oauth_token_is_refreshed_and_the_rotated_set_stored_before_the_command_goes_on() {
    let w = World::new();
    let first = w.authorize();
    let setup = w.setup_saved(&first);
    assert_eq!(setup.code, 0, "{setup:?}");
    assert_eq!(setup.json()["saved"], Value::Bool(true), "{}", setup.stdout);
    // What setup stored is the set it was given.
    assert_eq!(w.stored(), first);

    // The access token expires: Linear refuses it from now on.
    w.sim
        .expire_access_token(first.tokens.access_token.expose());
    let findings = w.dir.path().join("findings.jsonl");
    std::fs::write(&findings, finding("f-1", "Weak TLS") + "\n").unwrap();
    let export = w.run(&["export", findings.to_str().unwrap()]);
    assert_eq!(
        export.code, 0,
        "the command goes on with a new token: {export:?}"
    );
    assert_eq!(w.sim.issues(&w.fx.eng.id).len(), 1, "the issue was written");

    let second = w.stored();
    assert_ne!(second.tokens.access_token, first.tokens.access_token);
    assert_ne!(second.tokens.refresh_token, first.tokens.refresh_token);
    assert!(second.tokens.expires_at > first.tokens.expires_at);
    // Rotation: the old refresh token no longer works.
    let old = w.refresh_works(&first).unwrap_err();
    assert!(matches!(old, PortError::Unauthenticated { .. }), "{old:?}");

    // The stored set is what the next command uses: status refreshes again with it.
    let status = w.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(
        status.json()["blocked"],
        serde_json::json!([]),
        "{}",
        status.stdout
    );
    let third = w.stored();
    assert_ne!(third.tokens.refresh_token, second.tokens.refresh_token);
    w.refresh_works(&third)
        .expect("the newest refresh token works");

    // No secret of any set was printed.
    for set in [&first, &second, &third] {
        for s in set.secrets() {
            for out in [&setup, &export, &status] {
                assert!(!out.stdout.contains(s.expose()) && !out.stderr.contains(s.expose()));
            }
        }
    }
}

#[test]
fn a_revoked_refresh_token_blocks_with_provider_auth_required_and_authorize_again() {
    let w = World::new();
    let set = w.authorize();
    let setup = w.setup_saved(&set);
    assert_eq!(setup.code, 0, "{setup:?}");
    // The user revokes the application in Linear: the whole grant goes.
    w.rt.block_on(w.oauth().revoke(&set.tokens.access_token))
        .unwrap();

    let status = w.run(&["status", "--json"]);
    assert_eq!(status.code, 3, "blocked: {status:?}");
    let s = status.json();
    assert_eq!(s["blocked"][0]["code"], "PROVIDER_AUTH_REQUIRED", "{s}");
    let fix = s["blocked"][0]["fix"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        fix.contains("authorize WebRiskOps in Linear again") && fix.contains("refreshing"),
        "{s}"
    );
    // The refused set stays stored as it was (nothing to replace it with).
    assert_eq!(w.stored(), set);
}

#[test]
fn a_pretty_printed_or_broken_token_set_is_refused_with_its_format_and_never_echoed() {
    let w = World::new();
    let set = w.authorize();
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&set.to_text()).unwrap())
            .unwrap();
    let broken = set.to_text().replace("\"v\":1", "\"v\":9");
    for text in [pretty, broken] {
        let file = w.dir.path().join("bad.json");
        std::fs::write(&file, text).unwrap();
        let run = w.run(&["setup", "linear", "--token-file", file.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(
            run.stderr.contains("one line of JSON") && run.stderr.contains("--token-file"),
            "{run:?}"
        );
        for s in set.secrets() {
            assert!(!run.stderr.contains(s.expose()) && !run.stdout.contains(s.expose()));
        }
    }
    assert!(
        !w.data_dir().join("webriskops.db").exists()
            || w.run(&["status", "--json", "--tracker", "linear"]).json()["record_state"] == "none"
    );
}
