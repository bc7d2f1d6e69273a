//! The CLIP byte-pair-encoding tokenizer.
