//! `terrace state encrypt` / `state decrypt`: moving a state's secrets between clear text
//! and encryption at rest (see `terrace_state::Keyring`).

use terrace_state::{Keyring, LocalBackend};

use crate::cli::Cli;
use crate::session::{check_lineage, record_lineage};

/// Encrypts (or re-encrypts, for a key rotation) the state's secrets with the configured
/// key.
pub fn encrypt(cli: &Cli, backend: &LocalBackend) -> miette::Result<()> {
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
pub fn decrypt(cli: &Cli, backend: &LocalBackend) -> miette::Result<()> {
    convert(cli, backend, Keyring::none(), "state decrypt", "in clear")
}

fn convert(
    cli: &Cli,
    backend: &LocalBackend,
    to: Keyring,
    operation: &str,
    done: &str,
) -> miette::Result<()> {
    let mut lock = backend.lock(operation).map_err(miette::Report::new)?;
    let Some(state) = lock.convert(to).map_err(miette::Report::new)? else {
        miette::bail!(
            "there is no state at {}; nothing to do",
            backend.path().display()
        );
    };
    check_lineage(&cli.dir, backend, &state)?;
    record_lineage(&cli.dir, backend, &state)?;
    println!(
        "The secrets of state {} (serial {}) are now {done}, and so is its backup.",
        backend.path().display(),
        state.serial
    );
    Ok(())
}
