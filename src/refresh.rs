//! Refresh: ask every provider, in one batch each and all providers at once, what exists.

use std::collections::BTreeMap;

use terrace_plan::PriorResource;
use terrace_provider::{Address, Attrs, DesiredResource, ObserveRequest, Observed, ProviderKey};
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
    desired: &mut [DesiredResource],
    prior: &mut [PriorResource],
    redactor: &Redactor,
) -> miette::Result<Refresh> {
    // The requests borrow each resource's attributes by taking them, and give them
    // back once observed: a copy of every attribute map would be tens of megabytes at
    // tens of thousands of resources, and the probes run on tasks of their own.
    let prior_index: BTreeMap<&Address, usize> = prior
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.address, i))
        .collect();
    let mut batches: BTreeMap<ProviderKey, Batch> = BTreeMap::new();
    let mut desired_slots = Vec::with_capacity(desired.len());
    for (i, d) in desired.iter().enumerate() {
        let (provider, slot) = match prior_index.get(&d.address) {
            Some(&j) => (&prior[j].provider, Slot::Prior(j)),
            None => (&d.provider, Slot::Desired(i)),
        };
        desired_slots.push((
            provider.clone(),
            d.address.clone(),
            d.type_name.clone(),
            slot,
        ));
    }
    let desired_addrs: std::collections::BTreeSet<&Address> =
        desired.iter().map(|d| &d.address).collect();
    let prior_slots: Vec<(ProviderKey, Address, String, Slot)> = prior
        .iter()
        .enumerate()
        .filter(|(_, p)| !desired_addrs.contains(&p.address))
        .map(|(j, p)| {
            (
                p.provider.clone(),
                p.address.clone(),
                p.type_name.clone(),
                Slot::Prior(j),
            )
        })
        .collect();
    drop(desired_addrs);
    drop(prior_index);
    for (provider, address, type_name, slot) in desired_slots.into_iter().chain(prior_slots) {
        let attrs = match slot {
            Slot::Prior(j) => std::mem::take(&mut prior[j].attrs),
            Slot::Desired(i) => std::mem::take(&mut desired[i].attrs),
        };
        let batch = batches.entry(provider).or_default();
        batch.requests.push(ObserveRequest {
            address,
            type_name,
            attrs,
        });
        batch.slots.push(slot);
    }
    let mut give_back = |slots: Vec<Slot>, attrs: Vec<Attrs>| {
        for (slot, a) in slots.into_iter().zip(attrs) {
            match slot {
                Slot::Prior(j) => prior[j].attrs = a,
                Slot::Desired(i) => desired[i].attrs = a,
            }
        }
    };

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
    let mut to_probe = Vec::new();
    for (key, batch) in open {
        if down.contains_key(&key) {
            let (slots, attrs) = batch.split();
            give_back(slots, attrs);
        } else {
            to_probe.push((key, batch));
        }
    }
    for (slots, attrs) in probe(providers, to_probe, redactor, &mut out).await? {
        give_back(slots, attrs);
    }
    let mut to_probe = Vec::new();
    for (key, batch) in gated {
        let container = providers.gate(&key).expect("partitioned on gate");
        let running = matches!(
            out.observed.get(container),
            Some(Observed::Present(attrs)) if attrs.get("running") != Some(&serde_json::Value::Bool(false))
        );
        if down.contains_key(&key) || !running {
            let (slots, attrs) = batch.split();
            give_back(slots, attrs);
        } else {
            to_probe.push((key, batch));
        }
    }
    for (slots, attrs) in probe(providers, to_probe, redactor, &mut out).await? {
        give_back(slots, attrs);
    }
    out.unverified.sort();
    Ok(out)
}

/// Where a request's attributes were taken from, to give them back.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Desired(usize),
    Prior(usize),
}

/// One provider's requests, with where each one's attributes belong.
#[derive(Default)]
struct Batch {
    requests: Vec<ObserveRequest>,
    slots: Vec<Slot>,
}

impl Batch {
    /// The slots and the attributes of the requests, in order.
    fn split(self) -> (Vec<Slot>, Vec<Attrs>) {
        (
            self.slots,
            self.requests.into_iter().map(|r| r.attrs).collect(),
        )
    }
}

/// Observes each batch with its provider, all concurrently. Returns each batch's
/// slots with the attributes its requests carried.
async fn probe(
    providers: &ProviderSet,
    batches: Vec<(ProviderKey, Batch)>,
    redactor: &Redactor,
    out: &mut Refresh,
) -> miette::Result<Vec<(Vec<Slot>, Vec<Attrs>)>> {
    let mut tasks = JoinSet::new();
    for (key, batch) in batches {
        let provider = providers.get(&key)?;
        tasks.spawn(async move {
            let result = provider.observe(&batch.requests).await;
            (key, batch, result)
        });
    }
    let mut returned = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (key, batch, result) = joined.map_err(|e| miette::miette!("probe task failed: {e}"))?;
        let Batch { requests, slots } = batch;
        let mut attrs = Vec::with_capacity(requests.len());
        match result {
            Ok(found) if found.len() == requests.len() => {
                for (req, obs) in requests.into_iter().zip(found) {
                    attrs.push(req.attrs);
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
                attrs.extend(requests.into_iter().map(|r| r.attrs));
            }
            Err(e) => {
                out.failures.insert(key, redactor.scrub(&e.to_string()));
                attrs.extend(requests.into_iter().map(|r| r.attrs));
            }
        }
        returned.push((slots, attrs));
    }
    Ok(returned)
}
