//! Drawing primitives shared by the charts: filled rectangles, lines, the value axis in
//! percent, the palette, and PNG output.

use super::font::{text, ADVANCE, SCALE};
use crate::io::write_atomic;
use anyhow::{Context, Result};
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Background.
pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// Text, axes and error bars.
pub const INK: Rgb<u8> = Rgb([40, 40, 40]);
/// Grid lines.
pub const GRID: Rgb<u8> = Rgb([225, 225, 225]);
/// Series colours, one per method (or row) in order of first appearance.
pub const PALETTE: [Rgb<u8>; 8] = [
    Rgb([120, 120, 120]),
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
];

/// Encodes `image` as PNG and writes it to `path` atomically.
pub fn write_png(image: &RgbImage, path: &Path) -> Result<()> {
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .with_context(|| format!("encoding the chart {}", path.display()))?;
    write_atomic(path, &png)
}

/// A vertical axis from 0 % (bottom) to 100 % (top) over `height` pixels below `top`.
#[derive(Clone, Copy, Debug)]
pub struct ValueAxis {
    /// Top of the plot (100 %).
    pub top: u32,
    /// Height of the plot in pixels.
    pub height: u32,
}

impl ValueAxis {
    /// The row of a fraction `value` (clamped to [0, 1]).
    pub fn y(&self, value: f64) -> u32 {
        let v = value.clamp(0.0, 1.0);
        self.top + self.height - (v * self.height as f64).round() as u32
    }

    /// The bottom row (0 %).
    pub fn bottom(&self) -> u32 {
        self.top + self.height
    }

    /// Grid lines and labels every 20 % from `left` to `right`, and the two axis lines.
    pub fn draw(&self, image: &mut RgbImage, left: u32, right: u32) {
        for tick in 0..=5 {
            let y = self.y(tick as f64 / 5.0);
            hline(image, left, right, y, GRID);
            let label = format!("{}", tick * 20);
            let x = left - 8 - ADVANCE * label.len() as u32;
            text(image, x, y.saturating_sub(7 * SCALE / 2), &label, INK);
        }
        vline(image, left, self.top, self.bottom(), INK);
        hline(image, left, right, self.bottom(), INK);
    }
}

pub fn put(image: &mut RgbImage, x: u32, y: u32, colour: Rgb<u8>) {
    if x < image.width() && y < image.height() {
        image.put_pixel(x, y, colour);
    }
}

pub fn fill(image: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, colour: Rgb<u8>) {
    for y in y0..y1 {
        for x in x0..x1 {
            put(image, x, y, colour);
        }
    }
}

pub fn hline(image: &mut RgbImage, x0: u32, x1: u32, y: u32, colour: Rgb<u8>) {
    fill(image, x0, y, x1, y + 1, colour);
}

pub fn vline(image: &mut RgbImage, x: u32, y0: u32, y1: u32, colour: Rgb<u8>) {
    fill(image, x, y0, x + 1, y1 + 1, colour);
}

/// A straight line from `(x0, y0)` to `(x1, y1)`, `thickness` pixels wide (Bresenham's
/// algorithm, a square brush).
pub fn segment(
    image: &mut RgbImage,
    from: (u32, u32),
    to: (u32, u32),
    thickness: u32,
    colour: Rgb<u8>,
) {
    let (mut x, mut y) = (from.0 as i64, from.1 as i64);
    let (x1, y1) = (to.0 as i64, to.1 as i64);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut error = dx + dy;
    let half = thickness as i64 / 2;
    loop {
        let (bx, by) = ((x - half).max(0) as u32, (y - half).max(0) as u32);
        fill(image, bx, by, bx + thickness, by + thickness, colour);
        if x == x1 && y == y1 {
            break;
        }
        let doubled = 2 * error;
        if doubled >= dy {
            error += dy;
            x += sx;
        }
        if doubled <= dx {
            error += dx;
            y += sy;
        }
    }
}
