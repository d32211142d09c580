//! terrace provider for hosts reached over SSH: files, apt packages, services, nftables
//! firewall rules and guarded commands.
//!
//! One [`SshHost`] is one multiplexed OpenSSH connection (native-mux), opened on first
//! use and shared by every provider and port forward for that host; one
//! [`SshProvider`] serves the resources of one host. Observe answers any number of
//! resources with one remote command: a generated POSIX sh script (see [`probe`]).
//! Scripts and every piece of data (file contents, user commands) go to the host on
//! stdin; the command line is always the same fixed wrapper, so nothing sensitive is
//! ever visible in a process list.

mod attrs;
mod command;
mod file;
mod firewall;
mod forward;
mod package;
mod persist;
mod probe;
mod schema;
mod script;
mod service;
mod session;

use std::sync::Arc;

use terrace_provider::{
    find_schema, Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderError,
    ProviderResult, ResourceSchema, Step,
};
use tokio::sync::Mutex;

pub use file::CONTENT_NOT_SHOWN;
pub use persist::{persist_from_env, DEFAULT_PERSIST, PERSIST_ENV};
pub use schema::{COMMAND, FILE, FIREWALL_RULE, PACKAGE, SCHEMAS, SERVICE};
pub use session::{HostConfig, HostKeyCheck, SshHost};

use probe::{Probe, ProbeOutput};
use session::RunOutput;

/// The provider for one host. Cheap to create; the host connects on first use.
#[derive(Debug)]
pub struct SshProvider {
    host: Arc<SshHost>,
    /// apt and dpkg take a global lock: package steps on one host run one at a time.
    /// The flag says whether this provider already refreshed the package index.
    apt: Mutex<bool>,
    /// Firewall steps read the table and then change it: one at a time per host.
    firewall: Mutex<()>,
}

fn unknown_type(type_name: &str) -> ProviderError {
    ProviderError::Invalid(format!("unknown host resource type {type_name:?}"))
}

fn require<'a>(attrs: &'a Option<Attrs>, what: &str, step: &Step) -> ProviderResult<&'a Attrs> {
    attrs.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "{}: {:?} step without {what} attributes",
            step.address, step.operation
        ))
    })
}

/// The last lines of a command's output, for error messages.
fn tail(out: &RunOutput) -> String {
    let text = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    lines[start..].join("\n")
}

impl SshProvider {
    /// A provider for the resources of `host`.
    pub fn new(host: Arc<SshHost>) -> Self {
        SshProvider {
            host,
            apt: Mutex::new(false),
            firewall: Mutex::new(()),
        }
    }

    /// The host this provider manages.
    pub fn host(&self) -> &Arc<SshHost> {
        &self.host
    }

