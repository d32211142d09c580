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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{json, Value};
use terrace_provider::{Address, Attrs, ObserveRequest, Observed, ProviderError, ProviderResult};

use crate::attrs::{opt_str, opt_str_list, req_port};
use crate::schema::FIREWALL_RULE;

/// The table terrace owns.
pub(crate) const TABLE: &str = "terrace";
const CHAIN: &str = "input";
/// nftables keeps at most 128 bytes of comment.
const MAX_COMMENT: usize = 128;

/// Shell text printing the table as JSON on one line, or the error.
pub(crate) const LIST_SCRIPT: &str = r#"if o=$(nft -j list table inet terrace 2>&1); then printf 'nft json %s\n' "$(printf '%s' "$o" | tr -d '\n')"; else printf 'nft error %s\n' "$(printf '%s' "$o" | tr '\n' ' ')"; fi
"#;

/// Canonical form of one allowed source: an address, or a network with its host bits
/// clear (`10.0.0.0/8`); a full-length prefix is just the address.
pub(crate) fn normalize_source(s: &str) -> ProviderResult<String> {
    let bad = || {
        ProviderError::Invalid(format!(
            "{FIREWALL_RULE}: {s:?} in allow_from is not an IP address or CIDR network"
        ))
    };
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (s.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(bits);
    if len > bits {
        return Err(bad());
    }
    if len == bits {
        return Ok(ip.to_string());
    }
    let masked = match ip {
        IpAddr::V4(v4) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::from((u32::from(v4) & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::from((u128::from(v6) & m).to_be_bytes())
        }
    };
    if masked != ip {
        return Err(ProviderError::Invalid(format!(
            "{FIREWALL_RULE}: {s:?} has host bits set; did you mean {masked}/{len}?"
        )));
    }
    Ok(format!("{ip}/{len}"))
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
    let set: BTreeSet<String> = list
        .iter()
        .map(|s| normalize_source(s))
        .collect::<ProviderResult<_>>()?;
    Ok(set.into_iter().collect())
}

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    let port = req_port(FIREWALL_RULE, a, "port")?;
    a.insert("port".into(), port.into());
    let p = proto(a)?.to_string();
    a.insert("proto".into(), p.into());
    let s = sources(a)?;
    a.insert("allow_from".into(), json!(s));
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
    allow: BTreeSet<String>,
    comment: Option<String>,
}

/// The terrace table's rules by identity, from `nft -j list table` (None: no table).
#[derive(Debug, Default)]
pub(crate) struct Table {
    rules: BTreeMap<String, Found>,
}

impl Table {
    /// Parses the `nft …` line printed by [`LIST_SCRIPT`].
    pub(crate) fn parse(kind: &str, text: &str) -> Result<Table, String> {
        if kind == "error" {
            if text.contains("No such file or directory") {
                return Ok(Table::default());
            }
            return Err(format!(
                "cannot list nftables table inet {TABLE}: {}",
                text.trim()
            ));
        }
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("cannot parse `nft -j` output: {e}"))?;
        let mut rules: BTreeMap<String, Found> = BTreeMap::new();
        let items = doc["nftables"].as_array().cloned().unwrap_or_default();
        for item in items {
            let Some(rule) = item.get("rule") else {
                continue;
            };
            let Some(comment) = rule["comment"].as_str() else {
                continue;
            };
            if !comment.starts_with("terrace:") {
                continue;
            }
            let (ident, user) = match comment.split_once(" # ") {
                Some((i, u)) => (i.to_string(), Some(u.to_string())),
                None => (comment.to_string(), None),
            };
            let f = rules.entry(ident).or_default();
            f.comment = user;
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
        Ok(Table { rules })
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

    pub(crate) fn answer(&self, req: &ObserveRequest) -> Observed {
        match self.get(&req.address) {
            Some(f) => Observed::Present(Self::attrs(f)),
            None => Observed::Absent,
        }
    }

    /// The first rule whose attributes satisfy `pred`.
    pub(crate) fn find(&self, pred: impl Fn(&Attrs) -> bool) -> Option<Observed> {
        self.rules
            .values()
            .map(Self::attrs)
            .find(|a| pred(a))
            .map(Observed::Present)
    }

    fn attrs(f: &Found) -> Attrs {
        let mut live = Attrs::new();
        if let Some(p) = f.port {
            live.insert("port".into(), p.into());
        }
        if let Some(p) = &f.proto {
            live.insert("proto".into(), p.clone().into());
        }
        live.insert(
            "allow_from".into(),
            json!(f.allow.iter().collect::<Vec<_>>()),
        );
        if let Some(c) = &f.comment {
            live.insert("comment".into(), c.clone().into());
        }
        live
    }
}

/// Adds the addresses of a match's right-hand side: a string, a prefix, or a set.
fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(normalize_source(s).unwrap_or_else(|_| s.clone()));
        }
        Value::Object(o) if o.contains_key("prefix") => {
            let p = &o["prefix"];
            if let (Some(a), Some(l)) = (p["addr"].as_str(), p["len"].as_u64()) {
                let s = format!("{a}/{l}");
                out.insert(normalize_source(&s).unwrap_or(s));
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
            &transaction(&Address::new("firewall_rule.db"), &[], Some(&attrs)).unwrap(),
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
        let t = Table::parse("json", out).unwrap();
        let a = Address::new("fw.a");
        assert_eq!(t.handles(&a), vec![3, 5]);
        let Observed::Present(live) = t.answer(&ObserveRequest {
            address: a,
            type_name: FIREWALL_RULE.into(),
            attrs: Attrs::new(),
        }) else {
            panic!("absent")
        };
        assert_eq!(live["port"], 8081);
        assert_eq!(live["proto"], "tcp");
        assert_eq!(live["allow_from"], json!(["10.203.0.1", "192.168.0.0/16"]));
        assert_eq!(live["comment"], "hi");
        assert!(Table::parse("error", "Error: No such file or directory")
            .unwrap()
            .rules
            .is_empty());
        assert!(Table::parse("error", "Operation not permitted").is_err());
    }
}
