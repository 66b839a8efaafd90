//! Name patterns of permissions (docs/adr/0004-security.md §6): literal, prefix, or a glob
//! that knows only `*` (any run of characters, none included) and `?` (one character). No
//! regex: a set of patterns compiles to a `HashSet` of literals, a sorted `Vec` of prefixes
//! and a short list of globs.

use std::collections::HashSet;

use super::roles::PatternType;

/// Whether `glob` matches all of `name`. Names are ASCII (`[A-Za-z0-9._-]`, plus `/` between
/// a topic and a subscription), so `?` matches one byte.
///
/// The usual linear scan with one backtracking point: on a mismatch, the last `*` seen
/// absorbs one more character and matching resumes after it. O(len(glob) × len(name)).
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name) = (glob.as_bytes(), name.as_bytes());
    let (mut g, mut n) = (0, 0);
    // The position just after the last `*`, and the name position it has absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g + 1, n));
                g += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match star {
                Some((after, absorbed)) => {
                    g = after;
                    n = absorbed + 1;
                    star = Some((after, absorbed + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// A set of patterns, any of which may match.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    literals: HashSet<String>,
    /// Sorted, with no prefix that a shorter one already covers.
    prefixes: Vec<String>,
    globs: Vec<String>,
}

impl PatternSet {
    pub fn insert(&mut self, pattern: &str, kind: PatternType) {
        match kind {
            PatternType::Literal => {
                self.literals.insert(pattern.to_string());
            }
            PatternType::Prefix => self.prefixes.push(pattern.to_string()),
            PatternType::Glob => self.globs.push(pattern.to_string()),
        }
    }

    /// Sorts and prunes the prefixes; call once after the last `insert`.
    pub fn seal(&mut self) {
        self.prefixes.sort();
        self.prefixes.dedup();
        let mut kept: Vec<String> = Vec::with_capacity(self.prefixes.len());
        for prefix in self.prefixes.drain(..) {
            // Sorted order puts `a` before every `a…`, so only the last kept one can cover it.
            if kept.last().is_none_or(|k| !prefix.starts_with(k.as_str())) {
                kept.push(prefix);
            }
        }
        self.prefixes = kept;
        self.globs.sort();
        self.globs.dedup();
    }

    pub fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.prefixes.is_empty() && self.globs.is_empty()
    }

    pub fn matches(&self, name: &str) -> bool {
        self.literals.contains(name)
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
            || self.globs.iter().any(|g| glob_matches(g, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious recursive definition, exponential but right.
    fn reference(glob: &[u8], name: &[u8]) -> bool {
        match glob.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).any(|skip| reference(rest, &name[skip..])),
            Some((&c, rest)) => match name.split_first() {
                Some((&n, name_rest)) if c == b'?' || c == n => reference(rest, name_rest),
                _ => false,
            },
        }
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        for (glob, name, expected) in [
            ("orders.*", "orders.eu", true),
            ("orders.*", "orders.", true),
            ("orders.*", "orders", false),
            ("*", "", true),
            ("*", "anything/at-all", true),
            ("log-??", "log-01", true),
            ("log-??", "log-1", false),
            ("log-??", "log-001", false),
            ("orders.*/audit-*", "orders.eu/audit-1", true),
            ("orders.*/audit-*", "orders.eu/billing", false),
            ("*a*b", "xxaxxbxb", true),
            ("*a*b", "xxaxxbx", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(glob_matches(glob, name), expected, "{glob} ~ {name}");
        }
    }

    #[test]
    fn a_set_matches_literals_exactly_prefixes_at_the_start_and_globs_whole() {
        let mut set = PatternSet::default();
        set.insert("orders", PatternType::Literal);
        set.insert("audit.", PatternType::Prefix);
        set.insert("audit.eu.", PatternType::Prefix);
        set.insert("log-?", PatternType::Glob);
        set.seal();
        assert_eq!(set.prefixes, ["audit."], "audit.eu. is covered by audit.");
        for (name, expected) in [
            ("orders", true),
            ("orders2", false),
            ("order", false),
            ("audit.", true),
            ("audit.eu.x", true),
            ("audit", false),
            ("log-1", true),
            ("log-12", false),
        ] {
            assert_eq!(set.matches(name), expected, "{name}");
        }
        assert!(!PatternSet::default().matches("orders"));
        let mut all = PatternSet::default();
        all.insert("", PatternType::Prefix);
        all.seal();
        assert!(all.matches("") && all.matches("anything"));
    }

    fn glob_strategy() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ab.*?]{0,8}").unwrap()
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ab.]{0,10}").unwrap()
    }

    proptest! {
        #[test]
        fn the_glob_matcher_agrees_with_the_reference(glob in glob_strategy(), name in name_strategy()) {
            prop_assert_eq!(
                glob_matches(&glob, &name),
                reference(glob.as_bytes(), name.as_bytes()),
                "{} ~ {}", glob, name
            );
        }

        #[test]
        fn pruning_prefixes_changes_no_answer(
            prefixes in proptest::collection::vec(name_strategy(), 0..6),
            name in name_strategy(),
        ) {
            let mut set = PatternSet::default();
            for p in &prefixes {
                set.insert(p, PatternType::Prefix);
            }
            set.seal();
            prop_assert_eq!(set.matches(&name), prefixes.iter().any(|p| name.starts_with(p.as_str())));
        }
    }
}
