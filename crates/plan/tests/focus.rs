//! `--target` and `--replace` on a plan: which changes stay, dependencies included,
//! and how a requested replacement is shown. No server.

use std::collections::{BTreeMap, BTreeSet};

use terrace_plan::render::{render_text, TextOptions};
use terrace_plan::{plan, Action, Focus, FocusError, Plan, PlanInput, PriorResource};
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
    ],
};

fn schemas(t: &str) -> Option<&'static ResourceSchema> {
    (t == "test_db").then_some(&DB)
}

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).unwrap()
}

fn desired(addr: &str, name: &str, limit: i64, deps: &[&str]) -> DesiredResource {
    DesiredResource {
        address: Address::new(addr),
        type_name: "test_db".into(),
        provider: ProviderKey("service.pg".into()),
        attrs: attrs(serde_json::json!({ "name": name, "connection_limit": limit })),
        sensitive_attrs: BTreeSet::new(),
        depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
        lifecycle: Default::default(),
    }
}

fn prior(addr: &str, name: &str, limit: i64) -> PriorResource {
    PriorResource {
        address: Address::new(addr),
        type_name: "test_db".into(),
        provider: ProviderKey("service.pg".into()),
        attrs: attrs(serde_json::json!({ "name": name, "connection_limit": limit })),
        sensitive_attrs: BTreeSet::new(),
        depends_on: vec![],
        pending: false,
    }
}

/// Three tenants: `a` (new, its user depending on its database), `b` (its limit
/// changed), `c` (unchanged), and `old` (no longer configured).
fn base_plan() -> Plan {
    let desired = vec![
        desired("tenant.t[\"a\"].database", "a", 5, &[]),
        desired(
            "tenant.t[\"a\"].user",
            "a_user",
            5,
            &["tenant.t[\"a\"].database"],
        ),
        desired("tenant.t[\"b\"].database", "b", 9, &[]),
        desired("tenant.t[\"c\"].database", "c", 5, &[]),
    ];
    let prior = vec![
        prior("tenant.t[\"b\"].database", "b", 5),
        prior("tenant.t[\"c\"].database", "c", 5),
        prior("database.old", "old", 5),
    ];
    let observed: BTreeMap<Address, Observed> = prior
        .iter()
        .map(|p| (p.address.clone(), Observed::Present(p.attrs.clone())))
        .collect();
    plan(PlanInput {
        desired,
        prior,
        observed,
        schemas: &schemas,
    })
    .unwrap()
}

fn addresses(p: &Plan) -> Vec<String> {
    p.actionable().map(|c| c.address.to_string()).collect()
}

#[test]
fn a_target_keeps_itself_and_its_dependencies_only() {
    let mut p = base_plan();
    assert_eq!(p.summary().add, 2);
    let focus = Focus {
        targets: vec!["tenant.t[\"a\"].user".into()],
        replace: vec![],
    };
    let kept = focus.apply(&mut p).unwrap().unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        addresses(&p),
        ["tenant.t[\"a\"].database", "tenant.t[\"a\"].user"]
    );
}

#[test]
fn a_target_takes_everything_under_its_address_and_not_its_prefix_namesakes() {
    let mut p = base_plan();
    let focus = Focus {
        targets: vec!["tenant.t[\"b\"]".into(), "database.old".into()],
        replace: vec![],
    };
    focus.apply(&mut p).unwrap();
    assert_eq!(addresses(&p), ["database.old", "tenant.t[\"b\"].database"]);
    // `database.ol` is not `database.old`.
    let err = Focus {
        targets: vec!["database.ol".into()],
        replace: vec![],
    }
    .apply(&mut base_plan())
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--target database.ol: no resource in the configuration or the state has this address"
    );
}

#[test]
fn replace_forces_a_replacement_of_an_unchanged_or_updated_resource() {
    let mut p = base_plan();
    let focus = Focus {
        targets: vec![],
        replace: vec![
            "tenant.t[\"c\"].database".into(),
            "tenant.t[\"b\"].database".into(),
        ],
    };
    assert_eq!(focus.apply(&mut p).unwrap(), None);
    for addr in ["tenant.t[\"b\"].database", "tenant.t[\"c\"].database"] {
        let c = p.change(&Address::new(addr)).unwrap();
        assert_eq!(c.action, Action::Replace, "{addr}");
        assert_eq!(c.replace_because, ["(requested)"]);
    }
    let text = render_text(&p, TextOptions::default());
    assert!(
        text.contains("# tenant.t[\"c\"].database must be replaced (requested)"),
        "{text}"
    );
    // Nothing else is replaced.
    assert_eq!(p.summary().destroy, 3);
}

#[test]
fn replace_of_what_the_plan_creates_or_nothing_is_an_error() {
    let focus = |r: &str| Focus {
        targets: vec![],
        replace: vec![r.into()],
    };
    assert_eq!(
        focus("tenant.t[\"a\"]")
            .apply(&mut base_plan())
            .unwrap_err(),
        FocusError::NothingToReplace("tenant.t[\"a\"]".into())
    );
    assert!(matches!(
        focus("tenant.zz").apply(&mut base_plan()).unwrap_err(),
        FocusError::Unknown {
            flag: "replace",
            ..
        }
    ));
}

#[test]
fn replace_and_target_together_replace_only_within_the_target() {
    let mut p = base_plan();
    let focus = Focus {
        targets: vec!["tenant.t[\"c\"]".into()],
        replace: vec!["tenant.t[\"c\"].database".into()],
    };
    focus.apply(&mut p).unwrap();
    assert_eq!(addresses(&p), ["tenant.t[\"c\"].database"]);
    assert_eq!(p.summary().add, 1);
    assert_eq!(p.summary().destroy, 1);
}

#[test]
fn what_is_not_targeted_stays_as_it_is_now() {
    let mut p = base_plan();
    Focus {
        targets: vec!["tenant.t[\"c\"]".into()],
        replace: vec![],
    }
    .apply(&mut p)
    .unwrap();
    // b's update and old's delete are not made: both stay, unchanged; a's creates are
    // left out.
    let b = p.change(&Address::new("tenant.t[\"b\"].database")).unwrap();
    assert_eq!(b.action, Action::NoOp);
    assert_eq!(b.after, b.before);
    assert!(b.changed.is_empty());
    let old = p.change(&Address::new("database.old")).unwrap();
    assert_eq!(old.action, Action::NoOp);
    assert_eq!(old.after, old.before);
    assert!(p
        .change(&Address::new("tenant.t[\"a\"].database"))
        .is_none());
    assert!(p.is_empty());
}
