//! `host_service`: whether a service runs, starts at boot, and restarts when its
//! `restart_on` token changes.
//!
//! Hosts whose PID 1 is systemd are driven with `systemctl`; others (containers, this
//! project's CI) through the Debian init scripts with `service NAME start|stop|…` and
//! `update-rc.d`. Deleting the resource stops managing the service and leaves it as it
//! is: stopping something because a line left the configuration would be a surprise
//! outage.

use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, ProviderResult};

use crate::attrs::{opt_bool, opt_str, req_str};
use crate::probe::{tag, Probe, ProbeOutput};
use crate::schema::SERVICE;
use crate::script::quote;

fn check_name(n: &str) -> ProviderResult<()> {
    let ok = !n.is_empty()
        && !n.starts_with(['-', '.'])
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c));
    if !ok {
        return Err(ProviderError::Invalid(format!(
            "{SERVICE}: {n:?} is not a service name"
        )));
    }
    Ok(())
}

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    check_name(req_str(SERVICE, a, "name")?)?;
    let running = opt_bool(SERVICE, a, "running")?.unwrap_or(true);
    a.insert("running".into(), running.into());
    opt_bool(SERVICE, a, "enabled")?;
    opt_str(SERVICE, a, "restart_on")?;
    Ok(())
}

/// Shell functions shared by probes and steps: one interface over both init systems.
/// `svc_enabled` globs with the shell itself (as `ls` did, a dangling link counts), so a
/// probe starts no process per service for it.
const HELPERS: &str = r#"if [ -d /run/systemd/system ]; then
  svc_exists() { [ "$(systemctl show -p LoadState --value -- "$1" 2>/dev/null)" = loaded ]; }
  svc_running() { systemctl is-active --quiet -- "$1"; }
  svc_enabled() { case $(systemctl is-enabled -- "$1" 2>/dev/null) in enabled|enabled-runtime|static|alias) return 0 ;; esac; return 1; }
  svc() { systemctl "$2" -- "$1"; }
  svc_enable() { systemctl "$2" -- "$1"; }
else
  svc_exists() { [ -x "/etc/init.d/$1" ]; }
  svc_running() { svc "$1" status >/dev/null 2>&1; }
  svc_enabled() { for l in /etc/rc[2345].d/S[0-9][0-9]"$1"; do if [ -e "$l" ] || [ -L "$l" ]; then return 0; fi; done; return 1; }
  svc() { if command -v service >/dev/null 2>&1; then service "$1" "$2"; else "/etc/init.d/$1" "$2"; fi; }
  svc_enable() { update-rc.d "$1" defaults >/dev/null 2>&1; update-rc.d "$1" "$2"; }
fi
"#;

/// Adds the helpers once, then one status line per service.
pub(crate) fn probe(p: &mut Probe, first: bool, i: usize, a: &Attrs) -> ProviderResult<()> {
    let name = req_str(SERVICE, a, "name")?;
    check_name(name)?;
    if first {
        p.push(HELPERS);
    }
    let t = tag(i);
    p.push(&format!(
        r#"n={name}
if svc_exists "$n"; then
  if svc_running "$n"; then echo '{t} running true'; else echo '{t} running false'; fi
  if svc_enabled "$n"; then echo '{t} enabled true'; else echo '{t} enabled false'; fi
else echo '{t} missing'; fi"#,
        name = quote(name)
    ));
    Ok(())
}

pub(crate) fn answer(
    out: &ProbeOutput,
    i: usize,
    req: &ObserveRequest,
) -> ProviderResult<Observed> {
    let t = tag(i);
    let name = req_str(SERVICE, &req.attrs, "name")?;
    if out.has(&t, "missing") {
        return Ok(Observed::Absent);
    }
    let (Some(running), Some(enabled)) = (out.get(&t, "running"), out.get(&t, "enabled")) else {
        return Err(ProviderError::Operation {
            address: req.address.clone(),
            message: format!("service {name}: the probe did not report it"),
        });
    };
    let mut live = Attrs::new();
    live.insert("name".into(), name.into());
    live.insert("running".into(), (running == "true").into());
    live.insert("enabled".into(), (enabled == "true").into());
    Ok(Observed::Present(live))
}

/// The script that brings the service to `a`. `restart` forces a restart (the
/// `restart_on` token changed) when the service is to be running.
pub(crate) fn apply_script(a: &Attrs, restart: bool) -> ProviderResult<String> {
    let name = req_str(SERVICE, a, "name")?;
    check_name(name)?;
    let running = opt_bool(SERVICE, a, "running")?.unwrap_or(true);
    let mut s = String::from(HELPERS);
    s.push_str(&format!(
        "n={}\nif ! svc_exists \"$n\"; then echo \"no such service: $n\" >&2; exit 3; fi\n",
        quote(name)
    ));
    if let Some(enabled) = opt_bool(SERVICE, a, "enabled")? {
        let (verb, test) = if enabled {
            ("enable", "")
        } else {
            ("disable", "!")
        };
        s.push_str(&format!(
            "if {test} svc_enabled \"$n\"; then :; else svc_enable \"$n\" {verb} >/dev/null || exit 4; fi\n"
        ));
    }
    if running && restart {
        s.push_str("svc \"$n\" restart || exit 5\n");
    } else if running {
        s.push_str("svc_running \"$n\" || svc \"$n\" start || exit 5\n");
    } else {
        s.push_str("! svc_running \"$n\" || svc \"$n\" stop || exit 5\n");
    }
    // Init scripts often exit 0 even when the daemon died at once: check.
    let (want, says) = if running {
        ("", "is not running")
    } else {
        ("!", "is still running")
    };
    s.push_str(&format!(
        "ok=1; for _ in 1 2 3 4 5 6 7 8 9 10; do if {want} svc_running \"$n\"; then ok=0; break; fi; sleep 0.3; done\n\
         if [ $ok -ne 0 ]; then echo \"service $n {says} after the change\" >&2; exit 6; fi\n"
    ));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn running_defaults_to_true_and_names_are_checked() {
        let mut a: Attrs = serde_json::from_value(json!({"name": "nginx"})).unwrap();
        normalize(&mut a).unwrap();
        assert_eq!(a["running"], true);
        assert!(check_name("getty@tty1.service").is_ok());
        assert!(check_name("x;reboot").is_err());
    }

    #[test]
    fn a_token_change_restarts_only_a_running_service() {
        let a: Attrs = serde_json::from_value(json!({"name": "nginx", "running": true})).unwrap();
        assert!(apply_script(&a, true)
            .unwrap()
            .contains("svc \"$n\" restart"));
        let stopped: Attrs =
            serde_json::from_value(json!({"name": "nginx", "running": false})).unwrap();
        assert!(!apply_script(&stopped, true).unwrap().contains("restart"));
    }
}
