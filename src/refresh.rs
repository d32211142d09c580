//! Refresh: ask every provider, in one batch each and all providers at once, what exists.

use std::collections::BTreeMap;

use terrace_plan::PriorResource;
use terrace_provider::{Address, DesiredResource, ObserveRequest, Observed, ProviderKey};
use tokio::task::JoinSet;

use crate::output::Redactor;
use crate::providers::ProviderSet;

/// What a refresh learned.
#[derive(Debug, Default)]
pub struct Refresh {
    /// What each reachable provider found.
    pub observed: BTreeMap<Address, Observed>,
    /// Providers that could not be asked (an unreachable host or server), with the
    /// (redacted) reason. Their resources cannot be planned this run.
    pub failures: BTreeMap<ProviderKey, String>,
    /// What reachable providers could not verify (e.g. password hashes they may not
    /// read), prefixed with the provider, in provider order.
    pub unverified: Vec<String>,
    /// Single resources their (reachable) provider could not observe, with the
    /// (redacted) reason: only these, and what depends on them, are left out.
    pub failed: BTreeMap<Address, String>,
}

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
) -> miette::Result<Refresh> {
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
    let mut out = Refresh::default();
    for (key, reason) in providers.unavailable() {
        out.failures.insert(key.clone(), redactor.scrub(reason));
    }
    let down = providers.unavailable();
    let usable = |(key, _): &(ProviderKey, Vec<ObserveRequest>)| !down.contains_key(key);
    let open: Vec<_> = open.into_iter().filter(usable).collect();
    probe(providers, open, redactor, &mut out).await?;
    let reachable: Vec<_> = gated
        .into_iter()
        .filter(usable)
        .filter(|(key, _)| {
            let container = providers.gate(key).expect("partitioned on gate");
            matches!(
                out.observed.get(container),
                Some(Observed::Present(attrs)) if attrs.get("running") != Some(&serde_json::Value::Bool(false))
            )
        })
        .collect();
    probe(providers, reachable, redactor, &mut out).await?;
    out.unverified.sort();
    Ok(out)
}

/// Observes each batch with its provider, all concurrently.
async fn probe(
    providers: &ProviderSet,
    batches: Vec<(ProviderKey, Vec<ObserveRequest>)>,
    redactor: &Redactor,
    out: &mut Refresh,
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
                    match obs {
                        Observed::Failed(why) => {
                            out.failed.insert(req.address, redactor.scrub(&why));
                        }
                        obs => {
                            out.observed.insert(req.address, obs);
                        }
                    }
                }
                let provider = providers.get(&key)?;
                out.unverified.extend(
                    provider
                        .unverified()
                        .into_iter()
                        .map(|note| redactor.scrub(&format!("{key}: {note}"))),
                );
            }
            Ok(found) => {
                out.failures.insert(
                    key,
                    format!(
                        "provider answered {} observations for {} requests",
                        found.len(),
                        requests.len()
                    ),
                );
            }
            Err(e) => {
                out.failures.insert(key, redactor.scrub(&e.to_string()));
            }
        }
    }
    Ok(())
}
