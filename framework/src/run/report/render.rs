//! A report as an aligned console table, Markdown, CSV, and the files `mvlpt report` writes.

use super::Report;
use crate::io::{write_atomic, write_json_atomic};
use crate::run::chart::{write_line_chart, LineChart, Series};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A table of strings, rendered aligned for the console or as Markdown.
#[derive(Clone, Debug, Default)]
pub(super) struct Table {
    /// Column titles.
    pub headers: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn widths(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                std::iter::once(&self.headers[c])
                    .chain(self.rows.iter().map(|r| &r[c]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn to_text(&self) -> String {
        let widths = self.widths();
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        out.push_str(&line(
            &widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>(),
        ));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    pub(super) fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").replace('\n', " "));
        let mut out = line(&self.headers);
        out.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A fraction as a percentage with two decimals.
pub(super) fn percent(value: f64) -> String {
    format!("{:.2}", 100.0 * value)
}

impl Report {
    fn show_experiment(&self) -> bool {
        let names: BTreeSet<&str> = self.groups.iter().map(|g| g.experiment.as_str()).collect();
        names.len() > 1
    }

    /// Leading columns shared by both tables: `[experiment,] method, [dataset,] shots, variants`.
    fn key_headers(&self, with_dataset: bool) -> Vec<String> {
        let mut headers = Vec::new();
        if self.show_experiment() {
            headers.push("experiment".to_string());
        }
        headers.push("method".into());
        if with_dataset {
            headers.push("dataset".into());
        }
        headers.push("shots".into());
        headers.extend(self.variant_keys.iter().cloned());
        headers
    }

    fn key_cells(
        &self,
        experiment: &str,
        method: &str,
        dataset: Option<&str>,
        shots: usize,
        variant: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut cells = Vec::new();
        if self.show_experiment() {
            cells.push(experiment.to_string());
        }
        cells.push(method.to_string());
        cells.extend(dataset.map(str::to_string));
        cells.push(shots.to_string());
        cells.extend(variant.values().cloned());
        cells
    }

    fn group_table(&self) -> Table {
        let mut headers = self.key_headers(true);
        headers.push(format!("{} (%) mean ± std", self.metric));
        headers.push("n".into());
        let rows = self
            .groups
            .iter()
            .map(|g| {
                let mut cells = self.key_cells(
                    &g.experiment,
                    &g.method,
                    Some(&g.dataset),
                    g.shots,
                    &g.variant,
                );
                cells.push(match g.std {
                    Some(std) => format!("{} ± {}", percent(g.mean), percent(std)),
                    None => percent(g.mean),
                });
                cells.push(g.n.to_string());
                cells
            })
            .collect();
        Table { headers, rows }
    }

    fn average_table(&self) -> Table {
        let mut headers = self.key_headers(false);
        headers.push(format!("{} (%) average over datasets", self.metric));
        headers.push("datasets".into());
        let rows = self
            .averages
            .iter()
            .map(|a| {
                let mut cells = self.key_cells(&a.experiment, &a.method, None, a.shots, &a.variant);
                cells.push(percent(a.mean));
                cells.push(a.datasets.to_string());
                cells
            })
            .collect();
        Table { headers, rows }
    }

    /// Both tables, aligned, for the console.
    pub fn to_text(&self) -> String {
        format!(
            "{}\nPer-method average over datasets\n\n{}",
            self.group_table().to_text(),
            self.average_table().to_text()
        )
    }

    /// Both tables as Markdown.
    pub fn to_markdown(&self) -> String {
        format!(
            "## {} per method, dataset and shots (mean ± std over seeds, %)\n\n{}\n\
             ## Per-method average over datasets (%)\n\n{}",
            self.metric,
            self.group_table().to_markdown(),
            self.average_table().to_markdown()
        )
    }

    /// One CSV table of raw fractions: a row per group, then a row per method average with
    /// `dataset` = `(average)`, empty `std` and `n` = the number of datasets averaged.
    pub fn to_csv(&self) -> String {
        let mut headers = vec!["experiment", "method", "dataset", "shots"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        headers.extend(self.variant_keys.iter().cloned());
        headers.extend(["metric", "mean", "std", "n", "seeds"].map(String::from));
        let mut lines = vec![csv_line(&headers)];
        for g in &self.groups {
            let mut cells = vec![
                g.experiment.clone(),
                g.method.clone(),
                g.dataset.clone(),
                g.shots.to_string(),
            ];
            cells.extend(g.variant.values().cloned());
            cells.push(self.metric.clone());
            cells.push(g.mean.to_string());
            cells.push(g.std.map(|s| s.to_string()).unwrap_or_default());
            cells.push(g.n.to_string());
            cells.push(
                g.seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            lines.push(csv_line(&cells));
        }
        for a in &self.averages {
            let mut cells = vec![
                a.experiment.clone(),
                a.method.clone(),
                "(average)".into(),
                a.shots.to_string(),
            ];
            cells.extend(a.variant.values().cloned());
            cells.push(self.metric.clone());
            cells.push(a.mean.to_string());
            cells.push(String::new());
            cells.push(a.datasets.to_string());
            cells.push(String::new());
            lines.push(csv_line(&cells));
        }
        lines.concat()
    }

    /// What the values are, for chart titles: `test accuracy` or the metric's name.
    pub fn metric_title(&self) -> &str {
        if self.metric == "test" {
            "test accuracy"
        } else {
            &self.metric
        }
    }

    /// Each method's average over datasets against shots (one line per method, experiment
    /// when there are several, and variant); `None` when the report has fewer than two shot
    /// counts.
    pub fn shots_chart(&self) -> Option<LineChart> {
        let mut series: Vec<Series> = Vec::new();
        for a in &self.averages {
            let mut name = a.method.clone();
            if self.show_experiment() {
                name = format!("{name} ({})", a.experiment);
            }
            for (key, value) in &a.variant {
                name = format!("{name} {key}={value}");
            }
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((a.shots, a.mean)),
                None => series.push(Series {
                    name,
                    points: vec![(a.shots, a.mean)],
                }),
            }
        }
        let title = format!(
            "{} (%), average over datasets, against shots",
            self.metric_title()
        );
        super::layout::line_chart(title, series)
    }

    /// Writes `report.md`, `report.csv`, `report.json` (raw fractions), the bar chart
    /// `report.png` and, with at least two shot counts, the line chart `report-shots.png`
    /// into `dir`, atomically; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let markdown = dir.join("report.md");
        let csv = dir.join("report.csv");
        let json = dir.join("report.json");
        let chart = dir.join("report.png");
        write_atomic(&markdown, self.to_markdown().as_bytes())?;
        write_atomic(&csv, self.to_csv().as_bytes())?;
        write_json_atomic(&json, self)?;
        crate::run::chart::write_chart(self, &chart)?;
        let mut written = vec![markdown, csv, json, chart];
        if let Some(lines) = self.shots_chart() {
            let path = dir.join("report-shots.png");
            write_line_chart(&lines, &path)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// One CSV line (RFC 4180 quoting where needed).
fn csv_line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|cell| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_separators_are_quoted() {
        let line = csv_line(&["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(line, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }
}
