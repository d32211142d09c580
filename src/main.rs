//! The `terrace` binary: a thin layer over the crates that parse the configuration
//! (`terrace-config`), plan (`terrace-plan`), keep state (`terrace-state`) and act on
//! servers (`terrace-provider-*`). See ARCHITECTURE.md.

mod apply;
mod capacity;
mod cli;
mod commands;
mod drift;
mod events;
mod expiry;
mod extra;
mod moves;
mod output;
mod placement;
mod planfile;
mod providers;
mod refresh;
mod session;
mod state_admin;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc instead of glibc malloc: evaluation and planning allocate many small
/// strings and maps, and glibc's malloc/free was about a third of their CPU
/// (BENCHMARKS.md, "evaluation and allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The log filter: `TERRACE_LOG` (default `warn`), with two crates held back whatever it
/// says. bollard logs request bodies (container env, which holds passwords) at debug
/// level; sqlx warns about slow pool acquisition, which is expected when many steps
/// queue for a few connections.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERRACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    ["bollard=warn", "sqlx::pool=error"]
        .into_iter()
        .fold(filter, |f, d| {
            f.add_directive(d.parse().expect("static directive"))
        })
}

/// Ends the process, as other command-line tools do, when whatever reads its output
/// goes away (`terrace plan | head`). Rust ignores `SIGPIPE`, which turns that into a
/// panic with a backtrace at the next print. A command killed this way is no different
/// from one interrupted: an apply's journal keeps the state truthful.
fn end_quietly_when_the_reader_goes() {
    // SAFETY: called first thing in `main`, before any other thread exists; restoring
    // a signal's default disposition has no other effect on this process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let began = std::time::Instant::now();
    end_quietly_when_the_reader_goes();
    let cli = match cli::Cli::try_parse_from(cli::terraform_spellings(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap ends a usage error with 2, which terrace's exit codes give to "changes
            // present" and "drift": a mistyped flag in CI must read as the error it is.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let streams_json = cli.streams_json();
    let stderr_color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(stderr_color)
                .unicode(stderr_color)
                .build(),
        )
    }))
    .ok();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(stderr_color)
        .init();

    // A command that only reads is a burst of requests the servers answer: one thread
    // waiting for them all spares a cross-thread wake-up per answer (a no-change plan
    // of 1,000 containers: 0.44 -> 0.35 s). A command that writes the state keeps
    // worker threads: the journal's fsync (a PostgreSQL state's commit) blocks the
    // thread that makes it, and must not stall the steps in flight.
    let runtime = if cli.writes_state() {
        tokio::runtime::Runtime::new()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The command runs as a task on a worker, not on this thread: the executor's loop
    // and the steps it spawns then share the workers' queues, instead of crossing
    // threads at every step's start and end (8 % of a 1,000-tenant apply's CPU). On
    // the current-thread runtime the task runs on this thread all the same.
    let run = runtime.block_on(async {
        tokio::spawn(commands::run(cli))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    });
    match run {
        Ok(code) => code,
        Err(report) => {
            // Rendered to text first so the last-resort secret scrub sees everything.
            eprintln!("{}", output::scrub_report(&report));
            if streams_json {
                commands::report_json_error(&report, began.elapsed());
            }
            ExitCode::FAILURE
        }
    }
}
