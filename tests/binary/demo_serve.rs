//! `webriskops demo --serve`: the README's first command can show the pages. It starts
//! both simulators and the server, prints the URL and a demo login that works, and stops
//! cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_serve_prints_a_url_and_a_login_that_opens_the_settings_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("webriskops"))
        .args(["demo", "--serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut email, mut password) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while url.is_none() || password.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo never printed its URL and login");
        if let Some(u) = line.trim().strip_prefix("Open") {
            url = Some(u.trim().trim_end_matches("/login").to_owned());
        }
        if let Some(rest) = line.strip_prefix("Sign in as ") {
            let (e, p) = rest.split_once(" with the password ").unwrap();
            email = Some(e.to_owned());
            password = Some(p.trim().to_owned());
        }
    }
    let (url, email, password) = (url.unwrap(), email.unwrap(), password.unwrap());
    assert!(!url.ends_with(":0"), "the URL names the bound port: {url}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = http
            .post(format!("{url}/login"))
            .header("Origin", &url)
            .form(&[("email", email.as_str()), ("password", password.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 303, "the printed login signs in");
        let cookie = login
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = http
            .get(format!("{url}/settings"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Integration status"), "{html}");
        assert!(html.contains("status-trello") && html.contains("status-linear"));
    });

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
