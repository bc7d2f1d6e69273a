//! `mvlpt ckpt average`: the element-wise mean of prompt files, and clear errors on mismatches.

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn write(path: &Path, tensors: &[(&str, Vec<f32>)]) {
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                Tensor::from_vec(v.clone(), v.len(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&map, path).unwrap();
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("mvlpt-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn averages_element_wise() {
    let d = dir();
    write(
        &d.join("a.safetensors"),
        &[("ctx", vec![1.0, 2.0]), ("vpt_embeddings", vec![0.0])],
    );
    write(
        &d.join("b.safetensors"),
        &[("ctx", vec![3.0, 6.0]), ("vpt_embeddings", vec![1.0])],
    );
    write(
        &d.join("c.safetensors"),
        &[("ctx", vec![5.0, 1.0]), ("vpt_embeddings", vec![2.0])],
    );
    let out = d.join("mean.safetensors");
    let status = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["ckpt", "average"])
        .args(["a", "b", "c"].map(|n| d.join(format!("{n}.safetensors"))))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let mean = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    assert_eq!(mean["ctx"].to_vec1::<f32>().unwrap(), vec![3.0, 3.0]);
    assert_eq!(mean["vpt_embeddings"].to_vec1::<f32>().unwrap(), vec![1.0]);

    write(
        &d.join("bad.safetensors"),
        &[("ctx", vec![1.0, 2.0, 3.0]), ("vpt_embeddings", vec![0.0])],
    );
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["ckpt", "average"])
        .arg(d.join("a.safetensors"))
        .arg(d.join("bad.safetensors"))
        .arg("-o")
        .arg(d.join("x.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("ctx") && err.contains("bad.safetensors"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
