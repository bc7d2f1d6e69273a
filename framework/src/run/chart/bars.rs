//! `report.png`: a bar chart of a report (mean test value per method × dataset × shots, with
//! the standard deviation over seeds as an error bar).

use super::canvas::{fill, hline, vline, write_png, ValueAxis, INK, PALETTE, WHITE};
use super::font::{centred, text, ADVANCE, LINE};
use crate::run::report::{GroupStats, Report};
use anyhow::Result;
use image::RgbImage;
use std::path::Path;

/// Writes the chart of `report` to `path` (PNG, atomically).
pub fn write_chart(report: &Report, path: &Path) -> Result<()> {
    write_png(&draw(report), path)
}

/// Draws the chart.
pub fn draw(report: &Report) -> RgbImage {
    let groups = &report.groups;
    let slot = 120u32;
    let (left, right, top, bottom) = (70u32, 20u32, 50u32, 70u32);
    let title = format!(
        "{}: {} (%), mean and std over seeds",
        experiments(groups),
        report.metric_title()
    );
    let title_width = left + ADVANCE * title.chars().count() as u32 + right;
    let width = (left + right + slot * groups.len().max(1) as u32)
        .max(640)
        .max(title_width);
    let height = 440u32;
    let mut image = RgbImage::from_pixel(width, height, WHITE);
    let plot_h = height - top - bottom;
    let axis = ValueAxis {
        top,
        height: plot_h,
    };
    let y_of = |value: f64| axis.y(value);
    text(&mut image, left, 14, &title, INK);
    axis.draw(&mut image, left, width - right);

    let methods = distinct(groups.iter().map(|g| g.method.as_str()));
    let datasets = distinct(groups.iter().map(|g| g.dataset.as_str()));
    let shots = distinct(groups.iter().map(|g| g.shots));
    for (i, group) in groups.iter().enumerate() {
        let x0 = left + slot * i as u32 + 20;
        let x1 = x0 + slot - 40;
        let colour = PALETTE[methods.iter().position(|m| *m == group.method).unwrap_or(0) % 8];
        let y = y_of(group.mean);
        fill(&mut image, x0, y, x1, top + plot_h, colour);
        if let Some(std) = group.std {
            let xc = (x0 + x1) / 2;
            let (lo, hi) = (y_of(group.mean - std), y_of(group.mean + std));
            vline(&mut image, xc, hi, lo, INK);
            hline(&mut image, xc - 6, xc + 7, hi, INK);
            hline(&mut image, xc - 6, xc + 7, lo, INK);
        }
        let value = format!("{:.1}", 100.0 * group.mean);
        let above = y_of(group.mean + group.std.unwrap_or(0.0));
        centred(
            &mut image,
            (x0 + x1) / 2,
            above.saturating_sub(LINE),
            &value,
            INK,
        );
        let mut lines = vec![group.method.clone()];
        if datasets.len() > 1 {
            lines.push(group.dataset.clone());
        }
        if shots.len() > 1 {
            lines.push(format!("{}-shot", group.shots));
        }
        for (k, line) in lines.iter().enumerate() {
            let fit: String = line.chars().take((slot / ADVANCE) as usize).collect();
            let y = top + plot_h + 10 + LINE * k as u32;
            centred(&mut image, (x0 + x1) / 2, y, &fit, INK);
        }
    }
    image
}

fn experiments(groups: &[GroupStats]) -> String {
    distinct(groups.iter().map(|g| g.experiment.as_str())).join(", ")
}

fn distinct<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use std::collections::BTreeMap;

    fn group(method: &str, mean: f64, std: Option<f64>) -> GroupStats {
        GroupStats {
            experiment: "quickstart".into(),
            method: method.into(),
            dataset: "synthetic_parity".into(),
            shots: 16,
            variant: BTreeMap::new(),
            classes: "all".into(),
            mean,
            std,
            n: 2,
            seeds: vec![1, 2],
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_means_and_coloured_by_method() {
        let report = Report {
            metric: "test".into(),
            variant_keys: Vec::new(),
            groups: vec![
                group("zero_shot", 0.25, None),
                group("coop", 0.75, Some(0.05)),
            ],
            averages: Vec::new(),
        };
        let image = draw(&report);
        // The plot spans y = 50 (100 %) to y = 370 (0 %); bar centres at x = 130 and 250.
        let column = |x: u32| -> Vec<Rgb<u8>> { (50..370).map(|y| image[(x, y)]).collect() };
        let zero_shot = column(110).iter().filter(|p| **p == PALETTE[0]).count();
        let coop = column(230).iter().filter(|p| **p == PALETTE[1]).count();
        assert_eq!(zero_shot, 80, "a 25 % bar is a quarter of 320 px");
        assert_eq!(coop, 240, "a 75 % bar is three quarters of 320 px");
        // The error bar of coop is drawn in ink above and inside its bar.
        assert_eq!(image[(250, y_for(0.80))], INK);
    }

    fn y_for(value: f64) -> u32 {
        50 + 320 - (value * 320.0).round() as u32
    }
}
