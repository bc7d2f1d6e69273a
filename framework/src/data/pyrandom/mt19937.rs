//! The 32-bit Mersenne Twister (MT19937) exactly as CPython's `_random` module runs it:
//! `init_genrand`, `init_by_array` (the seeding CPython uses for integer seeds) and the
//! tempered 32-bit output, regenerating all 624 words at once when the index runs out.

/// Number of 32-bit words in the generator state.
pub const STATE_WORDS: usize = 624;
const SHIFT_M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The raw MT19937 state: 624 words plus the position of the next word to temper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mt19937 {
    pub(super) words: [u32; STATE_WORDS],
    /// Index of the next word to output; `STATE_WORDS` means "regenerate first".
    pub(super) index: usize,
}

impl Mt19937 {
    /// The reference `init_genrand(s)`: a linear-congruential fill of the state from one word.
    fn from_word(seed: u32) -> Self {
        let mut words = [0u32; STATE_WORDS];
        words[0] = seed;
        for i in 1..STATE_WORDS {
            let prev = words[i - 1];
            words[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            words,
            index: STATE_WORDS,
        }
    }

    /// The reference `init_by_array(key)`, which CPython applies to the 32-bit words of
    /// `abs(seed)`, least significant first. `key` must not be empty.
    pub fn from_key(key: &[u32]) -> Self {
        debug_assert!(!key.is_empty(), "init_by_array needs at least one key word");
        let mut mt = Self::from_word(19_650_218);
        let w = &mut mt.words;
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..STATE_WORDS.max(key.len()) {
            let prev = w[i - 1];
            w[i] = (w[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= STATE_WORDS {
                w[0] = w[STATE_WORDS - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..STATE_WORDS - 1 {
            let prev = w[i - 1];
            w[i] =
                (w[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= STATE_WORDS {
                w[0] = w[STATE_WORDS - 1];
                i = 1;
            }
        }
        w[0] = 0x8000_0000;
        mt
    }

    /// Regenerates all 624 words (the "twist").
    fn twist(&mut self) {
        let w = &mut self.words;
        let mix = |upper: u32, lower: u32, far: u32| {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            far ^ (y >> 1) ^ if y & 1 == 1 { MATRIX_A } else { 0 }
        };
        for k in 0..STATE_WORDS - SHIFT_M {
            w[k] = mix(w[k], w[k + 1], w[k + SHIFT_M]);
        }
        for k in STATE_WORDS - SHIFT_M..STATE_WORDS - 1 {
            w[k] = mix(w[k], w[k + 1], w[k + SHIFT_M - STATE_WORDS]);
        }
        w[STATE_WORDS - 1] = mix(w[STATE_WORDS - 1], w[0], w[SHIFT_M - 1]);
        self.index = 0;
    }

    /// The next tempered 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= STATE_WORDS {
            self.twist();
        }
        let mut y = self.words[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}
