//! Expiry without any server: which instances expire, what the plan then destroys and
//! never creates again, and how the three renderers show it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use expect_test::expect;
use serde_json::json;
use terrace_plan::expiry::{annotate, judge, Clock, ExpiryInput, ExpirySpec};
use terrace_plan::render::{render_json, render_text, TextOptions};
use terrace_plan::render::{render_markdown, MarkdownOptions, Partial};
use terrace_plan::{plan, Action, Plan, PlanInput, PriorResource};
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
    attrs: &[AttrSchema::plain("name").force_new()],
};

fn schemas(t: &str) -> Option<&'static ResourceSchema> {
    (t == "test_db").then_some(&DB)
}

fn attrs(name: &str) -> Attrs {
    serde_json::from_value(json!({ "name": name })).unwrap()
}

fn desired(addr: &str) -> DesiredResource {
    DesiredResource {
        address: Address::new(addr),
        type_name: "test_db".into(),
        provider: ProviderKey("service.db".into()),
        attrs: attrs(addr),
        sensitive_attrs: BTreeSet::new(),
        depends_on: vec![],
        lifecycle: Default::default(),
    }
}

fn prior(addr: &str) -> PriorResource {
    PriorResource {
        address: Address::new(addr),
        type_name: "test_db".into(),
        provider: ProviderKey("service.db".into()),
        attrs: attrs(addr),
        sensitive_attrs: BTreeSet::new(),
        depends_on: vec![],
        pending: false,
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn clock(now: &str) -> Clock {
    Clock {
        now: t(now),
        horizon: TimeDelta::hours(24),
    }
}

fn ttl(instance: &str, hours: i64) -> ExpirySpec {
    ExpirySpec {
        instance: instance.into(),
        expires_at: None,
        ttl: Some(TimeDelta::hours(hours)),
    }
}

fn at(instance: &str, when: &str) -> ExpirySpec {
    ExpirySpec {
        instance: instance.into(),
        expires_at: Some(t(when)),
        ttl: None,
    }
}

const A: &str = r#"tenant.clone["a"]"#;
const B: &str = r#"tenant.clone["b"]"#;
const C: &str = r#"tenant.clone["c"]"#;

/// judge, plan, annotate: as `Session::plan` runs them.
fn run(
    specs: &[ExpirySpec],
    created: &BTreeMap<String, DateTime<Utc>>,
    now: &str,
    desired: Vec<DesiredResource>,
    prior: &[PriorResource],
) -> Plan {
    let observed: BTreeMap<Address, Observed> = prior
        .iter()
        .map(|p| (p.address.clone(), Observed::Present(p.attrs.clone())))
        .collect();
    let input = ExpiryInput {
        specs,
        created,
        clock: clock(now),
    };
    let (desired, listed) = judge(input, desired);
    let mut p = plan(PlanInput {
        desired,
        prior: prior.to_vec(),
        observed,
        schemas: &schemas,
    })
    .unwrap();
    annotate(&mut p, listed);
    p
}

fn three() -> Vec<DesiredResource> {
    [A, B, C]
        .iter()
        .flat_map(|i| {
            [
                desired(&format!("{i}.database")),
                desired(&format!("{i}.database.user")),
            ]
        })
        .collect()
}

fn three_prior() -> Vec<PriorResource> {
    [A, B, C]
        .iter()
        .flat_map(|i| {
            [
                prior(&format!("{i}.database")),
                prior(&format!("{i}.database.user")),
            ]
        })
        .collect()
}

#[test]
fn a_ttl_counts_from_the_recorded_creation_and_expired_resources_are_destroyed() {
    let created: BTreeMap<String, DateTime<Utc>> = [
        (A.to_string(), t("2026-01-01T00:00:00Z")),
        (B.to_string(), t("2026-01-02T00:00:00Z")),
    ]
    .into();
    let specs = [ttl(A, 48), ttl(B, 48), at(C, "2026-01-10T00:00:00Z")];
    let p = run(
        &specs,
        &created,
        "2026-01-03T12:00:00Z",
        three(),
        &three_prior(),
    );
    let deleted: Vec<(&str, &str)> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| (c.address.as_str(), c.note.as_deref().unwrap()))
        .collect();
    assert_eq!(
        deleted,
        [
            (
                r#"tenant.clone["a"].database"#,
                "expired at 2026-01-03T00:00:00Z"
            ),
            (
                r#"tenant.clone["a"].database.user"#,
                "expired at 2026-01-03T00:00:00Z"
            ),
        ]
    );
    // b expires within the horizon (tomorrow): listed, not destroyed; c is far off.
    let listed: Vec<(&str, bool)> = p
        .expiry
        .iter()
        .map(|e| (e.instance.as_str(), e.expired))
        .collect();
    assert_eq!(listed, [(A, true), (B, false)]);
    assert_eq!(p.summary().destroy, 2);
    assert_eq!(p.summary().add, 0);
}

#[test]
fn an_expired_instance_is_not_created_again_while_the_configuration_lists_it() {
    // After the cleanup: nothing of a is in state, the recorded creation remains.
    let created: BTreeMap<String, DateTime<Utc>> =
        [(A.to_string(), t("2026-01-01T00:00:00Z"))].into();
    let prior: Vec<PriorResource> = three_prior().into_iter().skip(2).collect();
    let p = run(
        &[ttl(A, 48)],
        &created,
        "2026-01-05T00:00:00Z",
        three(),
        &prior,
    );
    assert!(p.is_empty(), "{:?}", p.actionable().collect::<Vec<_>>());
    assert_eq!(p.expiry.len(), 1);
    assert!(p.expiry[0].expired);
    // An absolute end needs no record at all.
    let p = run(
        &[at(A, "2026-01-04T00:00:00Z")],
        &BTreeMap::new(),
        "2026-01-05T00:00:00Z",
        three(),
        &prior,
    );
    assert!(p.is_empty());
    assert!(p.expiry[0].expired);
}

#[test]
fn a_new_instance_counts_its_ttl_from_now_and_the_earlier_end_wins() {
    // Not created yet: a 12h ttl ends within the horizon and is listed as expiring.
    let p = run(
        &[ttl(A, 12)],
        &BTreeMap::new(),
        "2026-01-01T00:00:00Z",
        three(),
        &[],
    );
    assert_eq!(p.summary().add, 6);
    assert_eq!(
        p.expiry[0].describe(),
        r#"tenant.clone["a"] expires at 2026-01-01T12:00:00Z (ttl 12h from its creation by this apply)"#
    );
    // Both set: the absolute end is earlier, so it decides and no ttl is shown.
    let spec = ExpirySpec {
        expires_at: Some(t("2026-01-01T01:00:00Z")),
        ..ttl(A, 12)
    };
    let p = run(
        &[spec],
        &BTreeMap::new(),
        "2026-01-01T00:00:00Z",
        three(),
        &[],
    );
    assert_eq!(
        p.expiry[0].describe(),
        r#"tenant.clone["a"] expires at 2026-01-01T01:00:00Z"#
    );
    // The expiry is inclusive: at the exact end it has expired.
    let p = run(
        &[at(A, "2026-01-01T00:00:00Z")],
        &BTreeMap::new(),
        "2026-01-01T00:00:00Z",
        three(),
        &[],
    );
    assert!(p.expiry[0].expired);
    assert_eq!(p.summary().add, 4);
}

#[test]
fn instance_prefixes_do_not_capture_their_neighbours() {
    let a = Address::new(r#"tenant.clone["a"].database"#);
    assert!(terrace_plan::expiry::belongs_to(&a, A));
    assert!(!terrace_plan::expiry::belongs_to(&a, "tenant.clone"));
    assert!(!terrace_plan::expiry::belongs_to(
        &Address::new("tenant.clones.database"),
        "tenant.clone"
    ));
    assert!(terrace_plan::expiry::belongs_to(
        &Address::new("tenant.clone.database"),
        "tenant.clone"
    ));
}

#[test]
fn instances_with_resources_agrees_with_belongs_to_in_one_pass() {
    let instances: std::collections::BTreeSet<&str> = [
        r#"tenant.clone["a"]"#,
        r#"tenant.clone["a.b"]"#,
        r#"tenant.clone["c"]"#,
        "tenant.solo",
    ]
    .into();
    let addresses: Vec<Address> = [
        r#"tenant.clone["a"].database.user"#,
        r#"tenant.clone["a.b"].app"#,
        r#"tenant.clone["ab"].app"#,
        "tenant.solo",
        "tenant.solos.app",
    ]
    .into_iter()
    .map(Address::new)
    .collect();
    let found = terrace_plan::expiry::instances_with_resources(&addresses, &instances);
    let expected: std::collections::BTreeSet<&str> = instances
        .iter()
        .copied()
        .filter(|i| {
            addresses
                .iter()
                .any(|a| terrace_plan::expiry::belongs_to(a, i))
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        found,
        [
            r#"tenant.clone["a"]"#,
            r#"tenant.clone["a.b"]"#,
            "tenant.solo"
        ]
        .into()
    );
}

fn rendered_plan() -> Plan {
    let created: BTreeMap<String, DateTime<Utc>> = [
        (A.to_string(), t("2026-01-01T00:00:00Z")),
        (B.to_string(), t("2026-01-02T00:00:00Z")),
    ]
    .into();
    let specs = [ttl(A, 48), ttl(B, 48), at(C, "2026-01-01T06:00:00Z")];
    // c was removed by an earlier cleanup; a is removed now.
    let prior: Vec<PriorResource> = three_prior().into_iter().take(4).collect();
    run(&specs, &created, "2026-01-03T12:00:00Z", three(), &prior)
}

#[test]
fn the_text_plan_shows_the_reason_the_listed_instances_and_what_expires_soon() {
    let text = render_text(&rendered_plan(), TextOptions::default());
    expect![[r#"
        Expired (the configuration still lists them):

          # tenant.clone["a"] expired at 2026-01-03T00:00:00Z (ttl 48h from its creation at 2026-01-01T00:00:00Z); the configuration still lists it: remove it (terrace will not create it again)
          # tenant.clone["c"] expired at 2026-01-01T06:00:00Z; the configuration still lists it: remove it (terrace will not create it again)

        Expiring soon:

          # tenant.clone["b"] expires at 2026-01-04T00:00:00Z (ttl 48h from its creation at 2026-01-02T00:00:00Z)

        terrace will perform the following actions:

          # tenant.clone["a"].database will be destroyed
          # (expired at 2026-01-03T00:00:00Z)
          - test_db {
              - name = "tenant.clone[\"a\"].database"
            }

          # tenant.clone["a"].database.user will be destroyed
          # (expired at 2026-01-03T00:00:00Z)
          - test_db {
              - name = "tenant.clone[\"a\"].database.user"
            }

        Plan: 0 to add, 0 to change, 2 to destroy.
    "#]]
    .assert_eq(&text);
}

#[test]
fn json_and_markdown_carry_the_reason_and_the_expiry_list() {
    let p = rendered_plan();
    let doc = render_json(&p, "test");
    let notes: Vec<&serde_json::Value> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] == json!(["delete"]))
        .map(|c| &c["note"])
        .collect();
    assert_eq!(notes, [&json!("expired at 2026-01-03T00:00:00Z"); 2]);
    expect![[r#"
        [
          {
            "created_at": "2026-01-01T00:00:00Z",
            "expired": true,
            "expires_at": "2026-01-03T00:00:00Z",
            "instance": "tenant.clone[\"a\"]",
            "ttl": "48h"
          },
          {
            "created_at": "2026-01-02T00:00:00Z",
            "expired": false,
            "expires_at": "2026-01-04T00:00:00Z",
            "instance": "tenant.clone[\"b\"]",
            "ttl": "48h"
          },
          {
            "expired": true,
            "expires_at": "2026-01-01T06:00:00Z",
            "instance": "tenant.clone[\"c\"]"
          }
        ]"#]]
    .assert_eq(&serde_json::to_string_pretty(&doc["expiry"]).unwrap());
    let partial = Partial::default();
    let md = render_markdown(
        &p,
        &MarkdownOptions {
            project: "clones",
            partial: &partial,
            part_chars: 60_000,
        },
    );
    let md = md.join("\n");
    assert!(md.contains("### Expiry"), "{md}");
    assert!(md.contains("expired at 2026-01-03T00:00:00Z"), "{md}");
}
