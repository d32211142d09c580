//! host_firewall_rule against the sshd inside the `terrace-fw` network namespace: rules
//! change only that namespace, and all traffic stays on its veth pair
//! (10.203.0.1 here, 10.203.0.2 there).

mod common;

use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;
use terrace_provider::{Address, Observed, Operation};
use terrace_provider_ssh::FIREWALL_RULE;

const NS: &str = "terrace-fw";
const PORT: u16 = 18081;
/// The tests share the namespace's one terrace table: a foreign rule one test inserts
/// is (rightly) visible to the others, so they run one at a time.
static TABLE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A TCP listener inside the namespace, killed on drop.
struct Listener(Child);

impl Listener {
    fn start() -> Self {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                NS,
                "nc",
                "-lk",
                "10.203.0.2",
                &PORT.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec nc (run scripts/ssh-hosts.sh as root)");
        std::thread::sleep(std::time::Duration::from_millis(300));
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Can a TCP connection to 10.203.0.2:PORT be made from the root namespace (source
/// 10.203.0.1) or from inside the namespace (source 10.203.0.2)?
fn reachable(from_inside: bool) -> bool {
    let mut cmd = Command::new(if from_inside { "ip" } else { "nc" });
    if from_inside {
        cmd.args(["netns", "exec", NS, "nc"]);
    }
    cmd.args(["-z", "-w", "2", "10.203.0.2", &PORT.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("nc")
        .success()
}

#[tokio::test]
async fn a_rule_blocks_all_but_the_allowed_address() {
    let _one_at_a_time = TABLE.lock().await;
    let p = provider("TERRACE_TEST_SSH_FW");
    let addr = Address::new("host_firewall_rule.test[\"app\"]");
    let _listener = Listener::start();
    let desired = normalized(
        &p,
        FIREWALL_RULE,
        attrs(json!({"port": PORT, "allow_from": ["10.203.0.1/32"], "comment": "app \"port\""})),
    );
    assert_eq!(desired["allow_from"], json!(["10.203.0.1"]));
    assert_eq!(desired["proto"], "tcp");
    // A leftover from an interrupted run.
    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Delete,
        Some(&desired),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        observe_at(&p, FIREWALL_RULE, &addr, &desired).await,
        Observed::Absent
    );
    assert!(
        reachable(false) && reachable(true),
        "no rule yet: both reach the port"
    );

    let stored = step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Create,
        None,
        Some(&desired),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(reachable(false), "10.203.0.1 is allowed");
    // From inside the namespace the connection arrives on the loopback interface,
    // which rules never drop: the host's own clients and SSH tunnels keep working.
    assert!(reachable(true), "local traffic is not filtered");
    let live = observe_at(&p, FIREWALL_RULE, &addr, &desired).await;
    assert_matches(&live, &desired);
    let Observed::Present(live) = live else {
        unreachable!()
    };
    assert_eq!(live.len(), desired.len(), "{live:?} vs {desired:?}");

    // Flip the allowed address.
    let flipped = normalized(
        &p,
        FIREWALL_RULE,
        attrs(json!({"port": PORT, "allow_from": ["10.203.0.2", "192.0.2.0/24"]})),
    );
    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Update,
        Some(&stored),
        Some(&flipped),
    )
    .await
    .unwrap();
    assert!(!reachable(false), "10.203.0.1 is no longer allowed");
    assert!(reachable(true), "local traffic is still not filtered");
    assert_matches(
        &observe_at(&p, FIREWALL_RULE, &addr, &flipped).await,
        &flipped,
    );

    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Delete,
        Some(&flipped),
        None,
    )
    .await
    .unwrap();
    assert!(reachable(false) && reachable(true));
    assert_eq!(
        observe_at(&p, FIREWALL_RULE, &addr, &flipped).await,
        Observed::Absent
    );
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", NS, "nft"])
        .args(args)
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn merged_networks_converge_and_foreign_rules_are_drift_until_applied_away() {
    let _one_at_a_time = TABLE.lock().await;
    let p = provider("TERRACE_TEST_SSH_FW");
    let port = 18082;
    let addr = Address::new("host_firewall_rule.test[\"merge\"]");
    // Adjacent addresses (nft prints them as a range), adjacent halves of a network and
    // an address inside it: nft keeps {10.203.0.1-10.203.0.2, 192.0.2.0/24}.
    let desired = normalized(
        &p,
        FIREWALL_RULE,
        attrs(json!({"port": port, "allow_from":
            ["10.203.0.2", "192.0.2.128/25", "10.203.0.1", "192.0.2.0/25", "192.0.2.7"]})),
    );
    assert_eq!(
        desired["allow_from"],
        json!(["10.203.0.1", "10.203.0.2", "192.0.2.0/24"])
    );
    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Delete,
        Some(&desired),
        None,
    )
    .await
    .unwrap();
    let stored = step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Create,
        None,
        Some(&desired),
    )
    .await
    .unwrap()
    .unwrap();
    // Reads back equal: the next plan is empty instead of drifting forever.
    assert_matches(
        &observe_at(&p, FIREWALL_RULE, &addr, &desired).await,
        &desired,
    );

    // Someone opens the port by hand in terrace's own chain.
    nft(&[
        "insert",
        "rule",
        "inet",
        "terrace",
        "input",
        "tcp",
        "dport",
        &port.to_string(),
        "accept",
    ]);
    let Observed::Present(live) = observe_at(&p, FIREWALL_RULE, &addr, &desired).await else {
        panic!("rule vanished")
    };
    assert_eq!(
        live["foreign_rules"],
        json!([format!("tcp dport {port} accept")]),
        "{live:?}"
    );
    assert_eq!(live["allow_from"], desired["allow_from"]);

    // Apply (an update back to the configuration) removes it.
    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Update,
        Some(&stored),
        Some(&desired),
    )
    .await
    .unwrap();
    assert_matches(
        &observe_at(&p, FIREWALL_RULE, &addr, &desired).await,
        &desired,
    );
    let listing = nft(&["list", "table", "inet", "terrace"]);
    assert!(
        !listing.contains(&format!("dport {port} accept")),
        "{listing}"
    );

    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Delete,
        Some(&desired),
        None,
    )
    .await
    .unwrap();
}

