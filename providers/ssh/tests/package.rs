//! host_package (apt) against a real sshd on this Debian machine.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Operation};
use terrace_provider_ssh::PACKAGE;

#[tokio::test]
async fn package_install_noop_absent() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    // `sl` is tiny, has no dependencies worth mentioning and no service.
    let absent = normalized(&p, PACKAGE, attrs(json!({"name": "sl", "state": "absent"})));
    step(&p, PACKAGE, Operation::Create, None, Some(&absent))
        .await
        .unwrap();
    assert_matches(&observe(&p, PACKAGE, &absent).await, &absent);
    let present = normalized(&p, PACKAGE, attrs(json!({"name": "sl"})));
    assert_eq!(observe(&p, PACKAGE, &present).await, Observed::Absent);

    let stored = step(&p, PACKAGE, Operation::Create, None, Some(&present))
        .await
        .unwrap()
        .unwrap();
    let live = observe(&p, PACKAGE, &present).await;
    assert_matches(&live, &present);
    let Observed::Present(live) = live else {
        unreachable!()
    };
    let version = live["version"].as_str().unwrap().to_string();
    assert!(!version.is_empty());
    assert!(std::path::Path::new("/usr/games/sl").exists());

    // Pinning the installed version is a no-op.
    let pinned = normalized(
        &p,
        PACKAGE,
        attrs(json!({"name": "sl", "version": version})),
    );
    assert_matches(&observe(&p, PACKAGE, &pinned).await, &pinned);
    step(&p, PACKAGE, Operation::Update, Some(&stored), Some(&pinned))
        .await
        .unwrap();

    // Deleting the resource leaves the package installed.
    step(&p, PACKAGE, Operation::Delete, Some(&pinned), None)
        .await
        .unwrap();
    assert!(std::path::Path::new("/usr/games/sl").exists());

    // state = "absent" removes it.
    step(&p, PACKAGE, Operation::Update, Some(&pinned), Some(&absent))
        .await
        .unwrap();
    assert!(!std::path::Path::new("/usr/games/sl").exists());
    assert_matches(&observe(&p, PACKAGE, &absent).await, &absent);
}

#[tokio::test]
async fn an_unknown_package_fails_clearly() {
    let p = provider("TERRACE_TEST_SSH_HOST2");
    let desired = normalized(
        &p,
        PACKAGE,
        attrs(json!({"name": "terrace-no-such-package"})),
    );
    let err = step(&p, PACKAGE, Operation::Create, None, Some(&desired))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("host testhost"), "{err}");
    assert!(err.contains("terrace-no-such-package"), "{err}");
}
