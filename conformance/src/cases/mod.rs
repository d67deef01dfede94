//! The case registry and the small checks cases share. Case names are
//! stable (`area.what`): TAP output and CI gates refer to them.

use std::borrow::Borrow;
use std::fmt::Debug;

use anyhow::{bail, Result};

use crate::bundle::Bundle;
use crate::case::{Case, Ctx};
use crate::proc::Output;

mod cgroups;
mod cli;
mod hooks;
mod lifecycle;
mod linux;
mod mounts;
mod ns;
mod process;
mod seccomp;
mod terminal;

macro_rules! cases {
    ($($name:literal => $f:expr),* $(,)?) => {
        vec![$(crate::case::Case { name: $name, run: $f }),*]
    };
}
pub(crate) use cases;

/// Every case, in a stable order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(lifecycle::cases());
    v.extend(cli::cases());
    v.extend(hooks::cases());
    v.extend(terminal::cases());
    v.extend(process::cases());
    v.extend(mounts::cases());
    v.extend(ns::cases());
    v.extend(linux::cases());
    v.extend(cgroups::cases());
    v.extend(seccomp::cases());
    v
}

/// `got` must equal `want`.
pub fn check_eq<T: Debug + PartialEq + ?Sized>(what: &str, got: &T, want: &T) -> Result<()> {
    if got != want {
        bail!("{what}: got {got:?}, want {want:?}");
    }
    Ok(())
}

/// The command must have failed.
pub fn expect_err(what: &str, out: impl Borrow<Output>) -> Result<()> {
    let out = out.borrow();
    if out.success() {
        bail!("{what} succeeded but must fail: {}", out.describe());
    }
    Ok(())
}

/// The command must have succeeded.
pub fn expect_ok(what: &str, out: impl Borrow<Output>) -> Result<()> {
    crate::runtime::expect_ok(what, out.borrow())
}

/// The runtime must refuse `b` with an error from `create` or `start`.
pub fn create_or_start_fails(ctx: &Ctx, b: &mut Bundle, what: &str) -> Result<()> {
    b.save()?;
    let c = ctx.container(b);
    let created = c.create()?;
    if !created.success() {
        return Ok(());
    }
    let started = c.start()?;
    if !started.success() {
        return Ok(());
    }
    bail!("neither create nor start reported {what}")
}
