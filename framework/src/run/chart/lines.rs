//! A line chart of values against shots: one line per series (a method, or a report row
//! label), points at evenly spaced shot counts, a legend on the right. `mvlpt report` draws
//! the average over datasets against shots with it (`report-shots.png`, `table-shots.png`).

use super::canvas::{fill, segment, write_png, ValueAxis, INK, PALETTE, WHITE};
use super::font::{centred, text, width, LINE, SCALE};
use anyhow::Result;
use image::RgbImage;
use std::path::Path;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(shots, value)` points, values as fractions in [0, 1]; drawn in order of shots.
    pub points: Vec<(usize, f64)>,
}

/// A chart of values (in %) against shots.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Title line.
    pub title: String,
    /// The lines, coloured in this order.
    pub series: Vec<Series>,
}

/// Left margin (value labels).
const LEFT: u32 = 70;
/// Top margin (title).
const TOP: u32 = 50;
/// Bottom margin (shot labels and axis title).
const BOTTOM: u32 = 60;
/// Height of the whole image.
const HEIGHT: u32 = 440;
/// Horizontal room per shot count.
const SLOT: u32 = 140;
/// Gap between the plot and the legend, and the legend's right margin.
const GAP: u32 = 30;
/// Side of a point marker and of a legend swatch.
const MARK: u32 = 8;
/// Legend names longer than this are cut.
const NAME_CHARS: usize = 40;

/// The geometry of a chart: where each shot count and each value goes.
struct Frame {
    shots: Vec<usize>,
    plot_width: u32,
    axis: ValueAxis,
}

impl Frame {
    fn new(chart: &LineChart) -> Self {
        let mut shots: Vec<usize> = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        shots.sort_unstable();
        shots.dedup();
        Self {
            plot_width: (SLOT * shots.len().max(1) as u32).max(3 * SLOT),
            shots,
            axis: ValueAxis {
                top: TOP,
                height: HEIGHT - TOP - BOTTOM,
            },
        }
    }

    /// The column of `shots`: the centre of its slot.
    fn x(&self, shots: usize) -> u32 {
        let i = self.shots.iter().position(|&s| s == shots).unwrap_or(0) as u32;
        let n = self.shots.len().max(1) as u32;
        LEFT + self.plot_width * (2 * i + 1) / (2 * n)
    }

    fn point(&self, (shots, value): (usize, f64)) -> (u32, u32) {
        (self.x(shots), self.axis.y(value))
    }

    fn legend_left(&self) -> u32 {
        LEFT + self.plot_width + GAP
    }
}

/// Writes the chart to `path` (PNG, atomically).
pub fn write_line_chart(chart: &LineChart, path: &Path) -> Result<()> {
    write_png(&draw_lines(chart), path)
}

/// The legend name of a series as drawn.
fn legend_name(series: &Series) -> String {
    series.name.chars().take(NAME_CHARS).collect()
}

/// Draws the chart.
pub fn draw_lines(chart: &LineChart) -> RgbImage {
    let frame = Frame::new(chart);
    let legend_width = chart
        .series
        .iter()
        .map(|s| MARK + 8 + width(&legend_name(s)))
        .max()
        .unwrap_or(0);
    let image_width =
        (frame.legend_left() + legend_width + GAP).max(LEFT + width(&chart.title) + GAP);
    let mut image = RgbImage::from_pixel(image_width, HEIGHT, WHITE);
    text(&mut image, LEFT, 14, &chart.title, INK);
    frame.axis.draw(&mut image, LEFT, LEFT + frame.plot_width);
    let label_y = frame.axis.bottom() + 10;
    for &shots in &frame.shots {
        centred(&mut image, frame.x(shots), label_y, &shots.to_string(), INK);
    }
    centred(
        &mut image,
        LEFT + frame.plot_width / 2,
        label_y + LINE + 4,
        "shots per class",
        INK,
    );
    for (i, series) in chart.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut points = series.points.clone();
        points.sort_by_key(|p| p.0);
        for pair in points.windows(2) {
            segment(
                &mut image,
                frame.point(pair[0]),
                frame.point(pair[1]),
                2,
                colour,
            );
        }
        for &point in &points {
            let (x, y) = frame.point(point);
            let (x0, y0) = (x.saturating_sub(MARK / 2), y.saturating_sub(MARK / 2));
            fill(&mut image, x0, y0, x0 + MARK, y0 + MARK, colour);
        }
        let y = TOP + i as u32 * (LINE + 4);
        let x = frame.legend_left();
        fill(&mut image, x, y + SCALE, x + MARK, y + SCALE + MARK, colour);
        text(&mut image, x + MARK + 8, y, &legend_name(series), INK);
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart {
            title: "average over targets".into(),
            series: vec![
                Series {
                    name: "coop".into(),
                    points: vec![(5, 0.75), (1, 0.5)],
                },
                Series {
                    name: "mcoop".into(),
                    points: vec![(1, 0.25), (5, 0.25), (20, 1.0)],
                },
            ],
        }
    }

    #[test]
    fn points_sit_at_their_shots_and_values_in_their_series_colour() {
        let chart = chart();
        let image = draw_lines(&chart);
        assert_eq!(image.height(), HEIGHT);
        // Three shot counts share a plot of three slots; the legend follows it.
        let frame = Frame::new(&chart);
        assert_eq!(frame.shots, [1, 5, 20]);
        assert_eq!(
            [frame.x(1), frame.x(5), frame.x(20)],
            [LEFT + 70, LEFT + 210, LEFT + 350]
        );
        let expected_width = LEFT + 3 * SLOT + GAP + MARK + 8 + width("mcoop") + GAP;
        assert_eq!(image.width(), expected_width);
        // The plot spans y = 50 (100 %) to y = 380 (0 %).
        for (i, series) in chart.series.iter().enumerate() {
            for &point in &series.points {
                let (x, y) = frame.point(point);
                assert_eq!(image[(x, y)], PALETTE[i], "{} at {point:?}", series.name);
            }
        }
        assert_eq!(frame.point((5, 0.75)), (LEFT + 210, 50 + 330 - 248));
        // coop's line from (1, 50 %) to (5, 75 %) passes through its midpoint.
        let (a, b) = (frame.point((1, 0.5)), frame.point((5, 0.75)));
        assert_eq!(image[((a.0 + b.0) / 2, (a.1 + b.1) / 2)], PALETTE[0]);
        // mcoop is flat between 1 and 5 shots at 25 %.
        let y = frame.axis.y(0.25);
        assert!((frame.x(1)..frame.x(5)).all(|x| image[(x, y)] == PALETTE[1]));
        // One legend swatch per series, in the series colour.
        for i in 0..2u32 {
            let (x, y) = (frame.legend_left() + 1, TOP + i * (LINE + 4) + SCALE + 1);
            assert_eq!(image[(x, y)], PALETTE[i as usize]);
        }
    }

    #[test]
    fn a_long_title_widens_the_image() {
        let mut chart = chart();
        chart.title = "x".repeat(120);
        assert_eq!(draw_lines(&chart).width(), LEFT + width(&chart.title) + GAP);
    }
}
