//! Refresh: ask every provider, in one batch each and all providers at once, what exists.

use std::collections::BTreeMap;

use terrace_plan::PriorResource;
use terrace_provider::{Address, DesiredResource, ObserveRequest, Observed, ProviderKey};
use tokio::task::JoinSet;

use crate::output::Redactor;
use crate::providers::ProviderSet;

/// Observes every resource in config or state. Each provider gets exactly one
/// [`observe`](terrace_provider::Provider::observe) call (one batch per server), and
/// providers are probed concurrently, so the cost grows with servers, not tenants.
///
/// A resource already in state is looked up by its *recorded* identity, so that a
/// renamed object is seen as "exists, must be replaced" rather than "missing".
pub async fn observe_all(
    providers: &ProviderSet,
    desired: &[DesiredResource],
    prior: &[PriorResource],
    redactor: &Redactor,
) -> miette::Result<BTreeMap<Address, Observed>> {
    let prior_by_addr: BTreeMap<&Address, &PriorResource> =
        prior.iter().map(|p| (&p.address, p)).collect();
    let mut batches: BTreeMap<ProviderKey, Vec<ObserveRequest>> = BTreeMap::new();
    for d in desired {
        let (provider, attrs) = match prior_by_addr.get(&d.address) {
            Some(p) => (&p.provider, p.attrs.clone()),
            None => (&d.provider, d.attrs.clone()),
        };
        batches
            .entry(provider.clone())
            .or_default()
            .push(ObserveRequest {
                address: d.address.clone(),
                type_name: d.type_name.clone(),
                attrs,
            });
    }
    let desired_addrs: std::collections::BTreeSet<&Address> =
        desired.iter().map(|d| &d.address).collect();
    for p in prior.iter().filter(|p| !desired_addrs.contains(&p.address)) {
        batches
            .entry(p.provider.clone())
            .or_default()
            .push(ObserveRequest {
                address: p.address.clone(),
                type_name: p.type_name.clone(),
                attrs: p.attrs.clone(),
            });
    }

    // Servers that run in containers terrace manages are probed second, and only if
    // their container is running: before the first apply there is nothing to ask, and
    // the planner then trusts the state for them (or plans their creation).
    let (gated, open): (Vec<_>, Vec<_>) = batches
        .into_iter()
        .partition(|(key, _)| providers.gate(key).is_some());
    let mut observed = BTreeMap::new();
    let mut errors = Vec::new();
    probe(providers, open, redactor, &mut observed, &mut errors).await?;
    let reachable: Vec<_> = gated
        .into_iter()
        .filter(|(key, _)| {
            let container = providers.gate(key).expect("partitioned on gate");
            matches!(
                observed.get(container),
                Some(Observed::Present(attrs)) if attrs.get("running") != Some(&serde_json::Value::Bool(false))
            )
        })
        .collect();
    probe(providers, reachable, redactor, &mut observed, &mut errors).await?;
    if !errors.is_empty() {
        errors.sort();
        return Err(miette::miette!(
            help = "check that the server is running and reachable, and the admin credentials",
            "could not read the live state:\n  {}",
            errors.join("\n  ")
        ));
    }
    Ok(observed)
}

/// Observes each batch with its provider, all concurrently.
async fn probe(
    providers: &ProviderSet,
    batches: Vec<(ProviderKey, Vec<ObserveRequest>)>,
    redactor: &Redactor,
    observed: &mut BTreeMap<Address, Observed>,
    errors: &mut Vec<String>,
) -> miette::Result<()> {
    let mut tasks = JoinSet::new();
    for (key, requests) in batches {
        let provider = providers.get(&key)?;
        tasks.spawn(async move {
            let result = provider.observe(&requests).await;
            (key, requests, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (key, requests, result) =
            joined.map_err(|e| miette::miette!("probe task failed: {e}"))?;
        match result {
            Ok(found) if found.len() == requests.len() => {
                for (req, obs) in requests.into_iter().zip(found) {
                    observed.insert(req.address, obs);
                }
            }
            Ok(found) => errors.push(format!(
                "{key}: provider answered {} observations for {} requests",
                found.len(),
                requests.len()
            )),
            Err(e) => errors.push(format!("{key}: {}", redactor.scrub(&e.to_string()))),
        }
    }
    Ok(())
}
