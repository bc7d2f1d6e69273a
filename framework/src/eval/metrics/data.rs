//! Score and target containers that evaluators fill batch by batch.
//!
//! Both are plain row-major `f32` buffers: an evaluator copies each batch's logits and labels
//! out of its tensors (`push_rows`, `Targets::push`) and the metrics read them back as slices.

use anyhow::{bail, ensure, Context, Result};

/// A row-major N×C matrix of `f32`: model scores, or multi-hot / soft target rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowMatrix {
    n_rows: usize,
    n_cols: usize,
    data: Vec<f32>,
}

/// Model scores: one row of C class scores (raw logits or probabilities) per sample.
pub type Scores = RowMatrix;

impl RowMatrix {
    /// An empty matrix with `n_cols` columns, to be filled with [`RowMatrix::push_row`] or
    /// [`RowMatrix::push_rows`].
    pub fn new(n_cols: usize) -> Self {
        Self {
            n_rows: 0,
            n_cols,
            data: Vec::new(),
        }
    }

    /// Wraps flat row-major data of `n_rows` × `n_cols` values.
    pub fn from_flat(n_rows: usize, n_cols: usize, data: Vec<f32>) -> Result<Self> {
        let expected = n_rows
            .checked_mul(n_cols)
            .with_context(|| format!("matrix shape {n_rows}x{n_cols} overflows usize"))?;
        ensure!(
            data.len() == expected,
            "matrix data has {} values, but {n_rows} rows x {n_cols} columns need {expected}",
            data.len()
        );
        Ok(Self {
            n_rows,
            n_cols,
            data,
        })
    }

    /// Appends one row; its length must equal the column count.
    pub fn push_row(&mut self, row: &[f32]) -> Result<()> {
        ensure!(
            row.len() == self.n_cols,
            "row has {} values, but the matrix has {} columns",
            row.len(),
            self.n_cols
        );
        self.data.extend_from_slice(row);
        self.n_rows += 1;
        Ok(())
    }

    /// Appends a batch of rows given as one flat row-major slice (a whole batch of logits).
    pub fn push_rows(&mut self, flat: &[f32]) -> Result<()> {
        if self.n_cols == 0 {
            ensure!(
                flat.is_empty(),
                "cannot push {} values into a matrix with 0 columns",
                flat.len()
            );
            return Ok(());
        }
        ensure!(
            flat.len().is_multiple_of(self.n_cols),
            "batch has {} values, not a multiple of the {} columns",
            flat.len(),
            self.n_cols
        );
        self.data.extend_from_slice(flat);
        self.n_rows += flat.len() / self.n_cols;
        Ok(())
    }

    /// Number of rows (samples).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (classes).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Row `i`; panics if `i` is out of range, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// All rows in order.
    pub fn iter_rows(&self) -> impl Iterator<Item = &[f32]> + '_ {
        (0..self.n_rows).map(move |i| self.row(i))
    }

    /// Column `j`, top to bottom; panics if `j` is out of range.
    pub fn column(&self, j: usize) -> Vec<f32> {
        assert!(j < self.n_cols, "column {j} of {}", self.n_cols);
        self.iter_rows().map(|row| row[j]).collect()
    }

    /// The first maximal column of each row (`numpy.argmax` per row): predicted classes.
    pub fn argmax_per_row(&self) -> Vec<usize> {
        self.iter_rows().map(super::sklearn::argmax).collect()
    }

    /// The flat row-major data.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

/// Which form of ground truth a [`Targets`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// One class index per sample.
    Labels,
    /// One row of C values per sample.
    Rows,
}

/// One sample's ground truth, as an evaluator pushes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a> {
    /// A class index.
    Label(usize),
    /// A one-hot, multi-hot or soft row over the classes.
    Row(&'a [f32]),
}

/// Ground truth for N samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class index per sample (Dassl datasets, single-label ELEVATER datasets).
    Labels(Vec<usize>),
    /// One row per sample: one-hot, multi-hot (VOC) or soft targets, as the ELEVATER multitask
    /// loader produces them.
    Rows(RowMatrix),
}

impl Targets {
    /// Empty targets of the given kind; `n_cols` is the row width for [`TargetKind::Rows`].
    pub fn empty(kind: TargetKind, n_cols: usize) -> Self {
        match kind {
            TargetKind::Labels => Self::Labels(Vec::new()),
            TargetKind::Rows => Self::Rows(RowMatrix::new(n_cols)),
        }
    }

    /// The kind of ground truth held.
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Labels(_) => TargetKind::Labels,
            Self::Rows(_) => TargetKind::Rows,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::Labels(labels) => labels.len(),
            Self::Rows(rows) => rows.n_rows(),
        }
    }

    /// Whether no sample has been pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one sample's ground truth; it must be of the same kind (and width) as the rest.
    pub fn push(&mut self, target: Target<'_>) -> Result<()> {
        match (self, target) {
            (Self::Labels(labels), Target::Label(label)) => {
                labels.push(label);
                Ok(())
            }
            (Self::Rows(rows), Target::Row(row)) => rows.push_row(row),
            (Self::Labels(_), Target::Row(_)) => bail!("cannot push a target row onto labels"),
            (Self::Rows(_), Target::Label(_)) => bail!("cannot push a label onto target rows"),
        }
    }

    /// Sample `i`'s ground truth; panics if `i` is out of range.
    pub fn get(&self, i: usize) -> Target<'_> {
        match self {
            Self::Labels(labels) => Target::Label(labels[i]),
            Self::Rows(rows) => Target::Row(rows.row(i)),
        }
    }

    /// Checks that these targets describe the samples of `scores`: same sample count, at least one
    /// sample and class, labels below C, rows C wide and finite.
    pub fn check_against(&self, scores: &Scores) -> Result<()> {
        let (n, c) = (scores.n_rows(), scores.n_cols());
        ensure!(
            self.len() == n,
            "{} targets for {n} score rows: the sample counts differ",
            self.len()
        );
        ensure!(n > 0, "no samples to evaluate");
        ensure!(c > 0, "scores have 0 classes");
        match self {
            Self::Labels(labels) => {
                if let Some((i, label)) = labels.iter().enumerate().find(|(_, &l)| l >= c) {
                    bail!("label {label} of sample {i} is out of range for {c} classes");
                }
            }
            Self::Rows(rows) => {
                ensure!(
                    rows.n_cols() == c,
                    "target rows have {} columns, but scores have {c}",
                    rows.n_cols()
                );
                if let Some(pos) = rows.as_slice().iter().position(|v| !v.is_finite()) {
                    bail!(
                        "target value {} at sample {} class {} is not finite",
                        rows.as_slice()[pos],
                        pos / c,
                        pos % c
                    );
                }
            }
        }
        Ok(())
    }

    /// One class index per sample: the label itself, or the first maximum of the row (numpy
    /// `argmax`, so an all-zero row maps to class 0, as the reference does).
    pub fn argmax_labels(&self) -> Vec<usize> {
        match self {
            Self::Labels(labels) => labels.clone(),
            Self::Rows(rows) => rows.argmax_per_row(),
        }
    }
}
