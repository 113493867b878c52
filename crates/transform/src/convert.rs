//! Column values between rowbus and the expression language: numbers as numbers (DECIMAL as a
//! float, for comparisons and arithmetic), text, ENUM labels and temporal values as strings in
//! their native JSON form, SET labels as an array, binary as a blob, NULL as `()`. A value a
//! script hands back becomes the closest rowbus value; one it left alone keeps its exact original.

use compact_str::CompactString;
use rhai::{Array, Blob, Dynamic, ImmutableString, Map};
use rowbus_core::Value;

/// A column value as the language compares it: the one rule for `to_dynamic` and the native
/// predicates (`fast.rs`). DECIMAL and integers above i64 as floats, text, ENUM labels and
/// temporal values (their native JSON text, written into `scratch`) as strings, NULL as `()`.
/// None for the kinds that are not scalars there: binary, SET, JSON.
pub(crate) enum Scalar<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    Unit,
}

pub(crate) fn scalar<'a>(value: &'a Value, scratch: &'a mut Vec<u8>) -> Option<Scalar<'a>> {
    Some(match value {
        Value::Null => Scalar::Unit,
        Value::Int(i) => Scalar::Int(*i),
        Value::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::Float(*u as f64),
        },
        Value::Double(f) => Scalar::Float(*f),
        Value::Decimal(d) => Scalar::Float(d.parse().unwrap_or(f64::NAN)),
        Value::Text(t) => Scalar::Str(t),
        Value::Label(l) => Scalar::Str(l),
        Value::Year(y) => Scalar::Int(i64::from(*y)),
        Value::Date { .. } | Value::DateTime(_) | Value::Timestamp { .. } | Value::Time { .. } => {
            scratch.clear();
            value.write_json(scratch);
            let text = std::str::from_utf8(scratch).ok()?;
            Scalar::Str(text.trim_matches('"'))
        }
        Value::Bytes(_) | Value::Labels(_) | Value::Json(_) => return None,
    })
}

pub(crate) fn to_dynamic(value: &Value) -> Dynamic {
    let mut scratch = Vec::new();
    if let Some(scalar) = scalar(value, &mut scratch) {
        return match scalar {
            Scalar::Int(i) => Dynamic::from_int(i),
            Scalar::Float(f) => Dynamic::from_float(f),
            Scalar::Str(text) => Dynamic::from(ImmutableString::from(text)),
            Scalar::Unit => Dynamic::UNIT,
        };
    }
    match value {
        Value::Labels(labels) => {
            let array: Array = labels
                .iter()
                .map(|l| Dynamic::from(ImmutableString::from(&**l)))
                .collect();
            Dynamic::from_array(array)
        }
        Value::Bytes(b) => Dynamic::from_blob(b.to_vec()),
        Value::Json(j) => json_to_dynamic(j),
        _ => Dynamic::UNIT, // every other kind is a scalar
    }
}

fn json_to_dynamic(json: &serde_json::Value) -> Dynamic {
    match json {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        serde_json::Value::Array(items) => {
            Dynamic::from_array(items.iter().map(json_to_dynamic).collect())
        }
        serde_json::Value::Object(fields) => {
            let map: Map = fields
                .iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect();
            Dynamic::from_map(map)
        }
    }
}

/// The rowbus value of what an expression gave: booleans as 1/0 (MySQL has no boolean), arrays and
/// object maps as JSON.
pub(crate) fn from_dynamic(value: &Dynamic) -> Result<Value, String> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Int(i64::from(b)));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(Value::Double(f));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::Text(CompactString::from(c.to_string())));
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return Ok(Value::Text(CompactString::from(s.as_str())));
    }
    if let Some(b) = value.read_lock::<Blob>() {
        return Ok(Value::Bytes(b.clone().into_boxed_slice()));
    }
    if value.is_array() || value.is_map() {
        return Ok(Value::Json(Box::new(to_json(value)?)));
    }
    Err(format!(
        "a value of type {} cannot be stored in a column",
        value.type_name()
    ))
}

fn to_json(value: &Dynamic) -> Result<serde_json::Value, String> {
    if let Some(array) = value.read_lock::<Array>() {
        return array.iter().map(to_json).collect::<Result<_, _>>();
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut object = serde_json::Map::new();
        for (k, v) in map.iter() {
            object.insert(k.to_string(), to_json(v)?);
        }
        return Ok(serde_json::Value::Object(object));
    }
    if let Ok(b) = value.as_bool() {
        return Ok(serde_json::Value::Bool(b));
    }
    if value.is_unit() {
        return Ok(serde_json::Value::Null);
    }
    match from_dynamic(value)? {
        Value::Int(i) => Ok(i.into()),
        Value::Double(f) => Ok(serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)),
        Value::Text(t) => Ok(serde_json::Value::String(t.to_string())),
        other => Err(format!("{other:?} cannot be part of a JSON value")),
    }
}

/// What a script left in a column: the original value when it did not change it (a DECIMAL or a
/// date keeps its exact form), else the converted new one.
pub(crate) fn merge_back(original: Option<&Value>, new: &Dynamic) -> Result<Value, String> {
    let converted = from_dynamic(new)?;
    if let Some(original) = original {
        if from_dynamic(&to_dynamic(original)).ok().as_ref() == Some(&converted) {
            return Ok(original.clone());
        }
    }
    Ok(converted)
}
