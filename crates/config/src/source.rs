//! Source files and byte-range locations inside them.
//!
//! Every diagnostic quotes the file it points into, so files are kept whole and shared.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::NamedSource;

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
