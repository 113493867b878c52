//! MySQL's binary JSON format (JSON columns in MySQL rows events) to a JSON value. Objects and
//! arrays come in a small (16-bit offsets) and a large (32-bit) form; scalars are inlined in the
//! value entries where they fit. Opaque values (DECIMAL, temporal types inside JSON) are decoded to
//! what MySQL prints for them. Every offset is checked against the document.

use super::cursor::{sign_extend, Cursor, DecodeError, Result};
use super::{decimal, temporal};
use base64::Engine;
use serde_json::{Map, Value as Json};

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

/// Nesting deeper than MySQL allows (100) is refused rather than recursed into.
const MAX_DEPTH: usize = 100;

/// Decodes a whole binary JSON document (type byte and value). An empty document is JSON null.
pub fn decode_document(bytes: &[u8]) -> Result<Json> {
    let Some((&kind, body)) = bytes.split_first() else {
        return Ok(Json::Null);
    };
    // A well-formed document has fewer values than bytes; entries that point back into their
    // own container could otherwise make a few bytes decode into an exponential tree.
    let mut budget = bytes.len();
    value(kind, body, 0, &mut budget)
}

fn bad(what: &str) -> DecodeError {
    DecodeError(format!("bad binary JSON: {what}"))
}

fn value(kind: u8, data: &[u8], depth: usize, budget: &mut usize) -> Result<Json> {
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply"));
    }
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| bad("more values than the document has bytes"))?;
    let mut c = Cursor::new(data);
    match kind {
        SMALL_OBJECT => container(data, false, true, depth, budget),
        LARGE_OBJECT => container(data, true, true, depth, budget),
        SMALL_ARRAY => container(data, false, false, depth, budget),
        LARGE_ARRAY => container(data, true, false, depth, budget),
        LITERAL => literal(c.u8()?),
        INT16 => Ok(Json::from(sign_extend(c.uint_le(2)?, 16))),
        UINT16 => Ok(Json::from(c.uint_le(2)?)),
        INT32 => Ok(Json::from(sign_extend(c.uint_le(4)?, 32))),
        UINT32 => Ok(Json::from(c.uint_le(4)?)),
        INT64 => Ok(Json::from(c.uint_le(8)? as i64)),
        UINT64 => Ok(Json::from(c.uint_le(8)?)),
        DOUBLE => Ok(number(f64::from_bits(c.uint_le(8)?))),
        STRING => {
            let len = varlen(&mut c)?;
            Ok(Json::from(
                String::from_utf8_lossy(c.take(len)?).into_owned(),
            ))
        }
        OPAQUE => opaque(&mut c),
        other => Err(bad(&format!("unknown value type {other:#x}"))),
    }
}

fn literal(byte: u8) -> Result<Json> {
    match byte {
        0 => Ok(Json::Null),
        1 => Ok(Json::Bool(true)),
        2 => Ok(Json::Bool(false)),
        other => Err(bad(&format!("unknown literal {other}"))),
    }
}

fn number(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// A variable-length size: 7 bits per byte, low bits first, at most 5 bytes.
fn varlen(c: &mut Cursor<'_>) -> Result<usize> {
    let mut len = 0usize;
    for i in 0..5 {
        let b = c.u8()?;
        len |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(len);
        }
    }
    Err(bad("length longer than 5 bytes"))
}

fn container(
    data: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    budget: &mut usize,
) -> Result<Json> {
    let w = if large { 4 } else { 2 };
    let mut c = Cursor::new(data);
    let count = c.uint_le(w)? as usize;
    let size = c.uint_le(w)? as usize;
    if size > data.len() {
        return Err(bad("container larger than its document"));
    }
    let doc = &data[..size];
    let mut keys = Vec::new();
    if object {
        for _ in 0..count {
            let offset = c.uint_le(w)? as usize;
            let len = c.uint_le(2)? as usize;
            let key = doc
                .get(offset..offset + len)
                .ok_or_else(|| bad("key outside the object"))?;
            keys.push(String::from_utf8_lossy(key).into_owned());
        }
    }
    let mut values = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let kind = c.u8()?;
        let entry = c.take(w)?;
        values.push(entry_value(kind, entry, doc, large, depth, budget)?);
    }
    Ok(if object {
        Json::Object(keys.into_iter().zip(values).collect::<Map<_, _>>())
    } else {
        Json::Array(values)
    })
}

/// A value entry: small scalars inline, everything else at an offset into the container.
fn entry_value(
    kind: u8,
    entry: &[u8],
    doc: &[u8],
    large: bool,
    depth: usize,
    budget: &mut usize,
) -> Result<Json> {
    let inlined =
        matches!(kind, LITERAL | INT16 | UINT16) || (large && matches!(kind, INT32 | UINT32));
    if inlined {
        return value(kind, entry, depth + 1, budget);
    }
    let offset = entry
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    let data = doc
        .get(offset..)
        .ok_or_else(|| bad("value outside its container"))?;
    value(kind, data, depth + 1, budget)
}

