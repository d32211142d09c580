//! The machine-readable plan (`terrace plan --json`), modelled on `terraform show -json`
//! so existing tooling feels at home. Secrets are always redacted.

use serde_json::{json, Map, Value};

use super::{Partial, PolicyFlags};
use crate::model::{before_sensitive, DriftKind, Plan};

/// Version of the JSON document's shape. Bumped on any incompatible change; keys
/// added in a compatible way bump the minor number (documented in docs/json-plan.md).
pub const JSON_FORMAT_VERSION: &str = "1.2";

/// Renders a complete plan as a versioned JSON document.
pub fn render_json(plan: &Plan, terrace_version: &str) -> Value {
    render_json_run(plan, terrace_version, &Partial::default())
}

/// Renders the plan of a run as a versioned JSON document; `partial` says what the
/// run could not plan, so a partial plan never reads as a complete one.
pub fn render_json_run(plan: &Plan, terrace_version: &str, partial: &Partial) -> Value {
    let plan = plan.redacted();
    // Terraform's shape: `true` for a secret attribute; for a map whose secrets are known
    // key by key, an object marking those keys (`{"env": {"DB_PASSWORD": true}}`).
    let sensitive_map = |names: &std::collections::BTreeSet<String>,
                         present: Option<&Map<String, Value>>| {
        let mut m = Map::new();
        for (attr, v) in present.into_iter().flatten() {
            match terrace_provider::secret_keys(names, attr) {
                None => {}
                Some(Some(keys)) if v.is_object() => {
                    let marks: Map<String, Value> = v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| keys.contains(*k))
                        .map(|(k, _)| (k.clone(), Value::Bool(true)))
                        .collect();
                    m.insert(attr.clone(), Value::Object(marks));
                }
                Some(_) => {
                    m.insert(attr.clone(), Value::Bool(true));
                }
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
                    "before_sensitive": sensitive_map(&before_sensitive(&c.sensitive, &c.prior_sensitive), before.as_ref()),
                    "after_sensitive": sensitive_map(&c.sensitive, after.as_ref()),
                    "changed": c.changed,
                    "replace_paths": c.replace_because.iter().map(|r| vec![r]).collect::<Vec<_>>(),
                },
                "note": c.note,
                "move": c.moves_data.then(|| json!({"from": c.prior_provider, "to": c.provider, "with_data": true})),
                "safeguard": plan.safeguard(&c.address).filter(|_| c.action.json_actions().contains(&"delete")),
            })
        })
        .collect();
    let drift: Vec<Value> = plan
        .drift
        .iter()
        .map(|d| match &d.kind {
            // `change` is Terraform's shape (what the state recorded → what is live);
            // `kind` and `changes` are terrace's attribute-by-attribute view.
            DriftKind::Deleted => json!({
                "address": d.address, "type": d.type_name, "kind": "deleted",
                "change": { "actions": ["delete"], "before": null, "after": null },
            }),
            DriftKind::Changed { attrs } => {
                let side = |after: bool| {
                    attrs
                        .iter()
                        .map(|a| {
                            let v = if after { &a.after } else { &a.before };
                            (a.name.clone(), v.clone().unwrap_or(Value::Null))
                        })
                        .collect::<Map<_, _>>()
                };
                json!({
                    "address": d.address, "type": d.type_name, "kind": "changed",
                    "change": { "actions": ["update"], "before": side(false), "after": side(true) },
                    "changes": attrs,
                })
            }
        })
        .collect();
    let counts = plan.summary();
    let flags = PolicyFlags::of(&plan);
    let summary = json!({
        "add": counts.add,
        "change": counts.change,
        "destroy": counts.destroy,
        "has_destroy": flags.has_destroy,
        "drops_data": flags.drops_data,
        "has_drift": flags.has_drift,
        "has_conflicts": !plan.conflicts.is_empty(),
    });
    let mut doc = json!({
        "format_version": JSON_FORMAT_VERSION,
        "terrace_version": terrace_version,
        "complete": partial.is_empty(),
        "changes_present": !plan.is_empty(),
        "summary": summary,
        "errors": partial.errors,
        "not_planned": partial.not_planned,
        "resource_changes": changes,
        "resource_drift": drift,
        "output_changes": {},
        "conflicts": plan.conflicts,
        "unverified": plan.unverified,
        "safeguards": plan.safeguards,
    });
    // Only when there are moves, so that documents without them keep their shape.
    if !plan.moved.is_empty() {
        doc["moved"] = json!(plan.moved);
    }
    if !plan.expiry.is_empty() {
        doc["expiry"] = json!(plan.expiry);
    }
    doc
}
