//! The provider registry: one provider instance per host, SQL or Redis service and Docker engine,
//! and the schema of every resource type terrace knows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use terrace_config::{DockerEngineSpec, Engine, Project};
use terrace_provider::{find_schema, Address, Provider, ProviderKey, ResourceSchema};
use terrace_provider_docker::{DockerEngine, DockerProvider};
use terrace_provider_redis::{RedisProvider, RedisServer};
use terrace_provider_sql::{SqlEngine, SqlProvider, SqlServer};
use terrace_provider_ssh::{HostConfig, HostKeyCheck, SshHost, SshProvider};

/// The schema of `type_name`, from whichever provider crate implements it.
pub fn schema(type_name: &str) -> Option<&'static ResourceSchema> {
    find_schema(terrace_provider_sql::SCHEMAS, type_name)
        .or_else(|| find_schema(terrace_provider_docker::SCHEMAS, type_name))
        .or_else(|| find_schema(terrace_provider_ssh::SCHEMAS, type_name))
        .or_else(|| find_schema(terrace_provider_redis::SCHEMAS, type_name))
}

fn sql_provider(server: SqlServer, ready: Option<Duration>, backups: &Path) -> SqlProvider {
    // Every database is dumped before it is dropped.
    let provider = SqlProvider::new(server).with_backup_dir(backups);
    match ready {
        Some(t) => provider.with_ready_timeout(t),
        None => provider,
    }
}

fn host_known_hosts(host: &terrace_config::HostSpec) -> Option<PathBuf> {
    host.known_hosts.as_ref().map(PathBuf::from)
}

fn host_key_check(host: &terrace_config::HostSpec) -> HostKeyCheck {
    match host.host_key_check {
        terrace_config::HostKeyCheck::Strict => HostKeyCheck::Strict,
        terrace_config::HostKeyCheck::AcceptNew => HostKeyCheck::AcceptNew,
    }
}

/// How long terrace waits for a database server it runs in a container to accept
/// connections (first start initialises the data directory).
const CONTAINER_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A provider whose server is reached through a host's SSH connection: its real
/// endpoint (a local forward) exists only after [`ProviderSet::connect_remote`].
#[derive(Clone)]
enum Remote {
    /// A SQL server listening on `server.address:server.port` as seen from the host.
    Sql {
        host: String,
        server: SqlServer,
        ready: Option<Duration>,
    },
    /// A Redis server listening on `server.address:server.port` as seen from the host.
    Redis {
        host: String,
        server: RedisServer,
        ready: Option<Duration>,
    },
    /// A Docker engine at `socket` on the host.
    Docker { host: String, socket: String },
}

fn redis_provider(server: RedisServer, ready: Option<Duration>) -> RedisProvider {
    let provider = RedisProvider::new(server);
    match ready {
        Some(t) => provider.with_ready_timeout(t),
        None => provider,
    }
}

/// The host a service's server runs on: the service's own, or its container's.
fn service_host(project: &Project, svc: &terrace_config::ServiceSpec) -> Option<String> {
    svc.host.clone().or_else(|| {
        let container = svc.container.as_ref()?;
        let r = project.resources.iter().find(|r| &r.address == container)?;
        r.provider.0.strip_prefix("docker.").map(str::to_string)
    })
}

/// Provider instances keyed by [`ProviderKey`].
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<ProviderKey, Arc<dyn Provider>>,
    /// SQL providers whose server runs in a container terrace manages: the container's
    /// address. Such a server can only be probed while its container runs.
    gated_by: BTreeMap<ProviderKey, Address>,
    /// One SSH connection per host, shared by the host's own provider and the forwards.
    hosts: BTreeMap<String, Arc<SshHost>>,
    /// Providers to re-point at a forwarded endpoint before first use.
    remote: BTreeMap<ProviderKey, Remote>,
    /// Providers that cannot be used this run, with the reason (an unreachable host).
    unavailable: BTreeMap<ProviderKey, String>,
    /// Where databases are dumped before they are dropped.
    backups: PathBuf,
}

