//! What lives in a replaced object is replaced with it (a grant with its user); what
//! only depends on it (an app reading the user's password) is not. No server.

use std::collections::{BTreeMap, BTreeSet};

use terrace_plan::{
    plan, replace_what_lives_in_replaced, Action, Focus, Plan, PlanInput, PriorResource,
};
use terrace_provider::{
    Address, AttrSchema, Attrs, DesiredResource, Observed, ProviderKey, ResourceSchema,
};

const NAME: &[AttrSchema] = &[AttrSchema::plain("name")];

static USER: ResourceSchema = ResourceSchema {
    type_name: "t_user",
    description: "user",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: NAME,
};
static GRANT: ResourceSchema = ResourceSchema {
    type_name: "t_grant",
    description: "grant",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: false,
    lives_in: &["t_user"],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: NAME,
};
static APP: ResourceSchema = ResourceSchema {
    type_name: "t_app",
    description: "app",
    import_id: &["name"],
    adopt_existing: false,
    carries_data: false,
    lives_in: &[],
    drops_data_if: None,
    delete_keeps_object: false,
    attrs: NAME,
};

fn schemas(t: &str) -> Option<&'static ResourceSchema> {
    [&USER, &GRANT, &APP].into_iter().find(|s| s.type_name == t)
}

/// A user, its grant and an app using both, all unchanged.
fn unchanged() -> Plan {
    let all = [
        ("user", "t_user", vec![]),
        ("grant", "t_grant", vec!["user"]),
        ("app", "t_app", vec!["user", "grant"]),
    ];
    let attrs: Attrs = serde_json::from_value(serde_json::json!({"name": "n"})).unwrap();
    let desired = all
        .iter()
        .map(|(a, t, deps)| DesiredResource {
            address: Address::new(*a),
            type_name: (*t).into(),
            provider: ProviderKey("service.db".into()),
            attrs: attrs.clone(),
            sensitive_attrs: BTreeSet::new(),
            depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
            lifecycle: Default::default(),
        })
        .collect();
    let prior: Vec<PriorResource> = all
        .iter()
        .map(|(a, t, _)| PriorResource {
            address: Address::new(*a),
            type_name: (*t).into(),
            provider: ProviderKey("service.db".into()),
            attrs: attrs.clone(),
            sensitive_attrs: BTreeSet::new(),
            depends_on: vec![],
            pending: false,
        })
        .collect();
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

fn actions(p: &Plan) -> Vec<(String, Action)> {
    p.changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect()
}

#[test]
fn a_replaced_user_takes_its_grant_along_but_not_what_merely_uses_it() {
    let mut p = unchanged();
    let focus = Focus {
        targets: vec![],
        replace: vec!["user".into()],
    };
    focus.apply(&mut p).unwrap();
    replace_what_lives_in_replaced(&mut p, &schemas);
    let mut got = actions(&p);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("app".to_string(), Action::NoOp),
            ("grant".to_string(), Action::Replace),
            ("user".to_string(), Action::Replace),
        ]
    );
    let grant = p
        .changes
        .iter()
        .find(|c| c.address.as_str() == "grant")
        .unwrap();
    assert_eq!(grant.replace_because, [terrace_plan::LIVES_IN_REPLACED]);
    assert_eq!(
        grant.note.as_deref(),
        Some("it lives in user, which is replaced: the server drops it with it, and apply makes it again")
    );
}

#[test]
fn nothing_replaced_changes_nothing() {
    let mut p = unchanged();
    replace_what_lives_in_replaced(&mut p, &schemas);
    assert!(p.changes.iter().all(|c| c.action == Action::NoOp));
}
