//! A paper-style layout of a report: datasets as columns in a fixed order, named averages
//! over subsets of them, one row per method (or label) × shots × variant; and the layout's
//! average against shots as a line chart.

use super::render::{percent, Table};
use super::Report;
use crate::run::chart::{LineChart, Series};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A paper-style table: one row per method × shots, one column per dataset in a fixed order,
/// then columns averaging named subsets of them (e.g. the 20 ELEVATER datasets and the 12 that
/// do not overlap MVLPT's source datasets). Read from a TOML file:
///
/// ```toml
/// columns = ["cifar-10", "cifar-100", ...]
/// rows = ["zero_shot", "CoOp", "MCoOp"]     # optional: row order by method or label
/// [averages]
/// "average (20)" = ["cifar-10", "cifar-100", ...]
/// ```
///
/// With `base_to_novel = true` the runs are base-to-novel pairs (`data.subsample_classes`
/// `base` and `new`) and the table gives base, novel and their harmonic mean per dataset and
/// average (see `base_to_novel.rs`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableLayout {
    /// Dataset (task) columns, in order.
    pub columns: Vec<String>,
    /// Row names (methods or labels) in the order they come first; other rows follow sorted.
    #[serde(default)]
    pub rows: Vec<String>,
    /// Named averages over subsets of datasets, in the file's order.
    #[serde(default)]
    pub averages: Vec<(String, Vec<String>)>,
    /// Base-to-novel: base, novel and harmonic mean per dataset instead of one value.
    #[serde(default)]
    pub base_to_novel: bool,
}

impl TableLayout {
    /// Reads a layout file.
    pub fn load(path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            columns: Vec<String>,
            #[serde(default)]
            rows: Vec<String>,
            #[serde(default)]
            averages: toml::Table,
            #[serde(default)]
            base_to_novel: bool,
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading table layout {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("parsing table layout {}", path.display()))?;
        let mut averages = Vec::new();
        for (name, value) in file.averages {
            let members: Vec<String> = value.try_into().with_context(|| {
                format!(
                    "{}: averages.{name} must be a list of dataset names",
                    path.display()
                )
            })?;
            averages.push((name, members));
        }
        Ok(Self {
            columns: file.columns,
            rows: file.rows,
            averages,
            base_to_novel: file.base_to_novel,
        })
    }
}

/// The config key of base-to-novel runs, which a base-to-novel layout lays out as columns.
const CLASSES_KEY: &str = "data.subsample_classes";

/// One row of a laid-out report: its name, shots and variant, and per dataset and classes
/// (`all`, or `base` / `new` in a base-to-novel layout) the mean and std over seeds.
pub(super) struct Row {
    pub name: String,
    pub shots: usize,
    pub variant: Vec<(String, String)>,
    cells: BTreeMap<(String, String), (f64, Option<f64>)>,
}

impl Row {
    /// The mean and std of `dataset` over the runs that saw `classes`.
    pub fn cell(&self, dataset: &str, classes: &str) -> Option<(f64, Option<f64>)> {
        self.cells
            .get(&(dataset.to_string(), classes.to_string()))
            .copied()
    }

    /// The mean over `members` of the per-dataset means (of the runs that saw `classes`),
    /// when every member has a value; otherwise how many have one.
    pub fn average(&self, members: &[String], classes: &str) -> std::result::Result<f64, usize> {
        let present: Vec<f64> = members
            .iter()
            .filter_map(|m| self.cell(m, classes).map(|c| c.0))
            .collect();
        if present.len() == members.len() && !members.is_empty() {
            Ok(present.iter().sum::<f64>() / present.len() as f64)
        } else {
            Err(present.len())
        }
    }

