//! "Did you mean …?" for misspelt keys, group names and values.

/// The candidate closest to `input`, if one is close enough to be a likely
/// typo: at most a third of the word's letters changed (transpositions count
/// once), compared without regard to case.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    let limit = (input_lower.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(&input_lower, &candidate.to_lowercase());
            (distance, candidate)
        })
        // A prefix of a longer word ("maria" for "mariadb") is a likely
        // abbreviation even when many letters are missing.
        .map(|(distance, candidate)| {
            let abbreviates =
                input_lower.len() >= 3 && candidate.to_lowercase().starts_with(&input_lower);
            (if abbreviates { 1 } else { distance }, candidate)
        })
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// `did you mean "x"?` or nothing.
pub fn hint<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(input, candidates).map(|best| format!("did you mean \"{best}\"?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_transpositions_and_case_slips() {
        let keys = ["engine", "version", "operating_system"];
        assert_eq!(did_you_mean("verison", keys), Some("version"));
        assert_eq!(did_you_mean("Version", keys), Some("version"));
        assert_eq!(
            did_you_mean("operating-system", keys),
            Some("operating_system")
        );
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(
            did_you_mean("maria", ["mysql", "percona", "mariadb"]),
            Some("mariadb")
        );
    }
}
