//! A tiny vector font for the digits 0–9: each digit is a few polylines (straight strokes and
//! elliptical arcs) in a unit box, x to the right and y downwards. No font files are needed.

/// A polyline in glyph-box coordinates.
pub type Stroke = Vec<(f32, f32)>;

/// Points along an elliptical arc from `start` to `end` degrees (0° = right, 90° = down,
/// since y points downwards).
fn arc(centre: (f32, f32), radii: (f32, f32), start: f32, end: f32) -> Stroke {
    let steps = (((end - start).abs() / 15.0).ceil() as usize).max(2);
    (0..=steps)
        .map(|i| {
            let t = (start + (end - start) * i as f32 / steps as f32).to_radians();
            (centre.0 + radii.0 * t.cos(), centre.1 + radii.1 * t.sin())
        })
        .collect()
}

/// Joins a straight lead-in, an arc and a straight tail into one stroke.
fn joined(parts: &[Stroke]) -> Stroke {
    parts.iter().flatten().copied().collect()
}

/// The strokes of `digit` (0..=9).
pub fn digit_strokes(digit: u8) -> Vec<Stroke> {
    match digit {
        0 => vec![arc((0.5, 0.5), (0.4, 0.5), 0.0, 360.0)],
        1 => vec![vec![(0.25, 0.22), (0.56, 0.0), (0.56, 1.0)]],
        2 => vec![joined(&[
            arc((0.5, 0.28), (0.4, 0.28), 190.0, 380.0),
            vec![(0.08, 1.0), (0.94, 1.0)],
        ])],
        3 => vec![
            arc((0.5, 0.26), (0.36, 0.26), 200.0, 450.0),
            arc((0.5, 0.74), (0.42, 0.26), 270.0, 520.0),
        ],
        4 => vec![vec![(0.72, 1.0), (0.72, 0.0), (0.05, 0.68), (0.96, 0.68)]],
        5 => vec![joined(&[
            vec![(0.86, 0.0), (0.22, 0.0), (0.2, 0.46)],
            arc((0.5, 0.68), (0.42, 0.32), 225.0, 510.0),
        ])],
        6 => vec![
            vec![(0.78, 0.0), (0.16, 0.62)],
            arc((0.52, 0.7), (0.38, 0.3), 0.0, 360.0),
        ],
        7 => vec![vec![(0.06, 0.0), (0.94, 0.0), (0.36, 1.0)]],
        8 => vec![
            arc((0.5, 0.25), (0.32, 0.25), 0.0, 360.0),
            arc((0.5, 0.74), (0.4, 0.26), 0.0, 360.0),
        ],
        _ => vec![
            arc((0.48, 0.3), (0.38, 0.3), 0.0, 360.0),
            vec![(0.86, 0.32), (0.64, 1.0)],
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_digit_has_strokes_inside_its_box() {
        for digit in 0..10 {
            let strokes = digit_strokes(digit);
            assert!(!strokes.is_empty());
            for &(x, y) in strokes.iter().flatten() {
                assert!((-0.01..=1.01).contains(&x), "digit {digit}: x {x}");
                assert!((-0.01..=1.01).contains(&y), "digit {digit}: y {y}");
            }
        }
    }
}
