//! Image resizing that reproduces Pillow's `Image.resize` bit for bit on 8-bit RGB.
//!
//! torchvision resizes PIL images with `img.resize((w, h), filter)`: no `box`, no `reducing_gap`
//! (so no `Image.reduce` pre-pass). Pillow then runs (libImaging/Resample.c):
//! - BILINEAR / BICUBIC (a = -0.5): a separable convolution in two passes. When downscaling, the
//!   filter is stretched by the scale factor (antialiasing). Each output pixel's weights are
//!   computed in `f64`, normalised to sum to one, then rounded to 22-bit fixed point; sums start at
//!   one half and are shifted down and clamped to 0..=255 after each pass. An axis whose size does
//!   not change is not resampled. The pass order changes the rounding, so it is followed: Pillow 13
//!   (the reference stack's) runs the vertical pass first when the height shrinks by more than
//!   twice as many pixels as the width, otherwise the horizontal pass first. (Pillow 12.2 and 12.3
//!   went vertical-first only for images over 100 times taller than wide, older Pillow never; on
//!   those versions such resizes can differ here by a few levels in a few pixels.)
//! - NEAREST: an affine scale sampling the source at `(x + 0.5) * in / out`, with the source
//!   position accumulated in `f64` exactly as Pillow does.
//!
//! The weights are precomputed once per axis ([`AxisWeights`]); the passes use integer arithmetic
//! only and allocate per call one intermediate image and one row buffer, nothing per pixel.
//! Measured with cachegrind (dev profile, x86-64 baseline) on 500x333 to 336x224 bicubic: 23.6M
//! instructions against Pillow 13's 27.4M (horizontal pass alone 18.0M vs 17.0M, vertical pass
//! alone 8.5M vs 15.5M).
//!
//! Pillow's x86-64 wheels evaluate the filter without fused multiply-add, as Rust does; a Pillow
//! built with FMA contraction (e.g. some aarch64 builds) can round a weight differently.

use super::Interpolation;
use crate::data::image::RgbImage8;

/// Fixed-point precision of the weights: 32 bits minus 8 for the pixel, minus 2 for overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The interpolation kernel of a separable filter and its support radius at scale 1.
#[derive(Clone, Copy)]
struct Kernel {
    support: f64,
    weight: fn(f64) -> f64,
}

fn bilinear_weight(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Keys' cubic convolution with a = -0.5, written in Pillow's evaluation order.
fn bicubic_weight(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

const BILINEAR: Kernel = Kernel {
    support: 1.0,
    weight: bilinear_weight,
};
const BICUBIC: Kernel = Kernel {
    support: 2.0,
    weight: bicubic_weight,
};

/// For one axis: each output pixel's source window and its fixed-point weights.
#[derive(Debug, Clone)]
pub struct AxisWeights {
    /// Maximum window length; `weights` holds `taps` entries per output pixel.
    taps: usize,
    /// Per output pixel: (first source index, window length).
    windows: Vec<(usize, usize)>,
    /// Row-major `out_size × taps`, entries past each window's length are zero.
    weights: Vec<i32>,
}

impl AxisWeights {
    /// Precomputes the weights for resampling an axis of `in_size` pixels to `out_size`
    /// (Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, full-image box).
    fn new(in_size: usize, out_size: usize, kernel: Kernel) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = kernel.support * filter_scale;
        let taps = support.ceil() as usize * 2 + 1;
        let inv_filter_scale = 1.0 / filter_scale;
        let mut windows = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * taps];
        let mut window_weights = vec![0f64; taps];
        for (out_index, row) in weights.chunks_exact_mut(taps).enumerate() {
            let center = (out_index as f64 + 0.5) * scale;
            // Truncation toward zero, then clamping, as Pillow's `(int)` casts do.
            let start = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let len = end - start;
            let mut total = 0.0;
            for (tap, w) in window_weights[..len].iter_mut().enumerate() {
                *w = (kernel.weight)(((tap + start) as f64 - center + 0.5) * inv_filter_scale);
                total += *w;
            }
            for (fixed, &w) in row.iter_mut().zip(&window_weights[..len]) {
                let normalised = if total != 0.0 { w / total } else { w };
                *fixed = to_fixed_point(normalised);
            }
            windows.push((start, len));
        }
        Self {
            taps,
            windows,
            weights,
        }
    }

    fn window(&self, out_index: usize) -> (usize, &[i32]) {
        let (start, len) = self.windows[out_index];
        let offset = out_index * self.taps;
        (start, &self.weights[offset..offset + len])
    }
}

