//! Iteration order of CPython 3.11 `set`s of small non-negative integers.
//!
//! MVLPT's single-task split returns `list(set(...))` and `list(set(range(n)) - val_set)`, so the
//! order of its train and val index lists is the order of a CPython hash table. For an int `i`
//! below 2^61 - 1 the hash is `i` itself, so the table layout depends only on the insertion
//! sequence and CPython's open-addressing rules, which this module replays: slot `hash & mask`,
//! then up to 9 linear probes, then the perturbed jump `i = (5*i + 1 + perturb) & mask`; a table
//! grows to the smallest power of two above `4 * used` (`2 * used` past 50,000 keys) once it is
//! 60% full, reinserting in old slot order. Only what the split needs is here: building a set
//! by successive adds, membership, and the difference `set(range(n)) - s`.

const MIN_SIZE: usize = 8;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

/// A CPython `set` of non-negative ints (each below 2^61 - 1) built only by adds, tracked slot
/// for slot (`None` = an unused slot).
#[derive(Clone, Debug)]
pub(crate) struct PyIntSet {
    table: Vec<Option<usize>>,
    used: usize,
}

impl PyIntSet {
    /// `set(keys)` for a list or other iterable that is not itself a set: one add per key.
    pub(crate) fn from_adds(keys: impl IntoIterator<Item = usize>) -> Self {
        let mut set = Self {
            table: vec![None; MIN_SIZE],
            used: 0,
        };
        for key in keys {
            set.add(key);
        }
        set
    }

    /// `list(set(range(n)) - removed)`.
    ///
    /// `set(range(n))` iterates in ascending order (its table ends larger than `n`, so each int
    /// sits in its home slot). CPython then either adds the survivors one by one to a new set
    /// or, when `removed` has under a quarter of the keys, copies the table and discards; the
    /// copy keeps the ascending layout, and so does the one-by-one set in that case (it ends
    /// larger than `n` too), so replaying the adds gives CPython's order in both branches.
    pub(crate) fn range_difference(n: usize, removed: &Self) -> Vec<usize> {
        Self::from_adds((0..n).filter(|&key| !removed.contains(key))).to_list()
    }

    /// The keys in iteration order (`list(s)`).
    pub(crate) fn to_list(&self) -> Vec<usize> {
        self.table.iter().flatten().copied().collect()
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    /// Walks the probe sequence of `key` until `stop` accepts a slot index.
    fn probe(&self, key: usize, mut stop: impl FnMut(usize) -> bool) -> usize {
        let mask = self.mask();
        let mut i = key & mask;
        let mut perturb = key;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            if let Some(j) = (i..=i + probes).find(|&j| stop(j)) {
                return j;
            }
            perturb >>= PERTURB_SHIFT;
            i = i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb) & mask;
        }
    }

    /// The slot holding `key`, or the unused slot where its search ends.
    fn slot_for(&self, key: usize) -> usize {
        self.probe(key, |j| self.table[j].is_none_or(|k| k == key))
    }

    /// `key in s`.
    pub(crate) fn contains(&self, key: usize) -> bool {
        self.table[self.slot_for(key)].is_some()
    }

    /// `s.add(key)` (`set_add_entry`): the key takes the first unused slot of its probe
    /// sequence, then the table grows if it is at least 60% full.
    fn add(&mut self, key: usize) {
        let slot = self.slot_for(key);
        if self.table[slot].is_some() {
            return;
        }
        self.table[slot] = Some(key);
        self.used += 1;
        if self.used * 5 >= self.mask() * 3 {
            let min_used = if self.used > 50_000 {
                self.used * 2
            } else {
                self.used * 4
            };
            self.resize(min_used);
        }
    }

    /// `set_table_resize`: a table of the smallest power of two (at least 8) above `min_used`,
    /// refilled in old slot order with `set_insert_clean` (first unused slot of each probe
    /// sequence).
    fn resize(&mut self, min_used: usize) {
        let mut size = MIN_SIZE;
        while size <= min_used {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![None; size]);
        for key in old.into_iter().flatten() {
            let slot = self.probe(key, |j| self.table[j].is_none());
            self.table[slot] = Some(key);
        }
    }
}
