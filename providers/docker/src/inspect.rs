//! A container's inspect as observe reads it: the fields it compares, decoded straight
//! from the engine's answer; serde skips the rest unread. bollard's own model holds
//! every field of the API (the host config alone has about eighty), and decoding 1,000
//! of those was an eighth of a no-change plan's CPU.

use std::collections::HashMap;

use bollard::models::{HealthConfig, MountPoint, PortBinding, RestartPolicy};
use serde::Deserialize;

/// `GET /containers/{id}/json`, the parts observe reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Inspected {
    /// The full container id.
    pub(crate) id: Option<String>,
    /// The name, with the engine's leading `/`.
    pub(crate) name: Option<String>,
    /// The id of the image the container runs.
    pub(crate) image: Option<String>,
    pub(crate) config: Option<Config>,
    pub(crate) host_config: Option<HostConfig>,
    pub(crate) mounts: Option<Vec<MountPoint>>,
    pub(crate) network_settings: Option<NetworkSettings>,
    pub(crate) state: Option<State>,
}

/// The container's own configuration (`Config`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Config {
    /// The image reference it was created from.
    pub(crate) image: Option<String>,
    pub(crate) cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries, the image's included.
    pub(crate) env: Option<Vec<String>>,
    /// The image's labels included.
    pub(crate) labels: Option<HashMap<String, String>>,
    pub(crate) healthcheck: Option<HealthConfig>,
    pub(crate) stop_signal: Option<String>,
    pub(crate) stop_timeout: Option<i64>,
}

/// What the engine applies around the process (`HostConfig`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct HostConfig {
    pub(crate) port_bindings: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    /// Bytes; 0 is no limit.
    pub(crate) memory: Option<i64>,
    pub(crate) restart_policy: Option<RestartPolicy>,
    pub(crate) init: Option<bool>,
    // The limits only `docker update` (or `docker run`) sets. terrace leaves them at the
    // engine's "none" (0, empty or null), so any other value was set outside it.
    /// CPUs in units of 10⁻⁹ (`--cpus`).
    pub(crate) nano_cpus: Option<i64>,
    pub(crate) cpu_shares: Option<i64>,
    pub(crate) cpu_period: Option<i64>,
    pub(crate) cpu_quota: Option<i64>,
    pub(crate) cpu_realtime_period: Option<i64>,
    pub(crate) cpu_realtime_runtime: Option<i64>,
    pub(crate) cpuset_cpus: Option<String>,
    pub(crate) cpuset_mems: Option<String>,
    /// Bytes.
    pub(crate) memory_reservation: Option<i64>,
    /// Bytes of memory plus swap; -1 is unlimited (what terrace sets with `memory`).
    pub(crate) memory_swap: Option<i64>,
    /// 0, -1 and null all mean no limit.
    pub(crate) pids_limit: Option<i64>,
    pub(crate) blkio_weight: Option<i64>,
}

/// The networks the container is attached to (`NetworkSettings`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct NetworkSettings {
    /// Endpoints by network name.
    pub(crate) networks: Option<HashMap<String, Endpoint>>,
}

/// One network endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Endpoint {
    /// The id of the network the container joined (stale if it was re-created since).
    #[serde(rename = "NetworkID")]
    pub(crate) network_id: Option<String>,
    pub(crate) aliases: Option<Vec<String>>,
}

/// Whether the process runs (`State`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct State {
    pub(crate) running: Option<bool>,
    pub(crate) paused: Option<bool>,
}

/// The API path of container `id`'s inspect, or `None` for what cannot be an id (a
/// state edited by hand): only hex digits go into a URL path.
pub(crate) fn path(id: &str) -> Option<String> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("/containers/{id}/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_ids_make_a_path() {
        assert_eq!(path("ab12").as_deref(), Some("/containers/ab12/json"));
        for bad in ["", "../images/x", "a b", "name", "ab?x=1"] {
            assert_eq!(path(bad), None, "{bad:?}");
        }
    }
}