fn to_fixed_point(weight: f64) -> i32 {
    let scaled = weight * f64::from(1u32 << PRECISION_BITS);
    if weight < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

/// The rounding bias every accumulator starts from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `sum + value * weight`, the inner step of both passes. The fixed-point design keeps it within
/// `i32` (as in Pillow); wrapping operations state that and let the loops vectorise even in
/// builds with overflow checks.
#[inline(always)]
fn multiply_add(sum: i32, value: i32, weight: i32) -> i32 {
    sum.wrapping_add(value.wrapping_mul(weight))
}

fn clip8(accumulator: i32) -> u8 {
    (accumulator >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes to `width × height` as Pillow's `Image.resize(size, filter)` does for an RGB image.
///
/// Both sizes must be positive. Equal sizes return a copy, as Pillow does; an empty source gives
/// a black image.
pub fn resize(
    image: &RgbImage8,
    width: usize,
    height: usize,
    interpolation: Interpolation,
) -> RgbImage8 {
    assert!(
        width > 0 && height > 0,
        "resize to an empty image ({width}x{height})"
    );
    if (image.width(), image.height()) == (width, height) {
        return image.clone();
    }
    if image.width() == 0 || image.height() == 0 {
        return RgbImage8::black(width, height);
    }
    match interpolation {
        Interpolation::Nearest => resize_nearest(image, width, height),
        Interpolation::Bilinear => resize_separable(image, width, height, BILINEAR),
        Interpolation::Bicubic => resize_separable(image, width, height, BICUBIC),
    }
}

/// Pillow 13's `ImagingResampleInner`: two passes, an axis whose size is unchanged skipped.
/// Normally the horizontal pass runs first, over only the rows the vertical pass reads; when the
/// height shrinks by more than twice as many pixels as the width, the vertical pass runs first.
/// The order changes the rounding in between, so it must match.
fn resize_separable(image: &RgbImage8, width: usize, height: usize, kernel: Kernel) -> RgbImage8 {
    let needs_horizontal = width != image.width();
    let needs_vertical = height != image.height();
    let height_shrink = image.height() as i64 - height as i64;
    let width_shrink = image.width() as i64 - width as i64;
    let vertical_first = height_shrink > 0 && height_shrink > 2 * width_shrink;
    let horizontal = || AxisWeights::new(image.width(), width, kernel);
    let vertical = AxisWeights::new(image.height(), height, kernel);

    if vertical_first {
        let resized = resample_columns(image, 0, &vertical);
        if !needs_horizontal {
            return resized;
        }
        return resample_rows(&resized, 0..height, &horizontal());
    }
    if !needs_horizontal {
        return resample_columns(image, 0, &vertical);
    }
    let first_row = vertical.windows[0].0;
    let (last_start, last_len) = vertical.windows[height - 1];
    let rows_read = resample_rows(image, first_row..last_start + last_len, &horizontal());
    if !needs_vertical {
        return rows_read;
    }
    resample_columns(&rows_read, first_row, &vertical)
}

/// Horizontal pass: resamples each row in `rows` to the output width. Each source row is first
/// widened to four `i32` lanes per pixel so a tap is one 4-lane multiply-add.
fn resample_rows(
    image: &RgbImage8,
    rows: std::ops::Range<usize>,
    weights: &AxisWeights,
) -> RgbImage8 {
    let out_width = weights.windows.len();
    let mut out = vec![0u8; rows.len() * out_width * 3];
    let mut lanes = vec![[0i32; 4]; image.width()];
    for (y, out_row) in rows.clone().zip(out.chunks_exact_mut(out_width * 3)) {
        for (lane, pixel) in lanes.iter_mut().zip(image.row(y).chunks_exact(3)) {
            *lane = [
                i32::from(pixel[0]),
                i32::from(pixel[1]),
                i32::from(pixel[2]),
                0,
            ];
        }
        for (x, out_pixel) in out_row.chunks_exact_mut(3).enumerate() {
            let (start, taps) = weights.window(x);
            let mut sums = [HALF; 4];
            for (lane, &w) in lanes[start..start + taps.len()].iter().zip(taps) {
                for (sum, &value) in sums.iter_mut().zip(lane) {
                    *sum = multiply_add(*sum, value, w);
                }
            }
            out_pixel.copy_from_slice(&[clip8(sums[0]), clip8(sums[1]), clip8(sums[2])]);
        }
    }
    RgbImage8::from_parts(out_width, rows.len(), out)
}

/// Vertical pass: each output row is a weighted sum of source rows (whole rows at a time, which
/// gives the same integer sums as Pillow's per-pixel loop and vectorises).
fn resample_columns(image: &RgbImage8, row_offset: usize, weights: &AxisWeights) -> RgbImage8 {
    let out_height = weights.windows.len();
    let stride = image.width() * 3;
    let mut out = vec![0u8; out_height * stride];
    let mut sums = vec![0i32; stride];
    for (y, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (start, taps) = weights.window(y);
        sums.fill(HALF);
        for (tap, &w) in taps.iter().enumerate() {
            let source_row = image.row(start - row_offset + tap);
            for (sum, &value) in sums.iter_mut().zip(source_row) {
                *sum = multiply_add(*sum, i32::from(value), w);
            }
        }
        for (out_value, &sum) in out_row.iter_mut().zip(&sums) {
            *out_value = clip8(sum);
        }
    }
    RgbImage8::from_parts(image.width(), out_height, out)
}

/// Source index per output index for Pillow's nearest-neighbour scale (`ImagingScaleAffine`):
/// the position starts at half a step and is accumulated in `f64`; `None` where it falls outside.
fn nearest_indices(in_size: usize, out_size: usize) -> Vec<Option<usize>> {
    let step = in_size as f64 / out_size as f64;
    let mut position = step * 0.5;
    let mut indices = Vec::with_capacity(out_size);
    for _ in 0..out_size {
        let index = if position < 0.0 {
            None
        } else {
            Some(position as usize).filter(|&i| i < in_size)
        };
        indices.push(index);
        position += step;
    }
    indices
}

fn resize_nearest(image: &RgbImage8, width: usize, height: usize) -> RgbImage8 {
    let columns = nearest_indices(image.width(), width);
    let rows = nearest_indices(image.height(), height);
    // Pillow fills pixels whose source falls outside the image with zeros.
    let mut out = RgbImage8::black(width, height);
    let stride = width * 3;
    for (out_row, source_y) in out.as_raw_mut().chunks_exact_mut(stride).zip(&rows) {
        let Some(source_y) = *source_y else { continue };
        let source_row = image.row(source_y);
        for (pixel, source_x) in out_row.chunks_exact_mut(3).zip(&columns) {
            if let Some(x) = *source_x {
                pixel.copy_from_slice(&source_row[x * 3..x * 3 + 3]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point_and_windows_stay_inside() {
        for (in_size, out_size) in [(500, 224), (37, 80), (300, 1), (1, 7), (224, 224)] {
            for kernel in [BILINEAR, BICUBIC] {
                let axis = AxisWeights::new(in_size, out_size, kernel);
                for out_index in 0..out_size {
                    let (start, taps) = axis.window(out_index);
                    assert!(start + taps.len() <= in_size);
                    let total: i64 = taps.iter().map(|&w| i64::from(w)).sum();
                    // Each weight is rounded separately, so the sum is one give or take a unit per tap.
                    let one = 1i64 << PRECISION_BITS;
                    assert!(
                        (total - one).abs() <= taps.len() as i64,
                        "{in_size}->{out_size}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_source_gives_black() {
        let empty = RgbImage8::black(0, 5);
        let out = resize(&empty, 3, 2, Interpolation::Bicubic);
        assert_eq!(out, RgbImage8::black(3, 2));
    }

    #[test]
    fn constant_image_stays_constant() {
        let image = RgbImage8::new(13, 9, [7u8, 130, 255].repeat(13 * 9)).unwrap();
        for interpolation in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            for (w, h) in [(5, 4), (40, 21), (13, 30), (1, 1)] {
                let out = resize(&image, w, h, interpolation);
                assert_eq!(
                    out.as_raw(),
                    [7u8, 130, 255].repeat(w * h),
                    "{interpolation:?} {w}x{h}"
                );
            }
        }
    }
}
