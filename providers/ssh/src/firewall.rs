//! `host_firewall_rule`: "port P/proto is reachable only from these addresses", as
//! nftables rules in terrace's own table `inet terrace`.
//!
//! The table has one input chain (policy accept) holding only drop rules: each resource
//! becomes one rule per address family, `dport P iifname != lo saddr != {allowed} drop`
//! (loopback traffic is never dropped), so terrace
//! never touches rules it does not own and removing the table removes all of it. A
//! resource's rules carry the comment `terrace:<address>` (plus ` # <comment>`), which
//! is how observe finds them. Rules are written through nft's JSON interface so that
//! addresses and comments need no quoting, and each change is one nft transaction.
//!
//! Allowed networks are kept the way nft keeps them: overlapping and adjacent networks
//! merged (nft prints a merged set, sometimes as an address range), so that what is
//! written reads back equal. Rules in the table that terrace did not write ("foreign"
//! rules, e.g. an `accept` inserted by hand before terrace's `drop`) are reported as
//! the `foreign_rules` of every resource whose traffic they can match, and any
//! firewall change removes them: the table is terrace's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};

use serde_json::{json, Value};
use terrace_provider::{Address, Attrs, ObserveRequest, Observed, ProviderError, ProviderResult};

use crate::attrs::{opt_str, opt_str_list, req_port};
use crate::schema::{FIREWALL_RULE, MAX_COMMENT};

/// The attribute naming what is not enforced of a rule (a family's rule removed or made
/// to accept by hand); always empty in the configuration.
const GAPS: &str = "enforcement_gaps";

/// The table terrace owns.
pub(crate) const TABLE: &str = "terrace";
const CHAIN: &str = "input";

/// Shell text printing the table as JSON on one line (or the error), then each rule as
/// nft prints it (`nft rule <handle> <text>`), to name foreign rules in plans.
pub(crate) const LIST_SCRIPT: &str = r#"if o=$(nft -j list table inet terrace 2>&1); then printf 'nft json %s\n' "$(printf '%s' "$o" | tr -d '\n')"; nft -a list table inet terrace 2>/dev/null | sed -n 's/^[[:space:]]*\(.*[^{[:space:]]\)[[:space:]]*# handle \([0-9][0-9]*\)$/nft rule \2 \1/p'; else printf 'nft error %s\n' "$(printf '%s' "$o" | tr '\n' ' ')"; fi
"#;

/// Parses one allowed source: an address, or a network with its host bits clear
/// (`10.0.0.0/8`).
fn parse_source(s: &str) -> ProviderResult<IpNet> {
    crate::schema::parse_source(s).map_err(|why| {
        ProviderError::Invalid(format!("{FIREWALL_RULE}: {s:?} in allow_from: {why}"))
    })
}

fn render(n: &IpNet) -> String {
    crate::schema::render_source(n)
}

/// The canonical list for a set of networks, as nft keeps it: overlapping and
/// adjacent networks merged, then sorted as text (the order states already hold).
fn canonical(nets: &[IpNet]) -> Vec<String> {
    let set: BTreeSet<String> = IpNet::aggregate(&nets.to_vec())
        .iter()
        .map(render)
        .collect();
    set.into_iter().collect()
}

fn proto(a: &Attrs) -> ProviderResult<&str> {
    match opt_str(FIREWALL_RULE, a, "proto")? {
        None | Some("tcp") => Ok("tcp"),
        Some("udp") => Ok("udp"),
        Some(p) => Err(ProviderError::Invalid(format!(
            "{FIREWALL_RULE}: proto {p:?} must be \"tcp\" or \"udp\""
        ))),
    }
}

