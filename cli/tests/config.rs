//! berth.toml (through `$BERTH_CONFIG`, never /etc or ~), the global
//! `--runtime` and `--log-level`, and the completion scripts and man pages
//! generated from the clap definitions.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `berth ARGS` with `BERTH_CONFIG=config` and nothing else of ours set.
fn berth(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CONFIG", config)
        .env_remove("BERTH_ROOT")
        .env_remove("BERTH_RUNROOT")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn berth")
}

/// Write `text` as the test's berth.toml; its path.
fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("berth.toml");
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn config_root_and_runroot_are_defaults_that_flag_and_env_beat() {
    let d = berth_testkit::tempdir("cfg-root");
    let dir = d.path();
    let cfg = config(
        dir,
        &format!(
            "root = \"{0}/cfg-root\"\nrunroot = \"{0}/cfg-run\"\n",
            dir.display()
        ),
    );
    let o = berth(&cfg, &["images"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        dir.join("cfg-root/berth.db").is_file(),
        "store made at config root"
    );

    let flag_root = dir.join("flag-root");
    let o = berth(&cfg, &["--root", flag_root.to_str().unwrap(), "images"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        flag_root.join("berth.db").is_file(),
        "--root beats the config"
    );

    let env_root = dir.join("env-root");
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CONFIG", &cfg)
        .env("BERTH_ROOT", &env_root)
        .arg("images")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        env_root.join("berth.db").is_file(),
        "$BERTH_ROOT beats the config"
    );

    // `berth info` reports what was resolved.
    let o = berth(&cfg, &["info"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Root"], dir.join("cfg-root").display().to_string());
    assert_eq!(v["RunRoot"], dir.join("cfg-run").display().to_string());
}

/// A bad file fails every command with one line naming the file and line,
/// exit 125, before anything is made.
fn refused(name: &str, body: &str, line: usize, says: &str) {
    let d = berth_testkit::tempdir(name);
    let root = d.path().join("root");
    let cfg = config(d.path(), &body.replace("ROOT", &root.display().to_string()));
    let o = berth(
        &cfg,
        &[
            "--runroot",
            d.path().join("run").to_str().unwrap(),
            "images",
        ],
    );
    assert_eq!(code(&o), 125, "{name}: {}", text(&o.stderr));
    let err = text(&o.stderr);
    let want = format!("berth: {}:{line}: ", cfg.display());
    assert!(
        err.starts_with(&want),
        "{name}: want {want:?}…, got {err:?}"
    );
    assert!(err.contains(says), "{name}: want {says:?} in {err:?}");
    assert_eq!(err.lines().count(), 1, "{name}: one line: {err:?}");
    assert!(!root.exists(), "{name}: nothing made");
    assert!(o.stdout.is_empty(), "{name}");
}

#[test]
fn malformed_config_is_refused_naming_file_and_line() {
    refused(
        "cfg-bad",
        "root = \"ROOT\"\n[run\nnetwork = \"host\"\n",
        2,
        "",
    );
    refused(
        "cfg-badval",
        "root = \"ROOT\"\n[run]\nstop_timeout = \"ten\"\n",
        3,
        "",
    );
}

#[test]
fn unknown_config_key_is_refused_naming_file_and_line() {
    refused(
        "cfg-key",
        "root = \"ROOT\"\nruntim = \"runc\"\n",
        2,
        "unknown field `runtim`",
    );
    refused(
        "cfg-runkey",
        "root = \"ROOT\"\n[run]\n\nmemory = \"1g\"\n",
        4,
        "unknown field `memory`",
    );
    refused(
        "cfg-level",
        "root = \"ROOT\"\nlog_level = \"loud\"\n",
        2,
        "invalid log level \"loud\"",
    );
    refused(
        "cfg-relroot",
        "root = \"relative/root\"\n",
        1,
        "absolute path",
    );
}

#[test]
fn berth_config_naming_a_missing_file_is_refused() {
    let d = berth_testkit::tempdir("cfg-missing");
    let missing = d.path().join("nope.toml");
    let o = berth(&missing, &["images"]);
    assert_eq!(code(&o), 125);
    let err = text(&o.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn log_level_is_accepted_refused_and_governs_output() {
    let d = berth_testkit::tempdir("cfg-log");
    let dir = d.path();
    let base = format!(
        "root = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
        dir.display()
    );
    let quiet = config(dir, &base);
    for level in ["error", "warn", "info", "debug"] {
        let o = berth(&quiet, &["--log-level", level, "images"]);
        assert_eq!(code(&o), 0, "{level}: {}", text(&o.stderr));
        let debug = text(&o.stderr).contains("berth: debug: read config file");
        assert_eq!(debug, level == "debug", "{level}: {}", text(&o.stderr));
    }
    for bad in ["loud", "DEBUG", ""] {
        let o = berth(&quiet, &["--log-level", bad, "images"]);
        assert_eq!(code(&o), 125, "{bad:?}");
        let err = text(&o.stderr);
        assert!(err.contains("invalid log level"), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // From the file, and the flag beats it.
    let loud = config(dir, &format!("{base}log_level = \"debug\"\n"));
    let o = berth(&loud, &["images"]);
    assert!(
        text(&o.stderr).contains("berth: debug: root "),
        "{}",
        text(&o.stderr)
    );
    let o = berth(&loud, &["--log-level", "warn", "images"]);
    assert_eq!(text(&o.stderr), "", "--log-level beats log_level");
}

#[test]
fn config_runtime_is_the_default_and_command_line_runtimes_win() {
    let test = "config_runtime_is_the_default_and_command_line_runtimes_win";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cfg-rt", rt);
    let missing = e.path("no-such-runtime");
    let cfg = config(
        e.dir.path(),
        &format!(
            "runtime = \"{}\"\n[run]\nstop_timeout = 3\nnetwork = \"host\"\n",
            missing.display()
        ),
    );
    let with_cfg = |args: &[&str]| {
        let mut c = e.cmd(args);
        c.env("BERTH_CONFIG", &cfg);
        c.output().unwrap()
    };

    // The config's runtime is the default: a clear error naming it.
    let o = with_cfg(&["run", "--rm", "busybox:test", "true"]);
    assert_eq!(code(&o), 125, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&missing.display().to_string()),
        "names the runtime: {}",
        text(&o.stderr)
    );
    e.assert_no_containers();

    // The global --runtime beats it; so does run's own --runtime, even over
    // a global one.
    let o = with_cfg(&[
        "--runtime",
        &e.runtime,
        "run",
        "--rm",
        "busybox:test",
        "echo",
        "global",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "global\n");
    let o = with_cfg(&[
        "--runtime",
        "/nonexistent-global",
        "run",
        "--runtime",
        &e.runtime,
        "--rm",
        "busybox:test",
        "echo",
        "per-command",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "per-command\n");

    // A container keeps the runtime it was created with: later verbs use
    // it, whatever the default says then. [run] defaults apply to create.
    let o = with_cfg(&[
        "--log-level",
        "info",
        "--runtime",
        &e.runtime,
        "create",
        "busybox:test",
        "echo",
        "kept",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    // info: what the engine did, and no debug lines.
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("berth: info: created container {id}")),
        "{err}"
    );
    assert!(!err.contains("berth: debug:"), "{err}");
    let i = inspect(&e, &id);
    let canonical = fs::canonicalize(&e.runtime).unwrap();
    assert_eq!(
        i["HostConfig"]["Runtime"],
        canonical.display().to_string(),
        "{i}"
    );
    assert_eq!(i["Config"]["StopTimeout"], 3, "{i}");
    assert_eq!(i["HostConfig"]["NetworkMode"], "host", "{i}");
    let o = with_cfg(&["start", "-a", &id]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "kept\n");
    assert_eq!(text(&o.stderr), "", "warn (the default) is quiet");
    // Flags beat [run].
    let o = with_cfg(&[
        "--runtime",
        &e.runtime,
        "create",
        "--stop-timeout",
        "7",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let i = inspect(&e, text(&o.stdout).trim());
    assert_eq!(i["Config"]["StopTimeout"], 7, "{i}");
    assert_eq!(i["HostConfig"]["NetworkMode"], "none", "{i}");
    // At debug level the engine shows the runtime it runs.
    let o = with_cfg(&["--log-level", "debug", "rm", &id]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("berth: debug: {}", canonical.display())),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bash_completion_knows_the_subcommands_and_their_flags() {
    let d = berth_testkit::tempdir("cfg-compl");
    // Completions do not depend on (or fail over) a host's berth.toml.
    let empty = config(d.path(), "[broken\n");
    let o = berth(&empty, &["completion", "bash"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let script = text(&o.stdout);
    for verb in ["run", "ps", "images", "network", "completion"] {
        assert!(
            script.contains(&format!("berth__subcmd__{verb}")),
            "mentions {verb}"
        );
    }
    let file = d.path().join("berth.bash");
    fs::write(&file, &script).unwrap();
    // Drive the completion function as bash would.
    let complete = |words: &str, cword: usize| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _berth berth \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                file.display()
            ))
            .output()
            .expect("bash");
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let verbs = complete("berth p", 1);
    for v in ["ps", "pull", "push", "pause", "port"] {
        assert!(verbs.contains(&v.to_string()), "berth p<TAB>: {verbs:?}");
    }
    let flags = complete("berth ps --f", 2);
    assert_eq!(flags, ["--filter", "--format"], "berth ps --f<TAB>");
    for (shell, marker) in [("zsh", "#compdef berth"), ("fish", "complete -c berth")] {
        let o = berth(&empty, &["completion", shell]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains(marker), "{shell}");
    }
    let o = berth(&empty, &["completion", "tcsh"]);
    assert_ne!(code(&o), 0);
}

#[test]
fn rm_container_is_removed_though_its_config_broke_meanwhile() {
    let test = "rm_container_is_removed_though_its_config_broke_meanwhile";
    let Some(rt) = runtime(test, "berth-runtime") else {
        return;
    };
    let e = Env::new("cfg-cleanup", rt);
    let cfg = config(
        e.dir.path(),
        &format!("runtime = \"{}\"\n[run]\nnetwork = \"none\"\n", e.runtime),
    );
    let gate = e.path("gate");
    fs::create_dir(&gate).unwrap();
    let mut c = e.cmd(&[
        "run",
        "-d",
        "--rm",
        "-v",
        &format!("{}:/gate", gate.display()),
        "busybox:test",
        "sh",
        "-c",
        "while [ ! -e /gate/go ]; do sleep 0.05; done",
    ]);
    let o = c.env("BERTH_CONFIG", &cfg).output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // The monitor's `berth container-cleanup` inherits BERTH_CONFIG.
    fs::write(&cfg, "runtime = [\n").unwrap();
    fs::write(gate.join("go"), "").unwrap();
    eventually("the --rm container is removed", || e.ps_all().is_empty());
    e.assert_no_containers();
}

/// The visible subcommands `berth --help` lists.
fn listed_verbs(config: &Path) -> Vec<String> {
    let help = text(&berth(config, &["--help"]).stdout);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|v| v != "help")
        .collect()
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_are_valid_roff() {
    let test = "man_pages_are_written_for_every_subcommand_and_are_valid_roff";
    let d = berth_testkit::tempdir("cfg-man");
    // Man pages do not depend on (or fail over) a host's berth.toml.
    let empty = config(d.path(), "[broken\n");
    let out = d.path().join("man/man1");
    let o = berth(&empty, &["generate-man", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let verbs = listed_verbs(&empty);
    assert!(
        verbs.len() > 30 && verbs.contains(&"run".to_string()),
        "{verbs:?}"
    );
    let mut want: Vec<String> = verbs.iter().map(|v| format!("berth-{v}.1")).collect();
    want.extend(["berth.1", "berth-image-ls.1", "berth-network-create.1"].map(String::from));
    let written: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for w in &want {
        assert!(written.contains(w), "{w} written: {written:?}");
    }
    // Hidden commands get no page.
    for hidden in ["berth-generate-man.1", "berth-container-cleanup.1"] {
        assert!(!written.contains(&hidden.to_string()), "{hidden}");
    }
    // stdout lists exactly what was written.
    assert_eq!(text(&o.stdout).lines().count(), written.len());
    for f in &written {
        let page = fs::read_to_string(out.join(f)).unwrap();
        let title = f.trim_end_matches(".1");
        assert!(
            page.lines()
                .any(|l| l.starts_with(&format!(".TH {title} 1"))),
            "{f} has a .TH {title} 1 line"
        );
    }
    if !berth_testkit::require_path(test, "/usr/bin/groff", "groff (Debian groff-base)") {
        return;
    }
    for f in &written {
        // -k: preconv for UTF-8; -ww: every warning; -z: no output.
        let o = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(out.join(f))
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{f}: {}",
            text(&o.stderr)
        );
    }
}
