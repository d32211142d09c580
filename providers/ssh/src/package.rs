//! `host_package`: an apt package, installed (optionally at an exact version) or absent.
//!
//! Deleting the resource only stops managing the package: it stays installed. Removing
//! packages is rarely what dropping a line of configuration means (others may depend
//! on it, and removal can take services down); `state = "absent"` is the explicit way.

use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, ProviderResult};

use crate::attrs::{opt_str, req_str};
use crate::probe::{Probe, ProbeOutput};
use crate::schema::PACKAGE;
use crate::script::quote;

fn check_name(n: &str) -> ProviderResult<()> {
    let (pkg, arch) = n.split_once(':').unwrap_or((n, "a"));
    let ok = pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !arch.is_empty()
        && arch.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(ProviderError::Invalid(format!(
            "{PACKAGE}: {n:?} is not a Debian package name"
        )));
    }
    Ok(())
}

fn check_version(v: &str) -> ProviderResult<()> {
    let ok = !v.is_empty()
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
    if !ok {
        return Err(ProviderError::Invalid(format!(
            "{PACKAGE}: {v:?} is not a Debian package version"
        )));
    }
    Ok(())
}

fn state(a: &Attrs) -> ProviderResult<&str> {
    match opt_str(PACKAGE, a, "state")? {
        None | Some("present") => Ok("present"),
        Some("absent") => Ok("absent"),
        Some(other) => Err(ProviderError::Invalid(format!(
            "{PACKAGE}: state {other:?} must be \"present\" or \"absent\""
        ))),
    }
}

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    check_name(req_str(PACKAGE, a, "name")?)?;
    if let Some(v) = opt_str(PACKAGE, a, "version")? {
        check_version(v)?;
    }
    let s = state(a)?.to_string();
    if s == "absent" && opt_str(PACKAGE, a, "version")?.is_some() {
        return Err(ProviderError::Invalid(format!(
            "{PACKAGE}: a version makes no sense with state = \"absent\""
        )));
    }
    a.insert("state".into(), s.into());
    Ok(())
}

/// One `dpkg-query` for every package of the batch.
pub(crate) fn probe(p: &mut Probe, requests: &[&ObserveRequest]) -> ProviderResult<()> {
    let mut names = Vec::new();
    for r in requests {
        let n = req_str(PACKAGE, &r.attrs, "name")?;
        check_name(n)?;
        names.push(quote(n));
    }
    p.push(&format!(
        "dpkg-query -W -f='pkg row ${{binary:Package}} ${{Package}} ${{db:Status-Status}} ${{Version}}\\n' -- {} 2>/dev/null\n",
        names.join(" ")
    ));
    Ok(())
}

/// The installed version, if the package is installed.
fn installed<'a>(out: &'a ProbeOutput, name: &str) -> Option<&'a str> {
    out.all("pkg", "row").find_map(|row| {
        let mut f = row.split(' ');
        let (bin, pkg, status, version) = (f.next()?, f.next()?, f.next()?, f.next()?);
        let same = if name.contains(':') {
            bin == name
        } else {
            pkg == name
        };
        (same && status == "installed").then_some(version)
    })
}

pub(crate) fn answer(out: &ProbeOutput, req: &ObserveRequest) -> ProviderResult<Observed> {
    let name = req_str(PACKAGE, &req.attrs, "name")?;
    let mut live = Attrs::new();
    live.insert("name".into(), name.into());
    match installed(out, name) {
        Some(v) => {
            live.insert("state".into(), "present".into());
            live.insert("version".into(), v.into());
            Ok(Observed::Present(live))
        }
        // Not installed is exactly what `state = "absent"` asks for: report it as the
        // managed object in that state, so the plan is a no-op rather than a re-create.
        None if state(&req.attrs)? == "absent" => {
            live.insert("state".into(), "absent".into());
            Ok(Observed::Present(live))
        }
        None => Ok(Observed::Absent),
    }
}

/// Exit status of the apply script when apt does not know the package (or version):
/// the provider then refreshes the package index once and tries again.
pub(crate) const NOT_FOUND: i32 = 40;

pub(crate) fn apply_script(a: &Attrs) -> ProviderResult<String> {
    let name = req_str(PACKAGE, a, "name")?;
    check_name(name)?;
    let apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
               -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
    if state(a)? == "absent" {
        return Ok(format!(
            "n={}\nif dpkg-query -W -f='${{db:Status-Status}}\\n' -- \"$n\" 2>/dev/null | grep -qx installed; then\n  {apt} remove -- \"$n\"\nfi\n",
            quote(name)
        ));
    }
    let spec = match opt_str(PACKAGE, a, "version")? {
        Some(v) => {
            check_version(v)?;
            format!("{name}={v}")
        }
        None => name.to_string(),
    };
    Ok(format!(
        r#"out=$({apt} install -- {spec} 2>&1); rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then
  case $out in
    *"Unable to locate package"*|*"has no installation candidate"*|*"was not found"*) exit {NOT_FOUND} ;;
  esac
  exit $rc
fi
"#,
        spec = quote(&spec)
    ))
}

/// Refreshes the package index.
pub(crate) const UPDATE_SCRIPT: &str =
    "DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update\n";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_versions_are_checked() {
        assert!(check_name("nginx-light").is_ok());
        assert!(check_name("libc6:amd64").is_ok());
        assert!(check_name("g++").is_ok());
        assert!(check_name("x; rm -rf /").is_err());
        assert!(check_name("-o").is_err());
        assert!(check_version("1:2.3-4+deb12u1").is_ok());
        assert!(check_version("1 2").is_err());
    }

    #[test]
    fn state_defaults_to_present() {
        let mut a: Attrs = serde_json::from_value(json!({"name": "sl"})).unwrap();
        normalize(&mut a).unwrap();
        assert_eq!(a["state"], "present");
    }

    #[test]
    fn installed_rows_are_matched_by_name() {
        let out = ProbeOutput::parse(
            "pkg row sl sl installed 5.02-1+b1\npkg row cowsay cowsay not-installed \nend ok\n",
            "",
        )
        .unwrap();
        assert_eq!(installed(&out, "sl"), Some("5.02-1+b1"));
        assert_eq!(installed(&out, "cowsay"), None);
        assert_eq!(installed(&out, "nope"), None);
    }
}
