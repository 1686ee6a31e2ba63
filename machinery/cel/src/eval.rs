//! Tree → value.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::parse::{BinaryOp, Node, UnaryOp};
use crate::{CelError, Value};

fn fail<T>(reason: impl Into<String>) -> Result<T, CelError> {
    Err(CelError::Evaluation(reason.into()))
}

fn no_overload<T>(what: &str, values: &[&Value]) -> Result<T, CelError> {
    let kinds: Vec<&str> = values.iter().map(|v| v.kind()).collect();
    fail(format!("no such overload: {what}({})", kinds.join(", ")))
}

/// The variables in scope: the caller's, and a macro's loop variable above them.
pub struct Scope<'a> {
    variables: &'a BTreeMap<String, Value>,
    bound: Option<(&'a str, &'a Value)>,
    outer: Option<&'a Scope<'a>>,
}

impl<'a> Scope<'a> {
    pub fn new(variables: &'a BTreeMap<String, Value>) -> Self {
        Scope {
            variables,
            bound: None,
            outer: None,
        }
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        match self.bound {
            Some((bound, value)) if bound == name => Some(value),
            _ => self
                .outer
                .map_or_else(|| self.variables.get(name), |outer| outer.lookup(name)),
        }
    }

    pub fn evaluate(&self, node: &Node) -> Result<Value, CelError> {
        match node {
            Node::Literal(value) => Ok(value.clone()),
            Node::List(items) => Ok(Value::List(
                items
                    .iter()
                    .map(|item| self.evaluate(item))
                    .collect::<Result<_, _>>()?,
            )),
            Node::Ident(name) => self
                .lookup(name)
                .cloned()
                .ok_or_else(|| CelError::Evaluation(format!("undeclared reference to {name:?}"))),
            Node::Select(target, field) => match self.evaluate(target)? {
                Value::Object(fields) => fields
                    .get(field)
                    .cloned()
                    .ok_or_else(|| CelError::Evaluation(format!("no field {field:?}"))),
                other => no_overload(&format!(".{field}"), &[&other]),
            },
            Node::Index(target, index) => index_into(self.evaluate(target)?, self.evaluate(index)?),
            Node::Unary(op, operand) => unary(*op, self.evaluate(operand)?),
            Node::Binary(BinaryOp::And, left, right) => {
                Ok(Value::Bool(self.boolean(left)? && self.boolean(right)?))
            }
            Node::Binary(BinaryOp::Or, left, right) => {
                Ok(Value::Bool(self.boolean(left)? || self.boolean(right)?))
            }
            Node::Binary(op, left, right) => {
                binary(*op, self.evaluate(left)?, self.evaluate(right)?)
            }
            Node::Conditional(condition, then, otherwise) => {
                if self.boolean(condition)? {
                    self.evaluate(then)
                } else {
                    self.evaluate(otherwise)
                }
            }
            Node::Call {
                target,
                function,
                args,
            } => self.call(target.as_deref(), function, args),
        }
    }

    fn boolean(&self, node: &Node) -> Result<bool, CelError> {
        match self.evaluate(node)? {
            Value::Bool(value) => Ok(value),
            other => no_overload("logical operator", &[&other]),
        }
    }

    fn call(
        &self,
        target: Option<&Node>,
        function: &str,
        args: &[Node],
    ) -> Result<Value, CelError> {
        match (function, target) {
            ("has", None) => {
                match args {
                    [Node::Select(object, field)] => match self.evaluate(object)? {
                        Value::Object(fields) => Ok(Value::Bool(fields.get(field).is_some_and(
                            |value| !matches!(value, Value::String(s) if s.is_empty()),
                        ))),
                        other => no_overload("has", &[&other]),
                    },
                    _ => fail("has() takes one field selection, e.g. has(disk.serial)"),
                }
            }
            ("exists" | "all" | "exists_one", Some(target)) => {
                self.comprehension(function, target, args)
            }
            _ => {
                let mut values = Vec::with_capacity(args.len() + 1);
                if let Some(target) = target {
                    values.push(self.evaluate(target)?);
                }
                for arg in args {
                    values.push(self.evaluate(arg)?);
                }
                function_call(function, &values)
            }
        }
    }

