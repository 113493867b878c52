//! DDL statements as the schema history needs them: which tables and columns a statement creates,
//! changes, renames or drops. sqlparser's MySQL dialect reads the statement where it can
//! (`from_sqlparser`); what it rejects (MariaDB syntax, newer clauses) goes to the small parser
//! below, which knows only the subset that changes columns, keys, charsets and names.

use super::lex::{strip_comments, tokens, Tok};

/// `db.table`, or `table` in the statement's default database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub db: Option<String>,
    pub name: String,
}

/// A column as a CREATE or ALTER statement defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// The type as SQL text: `int(10) unsigned`, `enum('a','b')`, `varchar(20)`.
    pub sql_type: String,
    /// An explicit `CHARACTER SET` (or the one a `COLLATE` implies).
    pub charset: Option<String>,
    /// Declared `PRIMARY KEY` on the column itself.
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Last,
    First,
    After(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    AddColumn(ColumnDef, Place),
    DropColumn(String),
    /// MODIFY (same name) and CHANGE (`old` renamed to the definition's name).
    ChangeColumn {
        old: String,
        column: ColumnDef,
        place: Place,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTable(TableName),
    AddPrimaryKey(Vec<String>),
    DropPrimaryKey,
    /// `CONVERT TO CHARACTER SET`: every character column and the table default.
    ConvertCharset(String),
    /// `[DEFAULT] CHARACTER SET`: the table default only.
    DefaultCharset(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    /// `if_not_exists`: an existing table stays as it is (servers log the statement anyway).
    CreateTable {
        name: TableName,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
        charset: Option<String>,
        if_not_exists: bool,
    },
    CreateTableLike {
        name: TableName,
        like: TableName,
        if_not_exists: bool,
    },
    AlterTable {
        name: TableName,
        ops: Vec<AlterOp>,
    },
    RenameTables(Vec<(TableName, TableName)>),
    DropTables(Vec<TableName>),
    Truncate(TableName),
    CreateDatabase {
        name: String,
        charset: Option<String>,
        if_not_exists: bool,
    },
    DropDatabase(String),
    AlterDatabase {
        name: Option<String>,
        charset: Option<String>,
    },
}

impl Ddl {
    /// The tables the statement names.
    pub fn tables(&self) -> Vec<&TableName> {
        match self {
            Ddl::CreateTable { name, .. }
            | Ddl::CreateTableLike { name, .. }
            | Ddl::Truncate(name) => vec![name],
            Ddl::AlterTable { name, ops } => std::iter::once(name)
                .chain(ops.iter().filter_map(|op| match op {
                    AlterOp::RenameTable(to) => Some(to),
                    _ => None,
                }))
                .collect(),
            Ddl::RenameTables(pairs) => pairs.iter().flat_map(|(a, b)| [a, b]).collect(),
            Ddl::DropTables(names) => names.iter().collect(),
            Ddl::CreateDatabase { .. } | Ddl::DropDatabase(_) | Ddl::AlterDatabase { .. } => {
                Vec::new()
            }
        }
    }
}

/// A schema statement neither parser could read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The tables it names, as far as they could be found (empty when not even that).
    pub tables: Vec<TableName>,
    pub reason: String,
}

/// What a QUERY event's statement means for the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Not a statement that changes tables (DML, GRANT, views, routines, temporary tables, ...).
    Other,
    Ddl(Ddl),
    Unreadable(Unreadable),
}

/// Reads a statement: sqlparser first, the fallback parser for what it rejects.
pub fn parse(sql: &str) -> Parsed {
    let text = strip_comments(sql);
    let toks = tokens(&text);
    let Some(kind) = schema_statement(&toks) else {
        return Parsed::Other;
    };
    if let Some(ddl) = super::sqlparse::parse(&text) {
        return Parsed::Ddl(ddl);
    }
    let mut p = Parser { toks: &toks, i: 0 };
    match p.statement(kind) {
        Some(ddl) => Parsed::Ddl(ddl),
        None => Parsed::Unreadable(Unreadable {
            tables: named_tables(&toks, kind),
            reason: format!("cannot read the statement near token {}", p.i + 1),
        }),
    }
}