impl ProviderSet {
    /// Builds a provider for every host, SQL service and Docker engine in the project.
    /// Nothing connects yet: providers connect on first use, and servers behind a host
    /// are forwarded by [`ProviderSet::connect_remote`].
    pub fn for_project(project: &Project, backups: &Path) -> Self {
        let mut set = ProviderSet {
            backups: backups.to_path_buf(),
            ..ProviderSet::default()
        };
        for (name, host) in &project.hosts {
            let ssh = Arc::new(SshHost::new(HostConfig {
                name: name.clone(),
                address: host.address.clone(),
                port: host.port,
                user: host.user.clone(),
                identity_file: host.identity_file.as_ref().map(PathBuf::from),
                known_hosts: host_known_hosts(host),
                host_key_check: host_key_check(host),
                become_root: host.become_root,
            }));
            set.providers.insert(
                ProviderKey(format!("host.{name}")),
                Arc::new(SshProvider::new(ssh.clone())),
            );
            set.hosts.insert(name.clone(), ssh);
        }
        for (name, svc) in &project.services {
            // A Redis server terrace administers: one provider for its ACL users and
            // settings, reached like a SQL server (directly, or through its host's SSH
            // forward; waited for when terrace runs it in a container).
            if let Some(redis) = &svc.redis {
                let key = ProviderKey(format!("service.{name}"));
                let ready = svc.container.as_ref().map(|_| CONTAINER_READY_TIMEOUT);
                if let Some(container) = &svc.container {
                    set.gated_by.insert(key.clone(), container.clone());
                }
                let server = RedisServer {
                    address: redis.address.clone(),
                    port: redis.port,
                    admin_user: redis.admin_user.clone(),
                    admin_password: redis.admin_password.clone(),
                };
                let host = service_host(project, svc);
                if let Some(host) = host.filter(|h| set.hosts.contains_key(h)) {
                    set.remote.insert(
                        key.clone(),
                        Remote::Redis {
                            host,
                            server: server.clone(),
                            ready,
                        },
                    );
                }
                set.providers
                    .insert(key, Arc::new(redis_provider(server, ready)));
                continue;
            }
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
            let ready = svc.container.as_ref().map(|_| CONTAINER_READY_TIMEOUT);
            if let Some(container) = &svc.container {
                set.gated_by.insert(key.clone(), container.clone());
            }
            // The server runs on the service's host, or on the host of its container.
            let host = service_host(project, svc);
            if let Some(host) = host.as_ref().filter(|h| set.hosts.contains_key(*h)) {
                set.remote.insert(
                    key.clone(),
                    Remote::Sql {
                        host: host.clone(),
                        server: server.clone(),
                        ready,
                    },
                );
            }
            let provider = sql_provider(server, ready, &set.backups);
            set.providers.insert(key, Arc::new(provider));
        }
        // Every engine resources may live on, used by the configuration or not: the
        // state can still hold objects there that must be destroyed.
        let mut engines = project.docker_engines.clone();
        for label in project.hosts.keys().map(String::as_str).chain(["local"]) {
            let spec = DockerEngineSpec::for_label(label, &project.hosts);
            engines.entry(spec.key.clone()).or_insert(spec);
        }
        for (key, engine) in &engines {
            let key = ProviderKey(key.clone());
            if let Some(host) = engine.host.as_ref().filter(|h| set.hosts.contains_key(*h)) {
                set.remote.insert(
                    key.clone(),
                    Remote::Docker {
                        host: host.clone(),
                        socket: engine
                            .socket
                            .clone()
                            .unwrap_or_else(|| terrace_provider_docker::DEFAULT_SOCKET.into()),
                    },
                );
            }
            let engine = DockerEngine {
                socket: engine.socket.as_ref().map(PathBuf::from),
            };
            // Every volume's content is copied before the volume is removed.
            let provider = DockerProvider::new(engine).with_backup_dir(&set.backups);
            set.providers.insert(key, Arc::new(provider));
        }
        set
    }

