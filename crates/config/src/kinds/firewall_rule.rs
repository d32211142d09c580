//! `firewall_rule` blocks: an nftables rule on a host (`host_firewall_rule`). Its
//! values (sources, the comment's length) are checked by the provider's schema.

use super::decode::Decoded;
use super::hosted::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::FirewallRule,
    own: &[],
    body,
};

fn body(_: &mut State<'_>, _: &mut Reader, inst: &Instance, d: Decoded) -> Option<Body> {
    let block = inst.block;
    let port = d.attrs.get("port").and_then(Json::as_i64)?;
    d.attrs.get("allow_from")?;
    let port_loc = block.attr("port").map(|a| a.loc.clone())?;
    let proto = d
        .attrs
        .get("proto")
        .and_then(Json::as_str)
        .unwrap_or("tcp")
        .to_string();
    Some(Body {
        identity: Some((format!("firewall rule for port {port}/{proto}"), port_loc)),
        fields: vec![("port", Value::from(port)), ("proto", Value::from(proto))],
        attrs: d.attrs,
        sensitive: d.sensitive,
        deps: Vec::new(),
    })
}
