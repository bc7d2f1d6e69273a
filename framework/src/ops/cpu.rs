//! Helpers shared by the CPU kernels: borrowing f32 data out of candle storage, sharing an
//! output buffer between rayon tasks that write disjoint parts of it, row-parallel loops and
//! a checked matrix product on slices.

use candle_core::{CpuStorage, Layout, Result, Storage, StorageRef, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

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

/// Read access to the f32 data of several CPU tensors at once: holds their storage guards so
/// that [`Borrowed::slice`] can hand out plain slices.
pub(crate) struct Borrowed<'a> {
    guards: Vec<(StorageRef<'a>, &'a Layout)>,
}

impl<'a> Borrowed<'a> {
    /// Locks the storage of each tensor for reading.
    pub(crate) fn new(tensors: &[&'a Tensor]) -> Self {
        Self {
            guards: tensors.iter().map(|t| t.storage_and_layout()).collect(),
        }
    }

    /// The contiguous f32 data of the `i`-th tensor.
    pub(crate) fn slice(&self, i: usize) -> Result<&[f32]> {
        let (storage, layout) = &self.guards[i];
        match &**storage {
            Storage::Cpu(cpu) => f32_slice(cpu, layout),
            _ => candle_core::bail!("expected a CPU tensor"),
        }
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

/// Runs `f(first_row, block)` over blocks of whole rows of a row-major `out` (`width` values a
/// row) in parallel; `f` reads the same rows of its inputs by `first_row`.
pub(crate) fn par_rows<F>(out: &mut [f32], width: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let width = width.max(1);
    let rows = out.len() / width;
    let chunk = rows_per_task(rows, width) * width;
    out.par_chunks_mut(chunk.max(width))
        .enumerate()
        .for_each(|(i, block)| f(i * chunk / width, block));
}

/// A read-only strided matrix: element `(i, j)` is `data[i · row_stride + j · col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix (checked to fit in `data`).
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        if data.len() < rows * cols {
            candle_core::bail!(
                "a {rows}×{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            );
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        })
    }

    /// The transpose (a view, no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`, for a row-major `dst` of
/// `a.rows × b.cols` values: one call of the GEMM crate, split over the threads of the current
/// rayon pool. Callers fold a bias or residual in by writing it into `dst` first.
pub(crate) fn matmul(dst: &mut [f32], accumulate: bool, a: MatRef, b: MatRef) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.len() != m * n {
        candle_core::bail!(
            "matmul: ({m}×{k}) · ({}×{n}) into {} values",
            b.rows,
            dst.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: dst holds m × n values (checked above); a and b were checked on construction to
    // hold their rows × cols extents under their strides.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// The transpose of a row-major `rows × cols` matrix, as a row-major `cols × rows` one. Blocked
/// and parallel; the backward products use it to turn a stored `Wᵀ` back into `W`, because the
/// GEMM crate runs clearly faster on a row-major right-hand side than on a transposed view
/// (for CLIP's backward shapes here the copy plus the product beat the strided product by up
/// to 20%).
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut dst = vec![0f32; rows * cols];
    if rows == 0 || cols == 0 {
        return dst;
    }
    let src = &src[..rows * cols];
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(block, out)| {
            let c0 = block * BLOCK;
            let c1 = (c0 + BLOCK).min(cols);
            for r0 in (0..rows).step_by(BLOCK) {
                let r1 = (r0 + BLOCK).min(rows);
                for c in c0..c1 {
                    let column = &mut out[(c - c0) * rows..(c - c0 + 1) * rows];
                    for (r, value) in column.iter_mut().enumerate().take(r1).skip(r0) {
                        *value = src[r * cols + c];
                    }
                }
            }
        });
    dst
}

/// `rows` copies of `row` (a bias broadcast over rows, as the starting value of a product).
pub(crate) fn repeat_row(row: &[f32], rows: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(row.len() * rows);
    for _ in 0..rows {
        out.extend_from_slice(row);
    }
    out
}
