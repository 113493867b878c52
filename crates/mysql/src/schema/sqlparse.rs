//! Reading DDL with sqlparser's MySQL dialect and converting its syntax tree into `Ddl`. Anything
//! the conversion does not recognise returns `None`, and the fallback parser in `ddl` tries.

use super::ddl::{charset_of_collation, AlterOp, ColumnDef, Ddl, Place, TableName};
use super::lex::{tokens, Tok};
use sqlparser::ast::{
    self, AlterTableOperation as Op, ColumnOption, CreateTableLikeKind, Expr, MySQLColumnPosition,
    ObjectName, ObjectNamePart, ObjectType, RenameTableNameKind, Statement, TableConstraint,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// The statement as `Ddl`, when sqlparser reads it and every part converts.
pub fn parse(sql: &str) -> Option<Ddl> {
    let mut statements = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    convert(statements.pop()?)
}

fn convert(statement: Statement) -> Option<Ddl> {
    Some(match statement {
        Statement::CreateTable(create) => {
            if create.temporary {
                return None;
            }
            let name = table_name(&create.name)?;
            if let Some(like) = create.like {
                let like = match like {
                    CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l) => l,
                };
                return Some(Ddl::CreateTableLike {
                    name,
                    like: table_name(&like.name)?,
                    if_not_exists: create.if_not_exists,
                });
            }
            let mut primary_key = Vec::new();
            let mut columns = Vec::new();
            for c in &create.columns {
                let column = column_def(c);
                if column.primary_key {
                    primary_key = vec![column.name.clone()];
                }
                columns.push(column);
            }
            for constraint in &create.constraints {
                if let TableConstraint::PrimaryKey(pk) = constraint {
                    primary_key = key_columns(&pk.columns)?;
                }
            }
            let options = create.table_options.to_string();
            Ddl::CreateTable {
                name,
                columns,
                primary_key,
                charset: charset_in(&options),
                if_not_exists: create.if_not_exists,
            }
        }
        Statement::AlterTable(alter) => {
            let mut ops = Vec::new();
            for op in alter.operations {
                alter_op(op, &mut ops)?;
            }
            Ddl::AlterTable {
                name: table_name(&alter.name)?,
                ops,
            }
        }
        Statement::RenameTable(pairs) => Ddl::RenameTables(
            pairs
                .iter()
                .map(|r| Some((table_name(&r.old_name)?, table_name(&r.new_name)?)))
                .collect::<Option<_>>()?,
        ),
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            temporary: false,
            ..
        } => Ddl::DropTables(names.iter().map(table_name).collect::<Option<_>>()?),
        Statement::Truncate(t) if t.table_names.len() == 1 => {
            Ddl::Truncate(table_name(&t.table_names[0].name)?)
        }
        Statement::CreateDatabase {
            db_name,
            default_charset,
            default_collation,
            if_not_exists,
            ..
        } => Ddl::CreateDatabase {
            if_not_exists,
            name: single_name(&db_name)?,
            charset: default_charset
                .map(|c| c.to_ascii_lowercase())
                .or(default_collation.map(|c| charset_of_collation(&c))),
        },
        Statement::Drop {
            object_type: ObjectType::Database | ObjectType::Schema,
            names,
            ..
        } if names.len() == 1 => Ddl::DropDatabase(single_name(&names[0])?),
        _ => return None,
    })
}

fn alter_op(op: Op, ops: &mut Vec<AlterOp>) -> Option<()> {
    match op {
        Op::AddColumn {
            column_def: c,
            column_position,
            ..
        } => {
            let column = column_def(&c);
            let key = column.primary_key.then(|| vec![column.name.clone()]);
            ops.push(AlterOp::AddColumn(column, place(column_position)));
            ops.extend(key.map(AlterOp::AddPrimaryKey));
        }
        Op::DropColumn { column_names, .. } => {
            ops.extend(
                column_names
                    .into_iter()
                    .map(|c| AlterOp::DropColumn(c.value)),
            );
        }
        Op::ChangeColumn {
            old_name,
            new_name,
            data_type,
            options,
            column_position,
        } => change(
            old_name.value,
            new_name,
            data_type,
            options,
            column_position,
            ops,
        ),
        Op::ModifyColumn {
            col_name,
            data_type,
            options,
            column_position,
        } => change(
            col_name.value.clone(),
            col_name,
            data_type,
            options,
            column_position,
            ops,
        ),
        Op::RenameColumn {
            old_column_name,
            new_column_name,
        } => ops.push(AlterOp::RenameColumn {
            from: old_column_name.value,
            to: new_column_name.value,
        }),
        Op::RenameTable { table_name: kind } => {
            let (RenameTableNameKind::As(name) | RenameTableNameKind::To(name)) = kind;
            ops.push(AlterOp::RenameTable(table_name(&name)?));
        }
        Op::AddConstraint {
            constraint: TableConstraint::PrimaryKey(pk),
            ..
        } => ops.push(AlterOp::AddPrimaryKey(key_columns(&pk.columns)?)),
        Op::DropPrimaryKey { .. } => ops.push(AlterOp::DropPrimaryKey),
        // Indexes, constraints, algorithm and lock clauses: no column change.
        Op::AddConstraint { .. }
        | Op::DropConstraint { .. }
        | Op::DropForeignKey { .. }
        | Op::DropIndex { .. }
        | Op::Algorithm { .. }
        | Op::Lock { .. }
        | Op::AutoIncrement { .. }
        | Op::AlterColumn { .. } => {}
        // Anything else (charset and table options among them): the fallback parser decides.
        _ => return None,
    }
    Some(())
}

