//! The `terrace state` subcommands that concern where and how the state is stored:
//! `encrypt` / `decrypt` (secrets at rest, see `terrace_state::Keyring`), `history` /
//! `restore` (kept versions) and `migrate` (to another backend).

use terrace_state::{Backend, Keyring};

use crate::cli::Cli;
use crate::session::{check_lineage, default_state_name, record_lineage};
use terrace_config::url_has_password;

/// Encrypts (or re-encrypts, for a key rotation) the state's secrets with the configured
/// key.
pub fn encrypt(cli: &Cli, backend: &Backend) -> miette::Result<()> {
    let keys = backend.keys().clone();
    if !keys.is_configured() {
        miette::bail!(
            help = "generate a key with `head -c 32 /dev/urandom | base64` and keep it \
                    like any credential",
            "no state key is configured: set TERRACE_STATE_KEY, TERRACE_STATE_KEY_FILE or \
             TERRACE_STATE_PASSPHRASE; nothing was changed"
        );
    }
    convert(
        cli,
        backend,
        keys,
        "state encrypt",
        "encrypted with the configured key",
    )
}

/// Writes the state's secrets in clear.
pub fn decrypt(cli: &Cli, backend: &Backend) -> miette::Result<()> {
    convert(cli, backend, Keyring::none(), "state decrypt", "in clear")
}

fn convert(
    cli: &Cli,
    backend: &Backend,
    to: Keyring,
    operation: &str,
    done: &str,
) -> miette::Result<()> {
    let mut lock = backend.lock(operation).map_err(miette::Report::new)?;
    let Some(state) = lock.convert(to).map_err(miette::Report::new)? else {
        miette::bail!("there is no state at {}; nothing to do", backend.location());
    };
    // Converting rewrites the same state (same lineage), so checking after is safe; it
    // still stops a user who pointed at another project's state from recording it.
    check_lineage(&cli.dir, backend, &state)?;
    record_lineage(&cli.dir, backend, &state)?;
    println!(
        "The secrets of state {} (serial {}) are now {done}; so is its backup (a local \
         state; PostgreSQL history rows keep the form they were written in).",
        backend.location(),
        state.serial
    );
    Ok(())
}

/// `terrace state history`.
pub fn history(backend: &Backend) -> miette::Result<()> {
    let entries = backend.history().map_err(miette::Report::new)?;
    if entries.is_empty() {
        println!("No previous versions of {} are kept.", backend.location());
        return Ok(());
    }
    println!(
        "Previous versions of {} (newest first):",
        backend.location()
    );
    for e in entries {
        println!(
            "  serial {:>5}  replaced {}  {} resource(s)",
            e.serial,
            e.saved_at.format("%Y-%m-%dT%H:%M:%SZ"),
            e.resources
        );
    }
    println!("Restore one with `terrace state restore SERIAL`.");
    Ok(())
}

/// `terrace state restore SERIAL`.
pub fn restore(cli: &Cli, backend: &Backend, serial: u64) -> miette::Result<()> {
    let mut lock = backend.lock("state restore").map_err(miette::Report::new)?;
    if let Some(current) = lock.load().map_err(miette::Report::new)? {
        check_lineage(&cli.dir, backend, &current)?;
    }
    let state = lock.restore(serial).map_err(miette::Report::new)?;
    record_lineage(&cli.dir, backend, &state)?;
    println!(
        "Restored version {serial} of {} as serial {} ({} resource(s)); the live objects \
         were not touched: run `terrace plan` to see how they differ.",
        backend.location(),
        state.serial,
        state.resources.len()
    );
    Ok(())
}

/// `terrace state migrate --to URL|FILE`.
pub fn migrate(cli: &Cli, backend: &Backend, to: &str) -> miette::Result<()> {
    if url_has_password(to) {
        miette::bail!(
            help = "give the password in PGPASSWORD or ~/.pgpass",
            "--to holds a password, which other users can read in the process list; \
             refusing to use it"
        );
    }
    let dest = Backend::parse(to, &default_state_name(cli))
        .map_err(miette::Report::new)?
        .with_keys(backend.keys().clone());
    if dest == *backend {
        miette::bail!("{} is the state in use already", dest.location());
    }
    let mut source_lock = backend.lock("state migrate").map_err(miette::Report::new)?;
    let Some(state) = source_lock.load().map_err(miette::Report::new)? else {
        miette::bail!(
            "there is no state at {}; nothing to migrate",
            backend.location()
        );
    };
    check_lineage(&cli.dir, backend, &state)?;
    let mut dest_lock = dest.lock("state migrate").map_err(miette::Report::new)?;
    if let Some(there) = dest_lock.load().map_err(miette::Report::new)? {
        if there.lineage != state.lineage {
            miette::bail!(
                help = "migrate to an empty place (another ?state=NAME or file), or remove \
                        that state first if it really is unwanted",
                "{} holds another state (lineage {}, {} resource(s)); refusing to \
                 overwrite it with this one (lineage {})",
                dest.location(),
                there.lineage,
                there.resources.len(),
                state.lineage
            );
        }
        if there.serial >= state.serial {
            miette::bail!(
                "{} already holds this state at serial {} (this one is serial {}); \
                 nothing was copied",
                dest.location(),
                there.serial,
                state.serial
            );
        }
    }
    // The write adds one to the serial: start one below so the copy keeps it.
    let mut copy = state.clone();
    copy.serial = state.serial.saturating_sub(1);
    dest_lock.write(&mut copy).map_err(miette::Report::new)?;
    println!(
        "Copied the state (lineage {}, serial {}, {} resource(s)) from {} to {}. The \
         source was left as it was: use the new backend from now on (--backend / \
         TERRACE_BACKEND, or --state), and remove the old copy once you have checked.",
        copy.lineage,
        copy.serial,
        copy.resources.len(),
        backend.location(),
        dest.location()
    );
    Ok(())
}
