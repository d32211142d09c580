//! `firewall_rule` blocks: an nftables rule on a host (`host_firewall_rule`).

use serde_json::Value as Json;
use terrace_provider::Attrs;

use super::hosted::*;
use super::*;
use std::net::IpAddr;

/// An address or a CIDR network with its host bits clear; the error is a reason.
fn source_address(s: &str) -> Result<(), String> {
    let bad = || "not an IP address or CIDR network".to_string();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let Some(len) = len.filter(|l| *l < bits) else {
        return match len {
            Some(l) if l > bits => Err(format!("a /{l} prefix is longer than {bits} bits")),
            _ => Ok(()),
        };
    };
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
        return Err(format!(
            "the network has host bits set; did you mean \"{masked}/{len}\"?"
        ));
    }
    Ok(())
}

/// nftables keeps at most 128 bytes of a rule's comment, which the provider builds as
/// `terrace:<address> # <comment>`.
const MAX_NFT_COMMENT: usize = 128;

impl State<'_> {
    pub(super) fn firewall_body(&mut self, r: &mut Reader, inst: &Instance) -> Option<Body> {
        let block = inst.block;
        let port = r.int(block, "port", (1, 65535), "6379");
        let proto = r
            .string(block, "proto", "\"tcp\"")
            .filter(|p| one_of(r, "proto", p, &["tcp", "udp"], "not a protocol"));
        let allow_from = block.attr("allow_from").and_then(|attr| {
            let list = r.string_list(attr, "[\"10.0.0.0/24\", host.web1.address]")?;
            let mut ok = true;
            for (i, s) in list.iter().enumerate() {
                if let Err(why) = source_address(s) {
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("invalid allow_from[{i}] \"{}\": {why}", s.escape_debug()),
                        )
                        .at(&item_loc(attr, i), "not an IP address or CIDR network")
                        .help("allow_from takes IPv4 or IPv6 addresses and networks such as \"10.0.0.10\", \"10.0.0.0/24\" or \"fd00::/8\"; host names are not resolved"),
                    );
                    ok = false;
                }
            }
            ok.then_some(list)
        });
        let comment = r.string(block, "comment", "\"app servers only\"");
        if let Some((c, loc)) = &comment {
            let full = format!("terrace:{} # {c}", inst.address);
            let why = if c.contains(['\n', '\0']) {
                Some("the comment must be one line".to_string())
            } else if full.len() > MAX_NFT_COMMENT {
                Some(format!(
                    "the rule's nftables comment \"{}\" would be {} bytes, more than the {MAX_NFT_COMMENT} nftables keeps",
                    full.escape_debug(),
                    full.len()
                ))
            } else {
                None
            };
            if let Some(why) = why {
                r.errors.push(
                    ConfigError::new(ErrorKind::InvalidValue, format!("invalid comment: {why}"))
                        .at(loc, "this comment")
                        .help("shorten the comment to one short line"),
                );
            }
        }
        let (port, allow_from) = (port?, allow_from?);
        let port_loc = block.attr("port").map(|a| a.loc.clone())?;
        let proto_name = proto.as_ref().map_or("tcp", |p| p.0.as_str()).to_string();
        let mut attrs = Attrs::new();
        attrs.insert("port".into(), Json::from(port));
        if let Some((p, _)) = &proto {
            attrs.insert("proto".into(), Json::from(p.as_str()));
        }
        attrs.insert("allow_from".into(), Json::from(allow_from));
        if let Some((c, _)) = &comment {
            attrs.insert("comment".into(), Json::from(c.as_str()));
        }
        let sensitive = self.sensitive_of(
            inst,
            &[
                ("port", &["port"]),
                ("proto", &["proto"]),
                ("allow_from", &["allow_from"]),
                ("comment", &["comment"]),
            ],
        );
        Some(Body {
            attrs,
            sensitive,
            identity: Some((
                format!("firewall rule for port {port}/{proto_name}"),
                port_loc,
            )),
            fields: vec![
                ("port", Value::from(port)),
                ("proto", Value::from(proto_name)),
            ],
            deps: Vec::new(),
        })
    }
}
