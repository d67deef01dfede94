//! berth-runtime: argument parsing and dispatch only; the work is in the
//! library (`berth_runtime`).

mod cli;
mod commands;

use clap::Parser;

fn main() {
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
