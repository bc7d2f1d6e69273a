//! "Did you mean ...?" hints for mistyped names (plugins, dataset classes, config values).

/// The candidate closest to `name`, if one is close enough to be a likely typo: Jaro-Winkler
/// similarity above 0.8 (shared prefixes, `cifar10` → `cifar-10`) or at most one edit per three
/// characters counting a swap of neighbours as one (`dgo` → `dog`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed_edits = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let jw = strsim::jaro_winkler(c, name);
            let edits = strsim::osa_distance(c, name);
            let score = if edits <= allowed_edits {
                jw.max(0.81)
            } else {
                jw
            };
            (score, c)
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` for the closest candidate, or an empty string.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name_and_strangers_find_nothing() {
        let classes = ["cat", "dog", "horse"];
        assert_eq!(closest("dgo", classes), Some("dog"));
        assert_eq!(closest("hrose", classes), Some("horse"));
        assert_eq!(closest("elephant", classes), None);
        assert_eq!(
            closest("cifar10", ["cifar-10", "cifar-100", "mnist"]),
            Some("cifar-10")
        );
        assert_eq!(did_you_mean("zebra", classes), "");
    }
}
