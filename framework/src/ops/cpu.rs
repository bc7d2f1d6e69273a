//! Small helpers shared by the CPU kernels: borrowing f32 data out of candle storage and
//! sharing an output buffer between rayon tasks that write disjoint parts of it.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};

/// The f32 slice a contiguous CPU storage/layout pair refers to.
pub(crate) fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!(
            "expected a contiguous f32 tensor, got strides {:?}",
            layout.stride()
        ),
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor (weights captured by an op).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(f32_slice(cpu, layout)?)),
        _ => candle_core::bail!("expected a CPU tensor"),
    }
}

/// A raw pointer that rayon tasks may share when each writes a disjoint region of the buffer.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub *mut f32);
// SAFETY: users only write disjoint regions from different tasks (documented at each use).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the whole `Send` wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Rows per rayon task for row-wise kernels: enough work per task to amortise scheduling.
pub(crate) fn rows_per_task(rows: usize, cols: usize) -> usize {
    (16_384 / cols.max(1)).clamp(1, rows.max(1))
}
