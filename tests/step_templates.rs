//! Step templates against the simulator (ADR 0006): findings that share their steps
//! get cards copied from one template the export owns, and every card still carries
//! exactly its own finding's steps, unticked, whatever people do to templates and cards.

use std::collections::BTreeMap;
use std::time::Duration;

use trello_sim::SimCard;
use webriskops_domain::{
    extract_template_marker, step_group_key, Finding, FindingId, Severity, CHECKLIST_NAME,
};
use webriskops_e2e::{write_findings, World};
use webriskops_ports::{NewStepTemplate, WorkItems};

const FAST: Duration = Duration::from_millis(200);

/// `per_rule` findings for each rule `(name, steps)`, ids `<prefix>-<rule>-<n>`.
fn scan(prefix: &str, rules: &[(&str, usize)], per_rule: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    for (r, (rule, steps)) in rules.iter().enumerate() {
        for i in 0..per_rule {
            let mut f = Finding::minimal(
                FindingId::new(format!("{prefix}-{rule}-{i:03}")).unwrap(),
                format!("{rule} on asset {i}"),
                Severity::ALL[r % 5],
            );
            f.remediation_steps = (1..=*steps).map(|s| format!("{rule}: step {s}")).collect();
            out.push(f);
        }
    }
    out
}

fn templates(w: &World) -> Vec<SimCard> {
    w.sim
        .cards(&w.fixture.board_id)
        .into_iter()
        .filter(|c| extract_template_marker(&c.desc).is_some())
        .collect()
}

/// Each finding's card, asserting there is exactly one.
fn card_of(w: &World) -> BTreeMap<String, SimCard> {
    w.cards_per_finding()
        .into_iter()
        .map(|(f, mut cards)| {
            assert_eq!(cards.len(), 1, "finding {f} has {} cards", cards.len());
            (f, cards.remove(0))
        })
        .collect()
}

