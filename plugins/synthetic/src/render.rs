//! Drawing a [`Scene`] into an 8-bit RGB image: every pixel averages a 3 × 3 grid of samples
//! (cheap anti-aliasing), each sample taking the foreground colour when it falls inside an
//! object or a digit stroke and the background texture otherwise.

use crate::glyphs::digit_strokes;
use crate::world::{Background, Content, Scene, Shape, Texture};
use mvlpt_framework::data::image::RgbImage8;
use std::f32::consts::{PI, TAU};

/// Samples per pixel side.
const SUPERSAMPLING: usize = 3;

/// Renders `scene` as a `size × size` image.
pub fn render(scene: &Scene, size: usize) -> RgbImage8 {
    let foreground = Foreground::new(scene);
    let mut data = Vec::with_capacity(size * size * 3);
    let scale = 1.0 / (size * SUPERSAMPLING) as f32;
    let weight = 1.0 / (SUPERSAMPLING * SUPERSAMPLING) as f32;
    for py in 0..size {
        for px in 0..size {
            let mut sum = [0f32; 3];
            for sy in 0..SUPERSAMPLING {
                for sx in 0..SUPERSAMPLING {
                    let x = ((px * SUPERSAMPLING + sx) as f32 + 0.5) * scale;
                    let y = ((py * SUPERSAMPLING + sy) as f32 + 0.5) * scale;
                    let c = if foreground.contains(x, y) {
                        scene.rgb
                    } else {
                        background_at(&scene.background, x, y)
                    };
                    for (s, v) in sum.iter_mut().zip(c) {
                        *s += v;
                    }
                }
            }
            data.extend(sum.map(|s| (s * weight).round().clamp(0.0, 255.0) as u8));
        }
    }
    RgbImage8::new(size, size, data).expect("the buffer has size × size × 3 bytes")
}

/// The background colour at unit coordinates `(x, y)`.
fn background_at(bg: &Background, x: f32, y: f32) -> [f32; 3] {
    let p = bg.period;
    let on_pattern = match bg.texture {
        Texture::Plain => {
            let shade = 1.0 + 0.12 * (y - 0.5);
            return bg.base.map(|c| c * shade);
        }
        Texture::Striped => {
            let u = x * bg.angle.cos() + y * bg.angle.sin();
            fract(u / p + bg.phase.0) < 0.5
        }
        Texture::Dotted => {
            let gx = fract(x / p + bg.phase.0) - 0.5;
            let gy = fract(y / p + bg.phase.1) - 0.5;
            gx * gx + gy * gy < 0.23 * 0.23
        }
        Texture::Checkered => {
            let cell = (x / p + bg.phase.0).floor() + (y / p + bg.phase.1).floor();
            cell.rem_euclid(2.0) < 1.0
        }
        Texture::Wavy => {
            let (along, across) = if bg.angle == 0.0 { (x, y) } else { (y, x) };
            let u = across + 0.3 * p * (TAU * along / (2.5 * p)).sin();
            fract(u / p + bg.phase.0) < 0.5
        }
    };
    if on_pattern {
        bg.pattern
    } else {
        bg.base
    }
}

fn fract(v: f32) -> f32 {
    v - v.floor()
}

/// The foreground of a scene, prepared for point queries.
enum Foreground {
    Objects {
        shape: Shape,
        radius: f32,
        centres: Vec<(f32, f32)>,
        star: Vec<(f32, f32)>,
    },
    Glyph {
        /// Stroke segments in unit image coordinates.
        segments: Vec<((f32, f32), (f32, f32))>,
        half_width: f32,
        bounds: (f32, f32, f32, f32),
    },
}