    fn schema(type_name: &str) -> ProviderResult<&'static ResourceSchema> {
        find_schema(SCHEMAS, type_name).ok_or_else(|| unknown_type(type_name))
    }

    fn failed(&self, address: &Address, what: &str, out: &RunOutput) -> ProviderError {
        let code = out
            .code
            .map_or("a signal".to_string(), |c| format!("status {c}"));
        ProviderError::Operation {
            address: address.clone(),
            message: format!(
                "on {}: {what} failed with {code}: {}",
                self.host.cfg.target(),
                tail(out)
            ),
        }
    }

    /// Runs a script as root (when the host is configured to become root).
    async fn run(&self, script: &str) -> ProviderResult<RunOutput> {
        self.host.run(script, true).await
    }

    /// [`SshProvider::run`] with its own time limit.
    async fn run_for(&self, script: &str, limit: std::time::Duration) -> ProviderResult<RunOutput> {
        self.host.run_for(script, true, limit).await
    }

    /// Runs a script that must succeed.
    async fn exec(&self, address: &Address, what: &str, script: &str) -> ProviderResult<()> {
        let out = self.run(script).await?;
        if !out.success() {
            return Err(self.failed(address, what, &out));
        }
        Ok(())
    }

    /// Builds the one probe script for a batch. A request the script cannot ask about
    /// (invalid attributes) gets its error in the returned list instead, so that it
    /// fails alone.
    fn probe_script(&self, requests: &[ObserveRequest]) -> (String, Vec<Option<Observed>>) {
        let mut p = Probe::default();
        let mut failed = vec![None; requests.len()];
        let mut packages = Vec::new();
        let mut files = Vec::new();
        let mut services = 0;
        let mut guard_dir = false;
        let mut firewall = false;
        for (i, r) in requests.iter().enumerate() {
            let res = match r.type_name.as_str() {
                FILE => {
                    files.push((i, &r.attrs));
                    Ok(())
                }
                PACKAGE => {
                    packages.push(r);
                    Ok(())
                }
                SERVICE => {
                    let res = service::probe(&mut p, services == 0, i, &r.attrs);
                    services += 1;
                    res
                }
                FIREWALL_RULE => {
                    firewall = true;
                    Ok(())
                }
                COMMAND => command::probe(&mut p, &mut guard_dir, i, &r.attrs),
                other => Err(unknown_type(other)),
            };
            if let Err(e) = res {
                failed[i] = Some(self.resource_error(e));
            }
        }
        // Every file of the host in one batch: the processes it starts do not grow with
        // the number of files.
        for (i, e) in file::probe_all(&mut p, &files) {
            failed[i] = Some(self.resource_error(e));
        }
        if !packages.is_empty() {
            if let Err(e) = package::probe(&mut p, &packages) {
                let why = self.resource_error(e);
                for (i, r) in requests.iter().enumerate() {
                    if r.type_name == PACKAGE {
                        failed[i] = Some(why.clone());
                    }
                }
            }
        }
        if firewall {
            p.push(firewall::LIST_SCRIPT);
        }
        (p.finish(), failed)
    }

    /// What one resource's failure says in the plan: the host, then the problem.
    fn resource_error(&self, e: ProviderError) -> Observed {
        let message = match e {
            ProviderError::Operation { message, .. } => message,
            other => other.to_string(),
        };
        let target = self.host.cfg.target();
        if message.starts_with("on host ") {
            Observed::Failed(message)
        } else {
            Observed::Failed(format!("on {target}: {message}"))
        }
    }

    /// The terrace nftables table, read in its own command (for firewall steps).
    async fn firewall_table(&self, address: &Address) -> ProviderResult<firewall::Table> {
        let out = self.run(firewall::LIST_SCRIPT).await?;
        let parsed = ProbeOutput::parse(&format!("{}end ok\n", out.stdout), &out.stderr)?;
        self.table_from(&parsed, address)
    }

    fn table_from(&self, out: &ProbeOutput, address: &Address) -> ProviderResult<firewall::Table> {
        let texts = out.all("nft", "rule");
        let res = match (out.get("nft", "json"), out.get("nft", "error")) {
            (Some(json), _) => firewall::Table::parse("json", json, texts),
            (None, Some(err)) => firewall::Table::parse("error", err, texts),
            (None, None) => Err("the probe did not list the firewall".to_string()),
        };
        res.map_err(|message| ProviderError::Operation {
            address: address.clone(),
            message: format!("on {}: {message}", self.host.cfg.target()),
        })
    }

    async fn apply_file(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        if step.operation == Operation::Delete {
            let prior = require(&step.prior, "prior", step)?;
            self.exec(
                &step.address,
                "removing the file",
                &file::delete_script(prior)?,
            )
            .await?;
            return Ok(None);
        }
        let mut stored = require(&step.desired, "desired", step)?.clone();
        file::normalize(&mut stored)?;
        self.exec(
            &step.address,
            "writing the file",
            &file::write_script(&stored)?,
        )
        .await?;
        Ok(Some(stored))
    }

    async fn apply_package(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        if step.operation == Operation::Delete {
            // Stop managing only: see the `package` module for why nothing is removed.
            return Ok(None);
        }
        let mut stored = require(&step.desired, "desired", step)?.clone();
        package::normalize(&mut stored)?;
        let script = package::apply_script(&stored)?;
        let mut updated = self.apt.lock().await;
        let mut out = self.run(&script).await?;
        if out.code == Some(package::NOT_FOUND) && !*updated {
            // The index may be stale or never fetched (fresh images have none).
            self.exec(&step.address, "apt-get update", package::UPDATE_SCRIPT)
                .await?;
            *updated = true;
            out = self.run(&script).await?;
        }
        if !out.success() {
            return Err(self.failed(&step.address, "apt-get", &out));
        }
        Ok(Some(stored))
    }

    async fn apply_service(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        if step.operation == Operation::Delete {
            // Stop managing only: see the `service` module for why nothing is stopped.
            return Ok(None);
        }
        let mut stored = require(&step.desired, "desired", step)?.clone();
        service::normalize(&mut stored)?;
        let token = |a: &Attrs| a.get("restart_on").filter(|v| !v.is_null()).cloned();
        let restart = step.operation == Operation::Update
            && token(&stored).is_some()
            && step.prior.as_ref().and_then(token) != token(&stored);
        let script = service::apply_script(&stored, restart)?;
        self.exec(&step.address, "changing the service", &script)
            .await?;
        Ok(Some(stored))
    }

    async fn apply_firewall(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        let stored = match step.operation {
            Operation::Delete => None,
            _ => {
                let mut a = require(&step.desired, "desired", step)?.clone();
                firewall::normalize(&mut a)?;
                Some(a)
            }
        };
        let _one_at_a_time = self.firewall.lock().await;
        let table = self.firewall_table(&step.address).await?;
        let handles = table.handles(&step.address);
        if stored.is_none() && handles.is_empty() {
            return Ok(None);
        }
        // The chain is terrace's: rules inserted by hand go with any change to it.
        let foreign = table.foreign_handles();
        let tx = firewall::transaction(&step.address, &handles, &foreign, stored.as_ref())?;
        let script = format!(
            "t=$(mktemp) || exit 125\n{}nft -j -f \"$t\"; rc=$?; rm -f \"$t\"; exit $rc\n",
            script::write_data("\"$t\"", tx.as_bytes())
        );
        self.exec(&step.address, "nft", &script).await?;
        Ok(stored)
    }

    async fn apply_command(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        if step.operation == Operation::Delete {
            return Ok(None);
        }
        let mut stored = require(&step.desired, "desired", step)?.clone();
        command::normalize(&mut stored)?;
        let out = self.run(&command::apply_script(&stored)?).await?;
        match out.code {
            Some(0) => {}
            Some(command::SKIPPED) => {
                tracing::debug!(address = %step.address, "guard satisfied; not run");
            }
            Some(command::STILL_UNMET) => {
                return Err(ProviderError::Operation {
                    address: step.address.clone(),
                    message: format!(
                        "on {}: the command succeeded, but its guard is still not satisfied \
                         (`creates` does not exist, or `unless` still fails): it would run again \
                         on every apply. Make the command produce what the guard checks, or fix \
                         the guard",
                        self.host.cfg.target()
                    ),
                });
            }
            _ => return Err(self.failed(&step.address, "the command", &out)),
        }
        Ok(Some(stored))
    }
}

