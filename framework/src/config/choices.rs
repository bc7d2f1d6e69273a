//! The closed sets of the experiment config as enums. Each is written in a config as the same
//! snake_case string as always (`optimizer = "adamw"`), and serialises back to it, so configs and
//! run ids do not change; a value outside the set fails when the config is loaded, naming the
//! key, where it came from and the closest valid value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Declares a closed set: the enum, its default, its `Display` (the config string) and its list
/// of values.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
        default $default:ident
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, as written in a config.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            /// The value as written in a config.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set! {
    /// `model.dtype`: compute precision of the frozen model.
    Precision {
        /// 32-bit floats (the reference).
        F32 = "f32",
        /// bfloat16.
        Bf16 = "bf16",
        /// IEEE half precision.
        F16 = "f16",
    }
    default F32
}

closed_set! {
    /// `data.task_order`: order of the tasks in the joint label space.
    TaskOrder {
        /// As listed in `data.tasks` (the CoOp-datasets source stage).
        Given = "given",
        /// Alphabetical (ELEVATER's multitask manifest).
        Sorted = "sorted",
    }
    default Given
}

closed_set! {
    /// `data.on_bad_image`: what an unreadable image does.
    OnBadImage {
        /// Stop with an error naming the file.
        Error = "error",
        /// Drop the sample and count it.
        Skip = "skip",
    }
    default Error
}

closed_set! {
    /// `data.task_masking`: multitask logits outside a sample's task.
    TaskMaskingChoice {
        /// One softmax over the joint space (the reference default).
        None = "none",
        /// The reference's per-task mask: multiplied by 0.
        Zero = "zero",
        /// The fix: excluded from the softmax.
        NegInfinity = "neg_infinity",
    }
    default None
}

closed_set! {
    /// `data.subsample_classes`: which half of each dataset's classes a run sees (Dassl's
    /// `DATASET.SUBSAMPLE_CLASSES`, the base-to-novel protocol).
    SubsampleClasses {
        /// Every class (no subsampling).
        All = "all",
        /// The first ceil(n/2) classes of the few-shot training split, relabelled from 0.
        Base = "base",
        /// The other classes, relabelled from 0.
        New = "new",
    }
    default All
}

impl SubsampleClasses {
    /// Whether this is `all` (left out of the resolved config, so runs without base-to-novel
    /// keep their run ids).
    pub fn is_all(&self) -> bool {
        *self == Self::All
    }
}

closed_set! {
    /// `train.optimizer`.
    OptimizerChoice {
        /// SGD with momentum (the reference).
        Sgd = "sgd",
        /// AdamW as torch implements it.
        Adamw = "adamw",
    }
    default Sgd
}

closed_set! {
    /// `train.schedule`: the learning-rate decay after warm-up.
    ScheduleChoice {
        /// Cosine annealing over all epochs (the reference).
        Cosine = "cosine",
        /// The base rate throughout.
        Constant = "constant",
        /// Multiplied by `gamma` at each milestone.
        Step = "step",
    }
    default Cosine
}

closed_set! {
    /// `train.warmup_type`.
    WarmupChoice {
        /// A fixed `warmup_lr` (the reference).
        Constant = "constant",
        /// From `warmup_lr` up to `lr`.
        Linear = "linear",
    }
    default Constant
}

closed_set! {
    /// `train.select`: which prompts are tested.
    SelectChoice {
        /// The prompts of the best validation result.
        BestVal = "best_val",
        /// The prompts of the last epoch.
        Last = "last",
    }
    default BestVal
}

/// `model.device`: `cpu`, `cuda` (the first GPU) or `cuda:N`, written back exactly as given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ComputeDevice {
    /// The CPU.
    #[default]
    Cpu,
    /// `cuda`: the first CUDA device.
    Cuda,
    /// `cuda:N`: the CUDA device with this ordinal.
    CudaOrdinal(usize),
}

impl ComputeDevice {
    /// What a config may say, for error messages.
    pub const EXPECTED: &'static str = "cpu, cuda or cuda:N";

    /// The CUDA ordinal, or `None` for the CPU.
    pub fn cuda_ordinal(self) -> Option<usize> {
        match self {
            Self::Cpu => None,
            Self::Cuda => Some(0),
            Self::CudaOrdinal(n) => Some(n),
        }
    }
}

impl FromStr for ComputeDevice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            _ => text
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Self::CudaOrdinal)
                .ok_or_else(|| format!("unknown device {text:?}: expected {}", Self::EXPECTED)),
        }
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda => f.write_str("cuda"),
            Self::CudaOrdinal(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Serialize for ComputeDevice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComputeDevice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&text),
                &ComputeDevice::EXPECTED,
            )
        })
    }
}

/// Parses a closed-set value from a command-line string, with the config's wording.
pub fn parse_choice<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> anyhow::Result<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text))
        .map_err(|e| anyhow::anyhow!("{what} {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sets_read_and_write_their_config_strings() {
        for (text, value) in [
            ("\"adamw\"", OptimizerChoice::Adamw),
            ("\"sgd\"", OptimizerChoice::Sgd),
        ] {
            assert_eq!(
                serde_json::from_str::<OptimizerChoice>(text).unwrap(),
                value
            );
            assert_eq!(serde_json::to_string(&value).unwrap(), text);
        }
        assert_eq!(
            serde_json::to_string(&TaskMaskingChoice::NegInfinity).unwrap(),
            "\"neg_infinity\""
        );
        assert_eq!(SelectChoice::default(), SelectChoice::BestVal);
        assert_eq!(Precision::VALUES, ["f32", "bf16", "f16"]);
        assert!(serde_json::from_str::<ScheduleChoice>("\"cosin\"").is_err());
    }

    #[test]
    fn devices_round_trip_exactly() {
        for text in ["cpu", "cuda", "cuda:0", "cuda:3"] {
            let device: ComputeDevice = text.parse().unwrap();
            assert_eq!(device.to_string(), text);
            let json = serde_json::to_string(&device).unwrap();
            assert_eq!(
                serde_json::from_str::<ComputeDevice>(&json).unwrap(),
                device
            );
        }
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            assert!(bad.parse::<ComputeDevice>().is_err(), "{bad}");
        }
        let error = parse_choice::<Precision>("dtype", "fp32").unwrap_err();
        assert!(error.to_string().contains("f32"), "{error}");
    }
}
