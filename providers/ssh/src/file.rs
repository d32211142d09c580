//! `host_file`: a regular file's content, mode, owner and group.
//!
//! State keeps the content (so that plans can show a line diff); the host is compared
//! by SHA-256, and a file's content is transferred only when its hash differs (then
//! the plan shows what changed), only for world-readable files, and size-capped. Writes go to a temp file
//! in the same directory whose mode and owner are set before an atomic rename, so
//! readers never see a half-written file or one with the wrong permissions, and the
//! content travels inside the script on stdin, never on a command line.

use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, ProviderResult, Value};

use crate::attrs::{opt_str, req_str, valid_account};
use crate::probe::{tag, Probe, ProbeOutput};
use crate::schema::FILE;
use crate::script::{quote, sha256_hex, write_data};

/// Canonical form of a mode: four octal digits, e.g. `0644`, `4755`.
pub(crate) fn normalize_mode(v: &Value) -> ProviderResult<String> {
    let raw = match v {
        Value::String(s) => s.trim().trim_start_matches("0o").to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let ok = !raw.is_empty() && raw.len() <= 4 && raw.chars().all(|c| ('0'..='7').contains(&c));
    if !ok {
        return Err(ProviderError::Invalid(format!(
            "{FILE}: mode {v} is not an octal file mode such as \"0644\""
        )));
    }
    Ok(format!("{raw:0>4}"))
}

fn check_path(path: &str) -> ProviderResult<()> {
    if !path.starts_with('/') || path.ends_with('/') || path.contains(['\n', '\0']) {
        return Err(ProviderError::Invalid(format!(
            "{FILE}: path {path:?} must be an absolute file path"
        )));
    }
    Ok(())
}

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    check_path(req_str(FILE, a, "path")?)?;
    if let Some(content) = opt_str(FILE, a, "content")? {
        // Always derived from the content, never given: content holding a value known
        // only after apply (a generated password) is normalised again once it is filled
        // in, and the hash must then describe the filled-in text.
        let sha = sha256_hex(content.as_bytes());
        a.insert("content_sha256".into(), sha.into());
    }
    if let Some(m) = a.get("mode").filter(|v| !v.is_null()) {
        let m = normalize_mode(m)?;
        a.insert("mode".into(), m.into());
    }
    for k in ["owner", "group"] {
        if let Some(v) = opt_str(FILE, a, k)? {
            if !valid_account(v) {
                return Err(ProviderError::Invalid(format!(
                    "{FILE}: {k} {v:?} is not a valid account name"
                )));
            }
        }
    }
    Ok(())
}

/// The largest file whose live content a probe fetches to show a line diff.
pub(crate) const DIFF_MAX_FILE: u64 = 64 * 1024;
/// The most live content one probe fetches, over all files.
const DIFF_MAX_TOTAL: u64 = 1024 * 1024;

/// How many files one `stat` and one `sha256sum` take at most: keeps their command lines
/// far below the host's argument-size limit (`ARG_MAX`) with long paths.
const BATCH: usize = 256;

/// Shell functions shared by every file of a probe, defined once per script; each file
/// then costs two short lines of script, and no process of its own unless something is
/// wrong with it (or it drifted and its content is fetched).
///
/// - `tf_kind TAG PATH` classifies a path with shell built-ins only and leaves it in
///   `tf_r` when it is a regular file this user may read (counted in `nf`), empty
///   otherwise; every other case is reported on TAG at once.
/// - `tf_next TAG PATH WANT` reports a regular file from the next line of the batch's
///   `stat` (fd 3) and `sha256sum` (fd 4) outputs, read in the order the files were given.
/// - `tf_file TAG PATH WANT STAT HASH` reports it from those lines; either left empty (the
///   batch command failed: some file changed or could not be read under it, so its lines
///   no longer line up with the files) is computed for this file alone, as before
///   batching, so that every problem is still this file's own error. When the hash
///   differs from WANT (empty for private files), the content is fetched, size-capped.
const HELPERS: &str = r#"tb=0
tf_kind() {
  tf_r=
  if [ -L "$2" ]; then printf '%s kind symlink %s\n' "$1" "$(readlink -- "$2" | tr '\n' ' ')"
  elif [ -d "$2" ]; then echo "$1 kind directory"
  elif [ -f "$2" ]; then
    echo "$1 kind file"
    if [ -r "$2" ]; then tf_r=$2; nf=$((nf + 1))
    else echo "$1 error cannot read the file (permission denied?)"; fi
  elif [ -e "$2" ]; then echo "$1 kind other"
  else echo "$1 kind absent"; fi
}
tf_next() {
  tf_l=; tf_h=
  if [ $sto -eq 0 ]; then IFS= read -r tf_l <&3; fi
  if [ $sho -eq 0 ]; then IFS= read -r tf_h <&4; tf_h=${tf_h#\\}; tf_h=${tf_h%% *}; fi
  tf_file "$1" "$2" "$3" "$tf_l" "$tf_h"
}
tf_file() {
  tf_t=$1 tf_p=$2 tf_w=$3 tf_s=$4 tf_h=$5
  if [ -z "$tf_s" ] && ! tf_s=$(stat -c '%a %U %G %s' -- "$tf_p" 2>&1); then
    printf '%s error cannot stat the file: %s\n' "$tf_t" "$(printf '%s' "$tf_s" | tr '\n' ' ')"
    return
  fi
  printf '%s stat %s\n' "$tf_t" "$tf_s"
  if [ -z "$tf_h" ]; then
    if tf_h=$(sha256sum <"$tf_p" 2>/dev/null); then tf_h=${tf_h%% *}
    else printf '%s error cannot read the file (permission denied?)\n' "$tf_t"; return; fi
  fi
  printf '%s sha %s\n' "$tf_t" "$tf_h"
  if [ -n "$tf_w" ] && [ "$tf_h" != "$tf_w" ]; then
    set -- $tf_s
    case "$1" in
      *[4567])
        if [ "$4" -le TF_MAX ] && [ $((tb + $4)) -le TF_TOTAL ]; then
          tb=$((tb + $4))
          printf '%s content %s\n' "$tf_t" "$(base64 <"$tf_p" | tr -d '\n')"
        fi ;;
    esac
  fi
}
"#;