    /// Opens the SSH forwards that servers behind hosts are reached through, all hosts
    /// at once, and points their providers at the local ends. A host that cannot be
    /// reached makes its providers unavailable (see [`ProviderSet::unavailable`]); the
    /// others go on.
    pub async fn connect_remote(&mut self, needed: &BTreeSet<ProviderKey>) {
        let mut tasks = tokio::task::JoinSet::new();
        // Only what some resource uses: a host without Docker is not an error.
        let (wanted, rest) = std::mem::take(&mut self.remote)
            .into_iter()
            .partition::<BTreeMap<_, _>, _>(|(key, _)| needed.contains(key));
        self.remote = rest;
        // Every key must end up forwarded or unavailable, even if its task panics:
        // otherwise its provider would stay pointed at the un-forwarded address.
        let mut pending: BTreeSet<ProviderKey> = wanted.keys().cloned().collect();
        for (key, remote) in wanted {
            let host = match &remote {
                Remote::Sql { host, .. }
                | Remote::Redis { host, .. }
                | Remote::Docker { host, .. } => host.clone(),
            };
            let ssh = self.hosts[&host].clone();
            let backups = self.backups.clone();
            tasks.spawn(async move {
                let provider: Result<Arc<dyn Provider>, String> = match remote {
                    // A unix socket in a private directory, not a loopback port that
                    // every user of this machine could connect to. PostgreSQL clients
                    // find it by the name `.s.PGSQL.<port>`.
                    Remote::Sql { server, ready, .. } => ssh
                        .forward_tcp_to_socket(
                            &server.address,
                            server.port,
                            &format!(".s.PGSQL.{}", server.port),
                        )
                        .await
                        .map(|socket| {
                            let provider =
                                sql_provider(server, ready, &backups).with_socket(socket);
                            Arc::new(provider) as Arc<dyn Provider>
                        })
                        .map_err(|e| e.to_string()),
                    Remote::Redis { server, ready, .. } => ssh
                        .forward_tcp_to_socket(&server.address, server.port, "redis.sock")
                        .await
                        .map(|socket| {
                            Arc::new(redis_provider(server, ready).with_socket(socket))
                                as Arc<dyn Provider>
                        })
                        .map_err(|e| e.to_string()),
                    Remote::Docker { socket, .. } => ssh
                        .forward_unix(&socket)
                        .await
                        .map(|local| {
                            Arc::new(
                                DockerProvider::new(DockerEngine {
                                    socket: Some(local),
                                })
                                .with_backup_dir(&backups),
                            ) as Arc<dyn Provider>
                        })
                        .map_err(|e| e.to_string()),
                };
                (key, provider)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((key, Ok(provider))) => {
                    pending.remove(&key);
                    self.providers.insert(key, provider);
                }
                Ok((key, Err(reason))) => {
                    pending.remove(&key);
                    self.unavailable.insert(key, reason);
                }
                Err(e) => tracing::warn!("forward task failed: {e}"),
            }
        }
        for key in pending {
            self.unavailable
                .insert(key, "setting up its SSH forward failed unexpectedly".into());
        }
    }

    /// Providers that cannot be used this run, and why.
    pub fn unavailable(&self) -> &BTreeMap<ProviderKey, String> {
        &self.unavailable
    }

    /// Ends every provider's connections politely ([`Provider::close`]), then every
    /// SSH connection (and the forwards those connections were riding on).
    pub async fn close(&self) {
        futures_util::future::join_all(self.providers.values().map(|p| p.close())).await;
        for host in self.hosts.values() {
            host.close().await;
        }
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

    /// Marks `key` as unusable this run (as an unreachable host does), for tests.
    #[cfg(test)]
    pub fn mark_unavailable(&mut self, key: ProviderKey, reason: &str) {
        self.unavailable.insert(key, reason.to_string());
    }

    /// Gates `key` on `container` running (a server in a managed container), for tests.
    #[cfg(test)]
    pub fn gate_on(&mut self, key: ProviderKey, container: Address) {
        self.gated_by.insert(key, container);
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
