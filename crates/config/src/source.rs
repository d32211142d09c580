//! Source files and byte-range locations inside them.
//!
//! Every diagnostic quotes the file it points into, so files are kept whole and shared.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

/// What loading reads besides the configuration files it is given: the files they
/// refer to (templates, `--var-file`s) and the home directory (for `~/` paths). The
/// language core does no I/O of its own: [`crate::load_dir`] passes [`OsEnv`], tests and
/// other front ends a [`MemoryEnv`] or their own.
pub trait Env {
    /// The text of the file at `path`.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The home directory, if known.
    fn home(&self) -> Option<PathBuf>;
    /// The names of the entries of directory `path`, or `None` if it does not exist
    /// (variables with a `directory`). Environments without directories have none.
    fn list_dir(&self, path: &Path) -> std::io::Result<Option<Vec<String>>> {
        let _ = path;
        Ok(None)
    }
}

/// The real file system and `$HOME`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEnv;

impl Env for OsEnv {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }

    fn list_dir(&self, path: &Path) -> std::io::Result<Option<Vec<String>>> {
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            // Names that are not UTF-8 cannot be instance keys: they are skipped.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(Some(names))
    }
}

/// Files and a home directory held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryEnv {
    /// File texts by path (as the configuration resolves them: absolute, or joined to
    /// the configuration directory).
    pub files: BTreeMap<PathBuf, String>,
    /// The home directory.
    pub home: Option<PathBuf>,
}

impl Env for MemoryEnv {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
        })
    }

    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }

    fn list_dir(&self, path: &Path) -> std::io::Result<Option<Vec<String>>> {
        let names: Vec<String> = self
            .files
            .keys()
            .filter(|f| f.parent() == Some(path))
            .filter_map(|f| Some(f.file_name()?.to_str()?.to_string()))
            .collect();
        Ok((!names.is_empty()).then_some(names))
    }
}

/// The configuration directory and the environment, as evaluation sees them.
#[derive(Clone, Copy)]
pub(crate) struct Fs<'a> {
    /// The configuration directory: relative paths resolve against it.
    pub dir: &'a Path,
    pub env: &'a dyn Env,
}

/// One configuration or variable file, kept in memory so diagnostics can quote it.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Files are shared by every location pointing into them.
pub(crate) type FileRef = Arc<SourceFile>;

impl SourceFile {
    /// Wraps a file's path and contents.
    pub fn new(path: PathBuf, text: String) -> FileRef {
        Arc::new(SourceFile { path, text })
    }

    /// The name diagnostics print (the path as the user gave it).
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// A miette source for this file.
    pub fn named_source(&self) -> NamedSource<String> {
        NamedSource::new(self.name(), self.text.clone()).with_language("hcl")
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A byte range in one file.
#[derive(Debug, Clone)]
pub(crate) struct Loc {
    pub file: FileRef,
    pub span: Range<usize>,
}

impl Loc {
    /// A location; parsed nodes always carry spans, but fall back to the file start.
    pub fn new(file: &FileRef, span: Option<Range<usize>>) -> Loc {
        Loc {
            file: file.clone(),
            span: span.unwrap_or(0..0),
        }
    }

    /// The range from the start of `self` to the end of `other` (same file).
    pub fn to(&self, other: &Loc) -> Loc {
        Loc {
            file: self.file.clone(),
            span: self.span.start..other.span.end.max(self.span.start),
        }
    }

    /// `path:line:col`, for messages that point into another file.
    pub fn describe(&self) -> String {
        let (line, col) = self.file.line_col(self.span.start);
        format!("{}:{line}:{col}", self.file.name())
    }

    /// True if both locations are in the same file.
    pub fn same_file(&self, other: &Loc) -> bool {
        Arc::ptr_eq(&self.file, &other.file)
    }
}
