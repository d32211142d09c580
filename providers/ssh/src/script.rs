//! Building the POSIX sh scripts sent to hosts.
//!
//! Every remote command line is the fixed [`wrapper`]: it saves the script arriving on
//! stdin to a private (0600) temp file and runs it with stdin from /dev/null. Scripts
//! therefore never appear in a process list, commands inside them cannot swallow the
//! rest of the script by reading stdin, and data (file contents, user commands) is
//! embedded as base64 in quoted here-documents, never as arguments.

/// Exit status of a script that the host itself stopped at its time limit
/// (coreutils' and busybox's `timeout`).
pub(crate) const TIMED_OUT: i32 = 124;

/// The one command line ever sent: fixed text, no data in it but the time limit in
/// seconds. The host stops the script itself after `limit_secs` (where `timeout`
/// exists), so that a command terrace gave up on does not run on forever.
pub(crate) fn wrapper(sudo: bool, limit_secs: u64) -> String {
    // 077 only while the script is saved (it may carry secrets); the script itself runs
    // with the usual 022, so directories and files it creates are readable as expected.
    let body = format!(
        "umask 077; f=$(mktemp) || exit 125; cat >\"$f\"; umask 022; \
         if command -v timeout >/dev/null 2>&1; then timeout -k 5 {limit_secs} sh \"$f\" </dev/null; \
         else sh \"$f\" </dev/null; fi; rc=$?; rm -f \"$f\"; exit $rc"
    );
    if sudo {
        format!("sudo -n sh -c '{body}'")
    } else {
        format!("sh -c '{body}'")
    }
}

/// Quotes a string for sh: single quotes, with inner `'` as `'\''`.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The here-document terminator. `_` and `-` are not in the standard base64 alphabet,
/// so no line of encoded data can end the document early.
const EOD: &str = "TERRACE_DATA_END_-";

/// Sh text that writes `data` (any bytes) to the file named by the sh expression
/// `dest` (e.g. `"$tmp"`), through base64 so that binary and newline-less content
/// survive unchanged.
pub(crate) fn write_data(dest: &str, data: &[u8]) -> String {
    let mut s = format!("base64 -d >{dest} <<'{EOD}'\n");
    for chunk in base64(data).as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(EOD);
    s.push('\n');
    s
}

/// Sh text that runs `command` (a user-supplied sh script) from a private temp file,
/// with stdin from /dev/null, leaving its exit status in `$rc`. `out` redirects its
/// output (e.g. `>/dev/null 2>&1`, or empty).
pub(crate) fn run_user_script(command: &str, out: &str) -> String {
    format!(
        "uf=$(mktemp) || exit 125\n{}sh \"$uf\" </dev/null {out}; rc=$?; rm -f \"$uf\"\n",
        write_data("\"$uf\"", command.as_bytes())
    )
}

/// Like [`run_user_script`], from the file named by the sh expression `path`, inside a
/// private directory that the caller makes and removes.
pub(crate) fn run_user_script_at(path: &str, command: &str, out: &str) -> String {
    format!(
        "{}sh {path} </dev/null {out}; rc=$?\n",
        write_data(path, command.as_bytes())
    )
}

/// Standard base64 (RFC 4648) with padding, as `base64 -d` on the host reads it.
pub(crate) fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Lower-case hex SHA-256 of `data`, as `sha256sum` prints it.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_fixed_and_carries_no_data() {
        for sudo in [false, true] {
            let w = wrapper(sudo, 60);
            assert!(w.contains("cat >\"$f\""), "{w}");
            assert!(w.contains("</dev/null"), "{w}");
            assert_eq!(w.starts_with("sudo -n "), sudo);
            // The wrapper is single-quoted for the remote shell: it must not contain '.
            assert_eq!(w.matches('\'').count(), 2, "{w}");
        }
    }

    #[test]
    fn data_is_base64_in_a_quoted_heredoc() {
        let secret = b"password='x' $(rm -rf /)\nline2";
        let s = write_data("\"$t\"", secret);
        assert!(!s.contains("password"), "{s}");
        assert!(s.starts_with("base64 -d >\"$t\" <<'TERRACE_DATA_END_-'\n"));
        assert!(s.contains(&base64(secret)));
        assert!(s.ends_with("TERRACE_DATA_END_-\n"));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
