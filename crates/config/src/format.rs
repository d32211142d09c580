//! Canonical formatting of a configuration file (`terrace fmt`), keeping comments.
//!
//! The file is parsed with hcl-edit and written again: two spaces of indentation per
//! block level, one space between a block's type, labels and `{`, the `=` of
//! consecutive one-line attributes aligned (as `terraform fmt` does: a run ends at a
//! blank line, a block or an attribute whose value spans lines, which is not aligned), at most one blank line in a row and none after `{` or before `}`, no
//! trailing spaces, one final newline. Expressions are kept as written; the lines of a
//! multi-line one move with its attribute (never the lines of a heredoc). Comments keep
//! their place. The result is parsed again and must mean the same as the input, or
//! nothing is formatted.

use hcl::edit::structure::{Attribute, Block, BlockLabel, Body, Structure};
use hcl::edit::{Decorate, Span};

/// Why a file cannot be formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// It does not parse.
    #[error("{0}")]
    Parse(String),
    /// Formatting would change its meaning (a bug in the formatter: nothing is written).
    #[error("formatting would change the meaning of the file, so it is left as it is")]
    Changed,
}

/// The canonical form of `src`.
pub fn format_hcl(src: &str) -> Result<String, FormatError> {
    let body = hcl::edit::parser::parse_body(src).map_err(|e| FormatError::Parse(e.to_string()))?;
    let mut f = Formatter {
        src,
        out: String::new(),
    };
    f.body(&body, 0);
    let mut out = f.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let again = hcl::edit::parser::parse_body(&out).map_err(|_| FormatError::Changed)?;
    if hcl::Body::from(again) != hcl::Body::from(body) {
        return Err(FormatError::Changed);
    }
    Ok(out)
}

struct Formatter<'s> {
    src: &'s str,
    out: String,
}

const INDENT: &str = "  ";

