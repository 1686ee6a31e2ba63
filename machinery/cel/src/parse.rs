//! Text → tree: a lexer and a recursive-descent parser with CEL's precedence, bounded in
//! length and depth.

use crate::{CelError, Value};

/// The longest expression accepted, in bytes.
pub const MAX_LENGTH: usize = 4096;
/// The deepest nesting accepted (parentheses, operators, calls).
pub const MAX_DEPTH: usize = 64;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Literal(Value),
    List(Vec<Node>),
    Ident(String),
    Select(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    /// A function (`target` `None`) or method call.
    Call {
        target: Option<Box<Node>>,
        function: String,
        args: Vec<Node>,
    },
    Unary(UnaryOp, Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Conditional(Box<Node>, Box<Node>, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Negate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    In,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(Value),
    Ident(String),
    /// Punctuation and operators, as written.
    Symbol(&'static str),
}

const SYMBOLS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",", "?", ":", "!", "-",
    "+", "*", "/", "%", "<", ">",
];

fn syntax(offset: usize, reason: impl Into<String>) -> CelError {
    CelError::Syntax {
        offset,
        reason: reason.into(),
    }
}

/// Splits `text` into tokens with their byte offsets.
fn lex(text: &str) -> Result<Vec<(usize, Token)>, CelError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        let raw = (c == b'r' || c == b'R') && matches!(bytes.get(at + 1), Some(b'"' | b'\''));
        if c == b'"' || c == b'\'' || raw {
            let (value, end) = string(text, if raw { at + 1 } else { at }, raw)?;
            tokens.push((start, Token::Literal(Value::String(value))));
            at = end;
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        {
            let (value, end) = number(text, at)?;
            tokens.push((start, Token::Literal(value)));
            at = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            let word = &text[start..at];
            tokens.push((
                start,
                match word {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    "null" => Token::Literal(Value::Null),
                    "in" => Token::Symbol("in"),
                    _ => Token::Ident(word.to_string()),
                },
            ));
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| text[at..].starts_with(**s)) {
            tokens.push((start, Token::Symbol(symbol)));
            at += symbol.len();
        } else {
            let shown = text[at..].chars().next().unwrap_or('?');
            return Err(syntax(at, format!("unexpected character {shown:?}")));
        }
    }
    Ok(tokens)
}

/// A string literal whose opening quote is at `at`; returns it and the offset after it.
fn string(text: &str, at: usize, raw: bool) -> Result<(String, usize), CelError> {
    let quote = text.as_bytes()[at] as char;
    let mut value = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            _ if c == quote => return Ok((value, at + 1 + offset + 1)),
            '\\' if !raw => {
                let escaped = match chars.next().map(|(_, e)| e) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some(e @ ('\\' | '"' | '\'' | '`' | '?')) => e,
                    other => {
                        return Err(syntax(
                            at + 1 + offset,
                            format!("unsupported escape \\{}", other.unwrap_or(' ')),
                        ));
                    }
                };
                value.push(escaped);
            }
            '\n' => break,
            _ => value.push(c),
        }
    }
    Err(syntax(at, "unterminated string literal"))
}

/// A number starting at `at`: int, `u`-suffixed uint, hex, or double.
fn number(text: &str, at: usize) -> Result<(Value, usize), CelError> {
    let bytes = text.as_bytes();
    let mut end = at;
    let hex = text[at..].starts_with("0x") || text[at..].starts_with("0X");
    if hex {
        end += 2;
        while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
            end += 1;
        }
    } else {
        while end < bytes.len()
            && (bytes[end].is_ascii_digit()
                || bytes[end] == b'.'
                || ((bytes[end] == b'e' || bytes[end] == b'E') && end > at)
                || ((bytes[end] == b'-' || bytes[end] == b'+')
                    && matches!(bytes[end - 1], b'e' | b'E')))
        {
            end += 1;
        }
    }
    let digits = &text[at..end];
    let unsigned = matches!(bytes.get(end), Some(b'u' | b'U'));
    let invalid = || syntax(at, format!("invalid number {digits:?}"));
    let value = if hex {
        let digits = &digits[2..];
        if unsigned {
            Value::Uint(u64::from_str_radix(digits, 16).map_err(|_| invalid())?)
        } else {
            Value::Int(i64::from_str_radix(digits, 16).map_err(|_| invalid())?)
        }
    } else if digits.contains(['.', 'e', 'E']) {
        if unsigned {
            return Err(invalid());
        }
        Value::Double(digits.parse().map_err(|_| invalid())?)
    } else if unsigned {
        Value::Uint(digits.parse().map_err(|_| invalid())?)
    } else {
        Value::Int(digits.parse().map_err(|_| invalid())?)
    };
    Ok((value, end + usize::from(unsigned)))
}

