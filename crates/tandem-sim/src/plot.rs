//! Per-frame latency over time, one panel per policy, stall windows shaded.

use std::path::Path;

use plotters::prelude::*;

use crate::runner::RunResult;

/// Draws `runs` (label, result) into an SVG at `path`.
pub fn latency_svg(path: &Path, runs: &[(String, &RunResult)]) -> Result<(), String> {
    let height = 260 * runs.len().max(1) as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((runs.len().max(1), 1));
    for (panel, (label, run)) in panels.iter().zip(runs) {
        let secs = run.scenario.duration.as_secs_f64();
        let points: Vec<(f64, f64)> = run
            .frames
            .iter()
            .filter_map(|f| Some((f.capture.as_secs_f64(), f.latency()?.as_secs_f64() * 1e3)))
            .collect();
        let top = points.iter().map(|p| p.1).fold(10.0f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(label, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..secs, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("capture time (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(|e| e.to_string())?;
        let shade = RGBColor(255, 200, 120).mix(0.5).filled();
        chart
            .draw_series(run.stall_windows.iter().map(|&(s, e)| {
                Rectangle::new([(s.as_secs_f64(), 0.0), (e.as_secs_f64(), top)], shade)
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 1, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
