//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): the after image of a JSON
//! column is a list of diffs (replace, insert, remove at a JSON path) against the before image.
//! rowbus applies them, so sinks always get the full document.

use super::cursor::{Cursor, DecodeError, Result};
use super::jsonb;
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Member(String),
    Index(usize),
}

/// Applies the encoded diff list `diffs` to `doc`.
pub fn apply(doc: &mut Json, diffs: &[u8]) -> Result<()> {
    let mut c = Cursor::new(diffs);
    while !c.is_empty() {
        let op = c.u8()?;
        let path_len = c.lenenc()? as usize;
        let path = parse_path(&String::from_utf8_lossy(c.take(path_len)?))?;
        let value = if op == 2 {
            None
        } else {
            let len = c.lenenc()? as usize;
            Some(jsonb::decode_document(c.take(len)?)?)
        };
        apply_one(doc, op, &path, value)?;
    }
    Ok(())
}

fn bad_path(path: &str) -> DecodeError {
    DecodeError(format!(
        "unsupported JSON path `{path}` in a partial update"
    ))
}

/// Parses `$`, `.member`, `."quoted member"` and `[n]` legs.
fn parse_path(path: &str) -> Result<Vec<Leg>> {
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad_path(path))?;
    let mut legs = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if chars.peek() == Some(&'"') => {
                chars.next();
                let mut name = String::new();
                loop {
                    match chars.next().ok_or_else(|| bad_path(path))? {
                        '"' => break,
                        '\\' => name.push(chars.next().ok_or_else(|| bad_path(path))?),
                        other => name.push(other),
                    }
                }
                legs.push(Leg::Member(name));
            }
            '.' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                legs.push(Leg::Member(name));
            }
            '[' => {
                let digits: String = chars.by_ref().take_while(|&c| c != ']').collect();
                legs.push(Leg::Index(
                    digits.trim().parse().map_err(|_| bad_path(path))?,
                ));
            }
            c if c.is_whitespace() => {}
            _ => return Err(bad_path(path)),
        }
    }
    Ok(legs)
}

fn apply_one(doc: &mut Json, op: u8, path: &[Leg], value: Option<Json>) -> Result<()> {
    let missing =
        || DecodeError("partial JSON update refers to a path the document does not have".into());
    let Some((last, parents)) = path.split_last() else {
        // The whole document.
        *doc = value.ok_or_else(missing)?;
        return Ok(());
    };
    let mut target = &mut *doc;
    for leg in parents {
        target = match leg {
            Leg::Member(name) => target.get_mut(name.as_str()),
            Leg::Index(i) => target.get_mut(*i),
        }
        .ok_or_else(missing)?;
    }
    match (op, last, target) {
        (0 | 1, Leg::Member(name), Json::Object(map)) => {
            map.insert(name.clone(), value.ok_or_else(missing)?);
        }
        (0, Leg::Index(i), Json::Array(items)) => {
            *items.get_mut(*i).ok_or_else(missing)? = value.ok_or_else(missing)?;
        }
        (1, Leg::Index(i), Json::Array(items)) => {
            let at = (*i).min(items.len());
            items.insert(at, value.ok_or_else(missing)?);
        }
        (2, Leg::Member(name), Json::Object(map)) => {
            map.remove(name);
        }
        (2, Leg::Index(i), Json::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        (op, ..) => {
            return Err(DecodeError(format!(
                "partial JSON update operation {op} does not fit the document"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diff(op: u8, path: &str, value: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![op, path.len() as u8];
        out.extend(path.as_bytes());
        if let Some(v) = value {
            out.push(v.len() as u8);
            out.extend(v);
        }
        out
    }

    #[test]
    fn replace_insert_remove() {
        let mut doc = json!({"a": 1, "b": [1, 2, 3], "c d": {"x": true}});
        let mut diffs = diff(0, "$.a", Some(&[0x05, 7, 0]));
        diffs.extend(diff(1, "$.b[1]", Some(&[0x04, 0])));
        diffs.extend(diff(2, "$.\"c d\".x", None));
        diffs.extend(diff(1, "$.new", Some(&[0x0c, 1, b'z'])));
        apply(&mut doc, &diffs).unwrap();
        assert_eq!(
            doc,
            json!({"a": 7, "b": [1, null, 2, 3], "c d": {}, "new": "z"})
        );
    }

    #[test]
    fn paths_and_errors() {
        assert_eq!(
            parse_path("$.a[2].b").unwrap(),
            vec![
                Leg::Member("a".into()),
                Leg::Index(2),
                Leg::Member("b".into())
            ]
        );
        assert!(parse_path("a.b").is_err());
        let mut doc = json!({"a": 1});
        assert!(apply(&mut doc, &diff(0, "$.x.y", Some(&[0x04, 0]))).is_err());
        assert!(apply(&mut doc, &[0, 200]).is_err(), "truncated diff");
    }
}