fn sources(a: &Attrs) -> ProviderResult<Vec<String>> {
    let list = opt_str_list(FIREWALL_RULE, a, "allow_from")?.unwrap_or_default();
    let nets: Vec<IpNet> = list
        .iter()
        .map(|s| parse_source(s))
        .collect::<ProviderResult<_>>()?;
    Ok(canonical(&nets))
}

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    let port = req_port(FIREWALL_RULE, a, "port")?;
    a.insert("port".into(), port.into());
    let p = proto(a)?.to_string();
    a.insert("proto".into(), p.into());
    let s = sources(a)?;
    a.insert("allow_from".into(), json!(s));
    // terrace's chain holds only terrace's rules: none foreign is what is wanted.
    a.insert("foreign_rules".into(), json!([]));
    // Both families filtered, each rule dropping: checked on every plan.
    a.insert(GAPS.into(), json!([]));
    if let Some(c) = opt_str(FIREWALL_RULE, a, "comment")? {
        if c.contains(['\n', '\0']) {
            return Err(ProviderError::Invalid(format!(
                "{FIREWALL_RULE}: comment must be one line"
            )));
        }
    }
    Ok(())
}

/// The identity comment of a resource's rules.
fn id(address: &Address) -> String {
    format!("terrace:{address}")
}

/// One rule as found in the table.
#[derive(Debug, Default, Clone, PartialEq)]
struct Found {
    handles: Vec<u64>,
    port: Option<u64>,
    proto: Option<String>,
    allow: Vec<IpNet>,
    comment: Option<String>,
    /// Each nft rule of the resource: its address family (`None`: both) and whether
    /// it still ends in `drop`, as terrace writes it.
    shapes: Vec<(Option<&'static str>, bool)>,
}

/// The address families terrace writes a rule for, as nft names them and as people do.
const FAMILIES: [(&str, &str); 2] = [("ipv4", "IPv4"), ("ipv6", "IPv6")];

impl Found {
    /// What keeps the resource's port from being filtered as configured: a family's
    /// rule removed, or changed so that it no longer drops. Desired: none.
    fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (family, shown) in FAMILIES {
            let rules: Vec<bool> = self
                .shapes
                .iter()
                .filter(|(f, _)| f.is_none_or(|f| f == family))
                .map(|(_, drops)| *drops)
                .collect();
            if rules.is_empty() {
                out.push(format!(
                    "no {shown} rule (removed outside terrace): {shown} connections to the port are not filtered"
                ));
            } else if rules.iter().any(|drops| !drops) {
                out.push(format!(
                    "the {shown} rule no longer drops (changed outside terrace): {shown} connections to the port are let through"
                ));
            }
        }
        out
    }
}

