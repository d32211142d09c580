//! Configuration errors as miette diagnostics.
//!
//! Every error carries a stable code, the quoted source with a label on the exact
//! offending piece, and a help text. Errors are collected, never thrown one at a time.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::source::Loc;

/// The class of a configuration error; each has a stable diagnostic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or directory could not be read.
    Io,
    /// HCL syntax error.
    Parse,
    /// A block type the language does not know.
    UnknownBlock,
    /// An attribute the block does not accept.
    UnknownAttribute,
    /// A required attribute is absent.
    MissingAttribute,
    /// Wrong number of labels, or a label that is not a valid name.
    InvalidLabel,
    /// A value of the wrong type.
    WrongType,
    /// A value of the right type that is not allowed (port out of range, unknown engine).
    InvalidValue,
    /// A reference to something that is not declared.
    UnknownReference,
    /// A call to a function that does not exist.
    UnknownFunction,
    /// Two definitions of the same name or address.
    Duplicate,
    /// An SQL name (database, user, privilege, charset) that is not a plain identifier.
    InvalidIdentifier,
    /// Blocks that depend on each other.
    Cycle,
    /// An expression failed to evaluate.
    Eval,
    /// A variable without default and without a value.
    MissingVariable,
    /// A setting the chosen engine does not support.
    Unsupported,
    /// Tenants that do not fit on their hosts, or a host whose containers reserve more
    /// memory than it declares.
    Capacity,
}

impl ErrorKind {
    /// The diagnostic code, e.g. `terrace::config::unknown_attribute`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Io => "terrace::config::io",
            ErrorKind::Parse => "terrace::config::parse",
            ErrorKind::UnknownBlock => "terrace::config::unknown_block",
            ErrorKind::UnknownAttribute => "terrace::config::unknown_attribute",
            ErrorKind::MissingAttribute => "terrace::config::missing_attribute",
            ErrorKind::InvalidLabel => "terrace::config::invalid_label",
            ErrorKind::WrongType => "terrace::config::wrong_type",
            ErrorKind::InvalidValue => "terrace::config::invalid_value",
            ErrorKind::UnknownReference => "terrace::config::unknown_reference",
            ErrorKind::UnknownFunction => "terrace::config::unknown_function",
            ErrorKind::Duplicate => "terrace::config::duplicate",
            ErrorKind::InvalidIdentifier => "terrace::config::invalid_identifier",
            ErrorKind::Cycle => "terrace::config::cycle",
            ErrorKind::Eval => "terrace::config::eval",
            ErrorKind::MissingVariable => "terrace::config::missing_variable",
            ErrorKind::Unsupported => "terrace::config::unsupported",
            ErrorKind::Capacity => "terrace::config::capacity",
        }
    }
}

/// One configuration error: a message, the source it points into, labels and help.
// Boxed so that `Result<_, ConfigError>` stays small.
#[derive(Debug)]
pub struct ConfigError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    primary: Option<Loc>,
    source_code: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    notes: Vec<String>,
}

impl ConfigError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConfigError(Box::new(Inner {
            kind,
            message: message.into(),
            primary: None,
            source_code: None,
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
        }))
    }

    /// Replaces every secret in the texts this error prints (message, labels, help,
    /// notes) with `(sensitive value)`: a value that came from a sensitive variable must
    /// not reach the terminal through a diagnostic.
    pub(crate) fn scrub(&mut self, secrets: &[String]) {
        let scrub = |text: &mut String| *text = terrace_provider::scrub(text, secrets);
        let inner = &mut *self.0;
        // The quoted source too, masked with as many bytes so that spans still point
        // at the same text: a literal secret near an error must not be printed.
        if let Some(primary) = &inner.primary {
            let text = &primary.file.text;
            if secrets
                .iter()
                .any(|s| !s.is_empty() && text.contains(s.as_str()))
            {
                let mut masked = text.clone();
                for s in secrets.iter().filter(|s| !s.is_empty()) {
                    masked = masked.replace(s.as_str(), &"*".repeat(s.len()));
                }
                inner.source_code =
                    Some(NamedSource::new(primary.file.name(), masked).with_language("hcl"));
            }
        }
        scrub(&mut inner.message);
        if let Some(h) = inner.help.as_mut() {
            scrub(h);
        }
        inner.notes.iter_mut().for_each(scrub);
        for label in &mut inner.labels {
            let Some(old) = label.label() else { continue };
            let mut text = old.to_string();
            scrub(&mut text);
            if text != old {
                *label = if label.primary() {
                    LabeledSpan::new_primary_with_span(Some(text), *label.inner())
                } else {
                    LabeledSpan::new_with_span(Some(text), *label.inner())
                };
            }
        }
    }

    /// Adds a label. The first one decides the file shown; a label in another file
    /// (miette quotes one file per diagnostic) becomes a note with its `path:line:col`.
    pub(crate) fn at(mut self, loc: &Loc, label: impl Into<String>) -> Self {
        let label = label.into();
        match &self.0.primary {
            None => {
                self.0.source_code = Some(loc.file.named_source());
                self.0.labels.push(LabeledSpan::new_primary_with_span(
                    Some(label),
                    loc.span.clone(),
                ));
                self.0.primary = Some(loc.clone());
            }
            Some(primary) if primary.same_file(loc) => {
                self.0
                    .labels
                    .push(LabeledSpan::new_with_span(Some(label), loc.span.clone()));
            }
            Some(_) => self.0.notes.push(format!("{label}: {}", loc.describe())),
        }
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    /// The error's class.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The help text, if any (notes about other files included).
    pub fn help_text(&self) -> Option<String> {
        let mut parts: Vec<&str> = self.0.help.iter().map(String::as_str).collect();
        parts.extend(self.0.notes.iter().map(String::as_str));
        (!parts.is_empty()).then(|| parts.join("\n"))
    }

    /// Orders errors by file and position; errors without a location come last.
    pub(crate) fn sort_key(&self) -> (bool, String, usize) {
        match &self.0.primary {
            Some(l) => (false, l.file.name(), l.span.start),
            None => (true, String::new(), 0),
        }
    }

    /// `path:line:col` of the primary label, if the error points into a file.
    pub fn location(&self) -> Option<String> {
        self.0.primary.as_ref().map(Loc::describe)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.0.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help_text()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source_code.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.0.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.0.labels.iter().cloned()))
        }
    }
}

/// All errors found while loading a configuration; renders each as a related diagnostic.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none (never the case for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "1 error in the configuration"),
            n => write!(f, "{n} errors in the configuration"),
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl Diagnostic for ConfigErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("terrace::config"))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.0.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean "x"?` if a candidate is close, else `fallback`.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    fallback: impl FnOnce(Vec<&'a str>) -> String,
) -> String {
    match closest(name, candidates.clone()) {
        Some(c) => format!("did you mean \"{c}\"?"),
        None => fallback(candidates.into_iter().collect()),
    }
}

/// Lists names for help texts: `"a", "b" or "c"`.
pub(crate) fn list_names(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.len() {
        0 => "(none)".to_string(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