    /// `list.exists(x, predicate)`, `all` and `exists_one`.
    fn comprehension(&self, name: &str, target: &Node, args: &[Node]) -> Result<Value, CelError> {
        let [Node::Ident(variable), predicate] = args else {
            return fail(format!("{name}() takes a variable name and a predicate"));
        };
        let Value::List(items) = self.evaluate(target)? else {
            return fail(format!("{name}() applies to lists"));
        };
        let mut matched = 0usize;
        for item in &items {
            let inner = Scope {
                variables: self.variables,
                bound: Some((variable, item)),
                outer: Some(self),
            };
            if inner.boolean(predicate)? {
                matched += 1;
            }
        }
        Ok(Value::Bool(match name {
            "exists" => matched > 0,
            "all" => matched == items.len(),
            _ => matched == 1,
        }))
    }
}

fn index_into(target: Value, index: Value) -> Result<Value, CelError> {
    let position = match index {
        Value::Int(i) => Some(i128::from(i)),
        Value::Uint(u) => Some(i128::from(u)),
        _ => None,
    };
    match (&target, position, &index) {
        (Value::List(items), Some(position), _) => usize::try_from(position)
            .ok()
            .and_then(|at| items.get(at).cloned())
            .ok_or_else(|| {
                CelError::Evaluation(format!(
                    "index {position} out of range for a list of {}",
                    items.len()
                ))
            }),
        (Value::Object(fields), None, Value::String(key)) => fields
            .get(key)
            .cloned()
            .ok_or_else(|| CelError::Evaluation(format!("no key {key:?}"))),
        _ => no_overload("_[_]", &[&target, &index]),
    }
}

fn unary(op: UnaryOp, value: Value) -> Result<Value, CelError> {
    match (op, value) {
        (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
        (UnaryOp::Negate, Value::Int(i)) => i
            .checked_neg()
            .map(Value::Int)
            .ok_or_else(|| CelError::Evaluation("integer overflow".into())),
        (UnaryOp::Negate, Value::Double(d)) => Ok(Value::Double(-d)),
        (op, other) => no_overload(if op == UnaryOp::Not { "!_" } else { "-_" }, &[&other]),
    }
}

/// Numbers of any kind, ordered by value (cel-go's cross-type comparisons).
fn compare_numbers(left: &Value, right: &Value) -> Option<Ordering> {
    use Value::{Double, Int, Uint};
    match (left, right) {
        (Int(a), Int(b)) => Some(a.cmp(b)),
        (Uint(a), Uint(b)) => Some(a.cmp(b)),
        (Int(a), Uint(b)) => Some(if *a < 0 {
            Ordering::Less
        } else {
            (*a as u64).cmp(b)
        }),
        (Uint(a), Int(b)) => Some(if *b < 0 {
            Ordering::Greater
        } else {
            a.cmp(&(*b as u64))
        }),
        (Double(a), Double(b)) => a.partial_cmp(b),
        (Double(a), Int(b)) => a.partial_cmp(&(*b as f64)),
        (Double(a), Uint(b)) => a.partial_cmp(&(*b as f64)),
        (Int(a), Double(b)) => (*a as f64).partial_cmp(b),
        (Uint(a), Double(b)) => (*a as f64).partial_cmp(b),
        _ => None,
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y))
        }
        _ => compare_numbers(left, right).map_or(left == right, |o| o == Ordering::Equal),
    }
}

fn binary(op: BinaryOp, left: Value, right: Value) -> Result<Value, CelError> {
    use BinaryOp::*;
    let ordering = |name: &str| -> Result<Ordering, CelError> {
        let order = match (&left, &right) {
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => compare_numbers(&left, &right),
        };
        order.map_or_else(|| no_overload(name, &[&left, &right]), Ok)
    };
    match op {
        Equal => Ok(Value::Bool(equal(&left, &right))),
        NotEqual => Ok(Value::Bool(!equal(&left, &right))),
        Less => Ok(Value::Bool(ordering("_<_")? == Ordering::Less)),
        LessEqual => Ok(Value::Bool(ordering("_<=_")? != Ordering::Greater)),
        Greater => Ok(Value::Bool(ordering("_>_")? == Ordering::Greater)),
        GreaterEqual => Ok(Value::Bool(ordering("_>=_")? != Ordering::Less)),
        In => match &right {
            Value::List(items) => Ok(Value::Bool(items.iter().any(|item| equal(&left, item)))),
            Value::Object(fields) => match &left {
                Value::String(key) => Ok(Value::Bool(fields.contains_key(key))),
                _ => no_overload("@in", &[&left, &right]),
            },
            _ => no_overload("@in", &[&left, &right]),
        },
        Add | Subtract | Multiply | Divide | Remainder => arithmetic(op, left, right),
        And | Or => unreachable!("short-circuited by the caller"),
    }
}