/// The card carries exactly the finding's steps in one checklist; `ticked` names the
/// steps a person ticked on this card.
fn assert_steps(card: &SimCard, f: &Finding, ticked: &[&str]) {
    assert_eq!(card.checklists.len(), 1, "{}: one checklist", f.id);
    let got: Vec<(String, bool)> = card.checklists[0]
        .items
        .iter()
        .map(|i| (i.name.clone(), i.complete))
        .collect();
    let want: Vec<(String, bool)> = f
        .remediation_steps
        .iter()
        .map(|s| (s.clone(), ticked.contains(&s.as_str())))
        .collect();
    assert_eq!(got, want, "{}: exactly its steps", f.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_cards_carry_exactly_their_steps_and_templates_stay_off_the_list() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let mut all = scan("g", &[("tls", 2), ("xss", 5), ("csp", 3), ("hsts", 4)], 8);
    // A rule raised once keeps the k + 2 path.
    all.extend(scan("g", &[("lonely", 3)], 1));
    let src = write_findings(&w.dir.path().join("f.jsonl"), &all);
    let (s, adapter) = w.export(&src).await;
    assert_eq!((s.created, s.failed_count), (33, 0), "{:?}", s.failed);
    assert_eq!(
        (s.step_templates.created, s.step_templates.copied),
        (4, 32),
        "one template per shared step list, none for the lonely finding"
    );
    let cards = card_of(&w);
    assert_eq!(cards.len(), 33);
    for f in &all {
        assert_steps(&cards[f.id.as_str()], f, &[]);
        assert!(!cards[f.id.as_str()].closed);
    }
    let ts = templates(&w);
    assert_eq!(ts.len(), 4);
    assert!(
        ts.iter().all(|t| t.closed),
        "templates are never open on the list"
    );
    // 33 creates, 4 templates (card, archive, checklist, k items: 2 + 5 + 3 + 4 + 4 × 3)
    // and the lonely card's checklist and 3 items, plus the labels.
    let label_writes = s.labels_created.len() as u64;
    assert_eq!(adapter.stats().writes, 33 + (14 + 12) + 4 + label_writes);

    // Nothing changed: nothing is written, and the templates stay.
    w.sim.clear_request_log();
    let (again, adapter) = w.export(&src).await;
    assert_eq!((again.created, again.unchanged), (0, 33));
    assert_eq!(adapter.stats().writes, 0);
    assert_eq!(w.writes_logged(), 0);
    assert!(
        adapter.stats().reads <= 5,
        "reads: {}",
        adapter.stats().reads
    );
    assert_eq!(templates(&w).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_stays_on_its_card_only() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let first = scan("t", &[("tls", 3)], 4);
    let src = write_findings(&w.dir.path().join("a.jsonl"), &first);
    w.export(&src).await;
    let cards = card_of(&w);
    let ticked = &cards["t-tls-000"];
    let step = &ticked.checklists[0].items[1];
    w.sim.person_tick_check_item(&ticked.id, &step.id, true);

    // New findings of the same rule copy the template after the tick.
    let more = scan("t", &[("tls", 3)], 8);
    let src = write_findings(&w.dir.path().join("b.jsonl"), &more);
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.step_templates.copied), (4, 4));
    let cards = card_of(&w);
    for f in &more {
        let ticks: &[&str] = if f.id.as_str() == "t-tls-000" {
            &["tls: step 2"]
        } else {
            &[]
        };
        assert_steps(&cards[f.id.as_str()], f, ticks);
    }
    let ts = templates(&w);
    assert_eq!(ts.len(), 1);
    assert!(ts[0].checklists[0].items.iter().all(|i| !i.complete));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_edited_template_is_repaired() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let rules = [("tls", 3), ("xss", 2), ("csp", 4)];
    let src = write_findings(&w.dir.path().join("a.jsonl"), &scan("r", &rules, 3));
    w.export(&src).await;
    let by_rule = |w: &World, rule: &str| {
        templates(w)
            .into_iter()
            .find(|t| t.checklists[0].items[0].name.starts_with(rule))
            .unwrap()
    };
    // A person deletes one template, puts another back on the list (untouched
    // otherwise: out of the archive is reason enough), and adds a step to the third.
    // A ticked template that stays archived has a test of its own.
    w.sim.person_delete_card(&by_rule(&w, "tls").id);
    let xss = by_rule(&w, "xss");
    w.sim.person_unarchive_card(&xss.id);
    let csp = by_rule(&w, "csp");
    w.sim
        .person_add_check_item(&csp.checklists[0].id, "csp: a step of my own");

    let more = scan("r", &rules, 6);
    let src = write_findings(&w.dir.path().join("b.jsonl"), &more);
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.failed_count), (9, 0), "{:?}", s.failed);
    assert_eq!(
        (s.step_templates.created, s.step_templates.deleted),
        (3, 2),
        "the deleted one is made again, the two edited ones replaced"
    );
    let cards = card_of(&w);
    for f in &more {
        assert_steps(&cards[f.id.as_str()], f, &[]);
    }
    let ts = templates(&w);
    assert_eq!(ts.len(), 3, "one template per step list");
    for t in &ts {
        assert!(t.closed);
        assert!(t.checklists[0].items.iter().all(|i| !i.complete));
        assert!(!t.checklists[0]
            .items
            .iter()
            .any(|i| i.name.ends_with("my own")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_no_finding_needs_is_deleted() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let src = write_findings(
        &w.dir.path().join("a.jsonl"),
        &scan("c", &[("tls", 3), ("xss", 2)], 3),
    );
    w.export(&src).await;
    assert_eq!(templates(&w).len(), 2);
    // The next scan no longer raises xss (its cards stay: closing them is the
    // findings' business, not the templates').
    let src = write_findings(&w.dir.path().join("b.jsonl"), &scan("c", &[("tls", 3)], 3));
    let (s, _) = w.export(&src).await;
    assert_eq!(s.step_templates.deleted, 1);
    let ts = templates(&w);
    assert_eq!(ts.len(), 1);
    assert!(ts[0].checklists[0].items[0].name.starts_with("tls"));
}

/// A person ticks a step of a template and leaves it archived: it is still out of sight,
/// so only the tick tells it from an intact one. It is replaced before any card is
/// copied from it (a copy takes the ticks with it), and the new cards are unticked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticked_template_left_archived_is_replaced_before_it_is_copied() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let src = write_findings(&w.dir.path().join("a.jsonl"), &scan("k", &[("tls", 3)], 3));
    w.export(&src).await;
    let old = templates(&w);
    assert_eq!(old.len(), 1);
    let step = &old[0].checklists[0].items[1];
    w.sim.person_tick_check_item(&old[0].id, &step.id, true);
    let ticked = w.sim.card(&old[0].id).unwrap();
    assert!(ticked.closed, "the template stays archived");
    assert!(ticked.checklists[0].items[1].complete);

    let more = scan("k", &[("tls", 3)], 6);
    let src = write_findings(&w.dir.path().join("b.jsonl"), &more);
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.failed_count), (3, 0), "{:?}", s.failed);
    assert_eq!(
        (
            s.step_templates.deleted,
            s.step_templates.created,
            s.step_templates.copied
        ),
        (1, 1, 3),
        "the ticked template is replaced, and the new cards copy the new one"
    );
    let cards = card_of(&w);
    for f in &more {
        assert_steps(&cards[f.id.as_str()], f, &[]);
    }
    let now = templates(&w);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].id, old[0].id, "the ticked template is gone");
    assert!(now[0].closed);
    assert!(now[0].checklists[0].items.iter().all(|i| !i.complete));
}

