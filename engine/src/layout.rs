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

/// The monitor's attach socket (see `attach`).
pub const ATTACH_SOCKET: &str = "attach.sock";
/// Where the runtime sends a tty container's pty master (`--console-socket`).
pub const CONSOLE_SOCKET: &str = "console.sock";
pub const MONITOR_LOCK: &str = "monitor.lock";
pub const ATTACH_LOCK: &str = "attach.lock";
pub const PID_FILE: &str = "pid";
pub const EXIT_FILE: &str = "exit.json";
/// Present while the container is (being) paused: written before the
/// runtime freezes it, removed after it thaws.
pub const PAUSED_FILE: &str = "paused";
/// What the engine asks berth-netd for (its request JSON).
pub const NETD_REQUEST: &str = "netd-request.json";
/// A `network connect`/`disconnect` request for berth-netd (written and
/// removed under the network lock).
pub const NETD_OP_REQUEST: &str = "netd-op.json";
/// What berth-netd answered to setup (addresses, ports), kept up to date
/// by `network connect`/`disconnect`: present from the monitor's setup to
/// its teardown, so it shows whether the networks are set up.
pub const NETWORK_FILE: &str = "network.json";
/// Held (exclusive `flock`) around every change of a container's networks:
/// by the monitor from its netd setup to writing `network.json`, and around
/// its teardown (which removes `network.json`); by `network
/// connect`/`disconnect`; by `start` while it writes the netd request.
pub const NETWORK_LOCK: &str = "network.lock";
/// Written by `stop` and `rm` before they signal: the monitor does not
/// restart the container. `start` removes it.
pub const STOPPED_FILE: &str = "stopped";
/// Present while the monitor waits to restart the container (written
/// before the exit file, removed once it runs again or will not).
pub const RESTARTING_FILE: &str = "restarting";
/// How many times the monitor restarted the container since `start`.
pub const RESTARTS_FILE: &str = "restarts";
