//! Decoding row images of rows events straight from the event bytes with a table's column plan:
//! the null bitmap over the columns present in the image, then each non-null value. Every read is
//! bounds-checked; a value that does not fit its declared layout is an error, never a panic.

use super::cursor::{sign_extend, Cursor, DecodeError, Result};
use super::plan::Kind;
use super::{decimal, jsonb, temporal, text};
#[cfg(test)]
use crate::table::Labels;
use crate::table::BINARY_CHARSET;
use rowbus_core::Value;

/// A decoded row image.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// Every column of the table, in order (binlog_row_image=FULL).
    Full(Vec<Value>),
    /// For each column, its value when the image has it.
    Partial(Vec<Option<Value>>),
}

impl Image {
    /// The value of column `i`, when the image has it.
    pub fn get(&self, i: usize) -> Option<&Value> {
        match self {
            Image::Full(values) => values.get(i),
            Image::Partial(values) => values.get(i).and_then(Option::as_ref),
        }
    }
}

/// Decodes one image. `present[i]` says whether column i is in the image; `partial_json`, for the
/// after image of a partial update, says which JSON columns hold diffs against `before`.
pub fn decode_image(
    c: &mut Cursor<'_>,
    plan: &[Kind],
    present: &[bool],
    partial_json: Option<&[bool]>,
    before: Option<&Image>,
) -> Result<Image> {
    let count = present.iter().filter(|&&p| p).count();
    let nulls = c.take(count.div_ceil(8))?;
    if count == plan.len() && present.len() == plan.len() && partial_json.is_none() {
        // The common case: every column, straight into the row's values.
        let mut values = Vec::with_capacity(plan.len());
        for (i, kind) in plan.iter().enumerate() {
            let is_null = nulls[i / 8] & (1 << (i % 8)) != 0;
            values.push(if is_null {
                Value::Null
            } else {
                value(c, kind)?
            });
        }
        return Ok(Image::Full(values));
    }
    let mut image = vec![None; plan.len()];
    let mut nth_present = 0;
    let mut nth_json = 0;
    for (i, kind) in plan.iter().enumerate() {
        let json_index = kind.is_json().then(|| {
            nth_json += 1;
            nth_json - 1
        });
        if !present.get(i).copied().unwrap_or(false) {
            continue;
        }
        let is_null = nulls[nth_present / 8] & (1 << (nth_present % 8)) != 0;
        nth_present += 1;
        if is_null {
            image[i] = Some(Value::Null);
            continue;
        }
        let partial = json_index
            .is_some_and(|j| partial_json.is_some_and(|p| p.get(j).copied().unwrap_or(false)));
        image[i] = Some(if partial {
            partial_update(c, kind, before.and_then(|b| b.get(i).cloned()))?
        } else {
            value(c, kind)?
        });
    }
    Ok(Image::Partial(image))
}

fn partial_update(c: &mut Cursor<'_>, kind: &Kind, before: Option<Value>) -> Result<Value> {
    let Kind::Json { len_bytes } = kind else {
        return Err(DecodeError("partial update of a non-JSON column".into()));
    };
    let len = c.uint_le(*len_bytes as usize)? as usize;
    let diffs = c.take(len)?;
    let mut doc = match before {
        Some(Value::Json(doc)) => doc,
        Some(Value::Null) => Box::new(serde_json::Value::Null),
        _ => {
            return Err(DecodeError(
                "partial JSON update without a before image".into(),
            ))
        }
    };
    super::json_diff::apply(&mut doc, diffs)?;
    Ok(Value::Json(doc))
}