/// Opaque values: a MySQL column type byte and its bytes.
fn opaque(c: &mut Cursor<'_>) -> Result<Json> {
    let field_type = c.u8()?;
    let len = varlen(c)?;
    let bytes = c.take(len)?;
    let mut v = Cursor::new(bytes);
    match field_type {
        246 => {
            let precision = v.u8()?;
            let scale = v.u8()?;
            let text = decimal::read_decimal(&mut v, precision, scale)?;
            Ok(text
                .parse::<f64>()
                .map(number)
                .unwrap_or(Json::from(text.as_str())))
        }
        10 | 7 | 12 | 11 | 17 | 18 | 19 => {
            let packed = v.uint_le(8)? as i64;
            Ok(packed_temporal(field_type, packed))
        }
        _ => Ok(Json::from(format!(
            "base64:type{field_type}:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))),
    }
}

/// Temporal values inside JSON are stored as MySQL's packed 64-bit integers.
fn packed_temporal(field_type: u8, packed: i64) -> Json {
    let negative = packed < 0;
    let v = packed.unsigned_abs();
    let micros = v % (1 << 24);
    let int_part = v >> 24;
    if field_type == 11 || field_type == 19 {
        let (h, m, s) = (
            (int_part >> 12) % (1 << 10),
            (int_part >> 6) % 64,
            int_part % 64,
        );
        let sign = if negative { "-" } else { "" };
        return Json::from(format!(
            "{sign}{h:02}:{m:02}:{s:02}{}",
            trimmed_fraction(micros)
        ));
    }
    let ymd = int_part >> 17;
    let ym = ymd >> 5;
    let hms = int_part % (1 << 17);
    let (y, mo, d) = (ym / 13, ym % 13, ymd % 32);
    if field_type == 10 {
        return Json::from(format!("{y:04}-{mo:02}-{d:02}"));
    }
    let (h, mi, s) = (hms >> 12, (hms >> 6) % 64, hms % 64);
    Json::from(format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}",
        trimmed_fraction(micros)
    ))
}

/// MySQL prints JSON temporal fractions with six digits when there are any.
fn trimmed_fraction(micros: u64) -> String {
    if micros == 0 {
        String::new()
    } else {
        temporal::fraction(micros, 6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        assert_eq!(decode_document(&[LITERAL, 1]).unwrap(), json!(true));
        assert_eq!(decode_document(&[INT16, 0xff, 0xff]).unwrap(), json!(-1));
        assert_eq!(
            decode_document(&[STRING, 2, b'h', b'i']).unwrap(),
            json!("hi")
        );
        assert_eq!(decode_document(&[]).unwrap(), json!(null));
    }

    #[test]
    fn small_object_with_inline_and_offset_values() {
        // {"a": 1, "b": "x"}: count 2, size, key entries (offset, len), value entries.
        let mut doc = vec![2, 0, 0, 0];
        let header = 4 + 2 * 4 + 2 * 3; // counts, key entries, value entries
        let keys_at = header;
        let string_at = keys_at + 2;
        doc.extend([keys_at as u8, 0, 1, 0, (keys_at + 1) as u8, 0, 1, 0]);
        doc.extend([INT16, 1, 0, STRING, string_at as u8, 0]);
        doc.extend(b"ab");
        doc.extend([1, b'x']);
        let size = doc.len() as u16;
        doc[2..4].copy_from_slice(&size.to_le_bytes());
        let mut bytes = vec![SMALL_OBJECT];
        bytes.extend(doc);
        assert_eq!(decode_document(&bytes).unwrap(), json!({"a": 1, "b": "x"}));
    }

    #[test]
    fn self_referencing_containers_end_quickly() {
        // An array of two arrays, both at offset 0: itself. Without a budget this is 2^100 calls.
        let doc = [
            SMALL_ARRAY,
            2,
            0,
            10,
            0,
            SMALL_ARRAY,
            0,
            0,
            SMALL_ARRAY,
            0,
            0,
        ];
        assert!(decode_document(&doc).is_err());
    }

    #[test]
    fn corrupt_documents_are_errors() {
        assert!(decode_document(&[SMALL_OBJECT, 1, 0, 200, 0]).is_err());
        assert!(decode_document(&[0x0e]).is_err());
        assert!(decode_document(&[STRING, 0x80, 0x80, 0x80, 0x80, 0x80]).is_err());
        assert!(decode_document(&[SMALL_ARRAY, 1, 0, 7, 0, STRING, 0xff, 0]).is_err());
    }
}
