//! The `WorkItems` port: conformance for write-only trackers, update semantics, refusals
//! and the memory budget.

mod common;

use std::sync::Arc;

use chrono::NaiveDate;
use common::{export, finding, new_item, options, snapshot};
use webriskops_domain::{ItemId, TargetState};
use webriskops_portable::{PortableBundle, PortableExport};
use webriskops_ports::conformance::{run_all, Target};
use webriskops_ports::{ItemChanges, ListItemsOptions, NewLabel, PortError, Tracker, WorkItems};

#[tokio::test]
async fn the_write_only_conformance_suite_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let exp = PortableExport::new(options(&out)).unwrap();
    let caps = exp.capabilities();
    assert_eq!(caps.tracker, "portable");
    assert!(!caps.list_items && caps.checklists && !caps.labels && !caps.archive);
    let target = Target {
        items: Arc::new(exp),
        introspection: None,
        container_id: String::new(),
        destination_id: "list-1".into(),
        other_destination_id: "list-2".into(),
        done_destination_id: "list-3".into(),
        missing_item_id: ItemId::new("portable:missing").unwrap(),
    };
    run_all(&target).await;
    let loaded = PortableBundle::load(&out).unwrap();
    assert_eq!(loaded.cards.len(), 1);
    assert_eq!(loaded.cards[0].checklist, ["step"]);
    assert_eq!(loaded.cards[0].destination_id, "list-1");
}

#[tokio::test]
async fn updates_and_checklists_apply_to_buffered_cards() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let exp = PortableExport::new(options(&out)).unwrap();
    let (item, _) = new_item(&finding("wro-1", "Before"));
    let created = exp.create_item(&item).await.unwrap();
    assert_eq!(created.id.as_str(), "portable:wro-1");
    assert_eq!(created.body, item.body);

    let list = exp
        .create_checklist(&created.id, "Remediation")
        .await
        .unwrap();
    for (pos, name) in [(2, "second"), (1, "first"), (3, "third")] {
        exp.add_check_item(&list.id, name, pos).await.unwrap();
    }
    let due = NaiveDate::from_ymd_opt(2026, 1, 1);
    let updated = exp
        .update_item(
            &created.id,
            &ItemChanges {
                title: Some("After".into()),
                due: Some(due),
                destination_id: Some("done-list".into()),
                archived: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.title, "After");
    assert!(updated.archived);
    assert_eq!(updated.body, item.body, "the body is left alone");
    exp.flush().await.unwrap();

    let card = &PortableBundle::load(&out).unwrap().cards[0];
    assert_eq!(card.title, "After");
    assert_eq!(card.due, due);
    assert_eq!(card.destination_id, "done-list");
    assert_eq!(card.target, TargetState::Archived);
    assert_eq!(card.checklist, ["first", "second", "third"]);
}

#[tokio::test]
async fn the_port_refuses_what_a_bundle_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = PortableExport::new(options(&tmp.path().join("bundle"))).unwrap();
    let (item, _) = new_item(&finding("wro-1", "Card"));
    exp.create_item(&item).await.unwrap();

    let dup = exp.create_item(&item).await.unwrap_err();
    assert!(matches!(dup, PortError::Conflict { .. }), "{dup}");

    let mut unmarked = new_item(&finding("wro-2", "Card")).0;
    unmarked.body = "no marker here".into();
    let err = exp.create_item(&unmarked).await.unwrap_err();
    assert!(matches!(err, PortError::InvalidInput { .. }), "{err}");
    assert!(
        err.to_string().contains("[webriskops:finding:wro-2]"),
        "{err}"
    );

    let mut with_ids = new_item(&finding("wro-3", "Card")).0;
    with_ids.label_ids = vec!["label-1".into()];
    assert!(matches!(
        exp.create_item(&with_ids).await,
        Err(PortError::NotSupported { .. })
    ));

    let missing = exp
        .update_item(
            &ItemId::new("portable:wro-404").unwrap(),
            &ItemChanges {
                title: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, PortError::NotFound { .. }), "{missing}");
    assert!(matches!(
        exp.add_check_item("portable:wro-1/checklist/7", "x", 1)
            .await,
        Err(PortError::NotFound { .. })
    ));
    assert!(matches!(
        exp.list_items(&ListItemsOptions::default()).await,
        Err(PortError::NotSupported { .. })
    ));
    let label = NewLabel {
        container_id: String::new(),
        name: "x".into(),
        color: None,
    };
    assert!(matches!(
        exp.create_label(&label).await,
        Err(PortError::NotSupported { .. })
    ));
    assert_eq!(exp.card_count(), 1);
}

#[tokio::test]
async fn options_are_checked_before_any_card() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(&tmp.path().join("bundle"));
    opts.source_checksum = "abc".into();
    let err = PortableExport::new(opts).unwrap_err();
    assert!(err.to_string().contains("source_checksum must be"), "{err}");
    let err = PortableExport::new(options(&tmp.path().join(".."))).unwrap_err();
    assert!(
        err.to_string().contains("must end in a directory name"),
        "{err}"
    );
}

#[tokio::test]
async fn a_small_memory_budget_writes_the_same_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (roomy, tight) = (tmp.path().join("roomy"), tmp.path().join("tight"));
    let findings: Vec<_> = (0..40)
        .map(|i| finding(&format!("wro-{:02}", (i * 7) % 40), "Spilled"))
        .collect();
    export(options(&roomy), &findings).await.unwrap();

    // Create every card first, then add checklists and update the first cards, so
    // spilled cards must come back from disk.
    let mut opts = options(&tight);
    opts.max_cards_in_memory = 3;
    let exp = PortableExport::new(opts).unwrap();
    let mut created = Vec::new();
    for f in &findings {
        let (item, steps) = new_item(f);
        created.push((exp.create_item(&item).await.unwrap().id, steps));
    }
    for (id, steps) in &created {
        let list = exp.create_checklist(id, "Remediation").await.unwrap();
        for (i, step) in steps.iter().enumerate().rev() {
            exp.add_check_item(&list.id, step, i as u32 + 1)
                .await
                .unwrap();
        }
    }
    exp.flush().await.unwrap();
    assert_eq!(snapshot(&roomy), snapshot(&tight));
    let spill_left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("spill")
        })
        .collect();
    assert_eq!(
        spill_left.len(),
        1,
        "the spill directory lives until the export is dropped"
    );
    drop(exp);
    assert_eq!(common::entries(tmp.path()), ["roomy", "tight"]);
}

#[tokio::test]
async fn a_failed_write_names_the_adapter_and_keeps_the_file_system_error() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("parent");
    std::fs::create_dir(&parent).unwrap();
    let exp = PortableExport::new(options(&parent.join("bundle"))).unwrap();
    // The bundle's parent becomes a file: the bundle cannot be written there.
    std::fs::remove_dir(&parent).unwrap();
    std::fs::write(&parent, b"not a directory").unwrap();
    let (item, _) = new_item(&finding("wro-io", "Card"));
    let err = match exp.create_item(&item).await {
        Err(e) => e,
        Ok(_) => exp.flush().await.unwrap_err(),
    };
    assert_eq!(err.tracker(), Some("portable"), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("portable {}: ", err.operation().unwrap())),
        "{err}"
    );
    // The bundle's own error is the source, and through it the `io::Error`.
    let mut chain = std::error::Error::source(&err);
    let mut io = None;
    while let Some(e) = chain {
        if let Some(found) = e.downcast_ref::<std::io::Error>() {
            io = Some(found.kind());
        }
        chain = e.source();
    }
    assert!(io.is_some(), "no io::Error in the source chain of {err:?}");
}
