//! An issue has no place for portable notes: the adapter refuses a create that carries
//! some, rather than drop them unseen (the service routes them into the description).

use linear_sim::{SimConfig, SimServer};
use webriskops_domain::{card::marker, FindingId, TargetState, TenantId};
use webriskops_linear::{
    Credential, FindingUrl, LinearAdapter, LinearAdapterOptions, LinearSettings,
};
use webriskops_ports::{NewItem, Placement, PortError, WorkItems};

#[tokio::test]
async fn a_create_with_routing_notes_is_refused_and_creates_nothing() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let h = sim.handle();
    let fx = h.seed_standard();
    let adapter = LinearAdapter::new(
        &LinearSettings {
            api_url: sim.base_url(),
            ..LinearSettings::default()
        },
        Credential::api_key(fx.keys.full.clone()).unwrap(),
        TenantId::new("acme").unwrap(),
        LinearAdapterOptions {
            finding_url: FindingUrl::new("https://risk.example.com/findings/{id}").unwrap(),
            ..LinearAdapterOptions::default()
        },
    )
    .unwrap();
    let f = FindingId::new("lin-notes").unwrap();
    let item = NewItem {
        finding_id: f.clone(),
        destination_id: fx.eng.todo.clone(),
        title: "Fix it".into(),
        body: format!("Remediate.\n\n---\n{}", marker(&f)),
        label_ids: vec![],
        member_ids: vec![],
        due: None,
        placement: Placement::Bottom,
        label_names: vec![],
        assignee: Some("ghost@example.com".into()),
        notes: vec!["Assign to ghost@example.com (not a member of the team)".into()],
        target: TargetState::Open,
        priority: None,
    };
    let err = adapter.create_item(&item).await.unwrap_err();
    match &err {
        PortError::InvalidInput { message, .. } => {
            assert!(message.contains("lin-notes"), "{message}");
            assert!(message.contains("description"), "{message}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert!(h.issues(&fx.eng.id).is_empty(), "nothing was created");

    // Without notes the same create goes through.
    let ok = NewItem {
        notes: vec![],
        ..item
    };
    adapter.create_item(&ok).await.unwrap();
    assert_eq!(h.issues(&fx.eng.id).len(), 1);
}