/// One file of a probe batch, checked: its request index, quoted path and expected hash.
struct Planned {
    i: usize,
    path: String,
    want: String,
}

/// Probes every file of a batch (request index and attributes) with a constant number
/// of processes on the host, whatever the number of files: shell built-ins classify each
/// path, then one `stat` and one `sha256sum` (per [`BATCH`] files) read every regular
/// file. Every problem (a symlink, a directory, an unreadable file) is still reported on
/// the file's own tag, so that it is this resource's error and never the host's. When
/// the live content differs from the expected hash, the content itself is fetched
/// (base64, size-capped) so that the plan can show a line diff, but only for files
/// everyone on the host may read: a private file may hold secrets, and its content never
/// leaves the host.
///
/// Returns the files whose attributes cannot be probed (invalid path), to fail alone.
pub(crate) fn probe_all(p: &mut Probe, files: &[(usize, &Attrs)]) -> Vec<(usize, ProviderError)> {
    let mut failed = Vec::new();
    let mut planned = Vec::new();
    for &(i, a) in files {
        match plan_one(i, a) {
            Ok(f) => planned.push(f),
            Err(e) => failed.push((i, e)),
        }
    }
    if planned.is_empty() {
        return failed;
    }
    p.push(
        &HELPERS
            .replace("TF_MAX", &DIFF_MAX_FILE.to_string())
            .replace("TF_TOTAL", &DIFF_MAX_TOTAL.to_string()),
    );
    for chunk in planned.chunks(BATCH) {
        batch(p, chunk);
    }
    failed
}

