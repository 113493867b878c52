//! Lexing of the DDL text found in QUERY events: comments removed, MySQL's versioned comments
//! (`/*!50100 ... */`, MariaDB's `/*M!100100 ... */`) opened so their contents count, and the rest
//! split into tokens for the fallback DDL parser.

/// One token of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare word: a keyword or an unquoted identifier, as written.
    Word(String),
    /// A back-quoted identifier, unescaped.
    Quoted(String),
    /// A string literal (single- or double-quoted), unescaped.
    Str(String),
    /// A number.
    Num(String),
    /// Any other character: `(`, `)`, `,`, `.`, `=`, `;`, ...
    Sym(char),
}

impl Tok {
    /// True for the bare word `word`, in any case.
    pub fn is(&self, word: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The token as SQL text (strings re-quoted), for rebuilding a column type.
    pub fn to_sql(&self) -> String {
        match self {
            Tok::Word(w) | Tok::Num(w) => w.clone(),
            Tok::Quoted(q) => format!("`{}`", q.replace('`', "``")),
            Tok::Str(s) => format!("'{}'", s.replace('\'', "''")),
            Tok::Sym(c) => c.to_string(),
        }
    }
}

/// The statement without comments, with versioned comments' contents kept.
pub fn strip_comments(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut versioned = 0usize;
    let mut copied = 0;
    while i < b.len() {
        let skip_to = match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i = quoted_end(b, i, q);
                continue;
            }
            b'#' => line_end(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                line_end(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let opener = if b.get(i + 2) == Some(&b'!') {
                    Some(i + 3)
                } else if b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!') {
                    Some(i + 4)
                } else {
                    None
                };
                match opener {
                    Some(mut j) => {
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        versioned += 1;
                        j
                    }
                    None => sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2),
                }
            }
            b'*' if versioned > 0 && b.get(i + 1) == Some(&b'/') => {
                versioned -= 1;
                i + 2
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&sql[copied..i]);
        out.push(' ');
        i = skip_to;
        copied = i;
    }
    out.push_str(&sql[copied..]);
    out
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

/// The index after the closing quote of the quoted text starting at `start`.
fn quoted_end(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && quote != b'`' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Splits comment-free SQL into tokens.
pub fn tokens(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' || c == b'`' {
            let end = quoted_end(b, i, c);
            // An unterminated quote runs to the end of the text.
            let closed = end > i + 1 && end <= b.len() && b[end - 1] == c;
            let inner = &sql[i + 1..if closed { end - 1 } else { end }];
            let text = unescape(inner, c);
            // Without ANSI_QUOTES, MySQL reads "..." as a string, like '...'.
            out.push(if c == b'`' {
                Tok::Quoted(text)
            } else {
                Tok::Str(text)
            });
            i = end;
        } else if is_word_byte(c) {
            let start = i;
            while i < b.len() && (is_word_byte(b[i]) || (b[i] == b'.' && all_digits(&b[start..i])))
            {
                i += 1;
            }
            let text = sql[start..i].to_string();
            // `1.5`, `1e3`; not `inf` or `nan`, which are identifiers.
            let numeric = text.as_bytes()[0].is_ascii_digit() && text.parse::<f64>().is_ok();
            out.push(if numeric {
                Tok::Num(text)
            } else {
                Tok::Word(text)
            });
        } else {
            let ch = sql[i..].chars().next().unwrap_or(' ');
            out.push(Tok::Sym(ch));
            i += ch.len_utf8();
        }
    }
    out
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn all_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn unescape(inner: &str, quote: u8) -> String {
    let q = quote as char;
    let doubled = format!("{q}{q}");
    let text = inner.replace(&doubled, &q.to_string());
    if quote == b'`' || !text.contains('\\') {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_comments_and_opens_versioned_ones() {
        let sql = "ALTER /* c */ TABLE `t` -- x\n ADD c INT # y\n /*!50100 , ADD d INT */ /*M!100100 , ADD e INT*/";
        let text = strip_comments(sql);
        assert!(!text.contains("/*") && !text.contains('#') && !text.contains("--"));
        assert!(
            text.contains(", ADD d INT") && text.contains(", ADD e INT"),
            "{text}"
        );
        assert_eq!(
            strip_comments("SELECT '/* no */' -- c"),
            "SELECT '/* no */'  "
        );
    }

    #[test]
    fn splits_tokens() {
        let t = tokens("CREATE TABLE `a``b`.t2 (x enum('it''s','b\\'c') DEFAULT 1.5)");
        assert_eq!(t[2], Tok::Quoted("a`b".into()));
        assert_eq!(t[3], Tok::Sym('.'));
        assert_eq!(t[4], Tok::Word("t2".into()));
        assert_eq!(t[9], Tok::Str("it's".into()));
        assert_eq!(t[11], Tok::Str("b'c".into()));
        assert_eq!(t[14], Tok::Num("1.5".into()));
    }
}
