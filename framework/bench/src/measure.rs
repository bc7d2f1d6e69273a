//! Measuring a phase: wall-clock timing of repeated runs, the machine's GEMM rate, resident
//! memory (Linux `/proc`), and analytic FLOP counts of the CoOp text step and the image forward.

use anyhow::Result;
use candle_core::Device;
use mvlpt_framework::model::layers::ResidualAttentionBlock;
use mvlpt_framework::model::ClipConfig;
use mvlpt_framework::rng;
use serde::Serialize;
use std::time::Instant;

/// Wall-clock times of repeated runs, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// Median run time.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Every timed run, in order.
    pub samples_ms: Vec<f64>,
}

impl Timing {
    /// Summarises samples (milliseconds); an empty list gives zeros.
    pub fn from_samples(samples_ms: Vec<f64>) -> Self {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ms = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
        };
        Self {
            median_ms,
            min_ms: sorted.first().copied().unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            samples_ms,
        }
    }
}

/// One timed phase (text step or image forward) with its work and memory.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// Run times.
    pub timing: Timing,
    /// FLOPs per run (see the module documentation for the convention).
    pub flops: u64,
    /// FLOPs divided by the median time.
    pub gflop_per_s: f64,
    /// `gflop_per_s` as a fraction of the measured square-GEMM rate.
    pub fraction_of_gemm: f64,
    /// Peak resident memory of the process during the phase (Linux `VmHWM`, reset before the
    /// phase), including the model's weights; `None` where unavailable.
    pub peak_rss_bytes: Option<u64>,
}

/// The attainable f32 matrix-multiply rate of this machine through candle's GEMM.
#[derive(Clone, Debug, Serialize)]
pub struct GemmRate {
    /// `m = n = k` of the square product.
    pub size: usize,
    /// Run times.
    pub timing: Timing,
    /// `2 · size³` FLOPs divided by the median time.
    pub gflop_per_s: f64,
}

/// FLOPs of the CoOp text step: the text tower forward over `classes × len` tokens, pooling
/// and projection, the `batch × classes` logits, and the input-gradient backward of each.
pub fn text_step_flops(config: &ClipConfig, classes: usize, len: usize, batch: usize) -> u64 {
    let t = &config.text;
    let (w, e) = (t.width as u64, config.embed_dim as u64);
    let tokens = (classes * len) as u64;
    let linear_macs = 12 * tokens * w * w;
    let attention_macs = 2 * tokens * len as u64 * w;
    let head_macs = classes as u64 * w * e + batch as u64 * classes as u64 * e;
    let forward = t.layers as u64 * (linear_macs + attention_macs) + head_macs;
    // Backward: one product per linear (dx), four per attention (dP, dV, dQ, dK), one per head
    // product (the text side only).
    let backward = t.layers as u64 * (linear_macs + 2 * attention_macs) + head_macs;
    2 * (forward + backward)
}

/// FLOPs of an image-tower forward at `batch` images: patch embedding, blocks, projection.
pub fn image_forward_flops(config: &ClipConfig, batch: usize) -> u64 {
    let v = &config.vision;
    let len = v.tokens();
    let patches = (batch * v.grid() * v.grid()) as u64;
    let patch_macs = patches * v.width as u64 * (3 * v.patch_size * v.patch_size) as u64;
    let block_macs = ResidualAttentionBlock::forward_macs(v.width, batch * len, len);
    let head_macs = (batch * v.width * config.embed_dim) as u64;
    2 * (patch_macs + v.layers as u64 * block_macs + head_macs)
}

/// Times `iterations` runs of `f` after `warmup` untimed ones.
pub fn time_runs(
    warmup: usize,
    iterations: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_samples(samples))
}

/// The f32 rate of a `size³` square matrix product through candle's CPU GEMM (the kernel
/// behind every linear layer), median of `iterations` runs after one warm-up.
pub fn measure_gemm_rate(size: usize, iterations: usize, seed: u64) -> Result<GemmRate> {
    let mut r = rng::seeded(seed);
    let a = rng::normal((size, size), 0.0, 1.0, &mut r, &Device::Cpu)?;
    let b = rng::normal((size, size), 0.0, 1.0, &mut r, &Device::Cpu)?;
    let timing = time_runs(1, iterations, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    let flops = 2.0 * (size as f64).powi(3);
    Ok(GemmRate {
        size,
        gflop_per_s: flops / (timing.median_ms * 1e6),
        timing,
    })
}

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`), Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Current resident memory of this process (`VmRSS`), Linux only.
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Resets the peak-RSS mark to the current RSS (writing 5 to `/proc/self/clear_refs`), so that
/// [`peak_rss_bytes`] measures the phase that follows. Returns false where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(Timing::from_samples(vec![3.0, 1.0, 2.0]).median_ms, 2.0);
        let t = Timing::from_samples(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!((t.median_ms, t.min_ms, t.max_ms), (2.5, 1.0, 4.0));
    }
}