/// The kinds of statement that change tables or databases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    CreateTable,
    AlterTable,
    RenameTable,
    DropTable,
    Truncate,
    CreateDatabase,
    DropDatabase,
    AlterDatabase,
}

/// Classifies a statement by its leading words; `None` for everything else.
pub fn schema_statement(toks: &[Tok]) -> Option<Kind> {
    let words: Vec<String> = toks
        .iter()
        .take(6)
        .map_while(|t| match t {
            Tok::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .filter(|w| {
            !matches!(
                w.as_str(),
                "OR" | "REPLACE" | "ONLINE" | "OFFLINE" | "IGNORE"
            )
        })
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let db = |x: &str| x == "DATABASE" || x == "SCHEMA";
    Some(match w.as_slice() {
        ["CREATE", "TEMPORARY", ..] | ["DROP", "TEMPORARY", ..] => return None,
        ["CREATE", "TABLE", ..] => Kind::CreateTable,
        ["ALTER", "TABLE", ..] => Kind::AlterTable,
        ["RENAME", "TABLE" | "TABLES", ..] => Kind::RenameTable,
        ["DROP", "TABLE" | "TABLES", ..] => Kind::DropTable,
        ["TRUNCATE", ..] => Kind::Truncate,
        ["CREATE", x, ..] if db(x) => Kind::CreateDatabase,
        ["DROP", x, ..] if db(x) => Kind::DropDatabase,
        ["ALTER", x, ..] if db(x) => Kind::AlterDatabase,
        _ => return None,
    })
}

/// The table names right after the statement's keywords, for deciding whether an unreadable
/// statement concerns an included table.
fn named_tables(toks: &[Tok], kind: Kind) -> Vec<TableName> {
    let mut p = Parser { toks, i: 0 };
    while p.i < toks.len() && !p.peek_is("TABLE") && !p.peek_is("TABLES") && !p.peek_is("TRUNCATE")
    {
        p.i += 1;
    }
    p.i += 1;
    if kind == Kind::Truncate {
        p.kw("TABLE");
    }
    p.if_exists();
    p.if_not_exists();
    let mut out = Vec::new();
    while let Some(name) = p.table_name() {
        out.push(name);
        if !(p.sym(',') || p.kw("TO")) {
            break;
        }
    }
    out
}

struct Parser<'a> {
    toks: &'a [Tok],
    i: usize,
}

const COLUMN_OPTION_WORDS: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "AUTO_INCREMENT",
    "PRIMARY",
    "UNIQUE",
    "KEY",
    "COMMENT",
    "COLLATE",
    "CHARACTER",
    "CHARSET",
    "GENERATED",
    "AS",
    "ON",
    "INVISIBLE",
    "VISIBLE",
    "CHECK",
    "REFERENCES",
    "FIRST",
    "AFTER",
    "STORED",
    "VIRTUAL",
    "PERSISTENT",
    "COLUMN_FORMAT",
    "STORAGE",
    "CONSTRAINT",
    "SRID",
    "WITH",
    "WITHOUT",
    "COMPRESSED",
    "ENGINE_ATTRIBUTE",
    "SECONDARY_ENGINE_ATTRIBUTE",
];

/// ALTER TABLE clauses (by their first word) that change no column, key or charset.
const NO_COLUMN_CHANGE: &[&str] = &[
    "ENGINE",
    "ALGORITHM",
    "LOCK",
    "FORCE",
    "ORDER",
    "AUTO_INCREMENT",
    "COMMENT",
    "ROW_FORMAT",
    "KEY_BLOCK_SIZE",
    "STATS_AUTO_RECALC",
    "STATS_PERSISTENT",
    "STATS_SAMPLE_PAGES",
    "PACK_KEYS",
    "CHECKSUM",
    "PAGE_CHECKSUM",
    "DELAY_KEY_WRITE",
    "MAX_ROWS",
    "MIN_ROWS",
    "AVG_ROW_LENGTH",
    "ENABLE",
    "DISABLE",
    "DISCARD",
    "IMPORT",
    "ALTER",
    "PARTITION",
    "REMOVE",
    "COALESCE",
    "REORGANIZE",
    "EXCHANGE",
    "ANALYZE",
    "CHECK",
    "OPTIMIZE",
    "REBUILD",
    "REPAIR",
    "TRUNCATE",
    "TABLESPACE",
    "UNION",
    "INSERT_METHOD",
    "DATA",
    "INDEX",
    "ENCRYPTED",
    "ENCRYPTION",
    "ENCRYPTION_KEY_ID",
    "PAGE_COMPRESSED",
    "PAGE_COMPRESSION_LEVEL",
    "TRANSACTIONAL",
    "SECONDARY_ENGINE",
    "SECONDARY_ENGINE_ATTRIBUTE",
    "ENGINE_ATTRIBUTE",
    "WITH",
    "WITHOUT",
    "UPGRADE",
    "STORAGE",
    "CONNECTION",
    "PASSWORD",
    "COMPRESSION",
    "SEQUENCE",
    "AUTOEXTEND_SIZE",
    "ATTRIBUTE",
];

