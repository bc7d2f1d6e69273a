//! Report charts, drawn pixel by pixel into RGB images and written as PNG. They need no font
//! files and no plotting backend: labels use a small built-in bitmap font.
//!
//! - [`bars`]: `report.png`, the mean per method × dataset × shots with its std over seeds;
//! - [`lines`]: an average against shots, one line per method or report row.

pub mod bars;
mod canvas;
mod font;
pub mod lines;

pub use bars::{draw, write_chart};
pub use lines::{draw_lines, write_line_chart, LineChart, Series};
