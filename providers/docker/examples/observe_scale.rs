//! How a no-change observe of N containers scales on the local Docker engine: engine
//! requests, connections opened and wall time, for each N given (default 100 and 300).
//!
//! `cargo run --release -p terrace-provider-docker --example observe_scale -- 100 300`
//! (run by `scripts/bench.sh`). Containers are created but not started (listing and
//! inspecting do not depend on it, and creating is quicker), all from one image, and
//! removed at the end. Figures are printed, never asserted.

use std::time::{Duration, Instant};

use serde_json::json;
use terrace_provider::{Address, Attrs, ObserveRequest, Observed, Operation, Provider, Step};
use terrace_provider_docker::{DockerEngine, DockerProvider, CONTAINER};

/// The image the test suite uses (`scripts/docker-engine.sh` builds it).
const IMAGE: &str = "terrace/busybox:1";
/// Observes timed per N; the median is printed.
const RUNS: usize = 7;

fn attrs(v: serde_json::Value) -> Attrs {
    serde_json::from_value(v).expect("an object")
}

fn container(name: &str) -> Attrs {
    attrs(json!({
        "name": name,
        "image": IMAGE,
        "command": ["sleep", "3600"],
        "env": {"TENANT": name},
        "memory": "8m",
        "running": false,
    }))
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 300]
    } else {
        sizes
    };
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let p = DockerProvider::new(DockerEngine::default());
    let max = sizes.iter().copied().max().unwrap_or(0);
    // The state's view of every container: what apply returned.
    let mut stored: Vec<(Address, Attrs)> = Vec::new();
    let mut made: Vec<String> = Vec::new();
    let result = async {
        for i in 0..max {
            let name = format!("bench-obs-{tag}-{i}");
            let mut desired = container(&name);
            p.normalize(CONTAINER, &mut desired).expect("valid");
            let address = Address::new(format!("{CONTAINER}.{name}"));
            let step = Step {
                address: address.clone(),
                type_name: CONTAINER.into(),
                operation: Operation::Create,
                prior: None,
                desired: Some(desired),
                changed: Vec::new(),
            };
            made.push(name);
            let state = p.apply(&step).await?.expect("create returns attributes");
            stored.push((address, state));
        }
        println!("| containers | requests per observe | connections opened in {RUNS} observes | median wall (ms) |");
        println!("|---|---|---|---|");
        for &n in &sizes {
            let requests: Vec<ObserveRequest> = stored[..n]
                .iter()
                .map(|(address, a)| ObserveRequest {
                    address: address.clone(),
                    type_name: CONTAINER.into(),
                    attrs: a.clone(),
                })
                .collect();
            let mut times = Vec::new();
            let (mut calls, mut conns) = (0, 0);
            for _ in 0..RUNS {
                let (c0, k0) = (p.api_calls(), p.connections());
                let t = Instant::now();
                let found = p.observe(&requests).await?;
                times.push(t.elapsed());
                calls = p.api_calls() - c0;
                conns += p.connections() - k0;
                assert!(found.iter().all(|o| matches!(o, Observed::Present(_))));
            }
            times.sort();
            let median: Duration = times[RUNS / 2];
            println!(
                "| {n} | {calls} | {conns} | {:.1} |",
                median.as_secs_f64() * 1000.0
            );
        }
        Ok::<_, terrace_provider::ProviderError>(())
    }
    .await;
    // Removed whatever happened; by the CLI, so that a broken provider cannot leak them.
    for chunk in made.chunks(100) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(chunk)
            .output();
    }
    if let Err(e) = result {
        eprintln!("observe_scale: {e}");
        std::process::exit(1);
    }
}