/// The family one of terrace's rules applies to, and whether its verdict is `drop`.
fn shape(rule: &Value) -> (Option<&'static str>, bool) {
    let exprs = rule["expr"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut family = None;
    for e in exprs {
        let Some(m) = e.get("match") else { continue };
        if m["left"]["meta"]["key"].as_str() == Some("nfproto") {
            family = FAMILIES
                .iter()
                .map(|(f, _)| *f)
                .find(|f| m["right"].as_str() == Some(*f));
        }
        match m["left"]["payload"]["protocol"].as_str() {
            Some("ip") => family = family.or(Some("ipv4")),
            Some("ip6") => family = family.or(Some("ipv6")),
            _ => {}
        }
    }
    // Any verdict other than the final `drop` (an `accept`, a `jump`) lets traffic by.
    let verdicts = [
        "accept", "drop", "reject", "jump", "goto", "return", "continue", "queue",
    ];
    let drops = exprs.last().is_some_and(|e| e.get("drop").is_some())
        && exprs
            .iter()
            .filter(|e| verdicts.iter().any(|v| e.get(*v).is_some()))
            .count()
            == 1;
    (family, drops)
}

/// Which destination port a foreign rule matches.
#[derive(Debug, Clone, PartialEq)]
enum Dport {
    /// No port match: every port.
    Any,
    /// One protocol and port.
    One(String, u64),
    /// A set, a range or another protocol: assumed to match any port.
    Other,
}

/// A rule in terrace's table that terrace did not write.
#[derive(Debug, Clone, PartialEq)]
struct Foreign {
    chain: String,
    handle: u64,
    dport: Dport,
    /// As nft prints it, e.g. `tcp dport 5432 accept`.
    text: String,
}

impl Foreign {
    /// True if the rule can match traffic to `port/proto`.
    fn affects(&self, port: Option<u64>, proto: Option<&str>) -> bool {
        match &self.dport {
            Dport::One(p, n) => {
                port.is_none_or(|port| port == *n) && proto.is_none_or(|proto| proto == p)
            }
            Dport::Any | Dport::Other => true,
        }
    }
}

/// The terrace table's rules by identity, from `nft -j list table` (None: no table).
#[derive(Debug, Default)]
pub(crate) struct Table {
    rules: BTreeMap<String, Found>,
    foreign: Vec<Foreign>,
}

impl Table {
    /// Parses the `nft …` line printed by [`LIST_SCRIPT`]; `texts` are the `nft rule`
    /// lines (`<handle> <text>`).
    pub(crate) fn parse<'a>(
        kind: &str,
        text: &str,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Table, String> {
        if kind == "error" {
            if text.contains("No such file or directory") {
                return Ok(Table::default());
            }
            return Err(format!(
                "cannot list nftables table inet {TABLE}: {}",
                text.trim()
            ));
        }
        let texts: BTreeMap<u64, &str> = texts
            .into_iter()
            .filter_map(|l| {
                let (h, t) = l.split_once(' ')?;
                Some((h.parse().ok()?, t.trim()))
            })
            .collect();
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("cannot parse `nft -j` output: {e}"))?;
        let mut rules: BTreeMap<String, Found> = BTreeMap::new();
        let mut foreign = Vec::new();
        let items = doc["nftables"].as_array().cloned().unwrap_or_default();
        for item in items {
            let Some(rule) = item.get("rule") else {
                continue;
            };
            let comment = rule["comment"]
                .as_str()
                .filter(|c| c.starts_with("terrace:"));
            let Some(comment) = comment else {
                let handle = rule["handle"].as_u64().unwrap_or(0);
                foreign.push(Foreign {
                    chain: rule["chain"].as_str().unwrap_or(CHAIN).to_string(),
                    handle,
                    dport: dport_of(rule),
                    text: texts
                        .get(&handle)
                        .map_or_else(|| format!("rule with handle {handle}"), |t| t.to_string()),
                });
                continue;
            };
            let (ident, user) = match comment.split_once(" # ") {
                Some((i, u)) => (i.to_string(), Some(u.to_string())),
                None => (comment.to_string(), None),
            };
            let f = rules.entry(ident).or_default();
            f.comment = user;
            f.shapes.push(shape(rule));
            if let Some(h) = rule["handle"].as_u64() {
                f.handles.push(h);
            }
            for e in rule["expr"].as_array().into_iter().flatten() {
                let Some(m) = e.get("match") else { continue };
                let Some(payload) = m["left"].get("payload") else {
                    continue;
                };
                let (protocol, field) = (payload["protocol"].as_str(), payload["field"].as_str());
                match (protocol, field) {
                    (Some(p @ ("tcp" | "udp")), Some("dport")) => {
                        f.proto = Some(p.to_string());
                        f.port = m["right"].as_u64();
                    }
                    (Some("ip" | "ip6"), Some("saddr")) => collect(&m["right"], &mut f.allow),
                    _ => {}
                }
            }
        }
        Ok(Table { rules, foreign })
    }

    fn get(&self, address: &Address) -> Option<&Found> {
        self.rules.get(&id(address))
    }

    /// The rule handles of one resource.
    pub(crate) fn handles(&self, address: &Address) -> Vec<u64> {
        self.get(address)
            .map(|f| f.handles.clone())
            .unwrap_or_default()
    }

    /// Every foreign rule, as (chain, handle): what a firewall change removes.
    pub(crate) fn foreign_handles(&self) -> Vec<(String, u64)> {
        self.foreign
            .iter()
            .map(|f| (f.chain.clone(), f.handle))
            .collect()
    }

    /// What one resource looks like live. `batch` is every firewall request of the
    /// observe: a foreign rule is reported on each resource whose traffic it can match,
    /// and on all of them when it matches none (so that it is never unseen).
    pub(crate) fn answer(&self, req: &ObserveRequest, batch: &[&ObserveRequest]) -> Observed {
        let Some(f) = self.get(&req.address) else {
            return Observed::Absent;
        };
        let key = |r: &ObserveRequest| {
            let port = req_port(FIREWALL_RULE, &r.attrs, "port")
                .ok()
                .map(u64::from);
            let proto = proto(&r.attrs).ok().map(str::to_string);
            (port, proto)
        };
        let (port, proto) = key(req);
        let keys: Vec<_> = batch.iter().map(|r| key(r)).collect();
        let foreign = self
            .foreign
            .iter()
            .filter(|fr| {
                fr.affects(port, proto.as_deref())
                    || !keys.iter().any(|(p, pr)| fr.affects(*p, pr.as_deref()))
            })
            .map(|fr| fr.text.clone())
            .collect();
        let mut live = Self::attrs(f, foreign);
        // A list recorded before networks were merged (state written by an older
        // terrace) that means the same networks is reported as recorded: that is no
        // drift, and the next apply records the merged form.
        if let Ok(recorded) = sources(&req.attrs) {
            if Some(&json!(recorded)) == live.get("allow_from") {
                if let Some(given) = req.attrs.get("allow_from") {
                    live.insert("allow_from".into(), given.clone());
                }
            }
        }
        Observed::Present(live)
    }

    /// The first rule whose attributes satisfy `pred`.
    pub(crate) fn find(&self, pred: impl Fn(&Attrs) -> bool) -> Option<Observed> {
        self.rules
            .values()
            .map(|f| {
                let foreign = self
                    .foreign
                    .iter()
                    .filter(|fr| fr.affects(f.port, f.proto.as_deref()))
                    .map(|fr| fr.text.clone())
                    .collect();
                Self::attrs(f, foreign)
            })
            .find(|a| pred(a))
            .map(Observed::Present)
    }

    fn attrs(f: &Found, foreign: Vec<String>) -> Attrs {
        let mut live = Attrs::new();
        if let Some(p) = f.port {
            live.insert("port".into(), p.into());
        }
        if let Some(p) = &f.proto {
            live.insert("proto".into(), p.clone().into());
        }
        live.insert("allow_from".into(), json!(canonical(&f.allow)));
        if let Some(c) = &f.comment {
            live.insert("comment".into(), c.clone().into());
        }
        live.insert("foreign_rules".into(), json!(foreign));
        live.insert(GAPS.into(), json!(f.gaps()));
        live
    }
}