impl Formatter<'_> {
    fn body(&mut self, body: &Body, depth: usize) {
        let indent = INDENT.repeat(depth);
        let structures: Vec<&Structure> = body.iter().collect();
        let mut i = 0;
        while i < structures.len() {
            // A run of attributes whose `=` align.
            let mut end = i;
            if let Structure::Attribute(a) = structures[i] {
                end = i + 1;
                if !self.multiline(a) {
                    while let Some(Structure::Attribute(next)) = structures.get(end) {
                        if self.multiline(next)
                            || blank_line_in(next.decor().prefix().map(|p| &**p))
                        {
                            break;
                        }
                        end += 1;
                    }
                }
            }
            let width = structures[i..end.max(i + 1)]
                .iter()
                .filter_map(|s| s.as_attribute())
                .map(|a| a.key.as_str().chars().count())
                .max()
                .unwrap_or(0);
            for (n, s) in structures[i..end.max(i + 1)].iter().enumerate() {
                let first_in_body = i + n == 0;
                self.leading(s.decor().prefix().map(|p| &**p), &indent, first_in_body);
                match s {
                    Structure::Attribute(a) => self.attribute(a, &indent, width),
                    Structure::Block(b) => self.block(b, &indent, depth),
                }
                self.trailing(s.decor().suffix().map(|p| &**p));
                self.out.push('\n');
            }
            i = end.max(i + 1);
        }
        // Comments after the last structure.
        self.leading(
            body.decor().suffix().map(|p| &**p),
            &indent,
            structures.is_empty(),
        );
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
    }

    /// The blank lines and comment lines before a structure (or the end of a body),
    /// re-indented; blank lines collapsed to one, none at the start of a body.
    fn leading(&mut self, prefix: Option<&str>, indent: &str, first_in_body: bool) {
        let Some(prefix) = prefix else { return };
        let mut lines: Vec<&str> = prefix.split('\n').collect();
        // The last piece is the indentation of what follows (or of `}`).
        let last = lines.pop().unwrap_or("");
        let mut blank = false;
        let mut wrote_any = !first_in_body;
        for line in lines {
            let t = line.trim();
            if t.is_empty() {
                blank = true;
                continue;
            }
            if blank && wrote_any {
                self.out.push('\n');
            }
            blank = false;
            wrote_any = true;
            self.out.push_str(indent);
            self.out.push_str(t);
            self.out.push('\n');
        }
        if blank && wrote_any {
            self.out.push('\n');
        }
        // An inline comment before the structure on its own line (`/* x */ a = 1`).
        let t = last.trim();
        if !t.is_empty() {
            self.out.push_str(indent);
            self.out.push_str(t);
            self.out.push('\n');
        }
    }

    /// A comment after a structure on its line, kept as written but for trailing spaces.
    fn trailing(&mut self, suffix: Option<&str>) {
        if let Some(s) = suffix {
            let t = s.trim_end();
            if !t.trim().is_empty() {
                self.out.push_str(t);
            }
        }
    }

    fn attribute(&mut self, a: &Attribute, indent: &str, width: usize) {
        let key = a.key.as_str();
        self.out.push_str(indent);
        self.out.push_str(key);
        for _ in key.chars().count()..width {
            self.out.push(' ');
        }
        self.out.push_str(" = ");
        let column = indent.len() + width + 3;
        self.expression(a, column, indent.len());
    }

    /// The expression as written; its continuation lines shift with the attribute.
    fn expression(&mut self, a: &Attribute, new_column: usize, new_indent: usize) {
        let Some(span) = a.value.span() else {
            // Not from the parser (cannot happen for parsed input): encode it.
            self.out.push_str(a.value.to_string().trim());
            return;
        };
        let text = &self.src[span.clone()];
        let line_start = self.src[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let old_column = span.start - line_start;
        let old_indent = self.src[line_start..span.start]
            .chars()
            .take_while(|c| *c == ' ')
            .count();
        let mut lines = text.split('\n');
        self.out.push_str(lines.next().unwrap_or(""));
        let first = text.split('\n').next().unwrap_or("").trim_end();
        // Heredoc content is the value itself: never moved.
        let heredoc = text.contains("<<");
        // An opening bracket at the end of the first line: the block-style layout
        // follows the attribute's indentation; otherwise continuation lines hang under
        // the expression's start.
        let delta = if first.ends_with(['{', '[', '(']) {
            new_indent as isize - old_indent as isize
        } else {
            new_column as isize - old_column as isize
        };
        for line in lines {
            self.out.push('\n');
            if heredoc || line.trim().is_empty() {
                self.out.push_str(if heredoc { line } else { "" });
                continue;
            }
            let line = line.trim_end();
            if delta >= 0 {
                for _ in 0..delta {
                    self.out.push(' ');
                }
                self.out.push_str(line);
            } else {
                let spaces = line.chars().take_while(|c| *c == ' ').count();
                let cut = spaces.min(delta.unsigned_abs());
                self.out.push_str(&line[cut..]);
            }
        }
    }

    fn block(&mut self, b: &Block, indent: &str, depth: usize) {
        self.out.push_str(indent);
        self.out.push_str(b.ident.as_str());
        for label in &b.labels {
            self.out.push(' ');
            match (label, label.span()) {
                (_, Some(span)) => self.out.push_str(&self.src[span]),
                (BlockLabel::Ident(i), None) => self.out.push_str(i.as_str()),
                (BlockLabel::String(s), None) => self.out.push_str(&format!("{:?}", s.as_str())),
            }
        }
        if b.body.prefer_oneline() {
            match b.body.iter().next() {
                None => self.out.push_str(" {}"),
                Some(Structure::Attribute(a)) => {
                    self.out.push_str(" { ");
                    let key = a.key.as_str();
                    self.out.push_str(key);
                    self.out.push_str(" = ");
                    let column = self.current_column();
                    self.expression(a, column, indent.len());
                    self.out.push_str(" }");
                }
                Some(Structure::Block(_)) => unreachable!("a one-line block holds one attribute"),
            }
            return;
        }
        self.out.push_str(" {");
        // A comment after `{`.
        if let Some(c) = b.body.decor().prefix().map(|p| p.trim()) {
            if !c.is_empty() {
                self.out.push(' ');
                self.out.push_str(c);
            }
        }
        self.out.push('\n');
        if b.body.is_empty() && b.body.decor().suffix().is_none_or(|s| s.trim().is_empty()) {
            // `x {\n}`: written as `x {}`.
            self.out.pop();
            if self.out.ends_with(" {") {
                self.out.push('}');
                return;
            }
            self.out.push('\n');
        }
        self.body(&b.body, depth + 1);
        self.out.push_str(indent);
        self.out.push('}');
    }

    /// True if the attribute's value spans lines: it stands alone, unaligned.
    fn multiline(&self, a: &Attribute) -> bool {
        a.value
            .span()
            .is_some_and(|span| self.src[span].contains('\n'))
    }

    fn current_column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1)
    }
}

/// True if a structure's prefix holds a blank line, which ends an alignment run
/// (comment lines do not).
fn blank_line_in(prefix: Option<&str>) -> bool {
    let Some(p) = prefix else { return false };
    let mut lines: Vec<&str> = p.split('\n').collect();
    lines.pop();
    lines.iter().any(|l| l.trim().is_empty())
}
