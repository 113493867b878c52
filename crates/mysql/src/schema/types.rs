//! What a column's SQL type text tells the decoder when the binlog does not: signedness, whether
//! the bytes are text or binary, the ENUM/SET labels, and MariaDB's UUID and INET types, which the
//! binlog logs as plain binary strings.

use super::lex::{tokens, Tok};

/// A column type, read from its SQL text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeInfo {
    /// The first word, lowercased: `int`, `varchar`, `enum`, `uuid`, ...
    pub base: String,
    pub unsigned: bool,
    /// ENUM and SET labels, in declaration order.
    pub labels: Option<Vec<String>>,
}

/// MariaDB types the binlog does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Uuid,
    Inet6,
    Inet4,
}

impl TypeInfo {
    pub fn parse(sql_type: &str) -> TypeInfo {
        let toks = tokens(sql_type);
        let base = match toks.first() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => String::new(),
        };
        let unsigned =
            base == "serial" || toks.iter().any(|t| t.is("UNSIGNED") || t.is("ZEROFILL"));
        let labels = (base == "enum" || base == "set").then(|| {
            toks.iter()
                .filter_map(|t| match t {
                    Tok::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        });
        TypeInfo {
            base,
            unsigned,
            labels,
        }
    }

    /// Character data: its bytes are text in the column's charset.
    pub fn is_character(&self) -> bool {
        matches!(
            self.base.as_str(),
            "char"
                | "varchar"
                | "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
                | "long"
                | "enum"
                | "set"
                | "national"
                | "nchar"
                | "nvarchar"
                | "character"
        )
    }

    /// Byte strings: BINARY, VARBINARY and the BLOBs.
    pub fn is_bytes(&self) -> bool {
        matches!(
            self.base.as_str(),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        )
    }

    pub fn special(&self) -> Option<Special> {
        match self.base.as_str() {
            "uuid" => Some(Special::Uuid),
            "inet6" => Some(Special::Inet6),
            "inet4" => Some(Special::Inet4),
            _ => None,
        }
    }
}

/// A collation id standing for a charset, as the decoder's text conversion reads it.
pub fn collation_id(charset: &str) -> u16 {
    match charset {
        "binary" => crate::table::BINARY_CHARSET,
        "latin1" => 8,
        "ascii" => 11,
        "utf8" | "utf8mb3" => 33,
        _ => 45,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_types() {
        let t = TypeInfo::parse("int(10) unsigned");
        assert_eq!((t.base.as_str(), t.unsigned), ("int", true));
        assert!(!TypeInfo::parse("BIGINT").unsigned);
        assert!(TypeInfo::parse("SERIAL").unsigned);
        let e = TypeInfo::parse("ENUM('a', 'it''s', 'UNSIGNED')");
        assert_eq!(e.labels.unwrap(), vec!["a", "it's", "UNSIGNED"]);
        assert!(!TypeInfo::parse("set('unsigned')").unsigned);
        assert!(TypeInfo::parse("VARCHAR(10)").is_character());
        assert!(TypeInfo::parse("varbinary(10)").is_bytes());
        assert_eq!(TypeInfo::parse("UUID").special(), Some(Special::Uuid));
        assert_eq!(TypeInfo::parse("inet6").special(), Some(Special::Inet6));
    }
}
