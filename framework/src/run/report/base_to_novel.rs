//! The base-to-novel table of a report (a layout with `base_to_novel = true`): per dataset
//! and method the accuracy on the base classes (runs with `data.subsample_classes = "base"`),
//! on the new classes (`"new"`) and their harmonic mean; then every average of the layout as
//! the harmonic mean of the averaged base and the averaged novel accuracy, as the CoCoOp,
//! MaPLe and PromptSRC READMEs compute their "Average" rows. Its chart draws the first
//! average's three values per method.

use super::layout::{Row, TableLayout};
use super::render::{percent, Table};
use super::{GroupStats, Report};
use anyhow::Result;
use std::collections::BTreeMap;

/// The harmonic mean 2·b·n / (b + n) of a base and a novel accuracy (0 when both are 0).
pub fn harmonic_mean(base: f64, novel: f64) -> f64 {
    if base + novel == 0.0 {
        0.0
    } else {
        2.0 * base * novel / (base + novel)
    }
}

/// A mean with its std over seeds, as a table cell.
fn cell(value: Option<(f64, Option<f64>)>) -> String {
    match value {
        None => "-".into(),
        Some((mean, None)) => percent(mean),
        Some((mean, Some(std))) => format!("{} ± {}", percent(mean), percent(std)),
    }
}

/// The layout's averages, or the average over its columns when it names none.
fn averages(layout: &TableLayout) -> Vec<(String, Vec<String>)> {
    if layout.averages.is_empty() {
        vec![("average".to_string(), layout.columns.clone())]
    } else {
        layout.averages.clone()
    }
}

impl Report {
    /// The leading cells of a row: dataset (or average), method, shots, variant values.
    fn base_to_novel_key(&self, what: &str, row: &Row) -> Vec<String> {
        let mut cells = vec![what.to_string(), row.name.clone(), row.shots.to_string()];
        cells.extend(row.variant.iter().map(|(_, v)| v.clone()));
        cells
    }

    /// The base-to-novel table as Markdown: one line per dataset (in the layout's column
    /// order) and row, with base and novel as mean ± std over seeds and the harmonic mean of
    /// the two means; then one line per average and row: the mean over the member datasets of
    /// the base means, of the novel means, and the harmonic mean of those two (given when
    /// every member has both; otherwise `k/n` members present).
    pub fn base_to_novel_markdown(&self, layout: &TableLayout) -> Result<String> {
        let rows = self.layout_rows(layout)?;
        let mut headers = vec!["dataset".to_string(), "method".into(), "shots".into()];
        headers.extend(
            rows.first()
                .into_iter()
                .flat_map(|r| r.variant.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()),
        );
        headers.extend(["base", "novel", "HM"].map(String::from));
        let mut lines = Vec::new();
        for column in &layout.columns {
            for row in &rows {
                let (base, novel) = (row.cell(column, "base"), row.cell(column, "new"));
                if base.is_none() && novel.is_none() {
                    continue;
                }
                let mut cells = self.base_to_novel_key(column, row);
                cells.push(cell(base));
                cells.push(cell(novel));
                cells.push(match (base, novel) {
                    (Some((b, _)), Some((n, _))) => percent(harmonic_mean(b, n)),
                    _ => "-".into(),
                });
                lines.push(cells);
            }
        }
        for (name, members) in averages(layout) {
            for row in &rows {
                let (base, novel) = (row.average(&members, "base"), row.average(&members, "new"));
                let mut cells = self.base_to_novel_key(&name, row);
                let show = |value: std::result::Result<f64, usize>| match value {
                    Ok(mean) => percent(mean),
                    Err(present) => format!("{present}/{}", members.len()),
                };
                cells.push(show(base));
                cells.push(show(novel));
                cells.push(match (base, novel) {
                    (Ok(b), Ok(n)) => percent(harmonic_mean(b, n)),
                    _ => "-".into(),
                });
                lines.push(cells);
            }
        }
        Ok(Table {
            headers,
            rows: lines,
        }
        .to_markdown())
    }

    /// The first average's base, novel and harmonic mean per row (method), as a report whose
    /// bar chart (`crate::run::chart::write_chart`) draws them: one bar per row and value,
    /// labelled with the row and `base` / `novel` / `HM`. `None` when no row has the whole
    /// average.
    pub fn base_to_novel_chart(&self, layout: &TableLayout) -> Result<Option<Report>> {
        let (name, members) = averages(layout).remove(0);
        let mut groups = Vec::new();
        for row in self.layout_rows(layout)? {
            let (Ok(base), Ok(novel)) =
                (row.average(&members, "base"), row.average(&members, "new"))
            else {
                continue;
            };
            for (part, mean) in [
                ("base", base),
                ("novel", novel),
                ("HM", harmonic_mean(base, novel)),
            ] {
                groups.push(GroupStats {
                    experiment: format!("base-to-novel, {name}"),
                    method: row.series_name(),
                    dataset: part.into(),
                    shots: row.shots,
                    variant: BTreeMap::new(),
                    classes: "all".into(),
                    mean,
                    std: None,
                    n: 1,
                    seeds: Vec::new(),
                });
            }
        }
        Ok((!groups.is_empty()).then(|| Report {
            metric: self.metric.clone(),
            variant_keys: Vec::new(),
            groups,
            averages: Vec::new(),
        }))
    }
}
