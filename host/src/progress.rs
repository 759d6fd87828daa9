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

/// Where the library's progress lines (`say!`) go: nowhere until a front end installs a sink
/// (the `pare` command sends them to stderr), so a program using the library decides what
/// reaches its terminal.
static SINK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Sends every later progress line to `sink` (the first call wins).
pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// One progress line to the installed sink, if any (use [`say!`](crate::say)).
pub fn say(line: std::fmt::Arguments<'_>) {
    if let Some(sink) = SINK.get() {
        sink(&line.to_string());
    }
}

/// A progress line, formatted like `eprintln!`, sent to [`set_sink`]'s sink.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::say(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[test]
    fn progress_lines_reach_the_installed_sink_and_nothing_else() {
        // Before a sink: dropped (nothing to observe but that it does not panic).
        crate::say!("lost {}", 1);
        super::set_sink(|l| LINES.lock().map(|mut v| v.push(l.to_string())).unwrap_or(()));
        crate::say!("iteration {}: top-1 {:.2} %", 3, 88.456);
        let got = LINES.lock().map(|v| v.clone()).unwrap_or_default();
        // Other tests of this binary may say things meanwhile: look for ours among them.
        assert!(got.iter().any(|l| l == "iteration 3: top-1 88.46 %"), "{got:?}");
        assert!(!got.iter().any(|l| l == "lost 1"), "a line said before the sink was installed arrived: {got:?}");
    }
}
