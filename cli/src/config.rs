//! `berth.toml`: defaults for the global options and for `run`/`create`.
//!
//! Read from [`SYSTEM_CONFIG`], then the user's file
//! (`$XDG_CONFIG_HOME/berth/berth.toml`, else `~/.config/berth/berth.toml`),
//! each key of the user's file overriding the system's; `$BERTH_CONFIG=FILE`
//! replaces both. A file that is absent is skipped (except `$BERTH_CONFIG`);
//! one that is malformed, has an unknown key or a bad value is an error
//! naming the file and line. Precedence, highest first: command-line flag,
//! its environment variable (`BERTH_ROOT`, `BERTH_RUNROOT`, read by clap into
//! the flag), user file, system file, built-in default.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use toml::Spanned;

use crate::logging::Level;

pub const SYSTEM_CONFIG: &str = "/etc/berth/berth.toml";
/// Names the one config file to read instead of the system's and the user's.
pub const CONFIG_ENV: &str = "BERTH_CONFIG";

/// What the files set, merged; `None` is "not set here".
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Config {
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    /// OCI runtime name or path, the default for `run`/`create`.
    pub runtime: Option<String>,
    pub log_level: Option<Level>,
    pub run: RunDefaults,
    /// The files read, lowest precedence first.
    pub sources: Vec<PathBuf>,
}

/// `[run]`: defaults for `run` and `create` options left unset.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunDefaults {
    /// `--network`
    pub network: Option<String>,
    /// `--stop-timeout` (seconds)
    pub stop_timeout: Option<u64>,
    /// `--stop-signal`
    pub stop_signal: Option<String>,
}

// The file as written: every key optional, unknown keys refused, values
// with their spans so a bad one can be reported by line.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    root: Option<Spanned<PathBuf>>,
    runroot: Option<Spanned<PathBuf>>,
    runtime: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    #[serde(default)]
    run: FileRun,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRun {
    network: Option<Spanned<String>>,
    stop_timeout: Option<u64>,
    stop_signal: Option<Spanned<String>>,
}

impl Config {
    /// `self` with every key `over` sets replaced by `over`'s.
    pub fn merge(self, over: Config) -> Config {
        Config {
            root: over.root.or(self.root),
            runroot: over.runroot.or(self.runroot),
            runtime: over.runtime.or(self.runtime),
            log_level: over.log_level.or(self.log_level),
            run: RunDefaults {
                network: over.run.network.or(self.run.network),
                stop_timeout: over.run.stop_timeout.or(self.run.stop_timeout),
                stop_signal: over.run.stop_signal.or(self.run.stop_signal),
            },
            sources: [self.sources, over.sources].concat(),
        }
    }
}

/// `FILE:LINE: message`, LINE counted from 1 at byte offset `at`.
fn at_line(path: &Path, text: &str, at: usize, msg: &str) -> anyhow::Error {
    let line = text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    anyhow::anyhow!("{}:{line}: {msg}", path.display())
}

/// Parse and check one file's text.
pub fn parse(path: &Path, text: &str) -> anyhow::Result<Config> {
    let f: FileConfig = toml::from_str(text).map_err(|e| {
        // toml's Display spans several lines with a snippet; one line here.
        let msg = e.message().trim().replace('\n', " ");
        at_line(path, text, e.span().map_or(0, |s| s.start), &msg)
    })?;
    let bad = |s: std::ops::Range<usize>, msg: String| at_line(path, text, s.start, &msg);
    let abs = |p: Option<Spanned<PathBuf>>, key: &str| -> anyhow::Result<Option<PathBuf>> {
        match p {
            Some(p) if !p.get_ref().is_absolute() => Err(bad(
                p.span(),
                format!("{key} must be an absolute path, not {:?}", p.get_ref()),
            )),
            p => Ok(p.map(Spanned::into_inner)),
        }
    };
    let non_empty = |v: Option<Spanned<String>>, key: &str| -> anyhow::Result<Option<String>> {
        match v {
            Some(v) if v.get_ref().trim().is_empty() => {
                Err(bad(v.span(), format!("{key} must not be empty")))
            }
            v => Ok(v.map(Spanned::into_inner)),
        }
    };
    let log_level = match f.log_level {
        Some(l) => Some(l.get_ref().parse::<Level>().map_err(|e| bad(l.span(), e))?),
        None => None,
    };
    if let Some(s) = &f.run.stop_signal {
        // The same check `--stop-signal` gets.
        berth_engine::RunOptions::default()
            .stop_signal(s.get_ref())
            .map_err(|e| bad(s.span(), e.to_string()))?;
    }
    if let Some(n) = &f.run.network {
        berth_engine::RunOptions::default()
            .set_network(n.get_ref())
            .map_err(|e| bad(n.span(), e.to_string()))?;
    }
    Ok(Config {
        root: abs(f.root, "root")?,
        runroot: abs(f.runroot, "runroot")?,
        runtime: non_empty(f.runtime, "runtime")?,
        log_level,
        run: RunDefaults {
            network: f.run.network.map(Spanned::into_inner),
            stop_timeout: f.run.stop_timeout,
            stop_signal: f.run.stop_signal.map(Spanned::into_inner),
        },
        sources: vec![path.to_path_buf()],
    })
}

