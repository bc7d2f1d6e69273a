//! A report leaves out, naming them, complete runs it cannot place or trust: one without its
//! `config.toml` and one whose result is no metric value.

use mvlpt_framework::run::report::{aggregate, collect};
use std::path::Path;

fn write_run(dir: &Path, seed: u64, test: f64, with_config: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let result = serde_json::json!({
        "experiment": "exp", "method": "coop", "dataset": "dtd", "shots": 4,
        "seed": seed, "test": test,
    });
    std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
    if with_config {
        let config = format!("seed = {seed}\n[method]\nname = \"coop\"\n[train]\nlr = 0.002\n");
        std::fs::write(dir.join("config.toml"), config).unwrap();
    }
    std::fs::write(dir.join("COMPLETE"), "").unwrap();
}

#[test]
fn runs_without_config_or_with_impossible_results_are_left_out_by_name() {
    let root = std::env::temp_dir().join(format!("mvlpt-report-checks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let exp = root.join("exp");
    write_run(&exp.join("aaaa"), 1, 0.5, true);
    write_run(&exp.join("bbbb"), 2, 0.7, true);
    write_run(&exp.join("cccc"), 3, 0.9, false);
    write_run(&exp.join("dddd"), 4, -5.0, true);
    let collection = collect(&root, None).unwrap();
    let seeds: Vec<u64> = collection.records.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, [1, 2]);
    assert_eq!(collection.left_out.len(), 2, "{:?}", collection.left_out);
    let (no_config, why) = &collection.left_out[0];
    assert!(
        no_config.ends_with("exp/cccc") && why.contains("config.toml"),
        "{why}"
    );
    let (negative, why) = &collection.left_out[1];
    assert!(
        negative.ends_with("exp/dddd") && why.contains("-5"),
        "{why}"
    );
    // One group of two seeds, no spurious variant.
    let report = aggregate(&collection.records, "test").unwrap();
    let text = report.to_text();
    assert!(text.contains("60.00 ± 14.14"), "{text}");
    assert!(collection.records.iter().all(|r| r.variant.is_empty()));
    std::fs::remove_dir_all(&root).unwrap();
}
