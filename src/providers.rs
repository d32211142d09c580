//! The provider registry: one provider instance per configured service, and the schema
//! of every resource type terrace knows.

use std::collections::BTreeMap;
use std::sync::Arc;

use terrace_config::{Engine, Project};
use terrace_provider::{find_schema, Provider, ProviderKey, ResourceSchema};
use terrace_provider_sql::{SqlEngine, SqlProvider, SqlServer};

/// The schema of `type_name`, from whichever provider crate implements it.
pub fn schema(type_name: &str) -> Option<&'static ResourceSchema> {
    find_schema(terrace_provider_sql::SCHEMAS, type_name)
}

/// Provider instances keyed by [`ProviderKey`].
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<ProviderKey, Arc<dyn Provider>>,
}

impl ProviderSet {
    /// Builds a provider for every service in the project. Nothing connects yet:
    /// providers connect on first use, so `plan` touches only the servers it needs.
    pub fn for_project(project: &Project) -> Self {
        let mut providers: BTreeMap<ProviderKey, Arc<dyn Provider>> = BTreeMap::new();
        for (name, svc) in &project.services {
            let engine = match svc.engine {
                Engine::Postgres => SqlEngine::Postgres,
                Engine::Mysql | Engine::Mariadb => SqlEngine::Mysql,
            };
            let server = SqlServer {
                engine,
                address: svc.address.clone(),
                port: svc.port,
                admin_user: svc.admin_user.clone(),
                admin_password: svc.admin_password.clone(),
                admin_database: None,
            };
            providers.insert(
                ProviderKey(format!("service.{name}")),
                Arc::new(SqlProvider::new(server)),
            );
        }
        ProviderSet { providers }
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
