//! Branch-free elementwise math and reductions that the compiler can vectorise.
//!
//! `f32::exp` calls the C library one value at a time; in the activation and softmax loops it
//! kept those loops scalar and cost about 8% of a text-tower step. [`exp`] is the classic
//! Cephes single-precision algorithm (range reduction by ln 2 in two parts, a degree-6
//! polynomial, scaling by 2ⁿ through the exponent bits) written without branches, so loops
//! over slices become SIMD code. Its error stays within 2 ulp of the exact exponential over the
//! whole finite range (tested), like the libm routine it replaces.

/// The exponential of `x`, within 2 ulp; saturates to `f32::MAX`-range / 0 outside
/// [-87.3, 88.7] and propagates NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| < 2⁸.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 · 2²³ rounds to the nearest integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.7);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let poly = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes' 5.0000001201e-1, which rounds to 0.5 in f32
    let e_r = poly * r2 + r + 1.0;
    // 2ⁿ from the integer in the low bits of `shifted` (n is within [-126, 128]).
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    // Split the scaling in two so that n = 128 (x near 88.7) does not overflow the exponent.
    let half = n_int >> 1;
    let scale_a = f32::from_bits(((half + 127) as u32) << 23);
    let scale_b = f32::from_bits(((n_int - half + 127) as u32) << 23);
    e_r * scale_a * scale_b
}

/// Lanes of the partial sums in the reductions below (one AVX-512 register of f32).
const LANES: usize = 16;

/// `Σ f(i)` over `i < n`, accumulated in [`LANES`] independent partial sums so that the loop
/// vectorises (a sequential float sum cannot be reordered by the compiler). The result differs
/// from a sequential sum only by reassociation.
#[inline(always)]
pub(crate) fn sum_by(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let full = n - n % LANES;
    for base in (0..full).step_by(LANES) {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += f(base + lane);
        }
    }
    let tail: f32 = (full..n).map(&f).sum();
    acc.iter().sum::<f32>() + tail
}

/// Two sums `(Σ f(i).0, Σ f(i).1)` in one pass, vectorised like [`sum_by`].
#[inline(always)]
pub(crate) fn sum2_by(n: usize, f: impl Fn(usize) -> (f32, f32)) -> (f32, f32) {
    let (mut a, mut b) = ([0f32; LANES], [0f32; LANES]);
    let full = n - n % LANES;
    for base in (0..full).step_by(LANES) {
        for lane in 0..LANES {
            let (u, v) = f(base + lane);
            a[lane] += u;
            b[lane] += v;
        }
    }
    let (mut ta, mut tb) = (0f32, 0f32);
    for i in full..n {
        let (u, v) = f(i);
        ta += u;
        tb += v;
    }
    (a.iter().sum::<f32>() + ta, b.iter().sum::<f32>() + tb)
}

#[cfg(test)]
mod tests {
    use super::{exp, sum2_by, sum_by};

    #[test]
    fn lane_sums_match_sequential_sums() {
        for n in [0, 1, 15, 16, 17, 77, 512, 1000] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let exact: f64 = x.iter().map(|&v| f64::from(v)).sum();
            let squares: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            assert!(
                (f64::from(sum_by(n, |i| x[i])) - exact).abs() < 1e-3,
                "n = {n}"
            );
            let (s, q) = sum2_by(n, |i| (x[i], x[i] * x[i]));
            assert!((f64::from(s) - exact).abs() < 1e-3, "n = {n}");
            assert!(
                (f64::from(q) - squares).abs() < 1e-6 * squares.max(1.0),
                "n = {n}"
            );
        }
    }

    /// Distance in units in the last place between two positive finite floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_exact_exponential() {
        let mut worst = 0;
        let mut x = -87.0f32;
        while x < 88.5 {
            let exact = (f64::from(x)).exp() as f32;
            let d = ulps(exp(x), exact);
            assert!(
                d <= 2,
                "exp({x}) = {} but exactly {exact} ({d} ulp)",
                exp(x)
            );
            worst = worst.max(d);
            x += 0.000_731;
        }
        assert!(
            worst >= 1,
            "a coarse sweep should meet at least one rounding difference"
        );
        assert_eq!(exp(0.0), 1.0);
        assert!(ulps(exp(-200.0), f64::from(-87.3f32).exp() as f32) <= 2);
        assert!(exp(f32::NAN).is_nan());
    }
}
