//! `package` blocks: a Debian package on a host (`host_package`).

use super::decode::Decoded;
use super::hosted::*;
use super::*;

pub(super) fn eval(s: &mut State<'_>, label: &str) -> bool {
    s.hosted(label, &DEF)
}

static DEF: HostedDef = HostedDef {
    kind: Kind::Package,
    own: &["name"],
    body,
};

fn body(s: &mut State<'_>, r: &mut Reader, inst: &Instance, mut d: Decoded) -> Option<Body> {
    let block = inst.block;
    let schema = s.resource_schema(Kind::Package);
    let name = s.object_name(r, inst, "package", schema);
    let version = d.attrs.get("version").and_then(Json::as_str);
    if let (Some("absent"), Some(_), Some(attr)) = (
        d.attrs.get("state").and_then(Json::as_str),
        version,
        block.attr("state"),
    ) {
        r.errors.push(
            ConfigError::new(
                ErrorKind::InvalidValue,
                "a version makes no sense with state = \"absent\"",
            )
            .at(&attr.loc, "the package is removed")
            .help("remove `version`, or set state = \"present\""),
        );
    }
    let (name, name_loc) = name?;
    d.attrs.insert("name".into(), Json::from(name.as_str()));
    if s.sensitive_of(inst, &[("name", &["name"])]).contains("name") {
        d.sensitive.insert("name".into());
    }
    Some(Body {
        attrs: d.attrs,
        sensitive: d.sensitive,
        identity: Some((format!("package \"{name}\""), name_loc)),
        fields: vec![("name", Value::from(name))],
        deps: Vec::new(),
    })
}
