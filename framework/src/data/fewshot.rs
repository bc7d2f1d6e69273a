//! fewshot (in progress).
