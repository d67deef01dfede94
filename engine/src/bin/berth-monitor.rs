//! `berth-monitor`: the per-container monitor (see `berth_engine::monitor`).
//!
//! A C `main` rather than Rust's: std's runtime start-up is skipped, and
//! with it the main-thread stack-guard probe (glibc's pthread_getattr_np,
//! which parses /proc/self/maps with sscanf and links glibc's scanf and
//! float parsing: about 100 KiB of a monitor that idles beside every
//! container). The one thing of that start-up the monitor needs, SIGPIPE
//! ignored (a write to a vanished attach client must fail, not kill it),
//! it does itself. A stack overflow still faults on the kernel's guard gap.
#![no_main]

use std::ffi::{c_char, c_int};

// SAFETY: the only `main` symbol in the binary (no Rust `fn main`); glibc's
// start-up calls it with argc/argv, which std also captures for args_os().
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    berth_engine::monitor::ignore_sigpipe();
    // Through std's exit, which flushes stdout (returning would not).
    std::process::exit(berth_engine::monitor::main())
}