/// A board may serve two integrations, each with its own list (ADR 0006 §5): an export
/// owns only the templates in its own list. Templates another integration keeps in
/// "Doing", one of a key this file does not have and one of a key it does, are neither
/// copied from nor deleted; the export makes its own template in "To Do".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_in_another_list_are_neither_used_nor_deleted() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let ours = scan("o", &[("tls", 3)], 3);
    let steps_of = |rule: &str, k: usize| -> Vec<String> {
        (1..=k).map(|s| format!("{rule}: step {s}")).collect()
    };
    // What the other integration's export leaves in its list.
    let theirs = w.adapter(&w.fixture.tokens.full, Duration::from_secs(10));
    let mut others = Vec::new();
    for steps in [steps_of("xss", 2), steps_of("tls", 3)] {
        let t = theirs
            .create_step_template(&NewStepTemplate {
                container_id: w.fixture.board_id.clone(),
                destination_id: w.fixture.doing_list_id.clone(),
                key: step_group_key(&steps),
                title: "their template".into(),
                body: "theirs".into(),
                checklist_name: CHECKLIST_NAME.into(),
                steps,
            })
            .await
            .unwrap();
        others.push(t.id);
    }

    let src = write_findings(&w.dir.path().join("a.jsonl"), &ours);
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.failed_count), (3, 0), "{:?}", s.failed);
    assert_eq!(
        (
            s.step_templates.created,
            s.step_templates.deleted,
            s.step_templates.copied
        ),
        (1, 0, 3),
        "its own template in its own list; the other list's are not touched"
    );
    let ts = templates(&w);
    assert_eq!(ts.len(), 3, "{ts:?}");
    for id in &others {
        let t = ts.iter().find(|t| &t.id == id).expect("theirs are kept");
        assert_eq!(t.id_list, w.fixture.doing_list_id);
    }
    let own: Vec<&SimCard> = ts.iter().filter(|t| !others.contains(&t.id)).collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].id_list, w.fixture.list_id);
    let cards = card_of(&w);
    for f in &ours {
        assert_steps(&cards[f.id.as_str()], f, &[]);
    }
}

/// Sync reads the board the templates live on and never takes a template for a
/// finding's card: it checks the findings' cards alone, adopts nothing, and reports the
/// one card a person moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_sees_the_findings_cards_and_never_a_template() {
    let w = World::start(Duration::from_millis(2), FAST).await;
    let all = scan("s", &[("tls", 2), ("xss", 3)], 5);
    let src = write_findings(&w.dir.path().join("f.jsonl"), &all);
    let (s, _) = w.export(&src).await;
    assert_eq!((s.created, s.step_templates.created), (10, 2));
    assert_eq!(templates(&w).len(), 2);
    let cards = card_of(&w);
    w.sim
        .person_move_card(&cards["s-xss-003"].id, &w.fixture.done_list_id);

    let (summary, events) = w.sync().await;
    assert_eq!(summary.checked, 10, "the findings' cards, no template");
    assert_eq!(
        summary.adopted, 0,
        "no template adopted as a finding's card"
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].finding_id.as_str(), "s-xss-003");
    assert!(events
        .iter()
        .all(|e| templates(&w).iter().all(|t| t.id != e.item_id.as_str())));
}
