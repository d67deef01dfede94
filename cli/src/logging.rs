//! `--log-level`: berth's diagnostics on stderr through the `log` facade
//! (the engine and the libraries below it log through it too), one line
//! each: `berth: LEVEL: message`. A command's own failure is not a log
//! record: `main` prints it whatever the level.

use std::io::Write as _;

/// The levels `--log-level` and `log_level` accept (docker's names).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    /// podman's default: quiet unless something is wrong.
    #[default]
    Warn,
    Info,
    Debug,
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "error" => Ok(Level::Error),
            "warn" | "warning" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(format!(
                "invalid log level {s:?} (expected error, warn, info or debug)"
            )),
        }
    }
}

impl Level {
    fn filter(self) -> log::LevelFilter {
        match self {
            Level::Error => log::LevelFilter::Error,
            Level::Warn => log::LevelFilter::Warn,
            Level::Info => log::LevelFilter::Info,
            Level::Debug => log::LevelFilter::Debug,
        }
    }
}

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = r.level().as_str().to_ascii_lowercase();
        // Other crates' records say where they come from.
        let from = if r.target().starts_with("berth") {
            String::new()
        } else {
            format!("{}: ", r.target())
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "berth: {level}: {from}{}",
            r.args()
        );
    }

    fn flush(&self) {}
}

/// Send log records at `level` and above to stderr. Once per process.
pub fn init(level: Level) {
    static LOGGER: Stderr = Stderr;
    // Fails only when a logger is already set: then that one stays.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level.filter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        for (s, l) in [
            ("error", Level::Error),
            ("warn", Level::Warn),
            ("warning", Level::Warn),
            ("info", Level::Info),
            ("debug", Level::Debug),
        ] {
            assert_eq!(s.parse::<Level>(), Ok(l));
        }
        for bad in ["", "Debug", "trace", "verbose", "3"] {
            let e = bad.parse::<Level>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(Level::Error.filter() < Level::Warn.filter());
        assert!(Level::Info.filter() < Level::Debug.filter());
    }
}