fn arithmetic(op: BinaryOp, left: Value, right: Value) -> Result<Value, CelError> {
    use BinaryOp::*;
    let overflow = || CelError::Evaluation("integer overflow".into());
    let by_zero = || CelError::Evaluation("division by zero".into());
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => {
            let result = match op {
                Add => a.checked_add(b),
                Subtract => a.checked_sub(b),
                Multiply => a.checked_mul(b),
                Divide | Remainder if b == 0 => return Err(by_zero()),
                Divide => a.checked_div(b),
                _ => a.checked_rem(b),
            };
            result.map(Value::Int).ok_or_else(overflow)
        }
        (Value::Uint(a), Value::Uint(b)) => {
            let result = match op {
                Add => a.checked_add(b),
                Subtract => a.checked_sub(b),
                Multiply => a.checked_mul(b),
                Divide | Remainder if b == 0 => return Err(by_zero()),
                Divide => a.checked_div(b),
                _ => a.checked_rem(b),
            };
            result.map(Value::Uint).ok_or_else(overflow)
        }
        (Value::Double(a), Value::Double(b)) => Ok(Value::Double(match op {
            Add => a + b,
            Subtract => a - b,
            Multiply => a * b,
            Divide => a / b,
            _ => return no_overload("_%_", &[&Value::Double(a), &Value::Double(b)]),
        })),
        (Value::String(a), Value::String(b)) if op == Add => Ok(Value::String(a + &b)),
        (Value::List(mut a), Value::List(b)) if op == Add => {
            a.extend(b);
            Ok(Value::List(a))
        }
        (left, right) => no_overload("arithmetic", &[&left, &right]),
    }
}

/// A function or method (the target first in `values`).
fn function_call(function: &str, values: &[Value]) -> Result<Value, CelError> {
    match (function, values) {
        ("size", [Value::String(s)]) => Ok(Value::Int(s.chars().count() as i64)),
        ("size", [Value::List(items)]) => Ok(Value::Int(items.len() as i64)),
        ("size", [Value::Object(fields)]) => Ok(Value::Int(fields.len() as i64)),
        ("startsWith", [Value::String(s), Value::String(prefix)]) => {
            Ok(Value::Bool(s.starts_with(prefix.as_str())))
        }
        ("endsWith", [Value::String(s), Value::String(suffix)]) => {
            Ok(Value::Bool(s.ends_with(suffix.as_str())))
        }
        ("contains", [Value::String(s), Value::String(part)]) => {
            Ok(Value::Bool(s.contains(part.as_str())))
        }
        ("glob", [Value::String(pattern), Value::String(text)]) => {
            Ok(Value::Bool(glob(pattern, text)))
        }
        ("size" | "startsWith" | "endsWith" | "contains" | "glob", values) => {
            no_overload(function, &values.iter().collect::<Vec<_>>())
        }
        _ => fail(format!(
            "the function {function}() is not supported by talos-rs (supported: size, \
             startsWith, endsWith, contains, glob, has, exists, all, exists_one)"
        )),
    }
}

/// Shell-style matching of `text` against `pattern` (`*`, `?`, `[…]`), iterative with one
/// backtrack point, so its work is bounded by the product of the lengths.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class(&pattern[p..], text[t]),
            Some(c) if *c == text[t] => Some(1),
            _ => None,
        };
        match step {
            Some(width) => {
                p += if pattern[p] == '[' { width } else { 1 };
                t += 1;
            }
            None => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A `[…]` class at the start of `pattern` against `c`: its width in the pattern when `c` is
/// in it.
fn class(pattern: &[char], c: char) -> Option<usize> {
    let close = pattern.iter().skip(1).position(|x| *x == ']')? + 1;
    let body = &pattern[1..close];
    let (negated, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            found |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            found |= body[i] == c;
            i += 1;
        }
    }
    (found != negated).then_some(close + 1)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("QEMU*", "QEMU HARDDISK"));
        assert!(glob("*DISK", "QEMU HARDDISK"));
        assert!(glob("/dev/vd?", "/dev/vda"));
        assert!(glob("/dev/[sv]d[a-c]", "/dev/vdb"));
        assert!(!glob("/dev/[!v]da", "/dev/vda"));
        assert!(!glob("QEMU", "QEMU HARDDISK"));
        assert!(glob("*", ""));
        assert!(!glob(&"*a".repeat(100), &"a".repeat(99)));
    }
}
