//! Cases, the context they run in, and how their outcomes are reported.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bundle::{Bundle, Helper};
use crate::proc::Output;
use crate::runtime::{Container, Runtime};

/// One spec-derived check with a stable name (`area.what`).
pub struct Case {
    pub name: &'static str,
    pub run: fn(&Ctx) -> Result<()>,
}

/// A case that cannot run here; carries the reason.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

/// Stop the case with a named skip.
pub fn skip(reason: impl Into<String>) -> anyhow::Error {
    Skip(reason.into()).into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) => r,
        }
    }
}

/// What every case gets: the runtime under test, the probe helper, and a
/// scratch directory for bundles.
pub struct Ctx {
    pub rt: Runtime,
    pub helper: Helper,
    pub scratch: PathBuf,
}

impl Ctx {
    pub fn bundle(&self) -> Result<Bundle> {
        Bundle::new(&self.scratch, &self.helper)
    }

    /// A container id unique to this run.
    pub fn id(&self) -> String {
        berth_testkit::unique("bc")
    }

    pub fn container(&self, b: &Bundle) -> Container<'_> {
        Container::new(&self.rt, b, &self.id())
    }

    /// Save the config and `run` the bundle in the foreground.
    pub fn run(&self, b: &mut Bundle) -> Result<Output> {
        b.save()?;
        self.rt.run(b, &self.id())
    }

    /// Run the probe helper with `args` and parse its JSON report.
    pub fn probe(&self, b: &mut Bundle, args: &[&str]) -> Result<Value> {
        b.probe(args);
        let out = self.run(b)?;
        if !out.success() {
            bail!("container with probe {args:?} failed: {}", out.describe());
        }
        let line = out.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("probe output is not JSON: {}", out.describe()))
    }

    /// The probe's `info` report for a bundle edited by `edit`.
    pub fn info(&self, edit: impl FnOnce(&mut Bundle)) -> Result<Value> {
        let mut b = self.bundle()?;
        edit(&mut b);
        self.probe(&mut b, &["info"])
    }
}

/// Run one case, turning errors into failures, [`Skip`]s into skips and
/// panics into failures.
pub fn run_case(ctx: &Ctx, case: &Case) -> Outcome {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(ctx)));
    crate::runtime::reap_orphans();
    match res {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(e)) => match e.downcast_ref::<Skip>() {
            Some(s) => Outcome::Skip(s.0.clone()),
            None => Outcome::Fail(format!("{e:#}").replace('\n', " ")),
        },
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Outcome::Fail(format!("panicked: {msg}"))
        }
    }
}

/// Output formats for results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Tap,
}

/// Render one finished case (TAP and table print as they go).
pub fn render_line(format: Format, n: usize, name: &str, o: &Outcome) -> Option<String> {
    match format {
        Format::Tap => Some(match o {
            Outcome::Pass => format!("ok {n} - {name}"),
            Outcome::Fail(r) => format!("not ok {n} - {name}\n  # {r}"),
            Outcome::Skip(r) => format!("ok {n} - {name} # SKIP {r}"),
        }),
        Format::Table => Some(format!("{:<48} {:<5} {}", name, o.word(), o.reason())),
        Format::Json => None,
    }
}

/// The summary (or, for JSON, the whole report) after all cases ran.
pub fn render_summary(format: Format, runtime: &str, results: &[(String, Outcome)]) -> String {
    let count = |w: &str| results.iter().filter(|(_, o)| o.word() == w).count();
    match format {
        Format::Json => {
            let cases: Vec<Value> = results
                .iter()
                .map(|(n, o)| json!({ "name": n, "result": o.word(), "reason": o.reason() }))
                .collect();
            let v = json!({
                "runtime": runtime,
                "pass": count("pass"), "fail": count("fail"), "skip": count("skip"),
                "cases": cases,
            });
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Format::Tap => format!(
            "# pass {} fail {} skip {}",
            count("pass"),
            count("fail"),
            count("skip")
        ),
        Format::Table => format!(
            "{runtime}: {} cases, {} pass, {} fail, {} skip",
            results.len(),
            count("pass"),
            count("fail"),
            count("skip")
        ),
    }
}
