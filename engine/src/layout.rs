//! Names of the files in a container's run dir (`<runroot>/containers/<id>/`),
//! the contract between the engine and `berth-monitor`.
//!
//! - `monitor.lock`: held (exclusive `flock`) by the monitor for its whole
//!   life (and holds its pid); a shared lock succeeding means the monitor
//!   has exited.
//! - `attach.lock`: a foreground `berth run --rm` holds it shared while it
//!   reads the output; the monitor takes it exclusively before removing.
//! - `pid`: the container's init pid (the runtime's `--pid-file`).
//! - `exit.json`: `{"exit_code":N,"finished_at":"RFC3339"}`, temp + rename.

pub const MONITOR_LOCK: &str = "monitor.lock";
pub const ATTACH_LOCK: &str = "attach.lock";
pub const PID_FILE: &str = "pid";
pub const EXIT_FILE: &str = "exit.json";
/// Present while the container is (being) paused: written before the
/// runtime freezes it, removed after it thaws.
pub const PAUSED_FILE: &str = "paused";
/// What the engine asks berth-netd for (its request JSON).
pub const NETD_REQUEST: &str = "netd-request.json";
/// What berth-netd answered to setup (addresses, ports).
pub const NETWORK_FILE: &str = "network.json";
