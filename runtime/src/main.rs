//! berth-runtime: argument parsing and dispatch only; the work is in the
//! library (`berth_runtime`).
//!
//! A C `main` rather than Rust's (outside tests): std's start-up is skipped,
//! and with it the main-thread stack-guard probe (glibc's
//! pthread_getattr_np parses /proc/self/maps with sscanf, code every create
//! would fault in twice — the runtime re-executes itself). What of that
//! start-up the runtime needs, [`berth_runtime::sys::start_up`] does.
#![cfg_attr(not(test), no_main)]

mod cli;
mod commands;

use clap::Parser;

// SAFETY: the only `main` symbol in the binary; glibc's start-up calls it
// with argc/argv, which std also captures for env::args().
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    berth_runtime::sys::start_up();
    run()
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> ! {
    let args = cli::normalize_args(std::env::args().collect());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            berth_runtime::log::error(&msg);
            if !berth_runtime::log::logs_to_stderr() {
                eprintln!("berth-runtime: {msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
