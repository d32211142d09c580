//! Planner unit tests: every action, replace reasons, drift vs change, conflicts,
//! redaction and rendering — all without any server.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use terrace_plan::render::{render_json, render_text, TextOptions};
use terrace_plan::{
    plan, Action, DriftKind, GraphError, Plan, PlanError, PlanInput, PriorResource,
};
use terrace_provider::{
    Address, AttrSchema, Attrs, DesiredResource, Observed, ProviderKey, ResourceSchema,
};

static DB: ResourceSchema = ResourceSchema {
    type_name: "test_db",
    description: "database",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: &[
        AttrSchema::plain("name").force_new(),
        AttrSchema::plain("connection_limit"),
        AttrSchema::plain("content"),
        AttrSchema::plain("owner").proves_ownership("another role owns it"),
    ],
};
static PACKAGE: ResourceSchema = ResourceSchema {
    type_name: "test_package",
    description: "package",
    import_id: &["name"],
    adopt_existing: true,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: &[AttrSchema::plain("name").force_new()],
};
static USER: ResourceSchema = ResourceSchema {
    type_name: "test_user",
    description: "user",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: &[
        AttrSchema::plain("name").force_new(),
        AttrSchema::plain("password")
            .sensitive()
            .computed()
            .unobservable(),
        AttrSchema::plain("password_status")
            .proves_ownership("its password is not the one terrace generated for it"),
    ],
};

/// A type that holds data: a move carries it.
static DATA_DB: ResourceSchema = ResourceSchema {
    type_name: "test_data_db",
    description: "database",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: true,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: &[AttrSchema::plain("name").force_new()],
};

/// A type whose delete only stops managing it (a service keeps running).
static KEPT: ResourceSchema = ResourceSchema {
    type_name: "test_service",
    description: "service",
    import_id: &["name"],
    adopt_existing: true,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: true,
    attrs: &[AttrSchema::plain("name").force_new()],
};

/// A type one of whose attributes does more than set a value when it changes.
static RESTARTED: ResourceSchema = ResourceSchema {
    type_name: "test_daemon",
    description: "daemon",
    import_id: &["name"],
    adopt_existing: true,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: true,
    attrs: &[
        AttrSchema::plain("name").force_new(),
        AttrSchema::plain("restart_on").on_update("the service is restarted"),
    ],
};

fn schemas(t: &str) -> Option<&'static ResourceSchema> {
    [&DB, &USER, &PACKAGE, &DATA_DB, &KEPT, &RESTARTED]
        .into_iter()
        .find(|s| s.type_name == t)
}

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap()
}

fn desired(addr: &str, ty: &str, a: serde_json::Value) -> DesiredResource {
    DesiredResource {
        address: Address::new(addr),
        type_name: ty.into(),
        provider: ProviderKey("service.pg".into()),
        attrs: attrs(a),
        sensitive_attrs: BTreeSet::new(),
        depends_on: vec![],
        lifecycle: Default::default(),
    }
}

fn prior(addr: &str, ty: &str, a: serde_json::Value) -> PriorResource {
    PriorResource {
        address: Address::new(addr),
        type_name: ty.into(),
        provider: ProviderKey("service.pg".into()),
        attrs: attrs(a),
        sensitive_attrs: BTreeSet::new(),
        depends_on: vec![],
        pending: false,
    }
}

fn pending(addr: &str, ty: &str, a: serde_json::Value) -> PriorResource {
    PriorResource {
        pending: true,
        ..prior(addr, ty, a)
    }
}

fn run(
    d: &[DesiredResource],
    p: &[PriorResource],
    o: &[(&str, Observed)],
) -> Result<Plan, PlanError> {
    let observed: BTreeMap<Address, Observed> = o
        .iter()
        .map(|(a, ob)| (Address::new(*a), ob.clone()))
        .collect();
    plan(PlanInput {
        desired: d.to_vec(),
        prior: p.to_vec(),
        observed,
        schemas: &schemas,
    })
}

fn present(v: serde_json::Value) -> Observed {
    Observed::Present(attrs(v))
}

fn text(p: &Plan) -> String {
    render_text(
        p,
        TextOptions {
            color: false,
            partial: false,
            destroy: false,
        },
    )
}

#[test]
fn new_resource_is_created_with_generated_secret_shown_redacted() {
    let d = [
        desired(
            "db",
            "test_db",
            json!({"name": "app", "connection_limit": 50}),
        ),
        desired("user", "test_user", json!({"name": "app"})),
    ];
    let p = run(
        &d,
        &[],
        &[("db", Observed::Absent), ("user", Observed::Absent)],
    )
    .unwrap();
    assert_eq!(p.changes.len(), 2);
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
    let user = p.change(&Address::new("user")).unwrap();
    assert_eq!(user.generated, vec!["password".to_string()]);
    let t = text(&p);
    assert!(t.contains("# db will be created"), "{t}");
    assert!(t.contains("+ connection_limit = 50"), "{t}");
    assert!(
        t.contains("+ password = (sensitive value) (generated during apply)"),
        "{t}"
    );
    assert!(
        t.contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{t}"
    );
}

