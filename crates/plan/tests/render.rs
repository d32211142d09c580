//! Whole rendered plans, snapshotted: drift of an account's access and password, and
//! what could not be verified.

use expect_test::expect;
use serde_json::json;
use std::collections::BTreeSet;

use terrace_plan::render::{
    render_json, render_markdown, render_text, MarkdownOptions, Partial, TextOptions,
    DEFAULT_PART_CHARS,
};
use terrace_plan::{AttrDiff, Drift, DriftKind, Plan};
use terrace_provider::Address;

fn user_drift() -> Drift {
    Drift {
        address: Address::new("tenant.b.database.user"),
        type_name: "sql_user".into(),
        kind: DriftKind::Changed {
            attrs: vec![
                AttrDiff {
                    name: "extra_access".into(),
                    before: Some(json!([])),
                    after: Some(json!([
                        "can reach database `a` (SELECT)",
                        "has role attribute CREATEDB"
                    ])),
                },
                AttrDiff {
                    name: "password_status".into(),
                    before: Some(json!("matches")),
                    after: Some(json!("changed outside terrace")),
                },
            ],
        },
        sensitive: ["password".to_string()].into_iter().collect(),
        byte_sizes: Default::default(),
    }
}

#[test]
fn account_drift_reads_item_by_item() {
    let plan = Plan {
        drift: vec![user_drift()],
        ..Plan::default()
    };
    let text = render_text(&plan, TextOptions::default());
    expect![[r#"
        Objects changed outside terrace since the last apply (drift):

          # tenant.b.database.user has changed outside terrace
          ~ sql_user {
              ~ extra_access    = [
                  + can reach database `a` (SELECT)
                  + has role attribute CREATEDB
                ]
              ~ password_status = "matches" -> "changed outside terrace"
            }

        No changes. The live systems match the configuration.
    "#]]
    .assert_eq(&text);
}

/// A memory limit changed by hand (`docker update --memory 1g`) reads in the drift as
/// the configuration writes sizes, like the change that sets it back, not as bytes.
#[test]
fn byte_sizes_in_drift_read_as_the_configuration_writes_them() {
    let plan = Plan {
        drift: vec![Drift {
            address: Address::new("tenant.a.app"),
            type_name: "docker_container".into(),
            kind: DriftKind::Changed {
                attrs: vec![
                    AttrDiff {
                        name: "memory".into(),
                        before: Some(json!(16 << 20)),
                        after: Some(json!(1 << 30)),
                    },
                    AttrDiff {
                        name: "restart".into(),
                        before: Some(json!("always")),
                        after: Some(json!("no")),
                    },
                ],
            },
            sensitive: BTreeSet::new(),
            byte_sizes: ["memory".to_string()].into(),
        }],
        ..Plan::default()
    };
    expect![[r#"
        Objects changed outside terrace since the last apply (drift):

          # tenant.a.app has changed outside terrace
          ~ docker_container {
              ~ memory  = "16m" -> "1g"
              ~ restart = "always" -> "no"
            }

        No changes. The live systems match the configuration.
    "#]]
    .assert_eq(&render_text(&plan, TextOptions::default()));
    let partial = Partial::default();
    let opts = MarkdownOptions {
        project: "shop",
        partial: &partial,
        part_chars: DEFAULT_PART_CHARS,
    };
    expect![[r#"
        <!-- terrace-plan: shop -->
        **No changes.** The live systems match the configuration.

        ### Drift: 1 object(s) changed outside terrace since the last apply

        - `tenant.a.app` (`docker_container`) has changed outside terrace:
          - `memory`: `"16m"` → `"1g"`
          - `restart`: `"always"` → `"no"`
    "#]]
    .assert_eq(&render_markdown(&plan, &opts).join("\n----\n"));
}

#[test]
fn unverified_checks_are_listed_and_no_changes_is_qualified() {
    let plan = Plan {
        unverified: vec![
            "service.pg: passwords of app1, app2 on postgres://admin@db:5432: the admin role may not read pg_authid (it is not a superuser), so a password changed by hand would go unseen".into(),
        ],
        ..Plan::default()
    };
    let text = render_text(&plan, TextOptions::default());
    expect![[r#"
        Not verified (terrace could not check these; the plan cannot vouch for them):

          - service.pg: passwords of app1, app2 on postgres://admin@db:5432: the admin role may not read pg_authid (it is not a superuser), so a password changed by hand would go unseen

        No changes among what could be verified; see what was not, above.
    "#]].assert_eq(&text);
    let doc = render_json(&plan, "test");
    assert_eq!(doc["unverified"], json!(plan.unverified));
    assert_eq!(doc["changes_present"], json!(false));
}
