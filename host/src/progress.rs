//! Progress bars (indicatif), hidden when stderr is not a terminal so logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `n` steps.
pub fn steps(n: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A byte-count bar (downloads).
pub fn bytes(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = total.map(ProgressBar::new).unwrap_or_else(ProgressBar::no_length);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}