#[test]
fn unchanged_resource_is_a_no_op_and_plan_is_empty() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": 50})),
        )],
    )
    .unwrap();
    assert_eq!(p.changes[0].action, Action::NoOp);
    assert!(p.is_empty());
    assert!(p.drift.is_empty());
    assert!(text(&p).contains("No changes."));
}

#[test]
fn changed_plain_attribute_is_an_in_place_update() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 60}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": 50})),
        )],
    )
    .unwrap();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.changed, vec!["connection_limit".to_string()]);
    assert!(p.drift.is_empty(), "a config change is not drift");
    let t = text(&p);
    assert!(t.contains("~ connection_limit = 50 -> 60"), "{t}");
    assert!(
        t.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{t}"
    );
}

#[test]
fn changed_force_new_attribute_replaces_and_names_the_reason() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app2", "connection_limit": 50}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": 50})),
        )],
    )
    .unwrap();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.replace_because, vec!["name".to_string()]);
    let t = text(&p);
    assert!(
        t.contains("must be replaced (name cannot change in place)"),
        "{t}"
    );
    assert!(
        t.contains("~ name = \"app\" -> \"app2\" # forces replacement"),
        "{t}"
    );
    assert!(
        t.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{t}"
    );
}

#[test]
fn what_stays_on_the_host_when_no_longer_managed_is_not_called_destroyed() {
    let pr = [prior("svc", "test_service", json!({"name": "nginx"}))];
    let p = run(&[], &pr, &[("svc", present(json!({"name": "nginx"})))]).unwrap();
    assert_eq!(p.changes[0].action, Action::Delete);
    assert!(terrace_plan::only_leaves_state(&p.changes[0]));
    assert_eq!(p.summary().destroy, 0);
    expect_test::expect![[r#"
        terrace will perform the following actions:

          # svc will be removed from the state (nothing on the server changes)
          # (it is no longer in the configuration)
          - test_service {
              - name = "nginx"
            }

        Plan: 0 to add, 0 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&p));
}

#[test]
fn an_update_that_restarts_a_service_says_so() {
    let d = [desired(
        "d",
        "test_daemon",
        json!({"name": "nginx", "restart_on": "b"}),
    )];
    let pr = [prior(
        "d",
        "test_daemon",
        json!({"name": "nginx", "restart_on": "a"}),
    )];
    let p = run(
        &d,
        &pr,
        &[("d", present(json!({"name": "nginx", "restart_on": "a"})))],
    )
    .unwrap();
    expect_test::expect![[r#"
        terrace will perform the following actions:

          # d will be updated in place
          # (the service is restarted)
          ~ test_daemon {
                name       = "nginx"
              ~ restart_on = "a" -> "b"
            }

        Plan: 0 to add, 1 to change, 0 to destroy.
    "#]]
    .assert_eq(&text(&p));
}

#[test]
fn resource_gone_from_config_is_deleted() {
    let pr = [prior("db", "test_db", json!({"name": "app"}))];
    let p = run(&[], &pr, &[("db", present(json!({"name": "app"})))]).unwrap();
    assert_eq!(p.changes[0].action, Action::Delete);
    let t = text(&p);
    assert!(t.contains("# db will be destroyed"), "{t}");
    assert!(t.contains("- name = \"app\""), "{t}");
}

#[test]
fn object_deleted_by_hand_is_drift_and_recreated_with_its_old_password() {
    let d = [desired("user", "test_user", json!({"name": "app"}))];
    let pr = [prior(
        "user",
        "test_user",
        json!({"name": "app", "password": "s3cret-old"}),
    )];
    let p = run(&d, &pr, &[("user", Observed::Absent)]).unwrap();
    assert_eq!(p.drift.len(), 1);
    assert_eq!(p.drift[0].kind, DriftKind::Deleted);
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.after.as_ref().unwrap()["password"], json!("s3cret-old"));
    assert!(c.generated.is_empty());
    let t = text(&p);
    assert!(t.contains("# user was deleted outside terrace"), "{t}");
    assert!(!t.contains("s3cret-old"), "secret leaked: {t}");
}

#[test]
fn attribute_changed_by_hand_is_drift_and_planned_back() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": 70})),
        )],
    )
    .unwrap();
    assert!(
        matches!(&p.drift[0].kind, DriftKind::Changed { attrs } if attrs[0].name == "connection_limit")
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.before.as_ref().unwrap()["connection_limit"], json!(70));
    let t = text(&p);
    let drift_at = t
        .find("has changed outside terrace")
        .expect("drift section");
    let action_at = t.find("will be updated in place").expect("action");
    assert!(
        drift_at < action_at,
        "drift is shown apart, before actions: {t}"
    );
}