/// The destination port a rule matches, from its expressions.
fn dport_of(rule: &Value) -> Dport {
    for e in rule["expr"].as_array().into_iter().flatten() {
        let Some(m) = e.get("match") else { continue };
        let Some(payload) = m["left"].get("payload") else {
            continue;
        };
        if payload["field"].as_str() != Some("dport") {
            continue;
        }
        return match (
            payload["protocol"].as_str(),
            m["right"].as_u64(),
            m["op"].as_str(),
        ) {
            (Some(p @ ("tcp" | "udp")), Some(n), Some("==")) => Dport::One(p.to_string(), n),
            _ => Dport::Other,
        };
    }
    Dport::Any
}

/// Adds the networks of a match's right-hand side: an address, a prefix, a range (as
/// nft prints merged adjacent addresses) or a set of those.
fn collect(v: &Value, out: &mut Vec<IpNet>) {
    match v {
        Value::String(s) => {
            if let Ok(n) = parse_source(s) {
                out.push(n);
            }
        }
        Value::Object(o) if o.contains_key("prefix") => {
            let p = &o["prefix"];
            if let (Some(a), Some(l)) = (p["addr"].as_str(), p["len"].as_u64()) {
                if let Ok(n) = parse_source(&format!("{a}/{l}")) {
                    out.push(n);
                }
            }
        }
        Value::Object(o) if o.contains_key("range") => {
            let ends: Vec<Option<IpAddr>> = o["range"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e.as_str().and_then(|s| s.parse().ok()))
                .collect();
            match ends.as_slice() {
                [Some(IpAddr::V4(a)), Some(IpAddr::V4(b))] => {
                    out.extend(Ipv4Subnets::new(*a, *b, 0).map(IpNet::V4));
                }
                [Some(IpAddr::V6(a)), Some(IpAddr::V6(b))] => {
                    out.extend(Ipv6Subnets::new(*a, *b, 0).map(IpNet::V6));
                }
                _ => {}
            }
        }
        Value::Object(o) if o.contains_key("set") => {
            for e in o["set"].as_array().into_iter().flatten() {
                collect(e, out);
            }
        }
        _ => {}
    }
}