#[async_trait::async_trait]
impl Provider for SshProvider {
    fn schemas(&self) -> &'static [ResourceSchema] {
        SCHEMAS
    }

    /// The commands the host's one connection runs at once
    /// (`MAX_CONCURRENT`: sshd's `MaxSessions`, less room for forwards).
    fn max_concurrency(&self, _operation: terrace_provider::Operation) -> usize {
        session::MAX_CONCURRENT
    }

    fn normalize(&self, type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
        match Self::schema(type_name)?.type_name {
            FILE => file::normalize(attrs),
            PACKAGE => package::normalize(attrs),
            SERVICE => service::normalize(attrs),
            FIREWALL_RULE => firewall::normalize(attrs),
            COMMAND => command::normalize(attrs),
            other => Err(unknown_type(other)),
        }
    }

    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let (script, failed) = self.probe_script(requests);
        let out = self.run_for(&script, self.host.probe_limit()).await?;
        let whole = Address::new(self.host.cfg.target());
        if !out.success() {
            return Err(self.failed(&whole, "the probe", &out));
        }
        let parsed =
            ProbeOutput::parse(&out.stdout, &out.stderr).map_err(|e| ProviderError::Operation {
                address: whole.clone(),
                message: e.to_string(),
            })?;
        // A firewall that cannot be listed fails the firewall rules, not the host.
        let table = if requests.iter().any(|r| r.type_name == FIREWALL_RULE) {
            Some(self.table_from(&parsed, &whole).map_err(|e| match e {
                ProviderError::Operation { message, .. } => message,
                other => other.to_string(),
            }))
        } else {
            None
        };
        let firewall_requests: Vec<&ObserveRequest> = requests
            .iter()
            .filter(|r| r.type_name == FIREWALL_RULE)
            .collect();
        Ok(requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if let Some(why) = &failed[i] {
                    return why.clone();
                }
                let res = match r.type_name.as_str() {
                    FILE => file::answer(&parsed, i, r),
                    PACKAGE => package::answer(&parsed, r),
                    SERVICE => service::answer(&parsed, i, r),
                    FIREWALL_RULE => match table.as_ref().expect("listed") {
                        Ok(t) => Ok(t.answer(r, &firewall_requests)),
                        Err(message) => Err(ProviderError::Operation {
                            address: r.address.clone(),
                            message: message.clone(),
                        }),
                    },
                    COMMAND => command::answer(&parsed, i, r),
                    other => Err(unknown_type(other)),
                };
                res.unwrap_or_else(|e| self.resource_error(e))
            })
            .collect())
    }

    async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        match Self::schema(&step.type_name)?.type_name {
            FILE => self.apply_file(step).await,
            PACKAGE => self.apply_package(step).await,
            SERVICE => self.apply_service(step).await,
            FIREWALL_RULE => self.apply_firewall(step).await,
            COMMAND => self.apply_command(step).await,
            other => Err(unknown_type(other)),
        }
    }

    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs> {
        let t = Self::schema(type_name)?.type_name;
        let mut attrs = desired.clone();
        let key = match t {
            FILE => Some("path"),
            PACKAGE | SERVICE => Some("name"),
            COMMAND => Some("command"),
            _ => None,
        };
        if let Some(k) = key {
            attrs.insert(k.into(), id.into());
        }
        if t == FIREWALL_RULE {
            // `port/proto`, e.g. `5432/tcp`.
            let (port, proto) = id.split_once('/').unwrap_or((id, "tcp"));
            attrs.insert("port".into(), port.into());
            attrs.insert("proto".into(), proto.into());
        }
        self.normalize(t, &mut attrs)?;
        let address = Address::new(format!("{t}.{id}"));
        let found = if t == FIREWALL_RULE {
            self.find_rule(&attrs).await?
        } else {
            let req = ObserveRequest {
                address: address.clone(),
                type_name: t.to_string(),
                attrs: attrs.clone(),
            };
            self.observe(std::slice::from_ref(&req)).await?.pop()
        };
        match found {
            Some(Observed::Failed(why)) => Err(ProviderError::Invalid(format!(
                "cannot import {t} {id:?}: {why}"
            ))),
            Some(Observed::Present(mut live)) => {
                // What cannot be read back (file content, commands) comes from the
                // configuration.
                for (k, v) in attrs {
                    live.entry(k).or_insert(v);
                }
                Ok(live)
            }
            _ => Err(ProviderError::Invalid(format!(
                "cannot import {t} {id:?}: it does not exist on {}",
                self.host.cfg.target()
            ))),
        }
    }
}

impl SshProvider {
    /// A terrace rule for the same port and protocol, whatever resource wrote it.
    async fn find_rule(&self, want: &Attrs) -> ProviderResult<Option<Observed>> {
        let whole = Address::new(self.host.cfg.target());
        let table = self.firewall_table(&whole).await?;
        Ok(table.find(|live| {
            live.get("port") == want.get("port") && live.get("proto") == want.get("proto")
        }))
    }
}
