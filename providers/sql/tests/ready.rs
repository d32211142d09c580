//! Readiness: a provider for a server terrace has just started keeps retrying its first
//! connection for a bounded time, then fails with a clear error.

mod common;

use std::time::Duration;

use common::{server, ENGINES};
use terrace_provider::{Address, ObserveRequest, Provider};
use terrace_provider_sql::{SqlProvider, DATABASE};

fn request() -> Vec<ObserveRequest> {
    vec![ObserveRequest {
        address: Address::new("database.x"),
        type_name: DATABASE.to_string(),
        attrs: serde_json::from_value(serde_json::json!({"name": "x"})).unwrap(),
    }]
}

#[tokio::test]
async fn retries_until_the_ready_timeout_then_names_the_target() {
    for engine in ENGINES {
        let mut s = server(engine);
        // A port nothing listens on: every attempt is refused.
        s.port = 9;
        let provider = SqlProvider::new(s).with_ready_timeout(Duration::from_secs(1));
        let err = provider.observe(&request()).await.unwrap_err().to_string();
        assert!(err.contains("not accepting connections after 1s"), "{err}");
        assert!(err.contains("127.0.0.1:9"), "{err}");
    }
}

#[tokio::test]
async fn a_ready_server_connects() {
    for engine in ENGINES {
        let provider = SqlProvider::new(server(engine)).with_ready_timeout(Duration::from_secs(30));
        provider.observe(&request()).await.expect("observe");
    }
}

#[tokio::test]
async fn without_a_ready_timeout_a_refused_connection_fails_at_once() {
    let mut s = server(ENGINES[1]);
    s.port = 9;
    let err = SqlProvider::new(s)
        .observe(&request())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("not accepting connections after"),
        "should not retry: {err}"
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
}

#[tokio::test]
async fn a_refused_login_is_not_waited_for() {
    for engine in ENGINES {
        let mut s = server(engine);
        s.admin_password = terrace_provider::Secret::new("certainly-not-the-password");
        let provider = SqlProvider::new(s).with_ready_timeout(Duration::from_secs(30));
        let err = provider.observe(&request()).await.unwrap_err().to_string();
        // The server answered: that is an error to report, not a server still starting.
        assert!(!err.contains("not accepting connections after"), "{err}");
        assert!(
            err.contains("denied") || err.contains("authentication"),
            "{err}"
        );
    }
}
