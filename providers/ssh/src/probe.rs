//! The batched observe: one generated sh script per host, one remote command, however
//! many resources are asked about.
//!
//! Every line the script prints is `TAG KEY VALUE…`, where TAG is `r<N>` for the N-th
//! request or a shared tag (`pkg`, `nft`) for queries answered once for all requests;
//! the last line is `end ok`, so a script cut short is never mistaken for "absent".

use std::collections::HashMap;

use terrace_provider::{ProviderError, ProviderResult};

/// A probe script being assembled.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    script: String,
}

impl Probe {
    /// Appends sh text.
    pub(crate) fn push(&mut self, text: &str) {
        self.script.push_str(text);
        if !text.ends_with('\n') {
            self.script.push('\n');
        }
    }

    /// The whole script.
    pub(crate) fn finish(mut self) -> String {
        self.script.push_str("echo 'end ok'\n");
        self.script
    }
}

/// The tag of the `i`-th request's lines.
pub(crate) fn tag(i: usize) -> String {
    format!("r{i}")
}

/// The parsed output of a probe script.
#[derive(Debug, Default)]
pub(crate) struct ProbeOutput {
    lines: HashMap<String, Vec<(String, String)>>,
}

impl ProbeOutput {
    /// Parses the script's stdout; fails if the script did not run to its end.
    pub(crate) fn parse(stdout: &str, stderr: &str) -> ProviderResult<Self> {
        let mut out = ProbeOutput::default();
        let mut complete = false;
        for line in stdout.lines() {
            if line == "end ok" {
                complete = true;
                continue;
            }
            let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            out.lines
                .entry(tag.to_string())
                .or_default()
                .push((key.to_string(), value.to_string()));
        }
        if !complete {
            return Err(ProviderError::Invalid(format!(
                "the probe script stopped early: {}",
                stderr.trim()
            )));
        }
        Ok(out)
    }

    /// The first value of `key` under `tag`.
    pub(crate) fn get<'a>(&'a self, tag: &str, key: &'a str) -> Option<&'a str> {
        self.all(tag, key).next()
    }

    /// Every value of `key` under `tag`, in order.
    pub(crate) fn all<'a>(&'a self, tag: &str, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.lines
            .get(tag)
            .into_iter()
            .flatten()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True if `key` appears under `tag`.
    pub(crate) fn has(&self, tag: &str, key: &str) -> bool {
        self.get(tag, key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tagged_lines_and_requires_the_end_marker() {
        let out = ProbeOutput::parse(
            "r0 kind file\nr0 stat 644 root root\nr1 kind absent\nend ok\n",
            "",
        )
        .unwrap();
        assert_eq!(out.get("r0", "stat"), Some("644 root root"));
        assert_eq!(out.get("r1", "kind"), Some("absent"));
        assert!(!out.has("r2", "kind"));
        assert!(ProbeOutput::parse("r0 kind file\n", "killed").is_err());
    }
}
