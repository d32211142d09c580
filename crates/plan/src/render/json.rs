//! The machine-readable plan (`terrace plan --json`), modelled on `terraform show -json`
//! so existing tooling feels at home. Secrets are always redacted.

use serde_json::{json, Map, Value};

use crate::model::{DriftKind, Plan};

/// Version of the JSON document's shape. Bumped on any incompatible change.
pub const JSON_FORMAT_VERSION: &str = "1.0";

/// Renders the plan as a versioned JSON document.
pub fn render_json(plan: &Plan, terrace_version: &str) -> Value {
    let plan = plan.redacted();
    let sensitive_map = |names: &std::collections::BTreeSet<String>,
                         present: Option<&Map<String, Value>>| {
        let mut m = Map::new();
        for n in names {
            if present.is_some_and(|p| p.contains_key(n)) {
                m.insert(n.clone(), Value::Bool(true));
            }
        }
        Value::Object(m)
    };
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            let before = c.before.as_ref().map(|a| a.clone().into_iter().collect::<Map<_, _>>());
            let after = c.after.as_ref().map(|a| a.clone().into_iter().collect::<Map<_, _>>());
            json!({
                "address": c.address,
                "type": c.type_name,
                "provider": c.provider,
                "depends_on": c.depends_on,
                "change": {
                    "actions": c.action.json_actions(),
                    "before": before,
                    "after": after,
                    "after_unknown": c.generated.iter().map(|g| (g.clone(), Value::Bool(true))).collect::<Map<_, _>>(),
                    "before_sensitive": sensitive_map(&c.sensitive, before.as_ref()),
                    "after_sensitive": sensitive_map(&c.sensitive, after.as_ref()),
                    "changed": c.changed,
                    "replace_paths": c.replace_because.iter().map(|r| vec![r]).collect::<Vec<_>>(),
                },
                "note": c.note,
                "safeguard": plan.safeguard(&c.address).filter(|_| c.action.json_actions().contains(&"delete")),
            })
        })
        .collect();
    let drift: Vec<Value> = plan
        .drift
        .iter()
        .map(|d| match &d.kind {
            DriftKind::Deleted => json!({
                "address": d.address, "type": d.type_name, "kind": "deleted",
            }),
            DriftKind::Changed { attrs } => json!({
                "address": d.address, "type": d.type_name, "kind": "changed",
                "changes": attrs,
            }),
        })
        .collect();
    let summary = plan.summary();
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "terrace_version": terrace_version,
        "changes_present": !plan.is_empty(),
        "summary": summary,
        "resource_changes": changes,
        "resource_drift": drift,
        "conflicts": plan.conflicts,
        "safeguards": plan.safeguards,
        "unverified": plan.unverified,
    })
}
