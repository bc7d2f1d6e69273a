//! Checks every method against CPython 3.11 outputs recorded by `tools/fixtures/pyrandom.py`.

use serde_json::Value;

use super::{PyRandom, PyRandomError, PyRandomState, SampleBranch};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/pyrandom/random.json"
);

fn load_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["python"].as_str().unwrap().get(..5), Some("3.11."));
    doc["cases"].as_array().unwrap().clone()
}

fn u64s(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn i64s(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn usizes(value: &Value) -> Vec<usize> {
    u64s(value).into_iter().map(|v| v as usize).collect()
}

fn f64_bits(value: &Value) -> Vec<u64> {
    u64s(value)
}

/// Little-endian bytes of a non-negative integer written in hex.
fn hex_to_le_bytes(hex: &str) -> Vec<u8> {
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    let mut bytes: Vec<u8> = (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).unwrap())
        .collect();
    bytes.reverse();
    bytes
}

/// Hex of a little-endian word list, as Python's `format(int, "x")` writes it.
fn words_to_hex(words: &[u32]) -> String {
    let mut hex: String = words.iter().rev().map(|w| format!("{w:08x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    hex = if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    };
    hex
}

fn generator_for(case: &Value) -> PyRandom {
    let seed = &case["seed"];
    let magnitude = hex_to_le_bytes(seed["magnitude_hex"].as_str().unwrap());
    let rng = PyRandom::from_le_bytes(&magnitude);
    // Every constructor that can express the seed must agree with the byte form.
    if magnitude.len() <= 16 {
        let mut wide = [0u8; 16];
        wide[..magnitude.len()].copy_from_slice(&magnitude);
        let value = u128::from_le_bytes(wide);
        assert_eq!(PyRandom::from_u128(value), rng);
        if let Ok(small) = u64::try_from(value) {
            assert_eq!(PyRandom::new(small), rng);
            if let Ok(signed) = i64::try_from(small) {
                let signed = if seed["negative"].as_bool().unwrap() {
                    -signed
                } else {
                    signed
                };
                assert_eq!(PyRandom::from_i64(signed), rng);
            }
        }
    }
    rng
}

fn run_op(rng: &mut PyRandom, op: &Value) {
    let name = op["op"].as_str().unwrap();
    match name {
        "random" => {
            let got: Vec<u64> = f64_bits(&op["bits"])
                .iter()
                .map(|_| rng.random().to_bits())
                .collect();
            assert_eq!(got, f64_bits(&op["bits"]));
        }
        "getrandbits" => {
            let k = op["k"].as_u64().unwrap() as u32;
            let expected = u64s(&op["values"]);
            let got: Vec<u64> = expected.iter().map(|_| rng.getrandbits(k)).collect();
            assert_eq!(got, expected, "getrandbits({k})");
        }
        "getrandbits_big" => {
            let k = op["k"].as_u64().unwrap() as usize;
            for hex in op["hex"].as_array().unwrap() {
                let words = rng.getrandbits_words(k);
                assert_eq!(words.len(), k.div_ceil(32));
                assert_eq!(
                    words_to_hex(&words),
                    hex.as_str().unwrap(),
                    "getrandbits({k})"
                );
            }
        }
        "randbelow" => {
            let n = op["n"].as_u64().unwrap();
            let expected = u64s(&op["values"]);
            let got: Vec<u64> = expected.iter().map(|_| rng.randbelow(n)).collect();
            assert_eq!(got, expected, "randbelow({n})");
        }
        "randrange" => {
            let (start, stop, step) = (
                op["start"].as_i64().unwrap(),
                op["stop"].as_i64().unwrap(),
                op["step"].as_i64().unwrap(),
            );
            let expected = i64s(&op["values"]);
            let got: Vec<i64> = expected
                .iter()
                .map(|_| rng.randrange_step(start, stop, step).unwrap())
                .collect();
            assert_eq!(got, expected, "randrange({start}, {stop}, {step})");
        }
        "randint" => {
            let (a, b) = (op["a"].as_i64().unwrap(), op["b"].as_i64().unwrap());
            let expected = i64s(&op["values"]);
            let got: Vec<i64> = expected
                .iter()
                .map(|_| rng.randint(a, b).unwrap())
                .collect();
            assert_eq!(got, expected, "randint({a}, {b})");
        }
        "shuffle" => {
            let n = op["n"].as_u64().unwrap() as usize;
            let mut items: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut items);
            assert_eq!(items, usizes(&op["result"]), "shuffle(range({n}))");
        }
        "sample" => {
            let (n, k) = (
                op["n"].as_u64().unwrap() as usize,
                op["k"].as_u64().unwrap() as usize,
            );
            let branch = match op["branch"].as_str().unwrap() {
                "pool" => SampleBranch::Pool,
                _ => SampleBranch::Set,
            };
            assert_eq!(
                SampleBranch::for_sizes(n, k),
                branch,
                "sample branch for n={n}, k={k}"
            );
            assert_eq!(
                rng.sample(n, k).unwrap(),
                usizes(&op["result"]),
                "sample({n}, {k})"
            );
        }
        "choice" => {
            let n = op["n"].as_u64().unwrap() as usize;
            let expected = usizes(&op["values"]);
            let got: Vec<usize> = expected.iter().map(|_| rng.choice(n).unwrap()).collect();
            assert_eq!(got, expected, "choice({n})");
        }
        "choices" => {
            let (n, k) = (
                op["n"].as_u64().unwrap() as usize,
                op["k"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                rng.choices(n, k).unwrap(),
                usizes(&op["result"]),
                "choices({n}, k={k})"
            );
        }
        "choices_weighted" => {
            let weights: Vec<f64> = f64_bits(&op["weight_bits"])
                .into_iter()
                .map(f64::from_bits)
                .collect();
            let k = op["k"].as_u64().unwrap() as usize;
            assert_eq!(
                rng.choices_weighted(&weights, k).unwrap(),
                usizes(&op["result"]),
                "{weights:?}"
            );
        }
        "uniform" => {
            let a = f64::from_bits(op["a_bits"].as_u64().unwrap());
            let b = f64::from_bits(op["b_bits"].as_u64().unwrap());
            let expected = f64_bits(&op["bits"]);
            let got: Vec<u64> = expected
                .iter()
                .map(|_| rng.uniform(a, b).to_bits())
                .collect();
            assert_eq!(got, expected);
        }
        "state" => {
            let expected = PyRandomState {
                words: u64s(&op["words"]).into_iter().map(|w| w as u32).collect(),
                index: op["index"].as_u64().unwrap() as usize,
            };
            assert_eq!(rng.state(), expected);
            assert_eq!(&PyRandom::from_state(&expected).unwrap(), rng);
        }
        other => panic!("unknown fixture op {other}"),
    }
}

#[test]
fn every_fixture_operation_matches_cpython() {
    let cases = load_cases();
    assert!(cases.len() >= 10);
    for case in &cases {
        let mut rng = generator_for(case);
        for op in case["ops"].as_array().unwrap() {
            run_op(&mut rng, op);
        }
    }
}

#[test]
fn fixture_covers_both_sample_branches() {
    let ops: Vec<Value> = load_cases()[0]["ops"].as_array().unwrap().clone();
    let branches: Vec<&str> = ops
        .iter()
        .filter(|op| op["op"] == "sample")
        .map(|op| op["branch"].as_str().unwrap())
        .collect();
    assert!(branches.contains(&"pool") && branches.contains(&"set"));
}

#[test]
fn serde_round_trip_continues_the_identical_stream() {
    let mut rng = PyRandom::from_u128((1 << 70) + 3);
    for _ in 0..1000 {
        rng.random();
    }
    let json = serde_json::to_string(&rng.state()).unwrap();
    let restored_state: PyRandomState = serde_json::from_str(&json).unwrap();
    let mut restored = PyRandom::from_state(&restored_state).unwrap();
    let original: Vec<u32> = (0..2000).map(|_| rng.next_u32()).collect();
    let continued: Vec<u32> = (0..2000).map(|_| restored.next_u32()).collect();
    assert_eq!(original, continued);
}

#[test]
fn restored_python_state_continues_like_python() {
    // The fixture records getstate() mid-stream and then four more random() values.
    for case in load_cases() {
        let ops = case["ops"].as_array().unwrap();
        let at = ops.iter().position(|op| op["op"] == "state").unwrap();
        let state = PyRandomState {
            words: u64s(&ops[at]["words"])
                .into_iter()
                .map(|w| w as u32)
                .collect(),
            index: ops[at]["index"].as_u64().unwrap() as usize,
        };
        let mut rng = PyRandom::from_state(&state).unwrap();
        let expected = f64_bits(&ops[at + 1]["bits"]);
        let got: Vec<u64> = expected.iter().map(|_| rng.random().to_bits()).collect();
        assert_eq!(got, expected);
    }
}

#[test]
fn invalid_arguments_are_refused_like_cpython() {
    let mut rng = PyRandom::new(0);
    assert_eq!(
        rng.sample(3, 4),
        Err(PyRandomError::SampleLargerThanPopulation {
            k: 4,
            population: 3
        })
    );
    assert!(matches!(
        rng.randrange(5, 5),
        Err(PyRandomError::EmptyRange { .. })
    ));
    assert!(matches!(
        rng.randrange_step(0, 10, 0),
        Err(PyRandomError::EmptyRange { .. })
    ));
    assert!(matches!(
        rng.randrange_step(0, 10, -1),
        Err(PyRandomError::EmptyRange { .. })
    ));
    assert!(matches!(
        rng.randint(2, 1),
        Err(PyRandomError::EmptyInterval { .. })
    ));
    assert!(matches!(
        rng.randint(i64::MIN, i64::MAX),
        Err(PyRandomError::RangeTooWide { .. })
    ));
    assert_eq!(rng.choice(0), Err(PyRandomError::EmptyPopulation));
    assert_eq!(rng.choices(0, 1), Err(PyRandomError::EmptyPopulation));
    assert!(matches!(
        rng.choices_weighted(&[0.0, 0.0], 1),
        Err(PyRandomError::InvalidWeights(_))
    ));
    let short = PyRandomState {
        words: vec![0; 623],
        index: 0,
    };
    assert!(matches!(
        PyRandom::from_state(&short),
        Err(PyRandomError::InvalidState(_))
    ));
    let past_end = PyRandomState {
        words: vec![0; 624],
        index: 625,
    };
    assert!(matches!(
        PyRandom::from_state(&past_end),
        Err(PyRandomError::InvalidState(_))
    ));
    // None of the refused calls may have consumed randomness.
    assert_eq!(rng, PyRandom::new(0));
}
