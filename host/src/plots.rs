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

/// Writes `accuracy_vs_macs.{svg,png}` and `channels.{svg,png}` into `dir`; returns the files.
/// Text needs a TrueType font (measured for both formats); without one, plots are skipped with
/// a note and the Markdown/JSON reports stand alone.
/// A plot that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

pub fn write(dir: &Path, state: &RunState) -> Result<Vec<PathBuf>, PlotError> {
    let Some(bytes) = font() else {
        crate::say!("note: no TrueType font found (set PARE_FONT=file.ttf): plots skipped");
        return Ok(vec![]);
    };
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
    let err = |e: Box<dyn std::error::Error>| PlotError(e.to_string());
    let (a, c) = (dir.join("accuracy_vs_macs.svg"), dir.join("channels.svg"));
    accuracy_vs_macs(SVGBackend::new(&a, (720, 480)).into_drawing_area(), state).map_err(err)?;
    channels(SVGBackend::new(&c, (900, 480)).into_drawing_area(), state).map_err(err)?;
    let (ap, cp) = (dir.join("accuracy_vs_macs.png"), dir.join("channels.png"));
    accuracy_vs_macs(BitMapBackend::new(&ap, (720, 480)).into_drawing_area(), state).map_err(err)?;
    channels(BitMapBackend::new(&cp, (900, 480)).into_drawing_area(), state).map_err(err)?;
    let mut files = vec![a, c, ap, cp];
    if state.history.iter().any(|h| h.measured_latency().is_some()) {
        let (l, lp) = (dir.join("accuracy_vs_latency.svg"), dir.join("accuracy_vs_latency.png"));
        accuracy_vs(SVGBackend::new(&l, (720, 480)).into_drawing_area(), state, Axis::Latency).map_err(err)?;
        accuracy_vs(BitMapBackend::new(&lp, (720, 480)).into_drawing_area(), state, Axis::Latency).map_err(err)?;
        files.extend([l, lp]);
    }
    Ok(files)
}