/// Read `path`; `Ok(None)` when it does not exist and `required` is false.
fn read(path: &Path, required: bool) -> anyhow::Result<Option<Config>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read config file {}", path.display())),
    }
}

/// The files to read, lowest precedence first, each with whether it must
/// exist. `env` looks variables up (the process environment in [`load`]).
pub fn paths(env: impl Fn(&str) -> Option<String>) -> Vec<(PathBuf, bool)> {
    if let Some(f) = env(CONFIG_ENV).filter(|f| !f.is_empty()) {
        return vec![(PathBuf::from(f), true)];
    }
    let mut v = vec![(PathBuf::from(SYSTEM_CONFIG), false)];
    // The XDG base directory spec: a relative $XDG_CONFIG_HOME is ignored.
    let user = match env("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(x) if x.is_absolute() => Some(x),
        _ => env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| Path::new(&h).join(".config")),
    };
    if let Some(dir) = user {
        v.push((dir.join("berth/berth.toml"), false));
    }
    v
}

/// Read and merge the config files this process should see.
pub fn load() -> anyhow::Result<Config> {
    let mut c = Config::default();
    for (p, required) in paths(|k| std::env::var(k).ok()) {
        if let Some(f) = read(&p, required)? {
            c = c.merge(f);
        }
    }
    Ok(c)
}

/// The global options after precedence: flag (or its environment
/// variable) over the config files over the built-in default.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub runtime: Option<String>,
    pub log_level: Level,
    pub run: RunDefaults,
}

/// What the command line said (`None`: not given).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    pub runtime: Option<String>,
    pub log_level: Option<String>,
}

/// Built-in defaults: rootful paths, or XDG ones when not root.
pub struct Defaults {
    pub root: PathBuf,
    pub runroot: PathBuf,
}

