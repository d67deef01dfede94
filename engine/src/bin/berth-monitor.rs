//! `berth-monitor`: the per-container monitor (see `berth_engine::monitor`).

fn main() {
    std::process::exit(berth_engine::monitor::main());
}
