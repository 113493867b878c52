//! The native path for the predicates most filters are: comparisons of columns, `op`, `db` and
//! `table` with constants, joined by `&&`, `||` and `!` (`row.status != "spam" && row.amount > 10`).
//! Such an expression is recognised in Rhai's compiled AST and evaluated on rowbus values
//! directly, with Rhai's semantics (numbers compare across integer and float, strings by bytes,
//! values of different types are unequal and unordered). Anything else, and any value it cannot
//! judge alike (binary, SET, JSON, a missing image), is left to Rhai, so both paths always agree;
//! a test checks that they do.

use crate::convert::{scalar, Scalar};
use crate::step::Columns;
use rhai::{Expr as Ast, FnCallExpr, Stmt, AST};
use rowbus_core::event::{ChangeEvent, Row};
use std::cmp::Ordering;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) enum Fast {
    Const(bool),
    And(Vec<Fast>),
    Or(Vec<Fast>),
    Not(Box<Fast>),
    Compare(Operand, Cmp, Operand),
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Int(i64),
    Float(f64),
    Str(String),
    Unit,
    Op,
    Db,
    Table,
    /// A column of an image; `slot` indexes the expression's column list.
    Column(Image, usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Image {
    Key,
    Before,
    After,
    Row,
}

/// A compiled predicate with the columns it names and where they are in each column list seen.
#[derive(Clone)]
pub(crate) struct FastPredicate {
    root: Fast,
    columns: Vec<String>,
    positions: Vec<(Columns, Vec<Option<usize>>)>,
    /// Dates and times are compared as their text, written here.
    scratch: [Vec<u8>; 2],
}

impl FastPredicate {
    /// The native form of `ast`, if it is a plain comparison predicate.
    pub fn compile(ast: &AST) -> Option<FastPredicate> {
        let mut columns = Vec::new();
        let root = match ast.statements() {
            [Stmt::Expr(expr)] => node(expr, &mut columns)?,
            [Stmt::FnCall(call, _)] => call_node(call, &mut columns)?,
            _ => return None,
        };
        Some(FastPredicate {
            root,
            columns,
            positions: Vec::new(),
            scratch: [Vec::new(), Vec::new()],
        })
    }

    /// The verdict, or None where Rhai must judge.
    pub fn test(&mut self, event: &ChangeEvent, row: Option<&Row>) -> Option<bool> {
        let mut ctx = Context {
            event,
            row,
            columns: &self.columns,
            positions: &mut self.positions,
        };
        ctx.eval(&self.root, &mut self.scratch)
    }
}

fn node(expr: &Ast, columns: &mut Vec<String>) -> Option<Fast> {
    let all = |parts: &[Ast], columns: &mut Vec<String>| -> Option<Vec<Fast>> {
        parts.iter().map(|p| node(p, columns)).collect()
    };
    match expr {
        Ast::BoolConstant(b, _) => Some(Fast::Const(*b)),
        Ast::And(parts, _) => Some(Fast::And(all(parts, columns)?)),
        Ast::Or(parts, _) => Some(Fast::Or(all(parts, columns)?)),
        Ast::FnCall(call, _) => call_node(call, columns),
        _ => None,
    }
}

/// `!x` and the comparison operators.
fn call_node(call: &FnCallExpr, columns: &mut Vec<String>) -> Option<Fast> {
    let args = &call.args;
    match (call.name.as_str(), args.len()) {
        ("!", 1) => Some(Fast::Not(Box::new(node(&args[0], columns)?))),
        (name, 2) => {
            let cmp = match name {
                "==" => Cmp::Eq,
                "!=" => Cmp::Ne,
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                ">" => Cmp::Gt,
                ">=" => Cmp::Ge,
                _ => return None,
            };
            let lhs = operand(&args[0], columns)?;
            Some(Fast::Compare(lhs, cmp, operand(&args[1], columns)?))
        }
        _ => None,
    }
}

fn operand(expr: &Ast, columns: &mut Vec<String>) -> Option<Operand> {
    match expr {
        Ast::IntegerConstant(i, _) => Some(Operand::Int(*i)),
        Ast::FloatConstant(f, _) => Some(Operand::Float(**f)),
        Ast::StringConstant(s, _) => Some(Operand::Str(s.to_string())),
        Ast::Unit(_) => Some(Operand::Unit),
        Ast::Variable(v, _, _) => match v.1.as_str() {
            "op" => Some(Operand::Op),
            "db" => Some(Operand::Db),
            "table" => Some(Operand::Table),
            _ => None,
        },
        Ast::Dot(dot, _, _) => match (&dot.lhs, &dot.rhs) {
            (Ast::Variable(v, _, _), Ast::Property(p, _)) => column(&v.1, &p.2, columns),
            _ => None,
        },
        Ast::Index(index, _, _) => match (&index.lhs, &index.rhs) {
            (Ast::Variable(v, _, _), Ast::StringConstant(name, _)) => column(&v.1, name, columns),
            _ => None,
        },
        _ => None,
    }
}

fn column(variable: &str, name: &str, columns: &mut Vec<String>) -> Option<Operand> {
    let image = match variable {
        "key" => Image::Key,
        "before" => Image::Before,
        "after" => Image::After,
        "row" => Image::Row,
        _ => return None,
    };
    let slot = columns.iter().position(|c| c == name).unwrap_or_else(|| {
        columns.push(name.to_string());
        columns.len() - 1
    });
    Some(Operand::Column(image, slot))
}

struct Context<'a> {
    event: &'a ChangeEvent,
    row: Option<&'a Row>,
    columns: &'a [String],
    positions: &'a mut Vec<(Columns, Vec<Option<usize>>)>,
}

impl<'a> Context<'a> {
    fn eval(&mut self, fast: &Fast, scratch: &mut [Vec<u8>; 2]) -> Option<bool> {
        match fast {
            Fast::Const(b) => Some(*b),
            Fast::Not(inner) => self.eval(inner, scratch).map(|b| !b),
            Fast::And(parts) => {
                for part in parts {
                    if !self.eval(part, scratch)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Fast::Or(parts) => {
                for part in parts {
                    if self.eval(part, scratch)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Fast::Compare(lhs, cmp, rhs) => {
                let [first, second] = scratch;
                let a = self.resolve(lhs, first)?;
                let b = self.resolve(rhs, second)?;
                Some(compare(&a, *cmp, &b))
            }
        }
    }

    fn resolve<'x>(&mut self, operand: &'x Operand, scratch: &'x mut Vec<u8>) -> Option<Scalar<'x>>
    where
        'a: 'x,
    {
        let event = self.event;
        Some(match operand {
            Operand::Int(i) => Scalar::Int(*i),
            Operand::Float(f) => Scalar::Float(*f),
            Operand::Str(s) => Scalar::Str(s),
            Operand::Unit => Scalar::Unit,
            Operand::Op => Scalar::Str(event.op.as_str()),
            Operand::Db => Scalar::Str(&event.db),
            Operand::Table => Scalar::Str(&event.table),
            Operand::Column(image, slot) => {
                // An absent image is `()`, whose properties Rhai refuses: let it say so.
                let row: &'a Row = match image {
                    Image::Key => &event.key,
                    Image::Before => event.before.as_ref()?,
                    Image::After => event.after.as_ref()?,
                    Image::Row => self
                        .row
                        .or(event.after.as_ref())
                        .or(event.before.as_ref())?,
                };
                match self.position(row, *slot) {
                    Some(i) => scalar(&row.values[i], scratch)?,
                    None => Scalar::Unit, // a map without the property gives ()
                }
            }
        })
    }

    /// Where the column of `slot` is in `row`, planned once per column list.
    fn position(&mut self, row: &Row, slot: usize) -> Option<usize> {
        let found = self
            .positions
            .iter()
            .position(|(c, _)| Arc::ptr_eq(c, &row.columns));
        let i = match found {
            Some(i) => i,
            None => {
                if self.positions.len() >= 64 {
                    self.positions.clear();
                }
                let at = self
                    .columns
                    .iter()
                    .map(|name| row.columns.iter().position(|c| **c == **name))
                    .collect();
                self.positions.push((row.columns.clone(), at));
                self.positions.len() - 1
            }
        };
        self.positions[i].1[slot]
    }
}

fn compare(a: &Scalar<'_>, cmp: Cmp, b: &Scalar<'_>) -> bool {
    let order = match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Scalar::Float(x), Scalar::Float(y)) => x.partial_cmp(y),
        (Scalar::Int(x), Scalar::Float(y)) => (*x as f64).partial_cmp(y),
        (Scalar::Float(x), Scalar::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.cmp(y)),
        // () equals (), but Rhai does not order it: `() <= ()` is false.
        (Scalar::Unit, Scalar::Unit) => return matches!(cmp, Cmp::Eq),
        _ => None,
    };
    match (cmp, order) {
        (Cmp::Eq, o) => o == Some(Ordering::Equal),
        (Cmp::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
    }
}