impl Foreground {
    fn new(scene: &Scene) -> Self {
        match &scene.content {
            Content::Objects {
                shape,
                radius,
                centres,
                ..
            } => Self::Objects {
                shape: *shape,
                radius: *radius,
                centres: centres.clone(),
                star: star_polygon(),
            },
            Content::Glyph {
                digit,
                centre,
                height,
                shear,
                stroke,
            } => {
                let width = 0.6 * height;
                let place = |(gx, gy): (f32, f32)| {
                    (
                        centre.0 + (gx - 0.5) * width + shear * (0.5 - gy) * height,
                        centre.1 + (gy - 0.5) * height,
                    )
                };
                let segments: Vec<_> = digit_strokes(*digit)
                    .iter()
                    .flat_map(|s| {
                        s.windows(2)
                            .map(|w| (place(w[0]), place(w[1])))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let half_width = 0.5 * stroke * height;
                let bounds = segments.iter().fold(
                    (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
                    |(x0, y0, x1, y1), (a, b)| {
                        (
                            x0.min(a.0).min(b.0),
                            y0.min(a.1).min(b.1),
                            x1.max(a.0).max(b.0),
                            y1.max(a.1).max(b.1),
                        )
                    },
                );
                Self::Glyph {
                    segments,
                    half_width,
                    bounds: (
                        bounds.0 - half_width,
                        bounds.1 - half_width,
                        bounds.2 + half_width,
                        bounds.3 + half_width,
                    ),
                }
            }
        }
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        match self {
            Self::Objects {
                shape,
                radius,
                centres,
                star,
            } => centres.iter().any(|&(cx, cy)| {
                let (u, v) = ((x - cx) / radius, (y - cy) / radius);
                u.abs() <= 1.3 && v.abs() <= 1.3 && inside_shape(*shape, u, v, star)
            }),
            Self::Glyph {
                segments,
                half_width,
                bounds,
            } => {
                if x < bounds.0 || y < bounds.1 || x > bounds.2 || y > bounds.3 {
                    return false;
                }
                let limit = half_width * half_width;
                segments
                    .iter()
                    .any(|&(a, b)| segment_distance_sq((x, y), a, b) <= limit)
            }
        }
    }
}

/// Whether `(u, v)` (object-centred, in radii, v downwards) lies inside `shape`.
fn inside_shape(shape: Shape, u: f32, v: f32, star: &[(f32, f32)]) -> bool {
    let r2 = u * u + v * v;
    match shape {
        Shape::Circle => r2 <= 1.0,
        Shape::Square => u.abs().max(v.abs()) <= 0.82,
        Shape::Triangle => v <= 0.75 && u.abs() <= (v + 0.95) / 1.7,
        Shape::Star => inside_polygon(star, u, v),
        Shape::Diamond => u.abs() + v.abs() <= 1.0,
        Shape::Cross => {
            (u.abs() <= 0.32 && v.abs() <= 0.95) || (v.abs() <= 0.32 && u.abs() <= 0.95)
        }
        Shape::Heart => {
            let (hx, hy) = (u * 1.2, -v * 1.2 + 0.2);
            let a = hx * hx + hy * hy - 1.0;
            a * a * a - hx * hx * hy * hy * hy <= 0.0
        }
        Shape::Hexagon => {
            let h = 0.866 * 0.95;
            v.abs() <= h && u.abs() * 0.866 + v.abs() * 0.5 <= h
        }
        Shape::Crescent => r2 <= 1.0 && (u - 0.45).powi(2) + (v + 0.15).powi(2) > 0.64,
        Shape::Ring => (0.3..=1.0).contains(&r2),
    }
}

/// A five-pointed star (outer radius 1, inner 0.42), one point up.
fn star_polygon() -> Vec<(f32, f32)> {
    (0..10)
        .map(|i| {
            let r = if i % 2 == 0 { 1.0 } else { 0.42 };
            let t = -PI / 2.0 + i as f32 * PI / 5.0;
            (r * t.cos(), r * t.sin())
        })
        .collect()
}

/// Even-odd rule point-in-polygon test.
fn inside_polygon(polygon: &[(f32, f32)], x: f32, y: f32) -> bool {
    let mut inside = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let (xi, yi) = polygon[i];
        let (xj, yj) = polygon[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Squared distance from `p` to the segment `a`–`b`.
fn segment_distance_sq(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    ex * ex + ey * ey
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_differ_from_each_other() {
        // Rasterise every shape on a 33 × 33 grid; no two masks may be equal.
        let star = star_polygon();
        let masks: Vec<Vec<bool>> = [
            Shape::Circle,
            Shape::Square,
            Shape::Triangle,
            Shape::Star,
            Shape::Diamond,
            Shape::Cross,
            Shape::Heart,
            Shape::Hexagon,
            Shape::Crescent,
            Shape::Ring,
        ]
        .iter()
        .map(|&s| {
            (0..33 * 33)
                .map(|i| {
                    let u = (i % 33) as f32 / 16.0 - 1.0;
                    let v = (i / 33) as f32 / 16.0 - 1.0;
                    inside_shape(s, u, v, &star)
                })
                .collect()
        })
        .collect();
        for (i, a) in masks.iter().enumerate() {
            let filled = a.iter().filter(|&&b| b).count();
            assert!(filled > 100, "shape {i} covers only {filled} cells");
            for (j, b) in masks.iter().enumerate().skip(i + 1) {
                let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert!(
                    differing > 30,
                    "shapes {i} and {j} differ in {differing} cells"
                );
            }
        }
    }
}