impl Settings {
    pub fn resolve(flags: Flags, cfg: Config, builtin: Defaults) -> anyhow::Result<Settings> {
        let log_level = match flags.log_level {
            Some(l) => l
                .parse::<Level>()
                .map_err(|e| anyhow::anyhow!("--log-level: {e}"))?,
            None => cfg.log_level.unwrap_or_default(),
        };
        if flags
            .runtime
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            anyhow::bail!("--runtime must not be empty");
        }
        Ok(Settings {
            root: flags.root.or(cfg.root).unwrap_or(builtin.root),
            runroot: flags.runroot.or(cfg.runroot).unwrap_or(builtin.runroot),
            runtime: flags.runtime.or(cfg.runtime),
            log_level,
            run: cfg.run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> anyhow::Result<Config> {
        parse(Path::new("/etc/berth/berth.toml"), text)
    }

    fn err(text: &str) -> String {
        format!("{:#}", cfg(text).unwrap_err())
    }

    fn builtin() -> Defaults {
        Defaults {
            root: "/var/lib/berth".into(),
            runroot: "/run/berth".into(),
        }
    }

    #[test]
    fn parses_every_key() {
        let c = cfg(
            "root = \"/r\"\nrunroot = \"/rr\"\nruntime = \"runc\"\nlog_level = \"debug\"\n\
                     [run]\nnetwork = \"bridge\"\nstop_timeout = 3\nstop_signal = \"INT\"\n",
        )
        .unwrap();
        assert_eq!(c.root, Some("/r".into()));
        assert_eq!(c.runroot, Some("/rr".into()));
        assert_eq!(c.runtime.as_deref(), Some("runc"));
        assert_eq!(c.log_level, Some(Level::Debug));
        assert_eq!(c.run.network.as_deref(), Some("bridge"));
        assert_eq!(c.run.stop_timeout, Some(3));
        assert_eq!(c.run.stop_signal.as_deref(), Some("INT"));
        assert_eq!(
            cfg("").unwrap(),
            Config {
                sources: vec!["/etc/berth/berth.toml".into()],
                ..Config::default()
            }
        );
    }

    #[test]
    fn errors_name_file_and_line_on_one_line() {
        for (text, want) in [
            (
                "root = \"/r\"\nbogus = 1\n",
                "/etc/berth/berth.toml:2: unknown field `bogus`",
            ),
            (
                "[run]\nnetwork = \"none\"\nmemory = \"1g\"\n",
                "/etc/berth/berth.toml:3: unknown field `memory`",
            ),
            ("root = \"/r\"\n\nruntime = \n", "/etc/berth/berth.toml:3: "),
            ("[run\n", "/etc/berth/berth.toml:1: "),
            (
                "root = \"rel/dir\"\n",
                "/etc/berth/berth.toml:1: root must be an absolute path",
            ),
            (
                "\nlog_level = \"loud\"\n",
                "/etc/berth/berth.toml:2: invalid log level \"loud\"",
            ),
            (
                "[run]\nstop_timeout = \"ten\"\n",
                "/etc/berth/berth.toml:2: ",
            ),
            (
                "[run]\n\nstop_signal = \"NOPE\"\n",
                "/etc/berth/berth.toml:3: ",
            ),
            (
                "runtime = \"\"\n",
                "/etc/berth/berth.toml:1: runtime must not be empty",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}…");
            assert!(!e.contains('\n'), "{text:?}: one line, got {e:?}");
        }
    }

    #[test]
    fn user_file_overrides_system_file_key_by_key() {
        let system = cfg("root = \"/sys-root\"\nruntime = \"crun\"\n[run]\nstop_timeout = 5\nnetwork = \"host\"\n").unwrap();
        let user = parse(
            Path::new("/home/u/.config/berth/berth.toml"),
            "runtime = \"runc\"\n[run]\nnetwork = \"bridge\"\n",
        )
        .unwrap();
        let m = system.merge(user);
        assert_eq!(m.root, Some("/sys-root".into()));
        assert_eq!(m.runtime.as_deref(), Some("runc"));
        assert_eq!(m.run.network.as_deref(), Some("bridge"));
        assert_eq!(m.run.stop_timeout, Some(5));
        assert_eq!(
            m.sources,
            vec![
                PathBuf::from("/etc/berth/berth.toml"),
                "/home/u/.config/berth/berth.toml".into()
            ]
        );
    }

    #[test]
    fn flags_override_config_override_builtin() {
        let c = cfg("root = \"/cfg-root\"\nruntime = \"runc\"\nlog_level = \"info\"\n").unwrap();
        let s = Settings::resolve(Flags::default(), c.clone(), builtin()).unwrap();
        assert_eq!(s.root, PathBuf::from("/cfg-root"));
        assert_eq!(s.runroot, PathBuf::from("/run/berth"));
        assert_eq!(s.runtime.as_deref(), Some("runc"));
        assert_eq!(s.log_level, Level::Info);
        let flags = Flags {
            root: Some("/flag-root".into()),
            runroot: Some("/flag-run".into()),
            runtime: Some("crun".into()),
            log_level: Some("error".into()),
        };
        let s = Settings::resolve(flags, c, builtin()).unwrap();
        assert_eq!(s.root, PathBuf::from("/flag-root"));
        assert_eq!(s.runroot, PathBuf::from("/flag-run"));
        assert_eq!(s.runtime.as_deref(), Some("crun"));
        assert_eq!(s.log_level, Level::Error);
        let s = Settings::resolve(Flags::default(), Config::default(), builtin()).unwrap();
        assert_eq!(
            (s.root, s.runtime, s.log_level),
            ("/var/lib/berth".into(), None, Level::Warn)
        );
    }

    #[test]
    fn bad_log_level_flag_is_refused() {
        let flags = Flags {
            log_level: Some("verbose".into()),
            ..Flags::default()
        };
        let e = Settings::resolve(flags, Config::default(), builtin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--log-level") && e.contains("verbose"), "{e}");
    }

    #[test]
    fn config_paths_follow_env() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = |v: &[(PathBuf, bool)]| v.to_vec();
        assert_eq!(
            p(&paths(env(&[("BERTH_CONFIG", "/x.toml"), ("HOME", "/h")]))),
            vec![(PathBuf::from("/x.toml"), true)]
        );
        assert_eq!(
            p(&paths(env(&[("HOME", "/h")]))),
            vec![
                (PathBuf::from(SYSTEM_CONFIG), false),
                ("/h/.config/berth/berth.toml".into(), false)
            ]
        );
        assert_eq!(
            p(&paths(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/xdg")]))),
            vec![
                (PathBuf::from(SYSTEM_CONFIG), false),
                ("/xdg/berth/berth.toml".into(), false)
            ]
        );
        // A relative XDG_CONFIG_HOME is ignored, as the spec says.
        assert_eq!(
            p(&paths(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")]))),
            vec![
                (PathBuf::from(SYSTEM_CONFIG), false),
                ("/h/.config/berth/berth.toml".into(), false)
            ]
        );
        assert_eq!(
            p(&paths(env(&[]))),
            vec![(PathBuf::from(SYSTEM_CONFIG), false)]
        );
    }
}