/// One of a rule's two nft rules (IPv4) deleted by hand, and the other (IPv6) changed to
/// accept: the port is open, which observe reports as `enforcement_gaps`; the update
/// writes both rules again and the port is closed.
#[tokio::test]
async fn a_family_rule_removed_or_made_to_accept_by_hand_is_drift_that_apply_closes() {
    let _one_at_a_time = TABLE.lock().await;
    let p = provider("TERRACE_TEST_SSH_FW");
    let addr = Address::new("host_firewall_rule.gap");
    let _listener = Listener::start();
    let desired = normalized(
        &p,
        FIREWALL_RULE,
        attrs(json!({"port": PORT, "allow_from": []})),
    );
    assert_eq!(desired["enforcement_gaps"], json!([]));
    let create = |op, prior| step_at(&p, FIREWALL_RULE, &addr, op, prior, Some(&desired));
    let stored = create(Operation::Create, None).await.unwrap().unwrap();
    assert!(!reachable(false), "the port is closed to the outside");

    // By hand: the IPv4 rule goes, the IPv6 one accepts.
    let listing = nft(&["-a", "list", "chain", "inet", "terrace", "input"]);
    let handle = |family: &str| {
        listing
            .lines()
            .filter(|l| l.contains(&format!("terrace:{addr}")) && l.contains(family))
            .find_map(|l| {
                l.rsplit_once("# handle ")
                    .map(|(_, h)| h.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {family} rule in {listing}"))
    };
    let (v4, v6) = (handle("ipv4"), handle("ipv6"));
    nft(&["delete", "rule", "inet", "terrace", "input", "handle", &v4]);
    nft(&[
        "replace",
        "rule",
        "inet",
        "terrace",
        "input",
        "handle",
        &v6,
        "meta",
        "nfproto",
        "ipv6",
        "tcp",
        "dport",
        &PORT.to_string(),
        "iifname",
        "!=",
        "lo",
        "accept",
        "comment",
        &format!("\"terrace:{addr}\""),
    ]);
    assert!(reachable(false), "the hand change opened the port");
    let Observed::Present(live) = observe_at(&p, FIREWALL_RULE, &addr, &desired).await else {
        panic!("the rule is still found by its comment")
    };
    assert_eq!(
        live["enforcement_gaps"],
        json!([
            "no IPv4 rule (removed outside terrace): IPv4 connections to the port are not filtered",
            "the IPv6 rule no longer drops (changed outside terrace): IPv6 connections to the port are let through",
        ])
    );

    create(Operation::Update, Some(&stored)).await.unwrap();
    assert!(!reachable(false), "apply closed the port again");
    assert_matches(
        &observe_at(&p, FIREWALL_RULE, &addr, &desired).await,
        &desired,
    );
    step_at(
        &p,
        FIREWALL_RULE,
        &addr,
        Operation::Delete,
        Some(&desired),
        None,
    )
    .await
    .unwrap();
}