const NON_COLUMN_ITEMS: &[&str] = &[
    "INDEX",
    "KEY",
    "UNIQUE",
    "FULLTEXT",
    "SPATIAL",
    "FOREIGN",
    "CHECK",
    "CONSTRAINT",
    "PRIMARY",
    "PERIOD",
    "PARTITION",
    "SYSTEM",
];

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }

    fn peek_is(&self, word: &str) -> bool {
        self.peek().is_some_and(|t| t.is(word))
    }

    fn kw(&mut self, word: &str) -> bool {
        let hit = self.peek_is(word);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn kws(&mut self, words: &[&str]) -> bool {
        let start = self.i;
        if words.iter().all(|w| self.kw(w)) {
            return true;
        }
        self.i = start;
        false
    }

    fn sym(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Sym(c));
        if hit {
            self.i += 1;
        }
        hit
    }

    fn at_end(&self) -> bool {
        let rest = self.toks.get(self.i..).unwrap_or_default();
        rest.iter().all(|t| *t == Tok::Sym(';'))
    }

    fn ident(&mut self) -> Option<String> {
        let name = match self.peek()? {
            Tok::Word(w) | Tok::Quoted(w) => w.clone(),
            Tok::Str(s) => s.clone(),
            _ => return None,
        };
        self.i += 1;
        Some(name)
    }

    fn table_name(&mut self) -> Option<TableName> {
        let first = self.ident()?;
        if self.sym('.') {
            let name = self.ident()?;
            return Some(TableName {
                db: Some(first),
                name,
            });
        }
        Some(TableName {
            db: None,
            name: first,
        })
    }

    fn if_exists(&mut self) {
        self.kws(&["IF", "EXISTS"]);
    }

    fn if_not_exists(&mut self) -> bool {
        self.kws(&["IF", "NOT", "EXISTS"])
    }

    /// The tokens up to the matching `)` of an already consumed `(`.
    fn group(&mut self) -> Option<&'a [Tok]> {
        let start = self.i;
        let mut depth = 1;
        while let Some(t) = self.peek() {
            self.i += 1;
            match t {
                Tok::Sym('(') => depth += 1,
                Tok::Sym(')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&self.toks[start..self.i - 1]);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// `= value` or `value`, for charset options.
    fn option_value(&mut self) -> Option<String> {
        self.sym('=');
        self.ident().or_else(|| match self.peek() {
            Some(Tok::Num(n)) => {
                self.i += 1;
                Some(n.clone())
            }
            _ => None,
        })
    }

    fn statement(&mut self, kind: Kind) -> Option<Ddl> {
        let ddl = match kind {
            Kind::CreateTable => self.create_table(),
            Kind::AlterTable => self.alter_table(),
            Kind::RenameTable => self.rename_table(),
            Kind::DropTable => self.drop_table(),
            Kind::Truncate => {
                self.kw("TRUNCATE");
                self.kw("TABLE");
                Some(Ddl::Truncate(self.table_name()?))
            }
            Kind::CreateDatabase | Kind::AlterDatabase => self.database(kind),
            Kind::DropDatabase => {
                self.i += 2;
                self.if_exists();
                Some(Ddl::DropDatabase(self.ident()?))
            }
        }?;
        self.at_end().then_some(ddl)
    }

    /// MariaDB's `WAIT n` and `NOWAIT`.
    fn wait_clause(&mut self) {
        if self.kw("WAIT") {
            if let Some(Tok::Num(_)) = self.peek() {
                self.i += 1;
            }
        } else {
            self.kw("NOWAIT");
        }
    }

    fn skip_words(&mut self, words: &[&str]) {
        while words.iter().any(|w| self.peek_is(w)) {
            self.i += 1;
        }
    }

    fn create_table(&mut self) -> Option<Ddl> {
        self.skip_words(&["CREATE", "OR", "REPLACE", "TABLE"]);
        let if_not_exists = self.if_not_exists();
        let name = self.table_name()?;
        let parenthesized = self.sym('(');
        if self.kw("LIKE") {
            let like = self.table_name()?;
            if parenthesized && !self.sym(')') {
                return None;
            }
            return Some(Ddl::CreateTableLike {
                name,
                like,
                if_not_exists,
            });
        }
        if !parenthesized {
            return None;
        }
        let body = self.group()?;
        let mut columns = Vec::new();
        let mut primary_key = Vec::new();
        for item in split_commas(body) {
            let mut q = Parser { toks: item, i: 0 };
            if let Some(key) = q.primary_key_clause() {
                primary_key = key;
            } else if !item
                .first()
                .is_some_and(|t| NON_COLUMN_ITEMS.iter().any(|w| t.is(w)))
            {
                let column = q.column_def()?;
                if column.primary_key {
                    primary_key = vec![column.name.clone()];
                }
                columns.push(column);
            }
        }
        let charset = self.table_options();
        // CREATE TABLE ... [AS] SELECT: the columns listed are what a ROW binlog carries.
        self.i = self.toks.len();
        Some(Ddl::CreateTable {
            name,
            columns,
            primary_key,
            charset,
            if_not_exists,
        })
    }

    /// Table options up to the end or a SELECT: the default charset, if any.
    fn table_options(&mut self) -> Option<String> {
        let mut charset = None;
        while let Some(t) = self.peek() {
            if t.is("SELECT") || t.is("AS") || t.is("PARTITION") {
                break;
            }
            if let Some(c) = self.charset_clause() {
                charset = Some(c);
            } else {
                self.i += 1;
            }
        }
        charset
    }

    /// `CHARACTER SET x`, `CHARSET x`, `COLLATE x` (with optional `DEFAULT` and `=`).
    fn charset_clause(&mut self) -> Option<String> {
        let start = self.i;
        self.kw("DEFAULT");
        if self.kws(&["CHARACTER", "SET"]) || self.kw("CHARSET") {
            if let Some(v) = self.option_value() {
                return Some(v.to_ascii_lowercase());
            }
        } else if self.kw("COLLATE") {
            if let Some(v) = self.option_value() {
                return Some(charset_of_collation(&v));
            }
        }
        self.i = start;
        None
    }

    /// `[CONSTRAINT [name]] PRIMARY KEY [USING ...] (cols)`.
    fn primary_key_clause(&mut self) -> Option<Vec<String>> {
        let start = self.i;
        if self.kw("CONSTRAINT") && !self.peek_is("PRIMARY") {
            self.ident();
        }
        if !self.kws(&["PRIMARY", "KEY"]) {
            self.i = start;
            return None;
        }
        while !self.sym('(') {
            self.peek()?;
            self.i += 1;
        }
        let cols = self.group()?;
        Some(
            split_commas(cols)
                .iter()
                .filter_map(|c| Parser { toks: c, i: 0 }.ident())
                .collect(),
        )
    }

    /// `name type [options]`, with the options read for charset and primary key only.
    fn column_def(&mut self) -> Option<ColumnDef> {
        let name = self.ident()?;
        let mut sql_type = match self.peek()? {
            Tok::Word(w) => w.clone(),
            _ => return None,
        };
        self.i += 1;
        // Two-word types: DOUBLE PRECISION, LONG VARCHAR, NATIONAL CHAR, CHAR VARYING, ...
        while let Some(Tok::Word(w)) = self.peek() {
            if w.eq_ignore_ascii_case("PRECISION")
                || w.eq_ignore_ascii_case("VARCHAR")
                || w.eq_ignore_ascii_case("VARYING")
                || w.eq_ignore_ascii_case("CHAR")
                || w.eq_ignore_ascii_case("VARBINARY")
            {
                sql_type.push(' ');
                sql_type.push_str(w);
                self.i += 1;
            } else {
                break;
            }
        }
        if self.sym('(') {
            let args = self.group()?;
            sql_type.push('(');
            sql_type.push_str(&args.iter().map(Tok::to_sql).collect::<String>());
            sql_type.push(')');
        }
        while let Some(t) = self.peek() {
            if t.is("UNSIGNED") || t.is("SIGNED") || t.is("ZEROFILL") || t.is("BINARY") {
                sql_type.push(' ');
                sql_type.push_str(&t.to_sql().to_ascii_lowercase());
                self.i += 1;
            } else {
                break;
            }
        }
        let mut column = ColumnDef {
            name,
            sql_type,
            charset: None,
            primary_key: false,
        };
        while let Some(t) = self.peek() {
            if t.is("FIRST") || t.is("AFTER") {
                break;
            }
            if let Some(c) = self.charset_clause() {
                column.charset.get_or_insert(c);
            } else if self.kws(&["PRIMARY", "KEY"]) {
                column.primary_key = true;
            } else if self.sym('(') {
                self.group()?;
            } else if COLUMN_OPTION_WORDS.iter().any(|w| t.is(w)) || !matches!(t, Tok::Word(_)) {
                self.i += 1;
            } else {
                // Words that are no column option: a default's value or an unknown clause.
                self.i += 1;
            }
        }
        Some(column)
    }

    fn place(&mut self) -> Option<Place> {
        if self.kw("FIRST") {
            return Some(Place::First);
        }
        if self.kw("AFTER") {
            return self.ident().map(Place::After);
        }
        Some(Place::Last)
    }

    fn alter_table(&mut self) -> Option<Ddl> {
        self.skip_words(&["ALTER", "ONLINE", "OFFLINE", "IGNORE", "TABLE"]);
        self.if_exists();
        let name = self.table_name()?;
        self.wait_clause();
        let mut ops = Vec::new();
        let rest = &self.toks[self.i..];
        self.i = self.toks.len();
        for item in split_commas(rest) {
            let mut q = Parser { toks: item, i: 0 };
            q.alter_op(&mut ops)?;
        }
        Some(Ddl::AlterTable { name, ops })
    }

    fn alter_op(&mut self, ops: &mut Vec<AlterOp>) -> Option<()> {
        if self.kw("ADD") {
            let column_keyword = self.kw("COLUMN");
            self.if_not_exists();
            if let Some(key) = self.primary_key_clause() {
                ops.push(AlterOp::AddPrimaryKey(key));
                return Some(());
            }
            if !column_keyword && NON_COLUMN_ITEMS.iter().any(|w| self.peek_is(w)) {
                return Some(());
            }
            if self.sym('(') {
                for item in split_commas(self.group()?) {
                    let column = Parser { toks: item, i: 0 }.column_def()?;
                    ops.push(AlterOp::AddColumn(column, Place::Last));
                }
                return Some(());
            }
            let column = self.column_def()?;
            let place = self.place()?;
            let key = column.primary_key.then(|| vec![column.name.clone()]);
            ops.push(AlterOp::AddColumn(column, place));
            ops.extend(key.map(AlterOp::AddPrimaryKey));
        } else if self.kw("DROP") {
            if self.kws(&["PRIMARY", "KEY"]) {
                ops.push(AlterOp::DropPrimaryKey);
            } else if self.kw("COLUMN") || !NON_COLUMN_ITEMS.iter().any(|w| self.peek_is(w)) {
                self.if_exists();
                ops.push(AlterOp::DropColumn(self.ident()?));
            }
        } else if self.kw("MODIFY") || self.peek_is("CHANGE") {
            let change = self.kw("CHANGE");
            self.kw("COLUMN");
            self.if_exists();
            let old = if change {
                self.ident()?
            } else {
                self.peek().and_then(|_| {
                    Parser {
                        toks: self.toks,
                        i: self.i,
                    }
                    .ident()
                })?
            };
            let column = self.column_def()?;
            let place = self.place()?;
            let key = column.primary_key.then(|| vec![column.name.clone()]);
            ops.push(AlterOp::ChangeColumn { old, column, place });
            ops.extend(key.map(AlterOp::AddPrimaryKey));
        } else if self.kw("RENAME") {
            if self.kw("COLUMN") {
                let from = self.ident()?;
                self.kw("TO").then_some(())?;
                ops.push(AlterOp::RenameColumn {
                    from,
                    to: self.ident()?,
                });
            } else if self.peek_is("INDEX") || self.peek_is("KEY") {
                return Some(());
            } else {
                let _ = self.kw("TO") || self.kw("AS");
                ops.push(AlterOp::RenameTable(self.table_name()?));
            }
        } else if self.kws(&["CONVERT", "TO"]) {
            let charset = self.charset_clause()?;
            ops.push(AlterOp::ConvertCharset(charset));
        } else if let Some(charset) = self.charset_clause() {
            ops.push(AlterOp::DefaultCharset(charset));
        } else if self
            .peek()
            .is_some_and(|t| NO_COLUMN_CHANGE.iter().any(|w| t.is(w)))
        {
            // ENGINE=, ALGORITHM=, LOCK=, ORDER BY, FORCE, partitioning, ...: no column change.
            return Some(());
        } else {
            // A clause this parser does not know might change columns: unreadable.
            return None;
        }
        // After the clause: only FIRST/AFTER were allowed, and they were read.
        Some(())
    }

    fn rename_table(&mut self) -> Option<Ddl> {
        self.skip_words(&["RENAME", "TABLE", "TABLES"]);
        self.if_exists();
        let mut pairs = Vec::new();
        loop {
            let from = self.table_name()?;
            self.wait_clause();
            self.kw("TO").then_some(())?;
            pairs.push((from, self.table_name()?));
            if !self.sym(',') {
                break;
            }
        }
        Some(Ddl::RenameTables(pairs))
    }

    fn drop_table(&mut self) -> Option<Ddl> {
        self.skip_words(&["DROP", "TABLE", "TABLES"]);
        self.if_exists();
        let mut names = Vec::new();
        loop {
            names.push(self.table_name()?);
            if !self.sym(',') {
                break;
            }
        }
        self.wait_clause();
        self.skip_words(&["RESTRICT", "CASCADE"]);
        Some(Ddl::DropTables(names))
    }

    fn database(&mut self, kind: Kind) -> Option<Ddl> {
        self.i += 2;
        let if_not_exists = self.if_not_exists();
        let name = match self.peek() {
            Some(t) if t.is("DEFAULT") || t.is("CHARACTER") || t.is("CHARSET") => None,
            _ => self.ident(),
        };
        let mut charset = None;
        while self.peek().is_some() && !self.at_end() {
            match self.charset_clause() {
                Some(c) => charset = Some(c),
                None => self.i += 1,
            }
        }
        Some(match kind {
            Kind::CreateDatabase => Ddl::CreateDatabase {
                name: name?,
                charset,
                if_not_exists,
            },
            _ => Ddl::AlterDatabase { name, charset },
        })
    }
}

/// The charset a collation belongs to: the part before the first `_` (`binary` is its own).
pub fn charset_of_collation(collation: &str) -> String {
    let lower = collation.to_ascii_lowercase();
    match lower.split_once('_') {
        Some((charset, _)) => charset.to_string(),
        None => lower,
    }
}

/// Splits tokens at the commas outside parentheses.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Sym('(') => depth += 1,
            Tok::Sym(')') => depth -= 1,
            Tok::Sym(',') if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let tail = &toks[start..];
    if !tail.is_empty() && !tail.iter().all(|t| *t == Tok::Sym(';')) {
        out.push(tail);
    }
    out
}

/// The fallback parser alone, so tests can compare it with sqlparser.
#[cfg(test)]
pub fn parse_fallback(sql: &str) -> Option<Ddl> {
    let toks = tokens(&strip_comments(sql));
    let kind = schema_statement(&toks)?;
    Parser { toks: &toks, i: 0 }.statement(kind)
}