/// Decodes one non-null value. Inlined into the row loop: returned through memory, a `Value`
/// was copied back with loads that straddle its stores, stalling the CPU on every column.
#[inline(always)]
pub fn value(c: &mut Cursor<'_>, kind: &Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int { bytes, unsigned } => {
            let raw = c.uint_le(*bytes as usize)?;
            if *unsigned {
                Value::UInt(raw)
            } else {
                Value::Int(sign_extend(raw, *bytes as u32 * 8))
            }
        }
        Kind::Float => Value::float(f32::from_bits(c.uint_le(4)? as u32)),
        Kind::Double => Value::Double(f64::from_bits(c.uint_le(8)?)),
        Kind::Decimal { precision, scale } => {
            Value::Decimal(decimal::read_decimal(c, *precision, *scale)?)
        }
        Kind::Date => temporal::date(c)?,
        Kind::Time => temporal::time_old(c)?,
        Kind::Time2 { fsp } => temporal::time2(c, *fsp)?,
        Kind::Datetime => temporal::datetime_old(c)?,
        Kind::Datetime2 { fsp } => temporal::datetime2(c, *fsp)?,
        Kind::Timestamp => temporal::timestamp_old(c)?,
        Kind::Timestamp2 { fsp } => temporal::timestamp2(c, *fsp)?,
        Kind::Year => temporal::year(c)?,
        Kind::Bytes {
            len_bytes,
            charset,
            pad_to,
        } => {
            let len = c.uint_le(*len_bytes as usize)? as usize;
            let bytes = c.take(len)?;
            if *charset == BINARY_CHARSET {
                let mut owned = bytes.to_vec();
                if owned.len() < *pad_to {
                    owned.resize(*pad_to, 0);
                }
                Value::Bytes(owned.into())
            } else {
                Value::Text(text::decode(bytes, *charset))
            }
        }
        Kind::Special { special, len_bytes } => {
            let len = c.uint_le(*len_bytes as usize)? as usize;
            let size = super::special::size(*special);
            let bytes = c.take(len)?;
            if len > size {
                return Err(DecodeError(format!(
                    "a {special:?} value of {len} bytes (at most {size})"
                )));
            }
            let mut padded = [0u8; 16];
            padded[..len].copy_from_slice(bytes);
            Value::Text(super::special::text(*special, &padded[..size]))
        }
        Kind::Json { len_bytes } => {
            let len = c.uint_le(*len_bytes as usize)? as usize;
            Value::Json(Box::new(jsonb::decode_document(c.take(len)?)?))
        }
        Kind::Raw { len_bytes } => {
            let len = c.uint_le(*len_bytes as usize)? as usize;
            Value::Bytes(c.take(len)?.into())
        }
        Kind::Enum { bytes, labels } => {
            let index = c.uint_le(*bytes as usize)? as usize;
            match labels {
                Some(_) if index == 0 => Value::Text("".into()),
                Some(labels) => labels
                    .get(index - 1)
                    .map_or(Value::UInt(index as u64), |l| Value::Label(l.clone())),
                None => Value::UInt(index as u64),
            }
        }
        Kind::Set { bytes, labels } => {
            let bits = c.uint_le(*bytes as usize)?;
            match labels {
                Some(labels) => Value::Labels(
                    labels
                        .iter()
                        .take(64)
                        .enumerate()
                        .filter(|(i, _)| bits & (1 << i) != 0)
                        .map(|(_, l)| l.clone())
                        .collect(),
                ),
                None => Value::UInt(bits),
            }
        }
        Kind::Bit { bytes } => Value::UInt(c.uint_be(*bytes as usize)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;
    use std::sync::Arc;

    fn json(v: Value) -> Json {
        serde_json::to_value(&v).unwrap()
    }

    #[test]
    fn integers_signed_and_unsigned() {
        let signed = Kind::Int {
            bytes: 8,
            unsigned: false,
        };
        let unsigned = Kind::Int {
            bytes: 8,
            unsigned: true,
        };
        let max = u64::MAX.to_le_bytes();
        assert_eq!(
            json(value(&mut Cursor::new(&max), &signed).unwrap()),
            Json::from(-1)
        );
        assert_eq!(
            json(value(&mut Cursor::new(&max), &unsigned).unwrap()),
            Json::from(u64::MAX)
        );
        let tiny = Kind::Int {
            bytes: 1,
            unsigned: false,
        };
        assert_eq!(
            json(value(&mut Cursor::new(&[0x80]), &tiny).unwrap()),
            Json::from(-128)
        );
        let medium = Kind::Int {
            bytes: 3,
            unsigned: true,
        };
        assert_eq!(
            json(value(&mut Cursor::new(&[0xff, 0xff, 0xff]), &medium).unwrap()),
            Json::from(16_777_215)
        );
    }

    #[test]
    fn strings_binary_enum_set_bit() {
        let text = Kind::Bytes {
            len_bytes: 1,
            charset: 45,
            pad_to: 0,
        };
        assert_eq!(
            json(value(&mut Cursor::new(b"\x02hi"), &text).unwrap()),
            Json::from("hi")
        );
        let binary = Kind::Bytes {
            len_bytes: 1,
            charset: 63,
            pad_to: 4,
        };
        assert_eq!(
            json(value(&mut Cursor::new(b"\x02\x01\x02"), &binary).unwrap()),
            Json::from("AQIAAA==")
        );
        let labels: Labels = vec![Arc::from("a"), Arc::from("b"), Arc::from("c")].into();
        let e = Kind::Enum {
            bytes: 1,
            labels: Some(labels.clone()),
        };
        assert_eq!(
            json(value(&mut Cursor::new(&[2]), &e).unwrap()),
            Json::from("b")
        );
        let s = Kind::Set {
            bytes: 1,
            labels: Some(labels),
        };
        assert_eq!(
            json(value(&mut Cursor::new(&[5]), &s).unwrap()),
            serde_json::json!(["a", "c"])
        );
        let bit = Kind::Bit { bytes: 2 };
        assert_eq!(
            json(value(&mut Cursor::new(&[1, 0]), &bit).unwrap()),
            Json::from(256)
        );
    }

    #[test]
    fn image_with_nulls_and_absent_columns() {
        let plan = vec![
            Kind::Int {
                bytes: 4,
                unsigned: false,
            },
            Kind::Int {
                bytes: 1,
                unsigned: false,
            },
            Kind::Bytes {
                len_bytes: 1,
                charset: 45,
                pad_to: 0,
            },
        ];
        // Columns 0 and 2 present; column 2 null: null bitmap 0b10.
        let bytes = [0b10, 7, 0, 0, 0];
        let mut c = Cursor::new(&bytes);
        let image = decode_image(&mut c, &plan, &[true, false, true], None, None).unwrap();
        assert_eq!(
            image,
            Image::Partial(vec![Some(Value::Int(7)), None, Some(Value::Null)])
        );
        assert!(c.is_empty());
        let mut short = Cursor::new(&bytes[..3]);
        assert!(decode_image(&mut short, &plan, &[true, false, true], None, None).is_err());
    }
}