#[test]
fn drift_that_matches_new_config_needs_no_action() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 70}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": 70})),
        )],
    )
    .unwrap();
    assert_eq!(p.drift.len(), 1);
    assert_eq!(p.changes[0].action, Action::NoOp);
}

#[test]
fn unmanaged_existing_object_is_a_conflict_with_import_hint() {
    let d = [desired(
        "tenant.app[\"x\"].database",
        "test_db",
        json!({"name": "x"}),
    )];
    let p = run(
        &d,
        &[],
        &[("tenant.app[\"x\"].database", present(json!({"name": "x"})))],
    )
    .unwrap();
    assert!(p.changes.is_empty());
    assert_eq!(p.conflicts.len(), 1);
    assert_eq!(p.conflicts[0].import_id, "x");
    assert!(!p.is_empty());
    let t = text(&p);
    assert!(
        t.contains(r#"terrace import 'tenant.app["x"].database' x"#),
        "{t}"
    );
    assert!(t.contains("already exists on service.pg"), "{t}");
}

#[test]
fn server_defaults_not_in_config_never_diff() {
    let d = [desired("db", "test_db", json!({"name": "app"}))];
    let pr = [prior("db", "test_db", json!({"name": "app"}))];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "connection_limit": -1, "collation": "x"})),
        )],
    )
    .unwrap();
    assert_eq!(p.changes[0].action, Action::NoOp);
    assert!(p.drift.is_empty());
}

#[test]
fn unobservable_password_is_kept_and_never_drift() {
    let d = [desired("user", "test_user", json!({"name": "app"}))];
    let pr = [prior(
        "user",
        "test_user",
        json!({"name": "app", "password": "pw"}),
    )];
    let p = run(&d, &pr, &[("user", present(json!({"name": "app"})))]).unwrap();
    assert_eq!(p.changes[0].action, Action::NoOp);
    assert_eq!(
        p.changes[0].after.as_ref().unwrap()["password"],
        json!("pw")
    );
}

#[test]
fn numbers_compare_by_value() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50.0}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 50}),
    )];
    let p = run(&d, &pr, &[]).unwrap();
    assert_eq!(p.changes[0].action, Action::NoOp);
}

#[test]
fn user_set_secret_never_appears_in_text_or_json() {
    let mut u = desired(
        "user",
        "test_user",
        json!({"name": "app", "password": "hunter2-new"}),
    );
    u.sensitive_attrs.insert("name".into());
    let pr = [prior(
        "user",
        "test_user",
        json!({"name": "app", "password": "hunter2-old"}),
    )];
    let p = run(&[u], &pr, &[("user", present(json!({"name": "app"})))]).unwrap();
    assert_eq!(p.changes[0].action, Action::Update);
    let t = text(&p);
    let j = render_json(&p, "test").to_string();
    for out in [&t, &j] {
        assert!(!out.contains("hunter2"), "secret leaked: {out}");
    }
    assert!(
        t.contains("~ password = (sensitive value) -> (sensitive value)"),
        "{t}"
    );
    assert!(
        !t.contains("\"app\""),
        "name came from a sensitive variable: {t}"
    );
    let v = render_json(&p, "test");
    let ch = &v["resource_changes"][0]["change"];
    assert_eq!(ch["after_sensitive"]["password"], json!(true));
    assert_eq!(ch["after"]["password"], json!("(sensitive value)"));
}

#[test]
fn json_document_is_versioned_and_lists_actions() {
    let d = [desired("db", "test_db", json!({"name": "app2"}))];
    let pr = [
        prior("db", "test_db", json!({"name": "app"})),
        prior("old", "test_db", json!({"name": "old"})),
    ];
    let p = run(&d, &pr, &[]).unwrap();
    let v = render_json(&p, "0.1.0");
    assert_eq!(v["format_version"], json!("1.2"));
    assert_eq!(v["changes_present"], json!(true));
    assert_eq!(
        v["resource_changes"][0]["change"]["actions"],
        json!(["delete", "create"])
    );
    assert_eq!(
        v["resource_changes"][0]["change"]["replace_paths"],
        json!([["name"]])
    );
    assert_eq!(
        v["resource_changes"][1]["change"]["actions"],
        json!(["delete"])
    );
    assert_eq!(
        v["summary"],
        json!({"add": 1, "change": 0, "destroy": 2, "has_destroy": true, "drops_data": false,
               "has_drift": false, "has_conflicts": false})
    );
}

