//! Report plots: accuracy against MACs across pruning iterations, and kept channels per layer
//! (original vs pruned), as SVG and PNG. Text is laid out with a TrueType font found on the
//! system (or `PARE_FONT`), read with pure-Rust ab_glyph: no C font libraries to install.

use crate::prune::schedule::RunState;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

type Res = Result<(), Box<dyn std::error::Error>>;

/// The x axis of an accuracy plot.
#[derive(Clone, Copy)]
enum Axis {
    Macs,
    /// Measured on the board (board-targeted runs).
    Latency,
}

fn accuracy_vs_macs<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, state: &RunState) -> Res
where
    DB::ErrorType: 'static,
{
    accuracy_vs(root, state, Axis::Macs)
}

fn accuracy_vs<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, state: &RunState, axis: Axis) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x = |h: &crate::prune::schedule::Iteration| match axis {
        Axis::Macs => Some(h.macs as f64 / 1e6),
        Axis::Latency => h.measured_latency().map(|m| m as f64 / 1e6),
    };
    let (what, unit) = match (axis, &state.config.board) {
        (Axis::Macs, _) => ("MACs".to_string(), "MACs (M)".to_string()),
        (Axis::Latency, Some(b)) => (format!("latency on {}", b.board), format!("{} (M), measured", b.unit)),
        (Axis::Latency, None) => ("latency".into(), "M".into()),
    };
    let pts: Vec<(f64, f64)> = state.history.iter().filter_map(|h| Some((x(h)?, 100.0 * h.top1))).collect();
    let (xmax, ymin, ymax) =
        pts.iter().fold((0f64, 100f64, 0f64), |(x, lo, hi), (a, b)| (x.max(*a), lo.min(*b), hi.max(*b)));
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("top-1 vs {what} ({})", state.config.criterion.name()), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..xmax * 1.05, (ymin - 2.0).max(0.0)..(ymax + 1.0).min(100.0))?;
    chart.configure_mesh().x_desc(unit).y_desc("top-1 (%)").draw()?;
    chart.draw_series(LineSeries::new(pts.clone(), &BLUE))?;
    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

fn channels<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, state: &RunState) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (Some(first), Some(last)) = (state.history.first(), state.history.last()) else { return Ok(()) };
    let n = first.channels.len();
    let cmax = first.channels.iter().map(|(_, c)| *c).max().unwrap_or(1);
    let mut chart = ChartBuilder::on(&root)
        .caption("kept channels per layer: original (grey) vs pruned (blue)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..n as f64, 0f64..cmax as f64 * 1.05)?;
    chart.configure_mesh().x_desc("conv layer (execution order)").y_desc("output channels").disable_x_mesh().draw()?;
    chart.draw_series(first.channels.iter().enumerate().map(|(i, (_, c))| {
        Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *c as f64)], RGBColor(200, 200, 200).filled())
    }))?;
    chart.draw_series(
        last.channels
            .iter()
            .enumerate()
            .map(|(i, (_, c))| Rectangle::new([(i as f64 + 0.25, 0.0), (i as f64 + 0.75, *c as f64)], BLUE.filled())),
    )?;
    root.present()?;
    Ok(())
}

fn font() -> Option<&'static [u8]> {
    let candidates: Vec<PathBuf> = std::env::var_os("PARE_FONT")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(PathBuf::from),
        )
        .collect();
    let bytes = candidates.iter().find_map(|p| std::fs::read(p).ok())?;
    Some(Box::leak(bytes.into_boxed_slice()))
}

/// A plot that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