    /// The legend name of the row: its name and variant values.
    pub fn series_name(&self) -> String {
        std::iter::once(self.name.clone())
            .chain(self.variant.iter().map(|(k, v)| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Report {
    /// The rows of the layout, in its row order. Two groups that would fill one cell (the same
    /// method or label, dataset, shots, variant and classes in two experiments) are an error.
    /// A base-to-novel layout keeps a row's base and new runs in one row; another layout
    /// names the rows of subsampled runs `<method> (base classes)` / `(new classes)`.
    pub(super) fn layout_rows(&self, layout: &TableLayout) -> Result<Vec<Row>> {
        type RowKey = (usize, String, usize, Vec<(String, String)>);
        let rank = |name: &str| {
            layout
                .rows
                .iter()
                .position(|r| r == name)
                .unwrap_or(layout.rows.len())
        };
        let mut rows: BTreeMap<RowKey, Row> = BTreeMap::new();
        let mut sources: BTreeMap<(RowKey, &str, &str), &str> = BTreeMap::new();
        for g in &self.groups {
            let variant: Vec<(String, String)> = g
                .variant
                .clone()
                .into_iter()
                .filter(|(k, _)| !layout.base_to_novel || k != CLASSES_KEY)
                .collect();
            let (name, classes) = match (layout.base_to_novel, g.classes.as_str()) {
                (true, _) | (false, "all") => (g.method.clone(), g.classes.as_str()),
                (false, half) => (format!("{} ({half} classes)", g.method), "all"),
            };
            let key = (rank(&name), name.clone(), g.shots, variant.clone());
            let cell = (key.clone(), g.dataset.as_str(), classes);
            if let Some(other) = sources.insert(cell, &g.experiment) {
                bail!(
                    "experiments `{other}` and `{}` both report {} on {} with {} shots; give \
                     their runs different `label`s or report a narrower directory",
                    g.experiment,
                    g.method,
                    g.dataset,
                    g.shots
                );
            }
            rows.entry(key)
                .or_insert_with(|| Row {
                    name,
                    shots: g.shots,
                    variant,
                    cells: BTreeMap::new(),
                })
                .cells
                .insert((g.dataset.clone(), classes.to_string()), (g.mean, g.std));
        }
        Ok(rows.into_values().collect())
    }

    /// The report laid out by `layout` as Markdown: each cell is the mean over seeds (in %),
    /// with the standard deviation when there are several seeds, `-` where no run exists; an
    /// average (of the per-dataset means) is only given when every member dataset has a value,
    /// otherwise it shows how many are present (`k/n`).
    pub fn layout_markdown(&self, layout: &TableLayout) -> Result<String> {
        if layout.base_to_novel {
            return self.base_to_novel_markdown(layout);
        }
        let mut headers = vec!["method".to_string(), "shots".to_string()];
        headers.extend(self.variant_keys.iter().cloned());
        headers.extend(layout.columns.iter().cloned());
        headers.extend(layout.averages.iter().map(|(name, _)| name.clone()));
        let rows = self
            .layout_rows(layout)?
            .into_iter()
            .map(|row| {
                let mut cells = vec![row.name.clone(), row.shots.to_string()];
                cells.extend(row.variant.iter().map(|(_, v)| v.clone()));
                for column in &layout.columns {
                    cells.push(match row.cell(column, "all") {
                        None => "-".into(),
                        Some((mean, None)) => percent(mean),
                        Some((mean, Some(std))) => {
                            format!("{} ± {}", percent(mean), percent(std))
                        }
                    });
                }
                for (_, members) in &layout.averages {
                    cells.push(match row.average(members, "all") {
                        Ok(mean) => percent(mean),
                        Err(present) => format!("{present}/{}", members.len()),
                    });
                }
                cells
            })
            .collect();
        Ok(Table { headers, rows }.to_markdown())
    }

    /// The layout's first average (or, without averages, the average over its columns)
    /// against shots, one line per row name and variant, from the rows where it is complete.
    /// `None` when fewer than two shot counts have a value.
    pub fn layout_chart(&self, layout: &TableLayout) -> Result<Option<LineChart>> {
        let (name, members) = match layout.averages.first() {
            Some((name, members)) => (name.clone(), members.clone()),
            None => (
                "average over the columns".to_string(),
                layout.columns.clone(),
            ),
        };
        let mut series: Vec<Series> = Vec::new();
        for row in self.layout_rows(layout)? {
            let Ok(value) = row.average(&members, "all") else {
                continue;
            };
            let legend = row.series_name();
            match series.iter_mut().find(|s| s.name == legend) {
                Some(s) => s.points.push((row.shots, value)),
                None => series.push(Series {
                    name: legend,
                    points: vec![(row.shots, value)],
                }),
            }
        }
        let title = format!("{name}: {} (%) against shots", self.metric_title());
        Ok(line_chart(title, series))
    }
}

/// A chart of `series`, or `None` when they span fewer than two shot counts.
pub(super) fn line_chart(title: String, series: Vec<Series>) -> Option<LineChart> {
    let mut shots: Vec<usize> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    shots.sort_unstable();
    shots.dedup();
    (shots.len() >= 2).then_some(LineChart { title, series })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::GroupStats;

    fn group(experiment: &str, method: &str, dataset: &str, shots: usize, mean: f64) -> GroupStats {
        GroupStats {
            experiment: experiment.into(),
            method: method.into(),
            dataset: dataset.into(),
            shots,
            variant: BTreeMap::new(),
            classes: "all".into(),
            mean,
            std: Some(0.01),
            n: 3,
            seeds: vec![1, 2, 3],
        }
    }

    fn report(groups: Vec<GroupStats>) -> Report {
        Report {
            metric: "test".into(),
            variant_keys: Vec::new(),
            groups,
            averages: Vec::new(),
        }
    }

    fn layout(text: &str) -> TableLayout {
        let dir = tempfile_dir();
        let path = dir.join("layout.toml");
        std::fs::write(&path, text).unwrap();
        let layout = TableLayout::load(&path).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        layout
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mvlpt-layout-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn averages_keep_the_order_of_the_file_and_rows_follow_the_given_order() {
        let layout = layout(
            "columns = [\"a\", \"b\"]\nrows = [\"zero_shot\", \"MCoOp\"]\n\
             [averages]\n\"z last name, first\" = [\"a\", \"b\"]\n\"a first name, second\" = [\"a\"]\n",
        );
        let names: Vec<&str> = layout.averages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["z last name, first", "a first name, second"]);
        let report = report(vec![
            group("e1", "CoOp", "a", 1, 0.5),
            group("e1", "MCoOp", "a", 1, 0.6),
            group("e2", "zero_shot", "a", 1, 0.3),
            group("e2", "zero_shot", "b", 1, 0.4),
        ]);
        let table = report.layout_markdown(&layout).unwrap();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| zero_shot | 1 | 30.00 ± 1.00 | 40.00 ± 1.00 | 35.00 | 30.00 |",
                "| MCoOp | 1 | 60.00 ± 1.00 | - | 1/2 | 60.00 |",
                "| CoOp | 1 | 50.00 ± 1.00 | - | 1/2 | 50.00 |",
            ]
        );
    }

    #[test]
    fn the_chart_follows_the_first_average_of_complete_rows() {
        let layout = layout("columns = [\"a\", \"b\"]\n[averages]\n\"both\" = [\"a\", \"b\"]\n");
        let report = report(vec![
            group("e", "CoOp", "a", 1, 0.5),
            group("e", "CoOp", "b", 1, 0.7),
            group("e", "CoOp", "a", 5, 0.6),
            group("e", "CoOp", "b", 5, 0.8),
            group("e", "MCoOp", "a", 1, 0.2),
            group("e", "MCoOp", "b", 1, 0.4),
            group("e", "MCoOp", "a", 5, 0.9), // b missing at 5 shots: no point
        ]);
        let chart = report.layout_chart(&layout).unwrap().unwrap();
        assert_eq!(chart.title, "both: test accuracy (%) against shots");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let [coop, mcoop] = &chart.series[..] else {
            panic!("{chart:?}")
        };
        assert_eq!((coop.name.as_str(), mcoop.name.as_str()), ("CoOp", "MCoOp"));
        assert_eq!(coop.points.len(), 2);
        assert!(close(coop.points[0].1, 0.6) && close(coop.points[1].1, 0.7));
        assert_eq!(mcoop.points.len(), 1);
        assert!(mcoop.points[0].0 == 1 && close(mcoop.points[0].1, 0.3));
        // One shot count only: no chart.
        let single = report_of_one_shot();
        assert!(single.layout_chart(&layout).unwrap().is_none());
    }

    fn report_of_one_shot() -> Report {
        report(vec![
            group("e", "CoOp", "a", 1, 0.5),
            group("e", "CoOp", "b", 1, 0.7),
        ])
    }

    #[test]
    fn one_cell_filled_from_two_experiments_is_an_error() {
        let layout = layout("columns = [\"a\"]\n");
        let report = report(vec![
            group("e1", "zero_shot", "a", 1, 0.3),
            group("e2", "zero_shot", "a", 1, 0.4),
        ]);
        let err = report.layout_markdown(&layout).unwrap_err();
        assert!(
            format!("{err}").contains("`e1` and `e2` both report zero_shot on a"),
            "{err}"
        );
    }
}