#[test]
fn multi_line_text_changes_render_as_a_line_diff() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "a", "content": "one\ntwo\nthree\n"}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "a", "content": "one\n2\nthree\n"}),
    )];
    let t = text(&run(&d, &pr, &[]).unwrap());
    assert!(t.contains("@@ -1,3 +1,3 @@"), "{t}");
    assert!(t.contains("          -2\n"), "{t}");
    assert!(t.contains("          +two\n"), "{t}");
    assert!(t.contains("           one\n"), "{t}");
}

#[test]
fn dependency_cycle_names_all_members() {
    let mut a = desired("a", "test_db", json!({"name": "a"}));
    let mut b = desired("b", "test_db", json!({"name": "b"}));
    a.depends_on = vec![Address::new("b")];
    b.depends_on = vec![Address::new("a")];
    let err = run(&[a, b], &[], &[]).unwrap_err();
    assert_eq!(
        err,
        PlanError::Graph(GraphError::Cycle {
            members: vec![Address::new("a"), Address::new("b")]
        })
    );
}

#[test]
fn unknown_type_and_duplicate_address_are_errors() {
    let err = run(&[desired("x", "nope", json!({}))], &[], &[]).unwrap_err();
    assert!(matches!(err, PlanError::UnknownType { .. }));
    let d = desired("x", "test_db", json!({"name": "a"}));
    let err = run(&[d.clone(), d], &[], &[]).unwrap_err();
    assert!(matches!(err, PlanError::DuplicateAddress(_)));
}

#[test]
fn colour_only_when_asked() {
    let d = [desired("db", "test_db", json!({"name": "app"}))];
    let p = run(&d, &[], &[]).unwrap();
    assert!(!text(&p).contains('\u{1b}'));
    assert!(render_text(
        &p,
        TextOptions {
            color: true,
            partial: false,
            destroy: false,
        }
    )
    .contains('\u{1b}'));
}

#[test]
fn plan_is_deterministic_and_sorted() {
    let d = [
        desired("b", "test_db", json!({"name": "b"})),
        desired("a", "test_db", json!({"name": "a"})),
    ];
    let p1 = run(&d, &[], &[]).unwrap();
    let p2 = run(&[d[1].clone(), d[0].clone()], &[], &[]).unwrap();
    assert_eq!(p1, p2);
    assert_eq!(p1.changes[0].address, Address::new("a"));
}

#[test]
fn moving_to_another_service_replaces_through_both_providers() {
    let mut d = desired("db", "test_db", json!({"name": "app"}));
    d.provider = ProviderKey("service.new".into());
    let pr = [prior("db", "test_db", json!({"name": "app"}))];
    let p = run(&[d], &pr, &[("db", present(json!({"name": "app"})))]).unwrap();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.provider, ProviderKey("service.new".into()));
    assert_eq!(c.prior_provider, Some(ProviderKey("service.pg".into())));
    let t = text(&p);
    assert!(
        t.contains("must be replaced (it moves from service.pg to service.new)"),
        "{t}"
    );
}

#[test]
fn conflict_with_a_sensitive_name_shows_neither_name_nor_id() {
    let mut d = desired("db", "test_db", json!({"name": "topsecretname"}));
    d.sensitive_attrs.insert("name".into());
    let p = run(
        &[d],
        &[],
        &[("db", present(json!({"name": "topsecretname"})))],
    )
    .unwrap();
    assert_eq!(p.conflicts.len(), 1);
    let t = text(&p);
    let j = render_json(&p, "t").to_string();
    for out in [&t, &j] {
        assert!(!out.contains("topsecretname"), "leaked: {out}");
    }
}

#[test]
fn existing_object_of_an_adoptable_type_is_adopted_not_a_conflict() {
    let d = [desired("pkg", "test_package", json!({"name": "nginx"}))];
    let p = run(&d, &[], &[("pkg", present(json!({"name": "nginx"})))]).unwrap();
    assert!(p.conflicts.is_empty());
    assert_eq!(p.changes[0].action, Action::Create);
    let t = text(&p);
    assert!(t.contains("# (it exists already; apply adopts it)"), "{t}");
    assert!(t.contains("# pkg will be adopted"), "{t}");
}

#[test]
fn text_edited_by_hand_shows_as_a_line_diff_in_the_drift_section() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "content": "a\nb\nc\n"}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "content": "a\nb\nc\n"}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "content": "a\nB\nc\n"})),
        )],
    )
    .unwrap();
    let t = text(&p);
    let drift = &t[..t.find("terrace will perform").expect("actions")];
    assert!(
        drift.contains(
            "  ~ test_db {\n      ~ content = <<-EOT\n          @@ -1,3 +1,3 @@\n           a\n          -b\n          +B\n           c\n        EOT\n    }\n"
        ),
        "{t}"
    );
    // Sensitive text never shows, not even as a diff.
    let mut secret = d[0].clone();
    secret.sensitive_attrs.insert("content".into());
    let p = run(
        &[secret],
        &pr,
        &[(
            "db",
            present(json!({"name": "app", "content": "a\nB\nc\n"})),
        )],
    )
    .unwrap();
    let t = text(&p);
    assert!(!t.contains("-b") && !t.contains("+B"), "{t}");
}

