//! Helpers shared by the integration tests, which run against the real sshd instances
//! started by `scripts/ssh-hosts.sh` (on this machine, as user `terrace` with sudo).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use terrace_provider::{
    Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderResult, Step,
};
use terrace_provider_ssh::{HostConfig, HostKeyCheck, SshHost, SshProvider};

/// A variable from `target/ssh/env`.
pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `bash scripts/ssh-hosts.sh` (as root) and \
             `source target/ssh/env` before `cargo test -p terrace-provider-ssh`"
        )
    })
}

/// The configuration for a test host; `which` names the env variable holding
/// `address:port`.
pub fn config(name: &str, which: &str) -> HostConfig {
    let hp = env(which);
    let (address, port) = hp.rsplit_once(':').expect("address:port");
    HostConfig {
        name: name.into(),
        address: address.into(),
        port: port.parse().expect("numeric port"),
        user: std::env::var("TERRACE_TEST_SSH_USER").unwrap_or_else(|_| "terrace".into()),
        identity_file: Some(PathBuf::from(env("TERRACE_TEST_SSH_KEY"))),
        known_hosts: Some(PathBuf::from(env("TERRACE_TEST_SSH_KNOWN_HOSTS"))),
        host_key_check: HostKeyCheck::Strict,
        become_root: true,
    }
}

pub fn host(name: &str, which: &str) -> Arc<SshHost> {
    Arc::new(SshHost::new(config(name, which)))
}

pub fn provider(which: &str) -> SshProvider {
    SshProvider::new(host("testhost", which))
}

pub fn attrs(v: Value) -> Attrs {
    serde_json::from_value(v).expect("an object")
}

/// A unique name, so that tests running in parallel never collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh scratch directory on the host (this machine), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(unique("terrace-ssh-test"));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    /// Writes `content` to `name` in the directory with `mode`; returns its path.
    pub fn write(&self, name: &str, content: &[u8], mode: u32) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn normalized(p: &SshProvider, type_name: &str, mut a: Attrs) -> Attrs {
    p.normalize(type_name, &mut a).expect("valid attributes");
    a
}

pub fn address(type_name: &str, a: &Attrs) -> Address {
    let key = ["path", "name", "command", "port"]
        .iter()
        .find_map(|k| a.get(*k))
        .map(|v| v.to_string())
        .unwrap_or_default();
    Address::new(format!("{type_name}.t[{key}]"))
}

pub async fn observe_at(p: &SshProvider, type_name: &str, addr: &Address, a: &Attrs) -> Observed {
    let req = ObserveRequest {
        address: addr.clone(),
        type_name: type_name.into(),
        attrs: a.clone(),
    };
    p.observe(&[req]).await.expect("observe").pop().unwrap()
}

pub async fn observe(p: &SshProvider, type_name: &str, a: &Attrs) -> Observed {
    observe_at(p, type_name, &address(type_name, a), a).await
}

pub async fn step(
    p: &SshProvider,
    type_name: &str,
    operation: Operation,
    prior: Option<&Attrs>,
    desired: Option<&Attrs>,
) -> ProviderResult<Option<Attrs>> {
    let a = desired.or(prior).unwrap();
    step_at(
        p,
        type_name,
        &address(type_name, a),
        operation,
        prior,
        desired,
    )
    .await
}

pub async fn step_at(
    p: &SshProvider,
    type_name: &str,
    addr: &Address,
    operation: Operation,
    prior: Option<&Attrs>,
    desired: Option<&Attrs>,
) -> ProviderResult<Option<Attrs>> {
    let changed = match (prior, desired) {
        (Some(p), Some(d)) => d
            .iter()
            .filter(|(k, v)| p.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    p.apply(&Step {
        address: addr.clone(),
        type_name: type_name.into(),
        operation,
        prior: prior.cloned(),
        desired: desired.cloned(),
        changed,
    })
    .await
}

/// Every attribute observe reports equals the desired one: the plan would be a no-op.
pub fn assert_matches(observed: &Observed, desired: &Attrs) {
    let Observed::Present(live) = observed else {
        panic!("expected the object to be present, got {observed:?}");
    };
    for (k, v) in live {
        if let Some(want) = desired.get(k) {
            assert_eq!(v, want, "attribute {k}: live {v} != desired {want}");
        }
    }
}
