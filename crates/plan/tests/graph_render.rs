//! `terrace graph` output, snapshotted whole: DOT and Mermaid, with an address that
//! needs quoting (a `for_each` key with quotes, `#` and angle brackets).

use expect_test::expect;
use terrace_plan::ResourceGraph;
use terrace_provider::Address;

fn graph() -> ResourceGraph {
    let nodes: Vec<(Address, Vec<Address>)> = vec![
        (Address::new("service.pg"), vec![]),
        (
            Address::new("tenant.app[\"a#<b>\"].database"),
            vec![Address::new("service.pg")],
        ),
        (
            Address::new("tenant.app[\"a#<b>\"].database.grant"),
            vec![
                Address::new("tenant.app[\"a#<b>\"].database"),
                Address::new("tenant.app[\"a#<b>\"].database.user"),
            ],
        ),
        (
            Address::new("tenant.app[\"a#<b>\"].database.user"),
            vec![Address::new("service.pg")],
        ),
    ];
    ResourceGraph::new(nodes.iter().map(|(a, d)| (a, d.as_slice()))).unwrap()
}

#[test]
fn dot() {
    expect![[r#"
        digraph terrace {
          rankdir = "RL";
          "service.pg";
          "tenant.app[\"a#<b>\"].database";
          "tenant.app[\"a#<b>\"].database.grant";
          "tenant.app[\"a#<b>\"].database.user";
          "tenant.app[\"a#<b>\"].database" -> "service.pg";
          "tenant.app[\"a#<b>\"].database.grant" -> "tenant.app[\"a#<b>\"].database";
          "tenant.app[\"a#<b>\"].database.grant" -> "tenant.app[\"a#<b>\"].database.user";
          "tenant.app[\"a#<b>\"].database.user" -> "service.pg";
        }
    "#]]
    .assert_eq(&graph().to_dot());
}

#[test]
fn mermaid() {
    expect![[r#"
        flowchart RL
          n0["service.pg"]
          n1["tenant.app[#quot;a#35;#lt;b#gt;#quot;].database"]
          n2["tenant.app[#quot;a#35;#lt;b#gt;#quot;].database.grant"]
          n3["tenant.app[#quot;a#35;#lt;b#gt;#quot;].database.user"]
          n1 --> n0
          n2 --> n1
          n2 --> n3
          n3 --> n0
    "#]]
    .assert_eq(&graph().to_mermaid());
}