/// A pending user (an apply was killed while creating it) that exists is adopted with
/// the recorded password set again: an update, neither a conflict nor drift.
#[test]
fn pending_resource_that_exists_is_adopted_and_its_recorded_password_set() {
    let d = [
        desired("user", "test_user", json!({"name": "app"})),
        desired(
            "db",
            "test_db",
            json!({"name": "app", "connection_limit": 5}),
        ),
    ];
    let p = [
        pending(
            "user",
            "test_user",
            json!({"name": "app", "password": "journaled"}),
        ),
        pending(
            "db",
            "test_db",
            json!({"name": "app", "connection_limit": 5}),
        ),
    ];
    let plan = run(
        &d,
        &p,
        &[
            ("user", present(json!({"name": "app"}))),
            ("db", present(json!({"name": "app", "connection_limit": 5}))),
        ],
    )
    .unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    let user = plan.change(&Address::new("user")).unwrap();
    assert_eq!(user.action, Action::Update);
    assert_eq!(user.changed, ["password"]);
    assert_eq!(user.after.as_ref().unwrap()["password"], "journaled");
    assert_eq!(user.note.as_deref(), Some(terrace_plan::ADOPT_PENDING_NOTE));
    // Nothing to set again: adopted as it is, by the apply, without a step.
    let db = plan.change(&Address::new("db")).unwrap();
    assert_eq!(db.action, Action::NoOp);
    let shown = text(&plan);
    assert!(!shown.contains("journaled"), "{shown}");
    assert!(shown.contains("apply adopts"), "{shown}");
}

/// A killed apply recorded what it was creating; before the rerun, someone else made an
/// object of that name. Its ownership attributes (a password that is not the generated
/// one, another owner) say it is not terrace's: the plan neither takes it over (which
/// would reset a stranger's password) nor destroys it when it is no longer wanted.
#[test]
fn pending_name_held_by_someone_elses_object_is_a_conflict_not_an_adoption() {
    let d = [
        desired(
            "user",
            "test_user",
            json!({"name": "app", "password_status": "matches"}),
        ),
        desired("db", "test_db", json!({"name": "app", "owner": "app"})),
    ];
    let p = [
        pending(
            "user",
            "test_user",
            json!({"name": "app", "password": "journaled", "password_status": "matches"}),
        ),
        pending("db", "test_db", json!({"name": "app", "owner": "app"})),
        pending("old", "test_db", json!({"name": "old", "owner": "app"})),
    ];
    let live = [
        (
            "user",
            present(json!({"name": "app", "password_status": "changed outside terrace"})),
        ),
        ("db", present(json!({"name": "app", "owner": "mallory"}))),
        ("old", present(json!({"name": "old", "owner": "mallory"}))),
    ];
    let plan = run(&d, &p, &live).unwrap();
    expect_test::expect![[r#"
        terrace will perform the following actions:

          # old will be removed from the state (nothing on the server changes)
          # (an earlier apply stopped while creating it, and the object found is not the one it created; it only leaves the state, the object is left alone)
          - test_db {
              - name  = "old"
              - owner = "app"
            }

        Conflicts (apply refuses until each is resolved):

          ! db: a database named "app" already exists on service.pg, and it is not the one an earlier apply stopped while creating: another role owns it. It may be someone else's: rename or remove it and the next apply creates terrace's own
            hint: adopt it with `terrace import db app`, or remove it from the configuration

          ! user: a user named "app" already exists on service.pg, and it is not the one an earlier apply stopped while creating: its password is not the one terrace generated for it. It may be someone else's: rename or remove it and the next apply creates terrace's own
            hint: adopt it with `terrace import user app`, or remove it from the configuration

        Plan: 0 to add, 0 to change, 0 to destroy.
        2 conflict(s) block this plan.
    "#]]
    .assert_eq(&text(&plan));
    assert!(plan.change(&Address::new("user")).is_none());
    assert!(plan.change(&Address::new("db")).is_none());
    let old = plan.change(&Address::new("old")).unwrap();
    assert!(terrace_plan::only_leaves_state(old), "{old:?}");

    // What the provider could not read proves nothing: adopted as before.
    let unreadable = [("user", present(json!({"name": "app"})))];
    let plan = run(&d[..1], &p[..1], &unreadable).unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert_eq!(
        plan.change(&Address::new("user")).unwrap().note.as_deref(),
        Some(terrace_plan::ADOPT_PENDING_NOTE)
    );
    // The object the killed apply made is adopted.
    let ours = [
        (
            "user",
            present(json!({"name": "app", "password_status": "matches"})),
        ),
        ("db", present(json!({"name": "app", "owner": "app"}))),
    ];
    let plan = run(&d, &p[..2], &ours).unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert_eq!(
        plan.change(&Address::new("db")).unwrap().action,
        Action::NoOp
    );
}

#[test]
fn pending_resource_that_is_absent_is_created_with_the_recorded_password() {
    let d = [desired("user", "test_user", json!({"name": "app"}))];
    let p = [pending(
        "user",
        "test_user",
        json!({"name": "app", "password": "journaled"}),
    )];
    let plan = run(&d, &p, &[("user", Observed::Absent)]).unwrap();
    assert!(plan.drift.is_empty(), "not drift: {:?}", plan.drift);
    let c = plan.change(&Address::new("user")).unwrap();
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.after.as_ref().unwrap()["password"], "journaled");
    assert!(c.generated.is_empty());
    assert_eq!(c.note.as_deref(), Some(terrace_plan::CREATE_PENDING_NOTE));
}

#[test]
fn pending_resource_no_longer_wanted_is_destroyed_or_forgotten() {
    let p = [
        pending("here", "test_db", json!({"name": "here"})),
        pending("gone", "test_db", json!({"name": "gone"})),
    ];
    let plan = run(
        &[],
        &p,
        &[
            ("here", present(json!({"name": "here"}))),
            ("gone", Observed::Absent),
        ],
    )
    .unwrap();
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    let here = plan.change(&Address::new("here")).unwrap();
    assert_eq!(here.action, Action::Delete);
    let gone = plan.change(&Address::new("gone")).unwrap();
    assert_eq!(gone.action, Action::Delete);
    assert_eq!(
        gone.note.as_deref(),
        Some(terrace_plan::FORGET_PENDING_NOTE)
    );
}

#[test]
fn a_rename_by_hand_is_worded_as_a_rename() {
    let d = [desired(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 5}),
    )];
    let pr = [prior(
        "db",
        "test_db",
        json!({"name": "app", "connection_limit": 5}),
    )];
    let p = run(
        &d,
        &pr,
        &[(
            "db",
            present(json!({"name": "app-old", "connection_limit": 5})),
        )],
    )
    .unwrap();
    let t = text(&p);
    assert!(
        t.contains("# db was renamed to \"app-old\" outside terrace"),
        "{t}"
    );
    assert!(!t.contains("has changed outside terrace"), "{t}");
}

