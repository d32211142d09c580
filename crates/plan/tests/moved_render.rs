//! How a plan shows objects that `moved` blocks record under new addresses.

use expect_test::expect;
use terrace_plan::render::{
    render_json, render_markdown, render_text, MarkdownOptions, Partial, TextOptions,
};
use terrace_plan::{Moved, Plan};
use terrace_provider::Address;

fn plan() -> Plan {
    Plan {
        moved: vec![Moved {
            from: Address::new("tenant.app[\"old\"].database"),
            to: Address::new("tenant.app[\"new\"].database"),
        }],
        ..Plan::default()
    }
}

#[test]
fn a_move_alone_is_a_change_shown_as_a_move() {
    let p = plan();
    assert!(!p.is_empty());
    expect![[r#"
        Moved (`moved` blocks): recorded under a new address, nothing changes on the servers:

          # tenant.app["old"].database has moved to tenant.app["new"].database

        Plan: 0 to add, 0 to change, 0 to destroy, 1 to move.
    "#]]
    .assert_eq(&render_text(&p, TextOptions::default()));
    let md = render_markdown(
        &p,
        &MarkdownOptions {
            project: "x",
            partial: &Partial::default(),
            part_chars: 60_000,
        },
    );
    expect![[r#"
        <!-- terrace-plan: x -->
        **Plan: 0 to add, 0 to change, 0 to destroy, 1 to move.**

        ### Moved (`moved` blocks): nothing changes on the servers

        - `tenant.app["old"].database` → `tenant.app["new"].database`
    "#]]
    .assert_eq(&md.join("\n"));
    let json = render_json(&p, "0.0.0");
    assert_eq!(json["moved"][0]["to"], "tenant.app[\"new\"].database");
    assert_eq!(json["changes_present"], true);
    assert!(render_json(&Plan::default(), "0.0.0")
        .get("moved")
        .is_none());
}