/// The nft JSON transaction that replaces a resource's rules (`desired: None` deletes
/// them). The table and chain are (re)declared with `add`, which leaves existing ones
/// as they are.
pub(crate) fn transaction(
    address: &Address,
    old_handles: &[u64],
    foreign: &[(String, u64)],
    desired: Option<&Attrs>,
) -> ProviderResult<String> {
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
        json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": CHAIN,
            "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}}),
    ];
    for h in old_handles {
        cmds.push(json!({"delete": {"rule": {"family": "inet", "table": TABLE,
            "chain": CHAIN, "handle": h}}}));
    }
    for (chain, h) in foreign {
        cmds.push(json!({"delete": {"rule": {"family": "inet", "table": TABLE,
            "chain": chain, "handle": h}}}));
    }
    if let Some(a) = desired {
        let port = req_port(FIREWALL_RULE, a, "port")?;
        let proto = proto(a)?;
        let mut comment = id(address);
        if let Some(c) = opt_str(FIREWALL_RULE, a, "comment")? {
            comment = format!("{comment} # {c}");
        }
        if comment.len() > MAX_COMMENT {
            return Err(ProviderError::Invalid(format!(
                "{address}: the rule's nftables comment ({comment:?}) is longer than \
                 {MAX_COMMENT} bytes; shorten the comment"
            )));
        }
        let (v4, v6): (Vec<String>, Vec<String>) =
            sources(a)?.into_iter().partition(|s| !s.contains(':'));
        for (family, payload, allowed) in [("ipv4", "ip", v4), ("ipv6", "ip6", v6)] {
            let mut expr = vec![
                json!({"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": family}}),
                json!({"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": port}}),
                // Local traffic is never the rule's business: the host's own clients,
                // and SSH tunnels (terrace's included) arrive on the loopback interface.
                json!({"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}),
            ];
            if !allowed.is_empty() {
                let set: Vec<Value> = allowed.iter().map(|s| element(s)).collect();
                expr.push(json!({"match": {"op": "!=",
                    "left": {"payload": {"protocol": payload, "field": "saddr"}},
                    "right": {"set": set}}}));
            }
            expr.push(json!({"drop": null}));
            cmds.push(json!({"add": {"rule": {"family": "inet", "table": TABLE,
                "chain": CHAIN, "comment": comment, "expr": expr}}}));
        }
    }
    Ok(json!({"nftables": cmds}).to_string())
}