#[test]
fn a_safeguard_is_shown_on_the_destroy_in_text_and_json() {
    let pr = [prior("db", "test_db", json!({"name": "app"}))];
    let mut p = run(&[], &pr, &[("db", present(json!({"name": "app"})))]).unwrap();
    p.safeguards.push(terrace_plan::PlannedSafeguard {
        address: Address::new("db"),
        safeguard: terrace_provider::Safeguard {
            kind: "dump".into(),
            destination: ".terrace/backups/app-<time>.sql".into(),
        },
    });
    let t = text(&p);
    assert!(
        t.contains(
            "  # db will be destroyed\n  # (it is no longer in the configuration)\n  \
             # (a dump of its data is written to .terrace/backups/app-<time>.sql first; \
             if that fails, it is not destroyed)\n"
        ),
        "{t}"
    );
    let v = render_json(&p, "0.0.0");
    let expected = json!({
        "address": "db", "kind": "dump", "destination": ".terrace/backups/app-<time>.sql",
    });
    assert_eq!(v["safeguards"], json!([expected]));
    assert_eq!(
        v["resource_changes"][0]["safeguard"],
        json!({"kind": "dump", "destination": ".terrace/backups/app-<time>.sql"})
    );
}

#[test]
fn a_conflict_with_its_own_hint_shows_that_hint_not_import() {
    let mut p = Plan::default();
    p.conflicts.push(terrace_plan::Conflict {
        address: Address::new("c.web"),
        type_name: "docker_container".into(),
        import_id: String::new(),
        message: "host port 80/tcp is already published by container \"x\"".into(),
        hint: Some("free the port".into()),
    });
    let t = text(&p);
    assert!(
        t.contains(
            "  ! c.web: host port 80/tcp is already published by container \"x\"\n    hint: free the port\n"
        ),
        "{t}"
    );
    assert!(!t.contains("terrace import"), "{t}");
}

#[test]
fn a_safeguard_never_shows_a_secret_name() {
    let mut pr = prior("db", "test_db", json!({"name": "hidden_client"}));
    pr.sensitive_attrs.insert("name".into());
    let mut p = run(&[], &[pr], &[]).unwrap();
    p.safeguards.push(terrace_plan::PlannedSafeguard {
        address: Address::new("db"),
        safeguard: terrace_provider::Safeguard {
            kind: "dump".into(),
            destination: "/b/hidden_client-<time>.sql".into(),
        },
    });
    let t = text(&p);
    assert!(!t.contains("hidden_client"), "{t}");
    assert!(t.contains("/b/(sensitive value)-<time>.sql"), "{t}");
    let j = render_json(&p, "0").to_string();
    assert!(!j.contains("hidden_client"), "{j}");
}

