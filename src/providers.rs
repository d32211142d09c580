//! The provider registry: one provider instance per configured service, and the schema
//! of every resource type terrace knows.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::path::PathBuf;
use std::time::Duration;

use terrace_config::{Engine, Project};
use terrace_provider::{find_schema, Address, Provider, ProviderKey, ResourceSchema};
use terrace_provider_docker::{DockerEngine, DockerProvider};
use terrace_provider_sql::{SqlEngine, SqlProvider, SqlServer};

/// The schema of `type_name`, from whichever provider crate implements it.
pub fn schema(type_name: &str) -> Option<&'static ResourceSchema> {
    find_schema(terrace_provider_sql::SCHEMAS, type_name)
        .or_else(|| find_schema(terrace_provider_docker::SCHEMAS, type_name))
}

/// How long terrace waits for a database server it runs in a container to accept
/// connections (first start initialises the data directory).
const CONTAINER_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Provider instances keyed by [`ProviderKey`].
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<ProviderKey, Arc<dyn Provider>>,
    /// SQL providers whose server runs in a container terrace manages: the container's
    /// address. Such a server can only be probed while its container runs.
    gated_by: BTreeMap<ProviderKey, Address>,
}

impl ProviderSet {
    /// Builds a provider for every SQL service and every Docker engine in the project.
    /// Nothing connects yet: providers connect on first use, so `plan` touches only
    /// the servers it needs.
    pub fn for_project(project: &Project) -> Self {
        let mut set = ProviderSet::default();
        for (name, svc) in &project.services {
            let Some(sql) = &svc.sql else { continue };
            let engine = match svc.engine {
                Engine::Postgres => SqlEngine::Postgres,
                _ => SqlEngine::Mysql,
            };
            let server = SqlServer {
                engine,
                address: sql.address.clone(),
                port: sql.port,
                admin_user: sql.admin_user.clone(),
                admin_password: sql.admin_password.clone(),
                admin_database: None,
            };
            let key = ProviderKey(format!("service.{name}"));
            let mut provider = SqlProvider::new(server);
            if let Some(container) = &svc.container {
                provider = provider.with_ready_timeout(CONTAINER_READY_TIMEOUT);
                set.gated_by.insert(key.clone(), container.clone());
            }
            set.providers.insert(key, Arc::new(provider));
        }
        for (key, engine) in &project.docker_engines {
            let engine = DockerEngine {
                socket: engine.socket.as_ref().map(PathBuf::from),
            };
            set.providers.insert(
                ProviderKey(key.clone()),
                Arc::new(DockerProvider::new(engine)),
            );
        }
        set
    }

    /// The container a provider's server runs in, if terrace manages it.
    pub fn gate(&self, key: &ProviderKey) -> Option<&Address> {
        self.gated_by.get(key)
    }

    /// Registers a provider under `key` (tests use it to drive the executor).
    #[cfg(test)]
    pub fn insert(&mut self, key: ProviderKey, provider: Arc<dyn Provider>) {
        self.providers.insert(key, provider);
    }

    /// The provider for `key`, or an error telling the user what is missing.
    pub fn get(&self, key: &ProviderKey) -> miette::Result<Arc<dyn Provider>> {
        self.providers.get(key).cloned().ok_or_else(|| {
            miette::miette!(
                help = "add the service back (to destroy them), or forget them with `terrace state rm`",
                "{key} is not in the configuration, but the state has resources it manages"
            )
        })
    }
}
