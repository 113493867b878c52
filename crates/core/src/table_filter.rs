//! Table selection by `db.table` globs (`*` any run of characters, `?` one character): a table is
//! selected when it matches an `include` pattern (or there are none) and no `exclude` pattern.
//! The helper tables of online schema change tools need an include pattern naming them exactly.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

/// Why a pattern is not a `db.table` glob.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{pattern}` is not a db.table pattern (expected e.g. \"shop.*\" or \"*.orders\")")]
pub struct BadPattern {
    pub pattern: String,
}

impl TableFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, BadPattern> {
        for pattern in include.iter().chain(exclude) {
            validate(pattern)?;
        }
        Ok(TableFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        })
    }

    /// Selects everything.
    pub fn all() -> Self {
        TableFilter::default()
    }

    /// The helper tables of online schema change tools are selected only by an include pattern
    /// that names them without wildcards: their rows are copies, not changes.
    pub fn matches(&self, db: &str, table: &str) -> bool {
        let name = Name { db, table };
        let helper = is_schema_change_helper(table);
        let picks = |p: &String| name.globbed_by(p) && (!helper || !p.contains(['*', '?']));
        let included = (self.include.is_empty() && !helper) || self.include.iter().any(picks);
        included && !self.exclude.iter().any(|p| name.globbed_by(p))
    }
}

/// gh-ost's `_T_gho`, `_T_ghc`, `_T_del` and pt-online-schema-change's `_T_new`, `_T_old`.
pub fn is_schema_change_helper(table: &str) -> bool {
    table.len() > 5
        && table.starts_with('_')
        && ["_gho", "_ghc", "_del", "_new", "_old"]
            .iter()
            .any(|suffix| table.ends_with(suffix))
}

/// Checks that a pattern has the `db.table` shape.
pub fn validate(pattern: &str) -> Result<(), BadPattern> {
    let ok =
        matches!(pattern.split_once('.'), Some((db, table)) if !db.is_empty() && !table.is_empty());
    if ok {
        Ok(())
    } else {
        Err(BadPattern {
            pattern: pattern.to_string(),
        })
    }
}

/// A `db.table` name, matched without building the joined string: the router asks this once per
/// change and sink.
struct Name<'a> {
    db: &'a str,
    table: &'a str,
}

impl Name<'_> {
    fn globbed_by(&self, pattern: &str) -> bool {
        let ascii = pattern.is_ascii() && self.db.is_ascii() && self.table.is_ascii();
        if !ascii {
            return glob(pattern, &format!("{}.{}", self.db, self.table));
        }
        // ASCII: a byte is a character.
        let (db, table) = (self.db.as_bytes(), self.table.as_bytes());
        let at = |i: usize| match i.cmp(&db.len()) {
            std::cmp::Ordering::Less => db[i],
            std::cmp::Ordering::Equal => b'.',
            std::cmp::Ordering::Greater => table[i - db.len() - 1],
        };
        glob_with(pattern.as_bytes(), db.len() + 1 + table.len(), at)
    }
}

/// Glob match with `*` and `?` over characters.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    glob_with(&p, t.len(), |i| t[i])
}

/// Glob match of `p` against the `len` symbols `t` gives, iterative with one backtrack point.
fn glob_with<C: Copy + PartialEq + From<u8>>(p: &[C], len: usize, t: impl Fn(usize) -> C) -> bool {
    let (any, one) = (C::from(b'*'), C::from(b'?'));
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < len {
        if pi < p.len() && (p[pi] == one || p[pi] == t(ti)) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_change_helpers_need_an_exact_include() {
        for helper in ["_t_gho", "_t_ghc", "_t_del", "_orders_new", "_orders_old"] {
            assert!(!filter(&["db.*"], &[]).matches("db", helper), "{helper}");
            assert!(!TableFilter::all().matches("db", helper), "{helper}");
            assert!(filter(&[&format!("db.{helper}")], &[]).matches("db", helper));
        }
        assert!(filter(&["db.*"], &[]).matches("db", "_new"));
        assert!(filter(&["db.*"], &[]).matches("db", "t_old"));
    }

    fn filter(include: &[&str], exclude: &[&str]) -> TableFilter {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        TableFilter::new(&own(include), &own(exclude)).unwrap()
    }

    #[test]
    fn include_and_exclude() {
        let f = filter(&["shop.*"], &["shop.audit_*"]);
        assert!(f.matches("shop", "orders"));
        assert!(!f.matches("shop", "audit_log"));
        assert!(!f.matches("other", "orders"));
    }

    #[test]
    fn empty_include_selects_all() {
        let f = filter(&[], &["*.tmp?"]);
        assert!(f.matches("a", "b"));
        assert!(!f.matches("a", "tmp1"));
        assert!(f.matches("a", "tmp12"));
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("s?op.*", "shop.x"));
        assert!(!glob("shop.o", "shop.orders"));
    }

    #[test]
    fn ascii_and_other_names_match_alike() {
        let f = filter(&["s?op.*", "*.é?t"], &["shop.tmp*"]);
        assert!(f.matches("shop", "orders"));
        assert!(
            f.matches("süop", "orders"),
            "? is one character, not one byte"
        );
        assert!(!f.matches("shop", "tmp_1"));
        assert!(f.matches("x", "éat"));
        assert!(!f.matches("x", "eat"));
        assert!(!f.matches("shoop", "orders"));
        assert!(
            filter(&["a.b*"], &[]).matches("a", "b.c"),
            "a dot in a table name"
        );
    }

    #[test]
    fn rejects_patterns_without_a_dot() {
        assert!(TableFilter::new(&["shop".into()], &[]).is_err());
        assert!(TableFilter::new(&[".x".into()], &[]).is_err());
    }
}