fn plan_one(i: usize, a: &Attrs) -> ProviderResult<Planned> {
    let path = req_str(FILE, a, "path")?;
    check_path(path)?;
    // A file recorded as private (no read for others) is never fetched, even if it
    // was made readable by hand since: its content may be a secret.
    let private = a
        .get("mode")
        .and_then(|m| normalize_mode(m).ok())
        .is_some_and(|m| m.ends_with(['0', '1', '2', '3']));
    // Only a well-formed hash goes into the script (it comes from state or config).
    let want = opt_str(FILE, a, "content_sha256")
        .ok()
        .flatten()
        .filter(|h| !private && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("");
    Ok(Planned {
        i,
        path: quote(path),
        want: want.to_string(),
    })
}

/// The sh text for one batch of files: classify each (built-ins only), one `stat` and
/// one `sha256sum` over the regular readable ones, then each file's report from their
/// output lines, read back in the order the files were given.
fn batch(p: &mut Probe, files: &[Planned]) {
    let mut s = String::from("nf=0\n");
    // 1. Classify. `fN` holds the path of each regular, readable file, empty otherwise
    //    (always assigned: the environment could hold a variable of that name).
    for f in files {
        s.push_str(&format!(
            "tf_kind {t} {path}; f{i}=$tf_r\n",
            t = tag(f.i),
            path = f.path,
            i = f.i
        ));
    }
    // 2. One stat and one sha256sum over them. `${fN:+"$fN"}` is one word when the
    //    file is regular, none otherwise: paths are never split or globbed. Neither
    //    prints a file's name where it is read back (only sha256sum's hash, first).
    let args: Vec<String> = files
        .iter()
        .map(|f| format!("${{f{i}:+\"$f{i}\"}}", i = f.i))
        .collect();
    let args = args.join(" ");
    s.push_str(&format!(
        r#"sto=1; sho=1
if [ "$nf" -gt 0 ]; then
  st=$(stat -c '%a %U %G %s' -- {args} 2>/dev/null) && sto=0
  sums=$(sha256sum -- {args} 2>/dev/null) && sho=0
fi
if [ $sto -eq 0 ]; then exec 3<<TERRACE_STAT_END_
$st
TERRACE_STAT_END_
fi
if [ $sho -eq 0 ]; then exec 4<<TERRACE_SHA_END_
$sums
TERRACE_SHA_END_
fi
"#
    ));
    // 3. Each regular file's report, from the next line of each output.
    for f in files {
        s.push_str(&format!(
            "[ -z \"$f{i}\" ] || tf_next {t} \"$f{i}\" '{want}'\n",
            t = tag(f.i),
            i = f.i,
            want = f.want
        ));
    }
    s.push_str("exec 3<&- 4<&-\n");
    p.push(&s);
}

/// The live content of a file that changed on the host but is not fetched (not
/// world-readable, too large, or not text), in place of its text.
pub const CONTENT_NOT_SHOWN: &str = "(changed on the host; the live content is not shown: the file is not world-readable, too large or not text)";

/// The live content from a probe line, when it is text worth a line diff.
fn live_content(encoded: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    if bytes.len() as u64 > DIFF_MAX_FILE || bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

pub(crate) fn answer(
    out: &ProbeOutput,
    i: usize,
    req: &ObserveRequest,
) -> ProviderResult<Observed> {
    let t = tag(i);
    let path = req_str(FILE, &req.attrs, "path")?;
    let fail = |why: &str| ProviderError::Operation {
        address: req.address.clone(),
        message: format!("{path}: {why}"),
    };
    if let Some(why) = out.get(&t, "error") {
        return Err(fail(why));
    }
    match out.get(&t, "kind") {
        Some("absent") => Ok(Observed::Absent),
        Some("file") => {
            let stat = out.get(&t, "stat").ok_or_else(|| fail("cannot stat"))?;
            let mut parts = stat.split(' ');
            let (Some(mode), Some(owner), Some(group)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(fail("cannot stat"));
            };
            let sha = out
                .get(&t, "sha")
                .ok_or_else(|| fail("cannot read the file (permission denied?)"))?;
            let mut live = Attrs::new();
            live.insert("path".into(), path.into());
            live.insert("content_sha256".into(), sha.into());
            match out.get(&t, "content").and_then(live_content) {
                Some(content) => {
                    live.insert("content".into(), content.into());
                }
                // Drifted, but not fetched: the plan must not draw its diff from the
                // recorded content as if that were what the host holds.
                None if opt_str(FILE, &req.attrs, "content_sha256")?
                    .is_some_and(|recorded| recorded != sha) =>
                {
                    live.insert("content".into(), CONTENT_NOT_SHOWN.into());
                }
                None => {}
            }
            live.insert("mode".into(), format!("{mode:0>4}").into());
            live.insert("owner".into(), owner.into());
            live.insert("group".into(), group.into());
            Ok(Observed::Present(live))
        }
        Some("directory") => Err(fail(
            "is a directory, not a regular file; terrace does not replace it: \
             remove it by hand, or change the path",
        )),
        Some(kind) if kind.starts_with("symlink") => {
            let target = kind.trim_start_matches("symlink").trim();
            Err(fail(&format!(
                "is a symbolic link (to {target:?}), not a regular file; terrace does not \
                 write through links: remove the link to let apply write the file"
            )))
        }
        Some(_) => Err(fail(
            "exists but is not a regular file (a device, socket or pipe)",
        )),
        None => Err(fail("the probe did not report it")),
    }
}

/// The script that makes the file match `a` (already normalised).
pub(crate) fn write_script(a: &Attrs) -> ProviderResult<String> {
    let path = req_str(FILE, a, "path")?;
    check_path(path)?;
    let mut s = format!(
        r#"set -e
p={path}
d=$(dirname -- "$p")
if [ ! -d "$d" ]; then echo "directory $d does not exist" >&2; exit 3; fi
if [ -L "$p" ]; then echo "$p is a symbolic link; terrace does not write through links" >&2; exit 3; fi
if [ -e "$p" ] && [ ! -f "$p" ]; then echo "$p exists but is not a regular file" >&2; exit 3; fi
"#,
        path = quote(path)
    );
    match opt_str(FILE, a, "content")? {
        Some(content) => {
            s.push_str("t=$(mktemp -- \"$d/.terrace.XXXXXX\")\ntrap 'rm -f -- \"$t\"' EXIT\n");
            s.push_str(&write_data("\"$t\"", content.as_bytes()));
            // Keep what the configuration leaves unset as it was.
            s.push_str(
                "if [ -e \"$p\" ]; then chmod --reference=\"$p\" \"$t\"; \
                 chown --reference=\"$p\" \"$t\" 2>/dev/null || true; \
                 else chmod 0644 \"$t\"; fi\n",
            );
        }
        None => {
            // Content unmanaged: make sure the file exists, change it in place.
            s.push_str("if [ ! -e \"$p\" ]; then (umask 022; : >\"$p\"); fi\nt=$p\n");
        }
    }
    if let Some(mode) = opt_str(FILE, a, "mode")? {
        s.push_str(&format!(
            "chmod {} \"$t\"\n",
            quote(&normalize_mode(&mode.into())?)
        ));
    }
    match (opt_str(FILE, a, "owner")?, opt_str(FILE, a, "group")?) {
        (Some(o), Some(g)) => {
            s.push_str(&format!("chown -- {} \"$t\"\n", quote(&format!("{o}:{g}"))))
        }
        (Some(o), None) => s.push_str(&format!("chown -- {} \"$t\"\n", quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp -- {} \"$t\"\n", quote(g))),
        (None, None) => {}
    }
    if a.get("content").is_some_and(|v| !v.is_null()) {
        s.push_str("mv -f -- \"$t\" \"$p\"\ntrap - EXIT\n");
    }
    Ok(s)
}

/// The script that removes the file (already gone is fine).
pub(crate) fn delete_script(a: &Attrs) -> ProviderResult<String> {
    let path = req_str(FILE, a, "path")?;
    check_path(path)?;
    Ok(format!("rm -f -- {}\n", quote(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn modes_become_four_octal_digits() {
        assert_eq!(normalize_mode(&json!("644")).unwrap(), "0644");
        assert_eq!(normalize_mode(&json!("0o600")).unwrap(), "0600");
        assert_eq!(normalize_mode(&json!(755)).unwrap(), "0755");
        assert_eq!(normalize_mode(&json!("4755")).unwrap(), "4755");
        assert!(normalize_mode(&json!("0999")).is_err());
        assert!(normalize_mode(&json!("rw-r--r--")).is_err());
    }

    #[test]
    fn normalize_adds_the_content_hash() {
        let mut a = attrs(json!({"path": "/etc/x", "content": "abc", "mode": "600"}));
        normalize(&mut a).unwrap();
        assert_eq!(
            a["content_sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(a["mode"], "0600");
        let mut rel = attrs(json!({"path": "etc/x"}));
        assert!(normalize(&mut rel).is_err());
    }

    #[test]
    fn a_probe_quotes_paths_and_runs_one_stat_and_one_sha256sum_per_batch() {
        let hostile = attrs(json!({"path": "/tmp/a'$(reboot)' b", "content": "x"}));
        let mut others: Vec<Attrs> = (0..300)
            .map(|i| attrs(json!({"path": format!("/etc/f{i}")})))
            .collect();
        others.insert(0, hostile);
        let files: Vec<(usize, &Attrs)> = others.iter().enumerate().collect();
        let mut p = Probe::default();
        assert!(probe_all(&mut p, &files).is_empty());
        let s = p.finish();
        assert!(
            s.contains(r"tf_kind r0 '/tmp/a'\''$(reboot)'\'' b'; f0=$tf_r"),
            "{s}"
        );
        // 301 files: two batches, each one stat and one sha256sum.
        assert_eq!(s.matches("$(stat -c '%a %U %G %s' -- ${f").count(), 2);
        assert_eq!(s.matches("$(sha256sum -- ${f").count(), 2);
        assert_eq!(s.matches("tf_next r300 \"$f300\" ''").count(), 1);
        // A path the probe cannot ask about fails alone.
        let bad = attrs(json!({"path": "relative"}));
        let mut p = Probe::default();
        let failed = probe_all(&mut p, &[(0, &others[1]), (1, &bad)]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
    }

    #[test]
    fn content_travels_in_the_script_never_as_an_argument() {
        let a = attrs(
            json!({"path": "/etc/app/secret.env", "content": "DB_PASSWORD=hunter2\n",
                             "mode": "0600", "owner": "root", "group": "root"}),
        );
        let s = write_script(&a).unwrap();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains(&crate::script::base64(b"DB_PASSWORD=hunter2\n")));
        // Permissions are set on the temp file before it is renamed into place.
        let chmod = s.find("chmod '0600'").unwrap();
        let chown = s.find("chown -- 'root:root'").unwrap();
        let mv = s.find("mv -f").unwrap();
        assert!(chmod < mv && chown < mv, "{s}");
        assert!(s.contains("mktemp -- \"$d/.terrace.XXXXXX\""), "{s}");
    }
}
