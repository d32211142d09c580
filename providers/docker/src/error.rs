//! Turning bollard errors into provider errors free of secrets.

use bollard::errors::Error as BollardError;
use terrace_provider::{Address, Attrs, ProviderError, Value};

use crate::DockerProvider;

/// Values shorter than this are not scrubbed: replacing every `1` or `on` in a message
/// would garble it without protecting anything.
const MIN_SECRET_LEN: usize = 3;

/// The HTTP status of an engine error, if it is one.
pub(crate) fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The `env` values of the given attribute sets: everything a container step must keep
/// out of its messages.
pub(crate) fn env_secrets<'a>(sets: impl IntoIterator<Item = Option<&'a Attrs>>) -> Vec<String> {
    let mut out: Vec<String> = sets
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("env").and_then(Value::as_object))
        .flat_map(|m| m.values())
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .collect();
    // Longest first, so that a value containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `message` with every secret replaced by [`terrace_provider::REDACTED`].
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    terrace_provider::scrub(message, secrets)
}

impl DockerProvider {
    /// Engine answers become `Operation` errors for `address`; transport problems
    /// `Connect` errors naming the socket. Both are scrubbed of `secrets`.
    pub(crate) fn op_err(
        &self,
        address: &Address,
        what: &str,
        e: &BollardError,
        secrets: &[String],
    ) -> ProviderError {
        match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => ProviderError::Operation {
                address: address.clone(),
                message: scrub(&format!("{what}: {message} (HTTP {status_code})"), secrets),
            },
            BollardError::DockerStreamError { error } => ProviderError::Operation {
                address: address.clone(),
                message: scrub(&format!("{what}: {error}"), secrets),
            },
            other => ProviderError::Connect {
                target: self.engine().target(),
                message: scrub(&format!("{what}: {other}"), secrets),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use terrace_provider::REDACTED;

    #[test]
    fn errors_are_scrubbed_of_env_values() {
        let p = DockerProvider::new(crate::DockerEngine::default());
        let attrs: Attrs =
            serde_json::from_value(serde_json::json!({"env": {"A": "s3cret-pw", "B": "1"}}))
                .unwrap();
        let secrets = env_secrets([Some(&attrs)]);
        let e = BollardError::DockerResponseServerError {
            status_code: 409,
            message: "conflict near s3cret-pw".into(),
        };
        let err = p.op_err(&Address::new("a.b"), "create", &e, &secrets);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
    }
}
