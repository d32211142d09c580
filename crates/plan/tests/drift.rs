//! Drift runs, snapshotted whole: the report split by the ignore file (acknowledged,
//! expired), its text and JSON, and the Prometheus textfile.

use std::collections::{BTreeMap, BTreeSet};

use expect_test::expect;
use serde_json::json;
use terrace_plan::drift::{
    parse_ignore, render_drift_json, render_drift_text, render_metrics, DriftReport, RunTimes,
};
use terrace_plan::render::Partial;
use terrace_plan::{AttrDiff, Drift, DriftKind, Plan};
use terrace_provider::Address;

fn changed(
    address: &str,
    type_name: &str,
    attrs: &[(&str, serde_json::Value, serde_json::Value)],
) -> Drift {
    Drift {
        address: Address::new(address),
        type_name: type_name.into(),
        kind: DriftKind::Changed {
            attrs: attrs
                .iter()
                .map(|(n, b, a)| AttrDiff {
                    name: n.to_string(),
                    before: Some(b.clone()),
                    after: Some(a.clone()),
                })
                .collect(),
        },
        sensitive: BTreeSet::new(),
        byte_sizes: Default::default(),
    }
}

fn plan() -> Plan {
    Plan {
        drift: vec![
            changed(
                "tenant.a.database",
                "sql_database",
                &[("connection_limit", json!(7), json!(42))],
            ),
            changed(
                "tenant.b.database",
                "sql_database",
                &[
                    ("connection_limit", json!(5), json!(50)),
                    ("owner", json!("b"), json!("postgres")),
                ],
            ),
            Drift {
                address: Address::new("tenant.c.app"),
                type_name: "docker_container".into(),
                kind: DriftKind::Deleted,
                sensitive: BTreeSet::new(),
                byte_sizes: Default::default(),
            },
            changed(
                "tenant.d.database",
                "sql_database",
                &[("connection_limit", json!(1), json!(2))],
            ),
        ],
        ..Plan::default()
    }
}

fn managed() -> BTreeMap<String, usize> {
    [
        ("sql_database".to_string(), 4),
        ("docker_container".to_string(), 2),
        ("sql_user".to_string(), 4),
    ]
    .into_iter()
    .collect()
}

const IGNORE: &str = r#"# Acknowledged drift
tenant.b.database.connection_limit expires=2026-12-31 raised for the migration (OPS-12)
tenant.c.*  the app is stopped by hand during the audit
tenant.d.database expires=2026-01-31 old acknowledgement
"#;