fn element(s: &str) -> Value {
    match s.split_once('/') {
        Some((a, l)) => json!({"prefix": {"addr": a, "len": l.parse::<u8>().unwrap_or(0)}}),
        None => json!(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_never_drop_loopback_traffic() {
        let attrs: Attrs =
            serde_json::from_value(json!({"port": 3306, "allow_from": ["10.0.0.1"]})).unwrap();
        let tx: Value = serde_json::from_str(
            &transaction(&Address::new("firewall_rule.db"), &[], &[], Some(&attrs)).unwrap(),
        )
        .unwrap();
        let rules: Vec<&Value> = tx["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .collect();
        assert_eq!(rules.len(), 2, "one rule per address family");
        for rule in rules {
            let lo =
                json!({"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "lo"}});
            assert!(rule["expr"].as_array().unwrap().contains(&lo), "{rule}");
        }
    }

    fn normalize_source(s: &str) -> ProviderResult<String> {
        parse_source(s).map(|n| render(&n))
    }

    #[test]
    fn sources_are_canonical() {
        assert_eq!(normalize_source("10.0.0.1/32").unwrap(), "10.0.0.1");
        assert_eq!(normalize_source("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert!(normalize_source("10.0.0.1/8")
            .unwrap_err()
            .to_string()
            .contains("10.0.0.0/8"));
        assert_eq!(normalize_source("2001:DB8::/32").unwrap(), "2001:db8::/32");
        assert!(normalize_source("example.com").is_err());
    }

    #[test]
    fn parses_what_nft_prints() {
        // Real `nft -j list table inet terrace` output (nft 1.0.6).
        let out = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "terrace", "handle": 1}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 3, "comment": "terrace:fw.a # hi", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8081}}, {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": ["10.203.0.1", {"prefix": {"addr": "192.168.0.0", "len": 16}}]}}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 5, "comment": "terrace:fw.a # hi", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8081}}, {"drop": null}]}}]}"#;
        let t = Table::parse("json", out, []).unwrap();
        let a = Address::new("fw.a");
        assert_eq!(t.handles(&a), vec![3, 5]);
        let req = ObserveRequest {
            address: a,
            type_name: FIREWALL_RULE.into(),
            attrs: Attrs::new(),
        };
        let Observed::Present(live) = t.answer(&req, &[&req]) else {
            panic!("absent")
        };
        assert_eq!(live["port"], 8081);
        assert_eq!(live["proto"], "tcp");
        assert_eq!(live["allow_from"], json!(["10.203.0.1", "192.168.0.0/16"]));
        assert_eq!(live["comment"], "hi");
        assert_eq!(live["enforcement_gaps"], json!([]));

        // By hand: the IPv4 rule gone, the IPv6 one made to accept.
        let v6_only = out
            .split(r#", {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 3"#)
            .next()
            .unwrap()
            .to_string()
            + &out[out.find(r#", {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 5"#).unwrap()..];
        let accepting = v6_only.replace(r#"{"drop": null}"#, r#"{"accept": null}"#);
        let t = Table::parse("json", &accepting, []).unwrap();
        let Observed::Present(live) = t.answer(&req, &[&req]) else {
            panic!("not found")
        };
        assert_eq!(
            live["enforcement_gaps"],
            json!([
                "no IPv4 rule (removed outside terrace): IPv4 connections to the port are not filtered",
                "the IPv6 rule no longer drops (changed outside terrace): IPv6 connections to the port are let through",
            ])
        );
        assert!(
            Table::parse("error", "Error: No such file or directory", [])
                .unwrap()
                .rules
                .is_empty()
        );
        assert!(Table::parse("error", "Operation not permitted", []).is_err());
    }

    fn rule_attrs(v: Value) -> Attrs {
        let mut a: Attrs = serde_json::from_value(v).unwrap();
        normalize(&mut a).unwrap();
        a
    }

    #[test]
    fn overlapping_and_adjacent_networks_merge_as_nft_merges_them() {
        let a = rule_attrs(json!({"port": 80, "allow_from": [
            "10.0.1.0/24", "10.0.0.0/24", "10.0.0.5", "192.168.1.2", "192.168.1.1",
            "2001:db8::/33", "2001:db8:8000::/33", "172.16.5.5", "172.16.0.0/12"]}));
        assert_eq!(
            a["allow_from"],
            json!([
                "10.0.0.0/23",
                "172.16.0.0/12",
                "192.168.1.1",
                "192.168.1.2",
                "2001:db8::/32"
            ])
        );
        assert_eq!(a["foreign_rules"], json!([]));
        // What nft 1.0.6 prints for that set: merged prefixes, and the two adjacent
        // addresses as one range.
        let live = r#"{"nftables": [{"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 3, "comment": "terrace:fw.m", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": [{"prefix": {"addr": "10.0.0.0", "len": 23}}, {"prefix": {"addr": "172.16.0.0", "len": 12}}, {"range": ["192.168.1.1", "192.168.1.2"]}]}}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 4, "comment": "terrace:fw.m", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"set": [{"prefix": {"addr": "2001:db8::", "len": 32}}]}}}, {"drop": null}]}}]}"#;
        let t = Table::parse("json", live, []).unwrap();
        let req = ObserveRequest {
            address: Address::new("fw.m"),
            type_name: FIREWALL_RULE.into(),
            attrs: a.clone(),
        };
        let Observed::Present(found) = t.answer(&req, &[&req]) else {
            panic!("absent")
        };
        assert_eq!(found["allow_from"], a["allow_from"]);
        assert_eq!(found["foreign_rules"], json!([]));
        // A state written before merging holds the unmerged list: the same networks
        // are no drift.
        let mut old = req.clone();
        let unmerged = json!([
            "10.0.0.0/24",
            "10.0.1.0/24",
            "172.16.0.0/12",
            "172.16.5.5",
            "192.168.1.1",
            "192.168.1.2",
            "2001:db8::/33",
            "2001:db8:8000::/33"
        ]);
        old.attrs.insert("allow_from".into(), unmerged.clone());
        let Observed::Present(found) = t.answer(&old, &[&old]) else {
            panic!("absent")
        };
        assert_eq!(found["allow_from"], unmerged);
    }

    #[test]
    fn foreign_rules_are_named_on_the_rules_whose_traffic_they_match() {
        let live = r#"{"nftables": [{"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 5432}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 8, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 9999}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 3, "comment": "terrace:fw.pg", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 5432}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terrace", "chain": "input", "handle": 4, "comment": "terrace:fw.web", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}, {"drop": null}]}}]}"#;
        let texts = [
            "7 tcp dport 5432 accept",
            "8 udp dport 9999 drop",
            "1 chain input {",
        ];
        let t = Table::parse("json", live, texts).unwrap();
        let req = |addr: &str, port: u16| ObserveRequest {
            address: Address::new(addr),
            type_name: FIREWALL_RULE.into(),
            attrs: rule_attrs(json!({"port": port})),
        };
        let (pg, web) = (req("fw.pg", 5432), req("fw.web", 80));
        let foreign = |r: &ObserveRequest| match t.answer(r, &[&pg, &web]) {
            Observed::Present(a) => a["foreign_rules"].clone(),
            other => panic!("{other:?}"),
        };
        // The accept on 5432 undoes the pg rule only; the rule for a port terrace does
        // not manage is shown on every rule, so that it is never unseen.
        assert_eq!(
            foreign(&pg),
            json!(["tcp dport 5432 accept", "udp dport 9999 drop"])
        );
        assert_eq!(foreign(&web), json!(["udp dport 9999 drop"]));
        assert_eq!(
            t.foreign_handles(),
            vec![("input".to_string(), 7), ("input".to_string(), 8)]
        );
        let tx = transaction(&Address::new("fw.web"), &[4], &t.foreign_handles(), None).unwrap();
        assert!(
            tx.contains(r#""handle":7"#) && tx.contains(r#""handle":8"#),
            "{tx}"
        );
    }
}
