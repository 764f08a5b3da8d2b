//! The token and the API key never appear in a log line (TRACE, every crate), an error
//! message, the simulator's request log, a recorded request or a Debug print.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{adapter, config, world, MISSING_ID};
use trello_sim::{Fault, FaultRule};
use webriskops_domain::{marker, FindingId, ItemId, TargetState};
use webriskops_ports::{
    ItemChanges, ListItemsOptions, NewItem, NewLabel, Placement, PortError, TrackerIntrospection,
    WorkItems,
};
use webriskops_trello::TrelloAdapter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn item(list: &str, f: &str) -> NewItem {
    let id = FindingId::new(f).unwrap();
    NewItem {
        body: format!("x\n\n---\n{}", marker(&id)),
        finding_id: id,
        destination_id: list.to_owned(),
        title: f.to_owned(),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Bottom,
        label_names: vec![],
        assignee: None,
        notes: vec![],
        target: TargetState::Open,
        priority: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_leak() {
    let buf = Buffer::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();

    let w = world().await;
    let fx = &w.fx;
    let mut errors: Vec<PortError> = Vec::new();
    let mut debug_prints: Vec<String> = Vec::new();

    let a = adapter(&w, &fx.tokens.full);
    a.start_recording();
    debug_prints.push(format!("{a:?}"));
    a.whoami().await.unwrap();
    a.token_info().await.unwrap();
    a.containers().await.unwrap();
    a.readiness_snapshot(&fx.board_id, &[&fx.list_id, MISSING_ID])
        .await
        .unwrap();
    let card = a.create_item(&item(&fx.list_id, "leak-1")).await.unwrap();
    a.update_item(
        &card.id,
        &ItemChanges {
            archived: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cl = a.create_checklist(&card.id, "Remediation").await.unwrap();
    a.add_check_item(&cl.id, "step", 1).await.unwrap();
    a.create_label(&NewLabel {
        container_id: fx.board_id.clone(),
        name: "l".into(),
        color: None,
    })
    .await
    .unwrap();
    a.list_items(&ListItemsOptions {
        container_id: fx.board_id.clone(),
        page_size: 10,
        ..Default::default()
    })
    .await
    .unwrap();

    // Errors of every kind.
    errors.push(a.container(MISSING_ID).await.unwrap_err());
    errors.push(
        a.update_item(
            &ItemId::new(MISSING_ID).unwrap(),
            &ItemChanges {
                title: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    let mut bad = item(MISSING_ID, "leak-2");
    bad.member_ids = vec![fx.member("outsider").unwrap().id.clone()];
    errors.push(a.create_item(&bad).await.unwrap_err());
    errors.push(
        adapter(&w, &fx.tokens.other_board_only)
            .container(&fx.board_id)
            .await
            .unwrap_err(),
    );
    errors.push(
        adapter(&w, &fx.tokens.expired)
            .token_info()
            .await
            .unwrap_err(),
    );
    errors.push(adapter(&w, &fx.tokens.expired).whoami().await.unwrap_err());
    w.handle.inject(FaultRule::new(
        Some("GET"),
        Some("/1/tokens"),
        20,
        Fault::RateLimit429,
    ));
    let mut c = config(&w, &fx.tokens.full);
    c.retry.max_retries = 1;
    let few_retries = TrelloAdapter::new(c).unwrap();
    errors.push(few_retries.token_info().await.unwrap_err());
    w.handle.clear_faults();
    w.handle.inject(FaultRule::new(
        Some("GET"),
        Some("/1/tokens"),
        20,
        Fault::Status(503),
    ));
    errors.push(few_retries.token_info().await.unwrap_err());
    w.handle.clear_faults();
    w.handle.inject(FaultRule::new(
        Some("GET"),
        Some("/1/tokens"),
        20,
        Fault::DropConnection { after_apply: false },
    ));
    errors.push(few_retries.token_info().await.unwrap_err());
    w.handle.clear_faults();
    let mut c = config(&w, &fx.tokens.full);
    c.timeout = Duration::from_millis(200);
    c.retry.max_retries = 0;
    let impatient = TrelloAdapter::new(c).unwrap();
    w.handle.inject(FaultRule::new(
        None,
        Some("/1/tokens"),
        1,
        Fault::Delay {
            delay: Duration::from_millis(800),
            after_apply: false,
        },
    ));
    errors.push(impatient.token_info().await.unwrap_err());
    w.handle.inject(FaultRule::new(
        Some("DELETE"),
        Some("/1/tokens"),
        1,
        Fault::Delay {
            delay: Duration::from_millis(800),
            after_apply: false,
        },
    ));
    errors.push(impatient.revoke_token().await.unwrap_err());
    w.handle.clear_faults();
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = config(&w, &fx.tokens.full);
    c.api_root = webriskops_trello::parse_api_root(&format!("http://127.0.0.1:{port}/1")).unwrap();
    c.retry.max_retries = 0;
    errors.push(
        TrelloAdapter::new(c)
            .unwrap()
            .token_info()
            .await
            .unwrap_err(),
    );
    // Revoke, then use the revoked token.
    let rv = adapter(&w, &fx.tokens.revocable);
    debug_prints.push(format!("{:?}", config(&w, &fx.tokens.revocable)));
    rv.revoke_token().await.unwrap();
    errors.push(rv.token_info().await.unwrap_err());
    errors.push(rv.revoke_token().await.unwrap_err());
    tokio::time::sleep(Duration::from_millis(900)).await; // let delayed answers land in the log

    let kinds: std::collections::BTreeSet<&str> = errors.iter().map(PortError::kind).collect();
    assert!(
        [
            "not_found",
            "invalid_input",
            "permission_denied",
            "unauthenticated",
            "rate_limited",
            "unavailable",
            "outcome_unknown"
        ]
        .iter()
        .all(|k| kinds.contains(k)),
        "every error kind was produced: {kinds:?}"
    );

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("trello_request"),
        "the adapter's spans were captured"
    );
    assert!(
        log.contains("route=\"/tokens/{token}\""),
        "token routes are logged by template"
    );
    assert!(log.contains("retrying Trello request"));
    let secrets = [
        fx.api_key.as_str(),
        fx.tokens.full.as_str(),
        fx.tokens.expired.as_str(),
        fx.tokens.other_board_only.as_str(),
        fx.tokens.revocable.as_str(),
    ];
    // Tokens are 76 characters: look for a distinctive part too.
    let needles: Vec<&str> = secrets.iter().flat_map(|s| [*s, &s[4..28]]).collect();
    let mut haystacks: Vec<(String, String)> = vec![("log".into(), log)];
    for e in &errors {
        haystacks.push(("error".into(), format!("{e} / {e:?}")));
    }
    for r in w.handle.request_log() {
        haystacks.push((
            "sim log".into(),
            format!("{} {} {}", r.method, r.route, r.path),
        ));
    }
    for r in a
        .recorded_requests()
        .iter()
        .chain(rv.recorded_requests().iter())
    {
        haystacks.push(("recorded".into(), format!("{r:?}")));
    }
    for d in debug_prints {
        haystacks.push(("debug".into(), d));
    }
    for (what, text) in &haystacks {
        for n in &needles {
            assert!(
                !text.contains(n),
                "a credential leaked into the {what}: {}",
                text.replace(n, "<<HERE>>")
            );
        }
    }
}