/// Draws one plot as SVG and as PNG in memory and writes both atomically ([`crate::atomic`]):
/// a plot that cannot be written whole (a full disk) leaves no truncated file behind.
fn both(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    draw_svg: &dyn Fn(DrawingArea<SVGBackend<'_>, Shift>) -> Res,
    draw_png: &dyn Fn(DrawingArea<BitMapBackend<'_>, Shift>) -> Res,
) -> Result<[PathBuf; 2], PlotError> {
    let err = |e: Box<dyn std::error::Error>| PlotError(e.to_string());
    let io = |p: &Path, e: std::io::Error| PlotError(format!("{}: {e}", p.display()));
    let mut svg = String::new();
    draw_svg(SVGBackend::with_string(&mut svg, size).into_drawing_area()).map_err(err)?;
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    draw_png(BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area()).map_err(err)?;
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &rgb,
        size.0,
        size.1,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| PlotError(e.to_string()))?;
    let (s, p) = (dir.join(format!("{stem}.svg")), dir.join(format!("{stem}.png")));
    crate::atomic::write(&s, svg.as_bytes()).map_err(|e| io(&s, e))?;
    crate::atomic::write(&p, &png).map_err(|e| io(&p, e))?;
    Ok([s, p])
}

/// Writes `accuracy_vs_macs.{svg,png}` and `channels.{svg,png}` into `dir` (and
/// `accuracy_vs_latency.{svg,png}` when the board measured the run); returns the files.
/// Text needs a TrueType font (measured for both formats); without one, plots are skipped with
/// a note and the Markdown/JSON reports stand alone.
pub fn write(dir: &Path, state: &RunState) -> Result<Vec<PathBuf>, PlotError> {
    let Some(bytes) = font() else {
        crate::say!("note: no TrueType font found (set PARE_FONT=file.ttf): plots skipped");
        return Ok(vec![]);
    };
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
    let mut files = vec![];
    files.extend(both(dir, "accuracy_vs_macs", (720, 480), &|a| accuracy_vs_macs(a, state), &|a| {
        accuracy_vs_macs(a, state)
    })?);
    files.extend(both(dir, "channels", (900, 480), &|a| channels(a, state), &|a| channels(a, state))?);
    if state.history.iter().any(|h| h.measured_latency().is_some()) {
        files.extend(both(dir, "accuracy_vs_latency", (720, 480), &|a| accuracy_vs(a, state, Axis::Latency), &|a| {
            accuracy_vs(a, state, Axis::Latency)
        })?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::schedule::{Iteration, PruneConfig};

    fn state() -> RunState {
        let it = |iteration: usize, macs: u64, top1: f64, c: usize| Iteration {
            iteration,
            kept_ratio: c as f64 / 16.0,
            macs,
            params: macs / 10,
            top1,
            per_class: vec![top1; 10],
            channels: vec![("conv1".into(), c), ("conv2".into(), 2 * c)],
            removed: 16 - c,
            seconds: 1.0,
            checkpoint: None,
            steps: 10,
            recovery: false,
            predicted_latency: None,
            board_trace: None,
            top1_after_removal: None,
        };
        RunState {
            config: PruneConfig::default(),
            original_prunable: 48,
            history: vec![it(0, 2_000_000, 0.9, 16), it(1, 1_000_000, 0.85, 8)],
            done: true,
            finetune_data: "synthetic:train".into(),
        }
    }

    /// Every file in `dir` is a whole plot: a PNG that decodes or an SVG that ends its document.
    fn whole(dir: &Path) -> Vec<String> {
        let mut bad = vec![];
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            let ok = match p.extension().and_then(|e| e.to_str()) {
                Some("png") => image::load_from_memory(&bytes).is_ok(),
                Some("svg") => String::from_utf8_lossy(&bytes).trim_end().ends_with("</svg>"),
                _ => false,
            };
            if !ok {
                bad.push(format!("{} ({} bytes)", p.display(), bytes.len()));
            }
        }
        bad
    }

    #[test]
    fn plots_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &state()).unwrap();
        assert!(font().is_some(), "no TrueType font: scripts/setup installs fonts-dejavu-core (or set PARE_FONT)");
        assert_eq!(files.len(), 4);
        assert_eq!(whole(dir.path()), Vec::<String>::new());
    }

    /// A plot that cannot be written whole (here a file size limit, as a full disk) leaves no
    /// truncated file: this test runs itself again as a child process under RLIMIT_FSIZE.
    #[cfg(unix)]
    #[test]
    fn a_plot_that_cannot_be_written_whole_leaves_nothing() {
        use std::os::unix::process::CommandExt;
        const CHILD: &str = "PARE_PLOTS_TEST_DIR";
        if let Some(dir) = std::env::var_os(CHILD) {
            let failed = write(Path::new(&dir), &state()).is_err();
            std::process::exit(if failed { 3 } else { 0 });
        }
        assert!(font().is_some(), "no TrueType font: scripts/setup installs fonts-dejavu-core (or set PARE_FONT)");
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "plots::tests::a_plot_that_cannot_be_written_whole_leaves_nothing", "--nocapture"])
            .env(CHILD, dir.path());
        // SAFETY: between fork and exec only setrlimit(2) and signal(2), both async-signal-safe.
        unsafe {
            child.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 2048, rlim_max: 2048 };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Past the limit write(2) fails with EFBIG instead of the process being killed.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        // Its output goes to pipes: the size limit would fail its writes to a log file too.
        let out = child.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "the child should have failed to write the plots:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(whole(dir.path()), Vec::<String>::new());
    }
}
