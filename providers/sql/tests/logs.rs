//! Passwords never reach tracing output: neither our statement logs (redacted copies)
//! nor sqlx's own statement logging (switched off).

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use terrace_provider_sql::{SqlEngine, USER};

/// Records every tracing event's fields as text.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut out = self.0.lock().unwrap();
        attrs.record(&mut Fields(&mut out));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.0.lock().unwrap();
        out.push_str(event.metadata().target());
        out.push(' ');
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// With every tracing event enabled (ours and sqlx's), creating and updating a user
/// logs the statements with the password redacted and never the password itself.
async fn password_not_in_logs(engine: SqlEngine, logs: &Mutex<String>) {
    logs.lock().unwrap().clear();
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let u = attrs(json!({ "name": format!("{pre}_u") }));
    cleanup.add(USER, &u);
    let stored = create(&p, USER, &u).await.unwrap();
    let generated = stored["password"].as_str().unwrap().to_string();
    let mut u2 = stored.clone();
    u2.insert("password".into(), json!("Expl1citLoggedPw"));
    update(&p, USER, &stored, &u2, &["password"]).await.unwrap();
    let text = logs.lock().unwrap().clone();
    assert!(
        text.contains("(sensitive value)"),
        "statements are logged, redacted: {text}"
    );
    assert!(
        !text.contains(&generated),
        "generated password logged: {text}"
    );
    assert!(
        !text.contains("Expl1citLoggedPw"),
        "password logged: {text}"
    );
}

/// The only test in this binary: the capturing subscriber is the global default, so
/// no other test thread races with tracing's per-callsite interest cache.
#[tokio::test]
async fn passwords_not_in_logs() {
    let logs = Arc::new(Mutex::new(String::new()));
    tracing::subscriber::set_global_default(Capture(logs.clone())).unwrap();
    for engine in ENGINES {
        password_not_in_logs(engine, &logs).await;
    }
}