#[test]
fn acknowledged_and_expired_drift() {
    let rules = parse_ignore(IGNORE).unwrap();
    let report = DriftReport::new(&plan(), &rules, managed(), "2026-06-01");
    assert!(report.alerts());
    expect![[r#"
        Objects changed outside terrace since the last apply (drift):

          # tenant.a.database has changed outside terrace
          ~ sql_database {
              ~ connection_limit = 7 -> 42
            }
          # tenant.b.database has changed outside terrace
          ~ sql_database {
              ~ owner = "b" -> "postgres"
            }
          # tenant.d.database has changed outside terrace
          ~ sql_database {
              ~ connection_limit = 1 -> 2
            }
            acknowledgement expired on 2026-01-31 (terrace.driftignore line 4, `tenant.d.database`: old acknowledgement)

        Acknowledged drift (terrace.driftignore):

          # tenant.b.database has changed outside terrace
          ~ sql_database {
              ~ connection_limit = 5 -> 50
            }
            acknowledged by line 2 (`tenant.b.database.connection_limit`, until 2026-12-31): raised for the migration (OPS-12)
          # tenant.c.app was deleted outside terrace
            acknowledged by line 3 (`tenant.c.*`): the app is stopped by hand during the audit

        Drift: 3 objects changed outside terrace, 2 acknowledged.
    "#]]
    .assert_eq(&render_drift_text(&report, false, false));
    expect![[r#"
        # HELP terrace_managed_resources Resources recorded in the state, by resource type.
        # TYPE terrace_managed_resources gauge
        terrace_managed_resources{project="shop \"eu\"",resource_type="docker_container"} 2
        terrace_managed_resources{project="shop \"eu\"",resource_type="sql_database"} 4
        terrace_managed_resources{project="shop \"eu\"",resource_type="sql_user"} 4
        # HELP terrace_drifted_resources Resources changed outside terrace and not acknowledged in the ignore file, by resource type.
        # TYPE terrace_drifted_resources gauge
        terrace_drifted_resources{project="shop \"eu\"",resource_type="docker_container"} 0
        terrace_drifted_resources{project="shop \"eu\"",resource_type="sql_database"} 3
        terrace_drifted_resources{project="shop \"eu\"",resource_type="sql_user"} 0
        # HELP terrace_drift_acknowledged_resources Resources changed outside terrace whose drift the ignore file acknowledges, by resource type.
        # TYPE terrace_drift_acknowledged_resources gauge
        terrace_drift_acknowledged_resources{project="shop \"eu\"",resource_type="docker_container"} 1
        terrace_drift_acknowledged_resources{project="shop \"eu\"",resource_type="sql_database"} 1
        terrace_drift_acknowledged_resources{project="shop \"eu\"",resource_type="sql_user"} 0
        # HELP terrace_drift_last_run_success 1 if the last drift run observed every resource, else 0.
        # TYPE terrace_drift_last_run_success gauge
        terrace_drift_last_run_success{project="shop \"eu\""} 1
        # HELP terrace_drift_last_run_timestamp_seconds When the last drift run started, in seconds since the Unix epoch.
        # TYPE terrace_drift_last_run_timestamp_seconds gauge
        terrace_drift_last_run_timestamp_seconds{project="shop \"eu\""} 1780000000.000
        # HELP terrace_drift_last_success_timestamp_seconds When the last successful drift run started, in seconds since the Unix epoch.
        # TYPE terrace_drift_last_success_timestamp_seconds gauge
        terrace_drift_last_success_timestamp_seconds{project="shop \"eu\""} 1780000000.000
        # HELP terrace_drift_last_run_duration_seconds How long the last drift run took, in seconds.
        # TYPE terrace_drift_last_run_duration_seconds gauge
        terrace_drift_last_run_duration_seconds{project="shop \"eu\""} 1.250
    "#]]
    .assert_eq(&render_metrics(
        "shop \"eu\"",
        Some(&report),
        RunTimes {
            started: 1_780_000_000.0,
            duration: 1.25,
            last_success: Some(1_780_000_000.0),
            success: true,
        },
    ));
    expect![[r#"
        {
          "format_version": "1.0",
          "terrace_version": "0.1.0",
          "has_drift": true,
          "complete": true,
          "resource_drift": [
            {
              "address": "tenant.a.database",
              "type": "sql_database",
              "kind": "changed",
              "attrs": [
                {
                  "name": "connection_limit",
                  "before": 7,
                  "after": 42
                }
              ]
            },
            {
              "address": "tenant.b.database",
              "type": "sql_database",
              "kind": "changed",
              "attrs": [
                {
                  "name": "owner",
                  "before": "b",
                  "after": "postgres"
                }
              ]
            },
            {
              "address": "tenant.d.database",
              "type": "sql_database",
              "kind": "changed",
              "attrs": [
                {
                  "name": "connection_limit",
                  "before": 1,
                  "after": 2
                }
              ],
              "acknowledgement": {
                "pattern": "tenant.d.database",
                "reason": "old acknowledgement",
                "expires": "2026-01-31",
                "line": 4
              },
              "acknowledgement_expired": true
            }
          ],
          "acknowledged": [
            {
              "address": "tenant.b.database",
              "type": "sql_database",
              "kind": "changed",
              "attrs": [
                {
                  "name": "connection_limit",
                  "before": 5,
                  "after": 50
                }
              ],
              "acknowledgement": {
                "pattern": "tenant.b.database.connection_limit",
                "reason": "raised for the migration (OPS-12)",
                "expires": "2026-12-31",
                "line": 2
              }
            },
            {
              "address": "tenant.c.app",
              "type": "docker_container",
              "kind": "deleted",
              "acknowledgement": {
                "pattern": "tenant.c.*",
                "reason": "the app is stopped by hand during the audit",
                "line": 3
              }
            }
          ],
          "managed": {
            "docker_container": 2,
            "sql_database": 4,
            "sql_user": 4
          },
          "errors": [],
          "not_planned": []
        }
    "#]]
    .assert_eq(&render_drift_json(&report, &Partial::default(), "0.1.0"));
}

#[test]
fn drift_found_while_something_could_not_be_observed_says_there_may_be_more() {
    let report = DriftReport::new(&plan(), &[], managed(), "2026-06-01");
    let text = render_drift_text(&report, false, true);
    expect![[r#"
        Drift: 4 objects changed outside terrace; some objects could not be observed (see the errors above), so there may be more.
    "#]]
    .assert_eq(text.lines().last().map(|l| format!("{l}\n")).as_deref().unwrap_or_default());
    let rules = parse_ignore("tenant.* all of it, during the migration\n").unwrap();
    let report = DriftReport::new(&plan(), &rules, managed(), "2026-06-01");
    assert!(render_drift_text(&report, false, true).ends_with(
        "No unacknowledged drift: 4 acknowledged objects drifted; some objects could not be observed (see the errors above), so there may be more.\n"
    ));
}

#[test]
fn only_acknowledged_drift_does_not_alert_and_nothing_is_no_drift() {
    let rules = parse_ignore("tenant.* all of it, during the migration\n").unwrap();
    let report = DriftReport::new(&plan(), &rules, managed(), "2026-06-01");
    assert!(!report.alerts());
    assert!(render_drift_text(&report, false, false)
        .ends_with("No unacknowledged drift: 4 acknowledged objects drifted.\n"));
    let report = DriftReport::new(&Plan::default(), &[], managed(), "2026-06-01");
    assert!(!report.alerts());
    expect![[r#"
        No drift: the 10 managed objects match the state.
    "#]]
    .assert_eq(&render_drift_text(&report, false, false));
    expect![[r#"
        No drift among the objects observed; some could not be observed (see the errors above).
    "#]]
    .assert_eq(&render_drift_text(&report, false, true));
}

#[test]
fn a_failed_run_keeps_the_last_success_and_has_no_counts() {
    let text = render_metrics(
        "p",
        None,
        RunTimes {
            started: 20.0,
            duration: 0.5,
            last_success: Some(10.0),
            success: false,
        },
    );
    assert!(!text.contains("terrace_managed_resources"));
    assert!(text.contains("terrace_drift_last_run_success{project=\"p\"} 0\n"));
    assert_eq!(
        terrace_plan::drift::previous_last_success(&text),
        Some(10.0)
    );
}