/// Parses `text` into a tree.
pub fn parse(text: &str) -> Result<Node, CelError> {
    if text.len() > MAX_LENGTH {
        return Err(syntax(
            MAX_LENGTH,
            format!("the expression is longer than {MAX_LENGTH} bytes"),
        ));
    }
    let mut parser = Parser {
        tokens: lex(text)?,
        at: 0,
        end: text.len(),
        depth: 0,
    };
    let node = parser.conditional()?;
    if let Some((offset, token)) = parser.tokens.get(parser.at) {
        return Err(syntax(*offset, format!("unexpected {}", show(token))));
    }
    // Chains like `1 + 1 + …` parse without recursion but build deep trees, which evaluation
    // then walks recursively.
    if depth(&node) > MAX_DEPTH {
        return Err(syntax(
            0,
            format!("the expression is nested more than {MAX_DEPTH} deep"),
        ));
    }
    Ok(node)
}

/// How deep `node`'s tree is, counting at most [`MAX_DEPTH`] + 1 levels.
fn depth(node: &Node) -> usize {
    fn below(node: &Node, level: usize) -> usize {
        if level > MAX_DEPTH {
            return level;
        }
        let children: Vec<&Node> = match node {
            Node::Literal(_) | Node::Ident(_) => Vec::new(),
            Node::List(items) => items.iter().collect(),
            Node::Select(target, _) | Node::Unary(_, target) => vec![target],
            Node::Index(a, b) | Node::Binary(_, a, b) => vec![a, b],
            Node::Call { target, args, .. } => target.iter().map(|t| &**t).chain(args).collect(),
            Node::Conditional(a, b, c) => vec![a, b, c],
        };
        children
            .into_iter()
            .map(|child| below(child, level + 1))
            .max()
            .unwrap_or(level)
    }
    below(node, 1)
}