fn with_lifecycle(
    mut d: DesiredResource,
    prevent_destroy: bool,
    ignore: &[&str],
) -> DesiredResource {
    d.lifecycle = terrace_provider::Lifecycle {
        prevent_destroy,
        ignore_changes: ignore.iter().map(|s| s.to_string()).collect(),
    };
    d
}

#[test]
fn ignore_changes_silences_drift_and_config_changes_of_those_attributes() {
    let d = with_lifecycle(
        desired(
            "db.a",
            "test_db",
            json!({"name": "a", "connection_limit": 5, "content": "x"}),
        ),
        false,
        &["connection_limit", "name"],
    );
    let p = prior(
        "db.a",
        "test_db",
        json!({"name": "old", "connection_limit": 7, "content": "x"}),
    );
    // Live: the limit changed by hand; config changes the limit and the (force-new)
    // name: both ignored, so no drift, no update and no replacement.
    let plan = run(
        std::slice::from_ref(&d),
        std::slice::from_ref(&p),
        &[(
            "db.a",
            present(json!({"name": "old", "connection_limit": 99, "content": "x"})),
        )],
    )
    .unwrap();
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    assert!(plan.is_empty(), "{}", text(&plan));
    // Other attributes still drift and change; the ignored one keeps its live value.
    let plan = run(
        &[d],
        &[p],
        &[(
            "db.a",
            present(json!({"name": "old", "connection_limit": 99, "content": "y"})),
        )],
    )
    .unwrap();
    assert_eq!(plan.drift.len(), 1);
    let DriftKind::Changed { attrs } = &plan.drift[0].kind else {
        panic!("changed")
    };
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].name, "content");
    let c = plan.change(&Address::new("db.a")).unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.changed, ["content"]);
    assert_eq!(c.after.as_ref().unwrap()["connection_limit"], json!(99));
    assert_eq!(c.after.as_ref().unwrap()["name"], json!("old"));
}

