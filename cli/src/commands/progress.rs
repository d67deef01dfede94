//! Registry transfer progress: a bar per blob (indicatif) on a terminal,
//! one line per event otherwise.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;

use berth_storage::PullEvent;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Turns [`PullEvent`]s into output on stderr.
pub struct Reporter {
    verb: &'static str,
    quiet: bool,
    bars: Option<(MultiProgress, RefCell<HashMap<String, ProgressBar>>)>,
}

fn short(d: &str) -> &str {
    d.trim_start_matches("sha256:").get(..12).unwrap_or(d)
}

impl Reporter {
    /// `verb` names the transfer ("Copying", "Pushing").
    pub fn new(verb: &'static str, quiet: bool) -> Reporter {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                RefCell::new(HashMap::new()),
            )
        });
        Reporter { verb, quiet, bars }
    }

    pub fn event(&self, e: PullEvent) {
        if self.quiet {
            return;
        }
        let Some((multi, bars)) = &self.bars else {
            return self.line(e);
        };
        match e {
            PullEvent::BlobStart { digest, size } => {
                let bar = multi.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{} blob {}", self.verb, short(&digest)));
                bars.borrow_mut().insert(digest, bar);
            }
            PullEvent::BlobProgress { digest, done, .. } => {
                if let Some(b) = bars.borrow().get(&digest) {
                    b.set_position(done);
                }
            }
            PullEvent::BlobDone { digest } => {
                if let Some(b) = bars.borrow_mut().remove(&digest) {
                    b.finish();
                }
            }
            other => {
                let _ = multi.println(text(self.verb, &other));
            }
        }
    }

    fn line(&self, e: PullEvent) {
        if !matches!(e, PullEvent::BlobProgress { .. }) {
            eprintln!("{}", text(self.verb, &e));
        }
    }
}

fn text(verb: &str, e: &PullEvent) -> String {
    match e {
        PullEvent::Resolved { manifest } => format!("Resolved manifest {manifest}"),
        PullEvent::BlobPresent { digest } => format!("Blob {} already present", short(digest)),
        PullEvent::BlobStart { digest, size } => {
            format!("{verb} blob {} ({size} bytes)", short(digest))
        }
        PullEvent::BlobProgress { digest, done, size } => {
            format!("{verb} blob {} {done}/{size}", short(digest))
        }
        PullEvent::BlobDone { digest } => format!("Done blob {}", short(digest)),
        PullEvent::Unpacking => "Unpacking layers".to_string(),
    }
}
