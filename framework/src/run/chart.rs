//! `report.png`: a bar chart of a report (mean test value per method × dataset × shots, with
//! the standard deviation over seeds as an error bar), drawn pixel by pixel into an RGB image.
//!
//! The chart needs no font files and no plotting backend: labels use the small built-in
//! bitmap font below (lowercase letters, digits and the few symbols a report prints; other
//! characters are drawn as a hollow box).

use super::report::{GroupStats, Report};
use crate::io::write_atomic;
use anyhow::{Context, Result};
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Pixels per font cell; glyphs are 5 × 7 cells drawn at this scale.
const SCALE: u32 = 2;
/// Horizontal advance of one character, in pixels.
const ADVANCE: u32 = 6 * SCALE;
/// Height of one text line, in pixels.
const LINE: u32 = 9 * SCALE;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([40, 40, 40]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Bar colours, one per method in order of first appearance.
const PALETTE: [Rgb<u8>; 8] = [
    Rgb([120, 120, 120]),
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
];

/// Writes the chart of `report` to `path` (PNG, atomically).
pub fn write_chart(report: &Report, path: &Path) -> Result<()> {
    let image = draw(report);
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .context("encoding the report chart")?;
    write_atomic(path, &png)
}

/// Draws the chart.
pub fn draw(report: &Report) -> RgbImage {
    let groups = &report.groups;
    let slot = 120u32;
    let (left, right, top, bottom) = (70u32, 20u32, 50u32, 70u32);
    let title = format!(
        "{}: {} (%), mean and std over seeds",
        experiments(groups),
        if report.metric == "test" {
            "test accuracy"
        } else {
            &report.metric
        }
    );
    let title_width = left + ADVANCE * title.chars().count() as u32 + right;
    let width = (left + right + slot * groups.len().max(1) as u32)
        .max(640)
        .max(title_width);
    let height = 440u32;
    let mut image = RgbImage::from_pixel(width, height, WHITE);
    let plot_h = height - top - bottom;
    let y_of = |value: f64| -> u32 {
        let v = value.clamp(0.0, 1.0);
        top + plot_h - (v * plot_h as f64).round() as u32
    };
    text(&mut image, left, 14, &title, INK);
    for tick in 0..=5 {
        let value = tick as f64 / 5.0;
        let y = y_of(value);
        hline(&mut image, left, width - right, y, GRID);
        let label = format!("{}", tick * 20);
        let x = left - 8 - ADVANCE * label.len() as u32;
        text(&mut image, x, y.saturating_sub(7 * SCALE / 2), &label, INK);
    }
    vline(&mut image, left, top, top + plot_h, INK);
    hline(&mut image, left, width - right, top + plot_h, INK);

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

fn put(image: &mut RgbImage, x: u32, y: u32, colour: Rgb<u8>) {
    if x < image.width() && y < image.height() {
        image.put_pixel(x, y, colour);
    }
}

fn fill(image: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, colour: Rgb<u8>) {
    for y in y0..y1 {
        for x in x0..x1 {
            put(image, x, y, colour);
        }
    }
}

fn hline(image: &mut RgbImage, x0: u32, x1: u32, y: u32, colour: Rgb<u8>) {
    fill(image, x0, y, x1, y + 1, colour);
}

fn vline(image: &mut RgbImage, x: u32, y0: u32, y1: u32, colour: Rgb<u8>) {
    fill(image, x, y0, x + 1, y1 + 1, colour);
}

/// Draws `s` with its top-left corner at `(x, y)`.
fn text(image: &mut RgbImage, x: u32, y: u32, s: &str, colour: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        let gx = x + ADVANCE * i as u32;
        for (row, bits) in glyph(c).iter().enumerate() {
            for (col, cell) in bits.bytes().enumerate() {
                if cell == b'#' {
                    let (px, py) = (gx + SCALE * col as u32, y + SCALE * row as u32);
                    fill(image, px, py, px + SCALE, py + SCALE, colour);
                }
            }
        }
    }
}

/// Draws `s` centred horizontally on `x`.
fn centred(image: &mut RgbImage, x: u32, y: u32, s: &str, colour: Rgb<u8>) {
    let w = ADVANCE * s.chars().count() as u32;
    text(image, x.saturating_sub(w / 2), y, s, colour);
}

/// The 5 × 7 cells of a character (`#` = ink). Uppercase letters use the lowercase shapes.
fn glyph(c: char) -> [&'static str; 7] {
    match c.to_ascii_lowercase() {
        ' ' => [
            ".....", ".....", ".....", ".....", ".....", ".....", ".....",
        ],
        'a' => [
            ".....", ".....", ".###.", "....#", ".####", "#...#", ".####",
        ],
        'b' => [
            "#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####.",
        ],
        'c' => [
            ".....", ".....", ".###.", "#....", "#....", "#...#", ".###.",
        ],
        'd' => [
            "....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####",
        ],
        'e' => [
            ".....", ".....", ".###.", "#...#", "#####", "#....", ".###.",
        ],
        'f' => [
            "..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#...",
        ],
        'g' => [
            ".....", ".####", "#...#", "#...#", ".####", "....#", ".###.",
        ],
        'h' => [
            "#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
        'i' => [
            "..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###.",
        ],
        'j' => [
            "...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##..",
        ],
        'k' => [
            "#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#.",
        ],
        'l' => [
            ".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        'm' => [
            ".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#",
        ],
        'n' => [
            ".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
        'o' => [
            ".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###.",
        ],
        'p' => [
            ".....", "####.", "#...#", "#...#", "####.", "#....", "#....",
        ],
        'q' => [
            ".....", ".####", "#...#", "#...#", ".####", "....#", "....#",
        ],
        'r' => [
            ".....", ".....", "#.##.", "##..#", "#....", "#....", "#....",
        ],
        's' => [
            ".....", ".....", ".####", "#....", ".###.", "....#", "####.",
        ],
        't' => [
            ".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##.",
        ],
        'u' => [
            ".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#",
        ],
        'v' => [
            ".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
        'w' => [
            ".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#.",
        ],
        'x' => [
            ".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#",
        ],
        'y' => [
            ".....", "#...#", "#...#", "#...#", ".####", "....#", ".###.",
        ],
        'z' => [
            ".....", ".....", "#####", "...#.", "..#..", ".#...", "#####",
        ],
        '0' => [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
        '1' => [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
        '2' => [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
        '3' => [
            "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.",
        ],
        '4' => [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
        '5' => [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
        '6' => [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
        '7' => [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
        '8' => [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
        '9' => [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
        '.' => [
            ".....", ".....", ".....", ".....", ".....", ".##..", ".##..",
        ],
        ',' => [
            ".....", ".....", ".....", ".....", ".##..", "..#..", ".#...",
        ],
        '-' => [
            ".....", ".....", ".....", "#####", ".....", ".....", ".....",
        ],
        '_' => [
            ".....", ".....", ".....", ".....", ".....", ".....", "#####",
        ],
        '%' => [
            "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##",
        ],
        '(' => [
            "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.",
        ],
        ')' => [
            ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...",
        ],
        '/' => [
            ".....", "....#", "...#.", "..#..", ".#...", "#....", ".....",
        ],
        ':' => [
            ".....", ".##..", ".##..", ".....", ".##..", ".##..", ".....",
        ],
        '+' => [
            ".....", "..#..", "..#..", "#####", "..#..", "..#..", ".....",
        ],
        '=' => [
            ".....", ".....", "#####", ".....", "#####", ".....", ".....",
        ],
        '±' => [
            "..#..", "..#..", "#####", "..#..", "..#..", ".....", "#####",
        ],
        _ => [
            "#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn group(method: &str, mean: f64, std: Option<f64>) -> GroupStats {
        GroupStats {
            experiment: "quickstart".into(),
            method: method.into(),
            dataset: "synthetic_parity".into(),
            shots: 16,
            variant: BTreeMap::new(),
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

    #[test]
    fn every_glyph_is_five_by_seven() {
        for c in " abcdefghijklmnopqrstuvwxyz0123456789.,-_%()/:+=±?".chars() {
            for row in glyph(c) {
                assert_eq!(row.len(), 5, "glyph {c:?}");
            }
        }
    }
}