#[test]
fn prevent_destroy_refuses_replacements_and_destroys_naming_the_attribute() {
    let d = with_lifecycle(
        desired(
            "db.a",
            "test_db",
            json!({"name": "new", "connection_limit": 5}),
        ),
        true,
        &[],
    );
    let p = prior(
        "db.a",
        "test_db",
        json!({"name": "old", "connection_limit": 5}),
    );
    let live = [(
        "db.a",
        present(json!({"name": "old", "connection_limit": 5})),
    )];
    let replacing = run(std::slice::from_ref(&d), std::slice::from_ref(&p), &live).unwrap();
    let err =
        terrace_plan::check_prevent_destroy(&replacing, std::slice::from_ref(&d)).unwrap_err();
    expect_test::expect![[r#"
        the plan destroys what `lifecycle { prevent_destroy = true }` protects:
          db.a would be replaced (destroyed and created again), forced by a change of "name"
        change the configuration so that it does not, or allow it on purpose with `lifecycle { prevent_destroy = false }` in the block (shared services are protected unless their block says so)"#]]
    .assert_eq(&err.to_string());
    // A destroy (the configuration is still loaded, the desired set is empty).
    let destroying = run(&[], std::slice::from_ref(&p), &live).unwrap();
    let err =
        terrace_plan::check_prevent_destroy(&destroying, std::slice::from_ref(&d)).unwrap_err();
    assert!(err.to_string().contains("db.a would be destroyed"), "{err}");
    // An in-place update, or an unprotected resource, passes.
    let same_name = with_lifecycle(
        desired(
            "db.a",
            "test_db",
            json!({"name": "old", "connection_limit": 9}),
        ),
        true,
        &[],
    );
    let updating = run(
        std::slice::from_ref(&same_name),
        std::slice::from_ref(&p),
        &live,
    )
    .unwrap();
    terrace_plan::check_prevent_destroy(&updating, &[same_name]).unwrap();
    let unprotected = desired(
        "db.a",
        "test_db",
        json!({"name": "new", "connection_limit": 5}),
    );
    terrace_plan::check_prevent_destroy(&replacing, &[unprotected]).unwrap();
}

fn on(mut r: DesiredResource, service: &str) -> DesiredResource {
    r.provider = ProviderKey(service.into());
    r
}

fn prior_on(mut r: PriorResource, service: &str) -> PriorResource {
    r.provider = ProviderKey(service.into());
    r
}

#[test]
fn a_data_carrying_object_moving_to_another_service_is_a_move_with_its_data() {
    let d = [on(
        desired("tenant.a.database", "test_data_db", json!({"name": "wp_a"})),
        "service.db_b",
    )];
    let p = [prior_on(
        prior("tenant.a.database", "test_data_db", json!({"name": "wp_a"})),
        "service.db_a",
    )];
    let plan = run(
        &d,
        &p,
        &[("tenant.a.database", present(json!({"name": "wp_a"})))],
    )
    .unwrap();
    let c = &plan.changes[0];
    assert_eq!(c.action, Action::Replace);
    assert!(c.moves_data);
    expect_test::expect![[r#"
        terrace will perform the following actions:

          # tenant.a.database will be moved from service.db_a to service.db_b, with its data
          # (database wp_a moves from service.db_a to service.db_b: copied, created there, restored and verified, then dropped here (the copy is kept))
        -/+ test_data_db {
                name = "wp_a"
            }

        Plan: 1 to add, 0 to change, 1 to destroy.
    "#]]
    .assert_eq(&text(&plan));
    let json = render_json(&plan, "test");
    assert_eq!(json["format_version"], "1.2");
    assert_eq!(
        json["resource_changes"][0]["move"],
        json!({"from": "service.db_a", "to": "service.db_b", "with_data": true})
    );
    // A type without data is replaced as before: nothing to carry.
    let d = [on(
        desired("db", "test_db", json!({"name": "x"})),
        "service.db_b",
    )];
    let p = [prior_on(
        prior("db", "test_db", json!({"name": "x"})),
        "service.db_a",
    )];
    let plan = run(&d, &p, &[]).unwrap();
    assert!(!plan.changes[0].moves_data);
    assert!(render_json(&plan, "t")["resource_changes"][0]["move"].is_null());
}

#[test]
fn an_interrupted_move_starts_again_from_the_old_copy_which_is_not_destroyed_on_its_own() {
    let addr = Address::new("tenant.a.database");
    let d = [on(
        desired(addr.as_str(), "test_data_db", json!({"name": "wp_a"})),
        "service.db_b",
    )];
    // The new object is pending (maybe half restored), the old one deposed.
    let p = [
        prior_on(
            pending(addr.as_str(), "test_data_db", json!({"name": "wp_a"})),
            "service.db_b",
        ),
        prior_on(
            prior(
                addr.deposed().as_str(),
                "test_data_db",
                json!({"name": "wp_a"}),
            ),
            "service.db_a",
        ),
    ];
    let observed = [
        (addr.as_str(), present(json!({"name": "wp_a"}))),
        (
            "tenant.a.database (deposed)",
            present(json!({"name": "wp_a"})),
        ),
    ];
    let plan = run(&d, &p, &observed).unwrap();
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    let c = &plan.changes[0];
    assert!(c.moves_data && c.action == Action::Replace);
    assert_eq!(c.prior_provider, Some(ProviderKey("service.db_a".into())));
    assert!(c
        .note
        .as_deref()
        .unwrap()
        .starts_with(terrace_plan::RESUME_MOVE_NOTE));

    // Once the new object is recorded as managed (verified), the old copy is destroyed.
    let p = [
        prior_on(
            prior(addr.as_str(), "test_data_db", json!({"name": "wp_a"})),
            "service.db_b",
        ),
        p[1].clone(),
    ];
    let plan = run(&d, &p, &observed).unwrap();
    let actions: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("tenant.a.database", Action::NoOp),
            ("tenant.a.database (deposed)", Action::Delete)
        ]
    );
    assert_eq!(
        plan.changes[1].note.as_deref(),
        Some("the old copy of tenant.a.database, which a move replaced; the new one is verified")
    );
    assert_eq!(plan.changes[1].provider, ProviderKey("service.db_a".into()));
}

#[test]
fn what_uses_a_moving_object_is_stopped_before_the_copy_and_started_after_it() {
    let mut app = desired("app", "test_package", json!({"name": "app"}));
    app.depends_on = vec![Address::new("tenant.a.database")];
    let d = [
        on(
            desired("tenant.a.database", "test_data_db", json!({"name": "wp_a"})),
            "service.db_b",
        ),
        app,
    ];
    let p = [
        prior_on(
            prior("tenant.a.database", "test_data_db", json!({"name": "wp_a"})),
            "service.db_a",
        ),
        prior("app", "test_package", json!({"name": "app"})),
    ];
    let plan = run(&d, &p, &[]).unwrap();
    expect_test::expect![[r#"
        terrace will perform the following actions:

          # app must be replaced (it uses what moves to another server)
          # (it uses tenant.a.database, which moves with its data: it is stopped before the move and started again after it)
        -/+ test_package {
                name = "app"
            }

          # tenant.a.database will be moved from service.db_a to service.db_b, with its data
          # (database wp_a moves from service.db_a to service.db_b: copied, created there, restored and verified, then dropped here (the copy is kept))
        -/+ test_data_db {
                name = "wp_a"
            }

        Plan: 2 to add, 0 to change, 2 to destroy.
    "#]]
    .assert_eq(&text(&plan));
}
