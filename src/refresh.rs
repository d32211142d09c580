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
    let to_probe = skipping(open, |key| down.contains_key(key), &mut give_back);
    for (slots, attrs) in probe(providers, to_probe, redactor, &mut out).await? {
        give_back(slots, attrs);
    }
    let container_down = |key: &ProviderKey| {
        let container = providers.gate(key).expect("partitioned on gate");
        let running = matches!(
            out.observed.get(container),
            Some(Observed::Present(attrs)) if attrs.get("running") != Some(&serde_json::Value::Bool(false))
        );
        down.contains_key(key) || !running
    };
    let to_probe = skipping(gated, container_down, &mut give_back);
    for (slots, attrs) in probe(providers, to_probe, redactor, &mut out).await? {
        give_back(slots, attrs);
    }
    out.unverified.sort();
    Ok(out)
}

/// The batches to probe: those `skip` leaves out give their attributes back at once.
fn skipping(
    batches: Vec<(ProviderKey, Batch)>,
    skip: impl Fn(&ProviderKey) -> bool,
    give_back: &mut impl FnMut(Vec<Slot>, Vec<Attrs>),
) -> Vec<(ProviderKey, Batch)> {
    let mut to_probe = Vec::new();
    for (key, batch) in batches {
        if skip(&key) {
            let (slots, attrs) = batch.split();
            give_back(slots, attrs);
        } else {
            to_probe.push((key, batch));
        }
    }
    to_probe
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

#[cfg(test)]
mod tests {
    //! The requests take each resource's attributes and must give every one back,
    //! whether its provider was asked, down, or gated on a container that is not running.

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use serde_json::json;
    use terrace_provider::{Lifecycle, Provider, ProviderResult, ResourceSchema, Step};

    use super::*;

    /// Finds every requested object, with the attributes it was asked about.
    struct Echo;

    #[async_trait::async_trait]
    impl Provider for Echo {
        fn schemas(&self) -> &'static [ResourceSchema] {
            &[]
        }
        async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
            Ok(requests
                .iter()
                .map(|r| Observed::Present(r.attrs.clone()))
                .collect())
        }
        async fn apply(&self, _: &Step) -> ProviderResult<Option<Attrs>> {
            unreachable!()
        }
        async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
            unreachable!()
        }
    }

    fn attrs(name: &str) -> Attrs {
        serde_json::from_value(json!({"name": name, "size": 3})).unwrap()
    }

    fn desired(address: &str, provider: &str) -> DesiredResource {
        DesiredResource {
            address: Address::new(address),
            type_name: "t".into(),
            provider: ProviderKey(provider.into()),
            attrs: attrs(&format!("{address} wanted")),
            sensitive_attrs: BTreeSet::new(),
            depends_on: Vec::new(),
            lifecycle: Lifecycle::default(),
        }
    }

    fn prior(address: &str, provider: &str) -> PriorResource {
        PriorResource {
            address: Address::new(address),
            type_name: "t".into(),
            provider: ProviderKey(provider.into()),
            attrs: attrs(&format!("{address} recorded")),
            sensitive_attrs: BTreeSet::new(),
            depends_on: Vec::new(),
            pending: false,
        }
    }

    #[test]
    fn every_resource_gets_its_attributes_back() {
        let mut providers = ProviderSet::default();
        for key in ["up", "down", "gated"] {
            providers.insert(ProviderKey(key.into()), Arc::new(Echo));
        }
        providers.mark_unavailable(ProviderKey("down".into()), "unreachable");
        providers.gate_on(ProviderKey("gated".into()), Address::new("c.container"));
        let mut desired = vec![
            desired("new", "up"),
            desired("kept", "up"),
            desired("on_down", "down"),
            desired("in_gated", "gated"),
        ];
        let mut prior = vec![
            prior("kept", "up"),
            prior("gone", "up"),
            prior("on_down", "down"),
            prior("gone_gated", "gated"),
        ];
        let (want_desired, want_prior) = (desired.clone(), prior.clone());
        let refresh = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(observe_all(
                &providers,
                &mut desired,
                &mut prior,
                &Redactor::default(),
            ))
            .unwrap();
        assert_eq!(desired, want_desired);
        assert_eq!(prior, want_prior);
        // Only the provider that is up was asked, each resource by its recorded identity
        // when it has one.
        let found: Vec<(String, String)> = refresh
            .observed
            .iter()
            .map(|(a, o)| match o {
                Observed::Present(live) => (a.to_string(), live["name"].to_string()),
                other => panic!("{a}: {other:?}"),
            })
            .collect();
        assert_eq!(
            found,
            [
                ("gone".to_string(), "\"gone recorded\"".to_string()),
                ("kept".to_string(), "\"kept recorded\"".to_string()),
                ("new".to_string(), "\"new wanted\"".to_string()),
            ]
        );
    }
}
