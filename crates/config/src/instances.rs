//! Variables whose value is a directory of one file per instance:
//!
//! ```hcl
//! variable "clones" {
//!   type      = map(object({ ttl = string }))
//!   directory = "clones.d"   # clones.d/feature_123.json = { "ttl": "48h" }
//! }
//! ```
//!
//! The value is a map from each file's name without `.json` to its JSON content, in key
//! order. Adding an instance is creating one file, removing it deleting that file, so
//! two provisioning scripts that add instances at once never edit the same file and
//! cannot lose each other's (`terrace instance add` creates it atomically and
//! exclusively). A missing directory is an empty map; dot files (temporary files of a
//! writer) are skipped. The directory is read through [`Env`](crate::Env), relative to
//! the configuration directory; it replaces the variable's `default`, and the
//! environment, `--var-file` and `--var` still win over it.

use std::path::{Path, PathBuf};

use hcl::{Map, Value};

use crate::diagnostics::{ConfigError, ConfigErrors, ErrorKind};
use crate::source::Fs;
use crate::syntax::RawAttr;
use crate::types::describe;

/// The file name suffix of an instance file.
pub const INSTANCE_SUFFIX: &str = ".json";

/// Checks an instance key (a file name without `.json`): a letter or digit, then up to
/// 62 letters, digits, `_` or `-`, so that it is a safe file name and reads well in
/// addresses and names derived from it.
pub fn check_instance_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && key.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a valid instance name: use a letter or digit, then up to 62 letters, digits, '_' or '-'"
        ))
    }
}

/// The value of a variable with `directory = "..."`; `value` is the attribute's
/// (constant) value.
pub(crate) fn read(
    name: &str,
    attr: &RawAttr,
    value: Value,
    fs: Fs<'_>,
) -> Result<Value, ConfigError> {
    let dir = match value {
        Value::String(s) => s,
        other => {
            return Err(ConfigError::new(
                ErrorKind::WrongType,
                format!(
                    "\"directory\" of variable \"{name}\" must be a string, found {}",
                    describe(&other)
                ),
            )
            .at(&attr.loc, "not a path")
            .help("write it like `directory = \"clones.d\"`"))
        }
    };
    let path = fs.dir.join(&dir);
    let fail = |msg: String| {
        ConfigError::new(ErrorKind::InvalidValue, msg).at(
            &attr.loc,
            "the instances of this variable are read from here",
        )
    };
    let names = match fs.env.list_dir(&path) {
        Ok(Some(names)) => names,
        Ok(None) => return Ok(Value::Object(Map::new())),
        Err(e) => {
            return Err(fail(format!("cannot list {}: {e}", path.display()))
                .help("check that the directory is readable"))
        }
    };
    let mut keys: Vec<(String, PathBuf)> = names
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| {
            let key = n.strip_suffix(INSTANCE_SUFFIX)?.to_string();
            Some((key, path.join(&n)))
        })
        .collect();
    keys.sort();
    let mut out = Map::new();
    for (key, file) in keys {
        check_instance_key(&key).map_err(|m| {
            fail(format!("{}: {m}", file.display()))
                .help("rename or remove the file; `terrace instance add` checks names")
        })?;
        let text = fs
            .env
            .read(&file)
            .map_err(|e| fail(format!("cannot read {}: {e}", file.display())))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            fail(format!("{} is not valid JSON: {e}", file.display()))
                .help("an instance file holds one JSON value, e.g. {\"ttl\": \"48h\"}")
        })?;
        let value = hcl::to_value(json).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

/// Where the instance files of variable `name` of the configuration in `dir` live (its
/// `directory`, joined to `dir`), for `terrace instance add` and `rm`, which must not
/// need the variables a full load needs.
pub fn variable_directory(dir: &Path, name: &str) -> Result<PathBuf, ConfigErrors> {
    let files = crate::syntax::read_dir(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut declared = Vec::new();
    for (path, text) in files {
        let file = crate::source::SourceFile::new(path, text);
        let body = crate::syntax::parse(&file).map_err(|e| ConfigErrors(vec![e]))?;
        for block in body.blocks().filter(|b| b.ident.as_str() == "variable") {
            let label = block.labels.first().map(|l| l.as_str().to_string());
            let Some(label) = label else { continue };
            let directory = block
                .body
                .get_attribute("directory")
                .and_then(|a| a.value.as_str().map(str::to_string));
            if label == name {
                return match directory {
                    Some(d) => Ok(dir.join(d)),
                    None => Err(ConfigErrors(vec![ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("variable \"{name}\" has no literal `directory = \"...\"`"),
                    )
                    .help(
                        "declare where its instance files live, e.g. `directory = \"clones.d\"`",
                    )])),
                };
            }
            if directory.is_some() {
                declared.push(label);
            }
        }
    }
    let known = if declared.is_empty() {
        "no variable has a `directory`".to_string()
    } else {
        format!("variables with a directory: {}", declared.join(", "))
    };
    Err(ConfigErrors(vec![ConfigError::new(
        ErrorKind::UnknownReference,
        format!("no variable named \"{name}\" in {}", dir.display()),
    )
    .help(known)]))
}