fn change(
    old: String,
    name: ast::Ident,
    data_type: ast::DataType,
    options: Vec<ColumnOption>,
    position: Option<MySQLColumnPosition>,
    ops: &mut Vec<AlterOp>,
) {
    let column = column_from_parts(name, &data_type, options.iter());
    let key = column.primary_key.then(|| vec![column.name.clone()]);
    ops.push(AlterOp::ChangeColumn {
        old,
        column,
        place: place(position),
    });
    ops.extend(key.map(AlterOp::AddPrimaryKey));
}

fn place(position: Option<MySQLColumnPosition>) -> Place {
    match position {
        None => Place::Last,
        Some(MySQLColumnPosition::First) => Place::First,
        Some(MySQLColumnPosition::After(c)) => Place::After(c.value),
    }
}

fn column_def(c: &ast::ColumnDef) -> ColumnDef {
    column_from_parts(
        c.name.clone(),
        &c.data_type,
        c.options.iter().map(|o| &o.option),
    )
}

fn column_from_parts<'a>(
    name: ast::Ident,
    data_type: &ast::DataType,
    options: impl Iterator<Item = &'a ColumnOption>,
) -> ColumnDef {
    let mut column = ColumnDef {
        name: name.value,
        sql_type: data_type.to_string(),
        charset: None,
        primary_key: false,
    };
    for option in options {
        match option {
            ColumnOption::CharacterSet(cs) => {
                column.charset = single_name(cs).map(|c| c.to_ascii_lowercase());
            }
            ColumnOption::Collation(c) if column.charset.is_none() => {
                column.charset = single_name(c).map(|c| charset_of_collation(&c));
            }
            ColumnOption::PrimaryKey(_) => column.primary_key = true,
            _ => {}
        }
    }
    column
}

fn key_columns(columns: &[ast::IndexColumn]) -> Option<Vec<String>> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(ident) => Some(ident.value.clone()),
            // A prefix key `col(10)` parses as a call.
            Expr::Function(f) => single_name(&f.name),
            _ => None,
        })
        .collect()
}

fn parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            _ => None,
        })
        .collect()
}

fn table_name(name: &ObjectName) -> Option<TableName> {
    let mut parts = parts(name)?;
    match parts.len() {
        1 => Some(TableName {
            db: None,
            name: parts.pop()?,
        }),
        2 => {
            let table = parts.pop()?;
            Some(TableName {
                db: parts.pop(),
                name: table,
            })
        }
        _ => None,
    }
}

fn single_name(name: &ObjectName) -> Option<String> {
    let mut parts = parts(name)?;
    (parts.len() == 1).then(|| parts.pop()).flatten()
}

/// The default charset among printed table options (`DEFAULT CHARSET=latin1`, `COLLATE=...`).
fn charset_in(options: &str) -> Option<String> {
    let toks = tokens(options);
    let mut charset = None;
    for (i, t) in toks.iter().enumerate() {
        let value = || {
            toks[i + 1..]
                .iter()
                .find(|t| !matches!(t, Tok::Sym('=')) && !t.is("SET"))
                .and_then(|t| match t {
                    Tok::Word(w) | Tok::Quoted(w) | Tok::Str(w) => Some(w.clone()),
                    _ => None,
                })
        };
        if t.is("CHARSET") || t.is("CHARACTER") {
            charset = value().map(|v| v.to_ascii_lowercase());
        } else if t.is("COLLATE") && charset.is_none() {
            charset = value().map(|v| charset_of_collation(&v));
        }
    }
    charset
}