fn show(token: &Token) -> String {
    match token {
        Token::Literal(value) => format!("literal {value:?}"),
        Token::Ident(name) => format!("identifier {name:?}"),
        Token::Symbol(symbol) => format!("'{symbol}'"),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    /// The text's length: where "the end of the expression" is.
    end: usize,
    depth: usize,
}

impl Parser {
    fn offset(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end, |(offset, _)| *offset)
    }

    fn eat(&mut self, symbol: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some((_, Token::Symbol(s))) if *s == symbol);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, symbol: &str) -> Result<(), CelError> {
        if self.eat(symbol) {
            return Ok(());
        }
        let found = match self.tokens.get(self.at) {
            Some((_, token)) => show(token),
            None => "the end of the expression".to_string(),
        };
        Err(syntax(
            self.offset(),
            format!("expected '{symbol}', found {found}"),
        ))
    }

    /// Runs `inner` one level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, CelError>,
    ) -> Result<T, CelError> {
        if self.depth >= MAX_DEPTH {
            return Err(syntax(
                self.offset(),
                format!("the expression is nested more than {MAX_DEPTH} deep"),
            ));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn conditional(&mut self) -> Result<Node, CelError> {
        self.nested(|p| {
            let condition = p.or()?;
            if !p.eat("?") {
                return Ok(condition);
            }
            let then = p.or()?;
            p.expect(":")?;
            let otherwise = p.conditional()?;
            Ok(Node::Conditional(
                Box::new(condition),
                Box::new(then),
                Box::new(otherwise),
            ))
        })
    }

    /// One left-associative level of binary operators.
    fn binary(
        &mut self,
        operators: &[(&str, BinaryOp)],
        next: fn(&mut Self) -> Result<Node, CelError>,
    ) -> Result<Node, CelError> {
        let mut left = next(self)?;
        'more: loop {
            for (symbol, op) in operators {
                if self.eat(symbol) {
                    let right = self.nested(next)?;
                    left = Node::Binary(*op, Box::new(left), Box::new(right));
                    continue 'more;
                }
            }
            return Ok(left);
        }
    }

    fn or(&mut self) -> Result<Node, CelError> {
        self.binary(&[("||", BinaryOp::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Node, CelError> {
        self.binary(&[("&&", BinaryOp::And)], Self::relation)
    }

    fn relation(&mut self) -> Result<Node, CelError> {
        self.binary(
            &[
                ("==", BinaryOp::Equal),
                ("!=", BinaryOp::NotEqual),
                ("<=", BinaryOp::LessEqual),
                (">=", BinaryOp::GreaterEqual),
                ("<", BinaryOp::Less),
                (">", BinaryOp::Greater),
                ("in", BinaryOp::In),
            ],
            Self::additive,
        )
    }

    fn additive(&mut self) -> Result<Node, CelError> {
        self.binary(
            &[("+", BinaryOp::Add), ("-", BinaryOp::Subtract)],
            Self::multiplicative,
        )
    }

    fn multiplicative(&mut self) -> Result<Node, CelError> {
        self.binary(
            &[
                ("*", BinaryOp::Multiply),
                ("/", BinaryOp::Divide),
                ("%", BinaryOp::Remainder),
            ],
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Node, CelError> {
        let op = if self.eat("!") {
            UnaryOp::Not
        } else if self.eat("-") {
            UnaryOp::Negate
        } else {
            return self.member();
        };
        let operand = self.nested(Self::unary)?;
        Ok(Node::Unary(op, Box::new(operand)))
    }

    fn member(&mut self) -> Result<Node, CelError> {
        let mut node = self.primary()?;
        loop {
            if self.eat(".") {
                let name = self.ident()?;
                if self.eat("(") {
                    let args = self.arguments()?;
                    node = Node::Call {
                        target: Some(Box::new(node)),
                        function: name,
                        args,
                    };
                } else {
                    node = Node::Select(Box::new(node), name);
                }
            } else if self.eat("[") {
                let index = self.nested(Self::conditional)?;
                self.expect("]")?;
                node = Node::Index(Box::new(node), Box::new(index));
            } else {
                return Ok(node);
            }
        }
    }

    fn ident(&mut self) -> Result<String, CelError> {
        match self.tokens.get(self.at) {
            Some((_, Token::Ident(name))) => {
                let name = name.clone();
                self.at += 1;
                Ok(name)
            }
            Some((offset, token)) => Err(syntax(
                *offset,
                format!("expected a name, found {}", show(token)),
            )),
            None => Err(syntax(
                self.end,
                "expected a name, found the end of the expression",
            )),
        }
    }

    /// Comma-separated expressions up to `)`, the `(` already read.
    fn arguments(&mut self) -> Result<Vec<Node>, CelError> {
        self.sequence(")")
    }

    fn sequence(&mut self, close: &str) -> Result<Vec<Node>, CelError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.nested(Self::conditional)?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Node, CelError> {
        let offset = self.offset();
        let Some((_, token)) = self.tokens.get(self.at).cloned() else {
            return Err(syntax(offset, "unexpected end of the expression"));
        };
        self.at += 1;
        match token {
            Token::Literal(value) => Ok(Node::Literal(value)),
            Token::Ident(name) => {
                if self.eat("(") {
                    let args = self.arguments()?;
                    Ok(Node::Call {
                        target: None,
                        function: name,
                        args,
                    })
                } else {
                    Ok(Node::Ident(name))
                }
            }
            Token::Symbol("(") => {
                let inner = self.nested(Self::conditional)?;
                self.expect(")")?;
                Ok(inner)
            }
            Token::Symbol("[") => Ok(Node::List(self.sequence("]")?)),
            other => Err(syntax(offset, format!("unexpected {}", show(&other)))),
        }
    }
}
