//! The five capability sets of the container process.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The capabilities this kernel knows (probed once: ~40 prctl calls).
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let supported = supported();
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Cap::from_str(&name)
            .map_err(|_| Error::InvalidConfig(format!("unknown capability {name}")))?;
        // A capability this kernel does not know cannot be granted; runc
        // skips those with a warning rather than failing the container.
        if supported.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

pub fn validate(c: &LinuxCapabilities) -> Result<()> {
    for s in [
        c.bounding(),
        c.effective(),
        c.inheritable(),
        c.permitted(),
        c.ambient(),
    ] {
        convert(s)?;
    }
    Ok(())
}

/// Drop every capability outside the bounding set (needs CAP_SETPCAP, so it
/// runs before the user switch).
pub fn drop_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = match c {
        Some(c) => convert(c.bounding())?,
        None => HashSet::new(),
    };
    for &cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Error::Init(format!("drop {cap} from bounding set: {e}")))?;
        }
    }
    Ok(())
}

/// Set effective, inheritable, permitted and ambient sets (after the user
/// switch, with keep-caps). Absent sets are empty: the process gets only
/// what it asked for (CVE-2022-29162: no inheritable capabilities unless
/// listed).
pub fn apply(c: Option<&LinuxCapabilities>) -> Result<()> {
    // Not `LinuxCapabilities::default()`: oci-spec fills that with a
    // default set; an absent `capabilities` means none at all.
    let empty = empty_caps();
    let c = c.unwrap_or(&empty);
    let set = |which: CapSet, v: &CapsHashSet| {
        caps::set(None, which, v)
            .map_err(|e| Error::Init(format!("set {which:?} capabilities: {e}")))
    };
    let eff = convert(c.effective())?;
    let perm = convert(c.permitted())?;
    let inh = convert(c.inheritable())?;
    let amb = convert(c.ambient())?;
    if let Some(x) = eff.difference(&perm).next() {
        return Err(Error::InvalidConfig(format!(
            "effective capability {x} is not in the permitted set"
        )));
    }
    set(CapSet::Effective, &eff.union(&perm).copied().collect())?;
    set(CapSet::Inheritable, &inh)?;
    set(CapSet::Permitted, &perm)?;
    set(CapSet::Effective, &eff)?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
    // The kernel only allows ambient capabilities that are both permitted
    // and inheritable; runc's default spec lists ambient ones without
    // inheritable, and runc then leaves them out: so do we.
    for a in amb
        .iter()
        .copied()
        .filter(|a| perm.contains(a) && inh.contains(a))
    {
        caps::raise(None, CapSet::Ambient, a)
            .map_err(|e| Error::Init(format!("raise ambient capability {a}: {e}")))?;
    }
    Ok(())
}

/// A `LinuxCapabilities` with every set present and empty.
pub fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(HashSet::new()));
    c.set_effective(Some(HashSet::new()));
    c.set_inheritable(Some(HashSet::new()));
    c.set_permitted(Some(HashSet::new()));
    c.set_ambient(Some(HashSet::new()));
    c
}
