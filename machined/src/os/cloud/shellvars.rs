//! Shell variable assignments as OpenNebula's `context.sh` holds them: one `KEY=VALUE` a line
//! (optionally `export KEY=VALUE`, blanks around `=` tolerated), blank lines and `#` comments.
//! A value is words glued together: `'…'` taken literally (newlines included), `"…"` with the
//! shell's escapes (`\"`, `\\`, `\$`, `` \` ``, a backslash-newline joins lines), and unquoted
//! text where a backslash escapes the next character; OpenNebula writes `'\''` for a quote
//! inside a value. Nothing is expanded: an unquoted `$`, `` ` ``, `;`, `|`, `&`, `<`, `>`,
//! `(` or `)` is refused, as are a second word after the value and an unterminated quote.
//! The input, the names and the number of variables are bounded; the last assignment of a
//! name wins, as in the shell. Every error names the line.

use std::collections::BTreeMap;

use super::{MAX_USER_DATA, problem};
use crate::error::MachinedError;

/// Largest file accepted: base64 user data at its limit, with room for the rest.
pub const MAX_FILE: usize = 2 * MAX_USER_DATA as usize;
/// Most variables accepted.
const MAX_VARIABLES: usize = 4096;
/// Longest variable name accepted.
const MAX_NAME: usize = 128;

/// Reads `raw`, the file `file` of `platform`, into its variables.
pub fn parse(
    platform: &'static str,
    file: &str,
    raw: &[u8],
) -> Result<BTreeMap<String, String>, MachinedError> {
    if raw.len() > MAX_FILE {
        return Err(problem(
            platform,
            format!("{file}: larger than {MAX_FILE} bytes"),
        ));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|e| problem(platform, format!("{file}: not UTF-8 text: {e}")))?;
    let mut reader = Reader {
        rest: text,
        line: 1,
    };
    let mut variables = BTreeMap::new();
    loop {
        reader.skip_blanks();
        match reader.peek() {
            None => return Ok(variables),
            Some('\n') => reader.advance(),
            Some('#') => reader.skip_comment(),
            Some(_) => {
                let line = reader.line;
                let at = |what: String| problem(platform, format!("{file} line {line}: {what}"));
                let (name, value) = reader.assignment().map_err(at)?;
                if variables.len() == MAX_VARIABLES && !variables.contains_key(&name) {
                    return Err(at(format!("more than {MAX_VARIABLES} variables")));
                }
                variables.insert(name, value);
            }
        }
    }
}

/// The text still to read and the line it starts on.
struct Reader<'t> {
    rest: &'t str,
    line: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn advance(&mut self) {
        if let Some(c) = self.peek() {
            if c == '\n' {
                self.line += 1;
            }
            self.rest = &self.rest[c.len_utf8()..];
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.advance();
        }
    }

    /// Up to (not past) the end of the line.
    fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.advance();
        }
    }

    /// `[export ]NAME=VALUE`, then the end of the line.
    fn assignment(&mut self) -> Result<(String, String), String> {
        if let Some(rest) = self.rest.strip_prefix("export")
            && rest.starts_with([' ', '\t'])
        {
            self.rest = rest;
            self.skip_blanks();
        }
        let name = self.name()?;
        self.skip_blanks();
        if self.peek() != Some('=') {
            return Err(format!("{name}: no '=' after the name"));
        }
        self.advance();
        let blank = matches!(self.peek(), Some(' ' | '\t'));
        self.skip_blanks();
        // `NAME= # comment` is an empty value.
        let value = if blank && self.peek() == Some('#') {
            String::new()
        } else {
            self.value().map_err(|e| format!("{name}: {e}"))?
        };
        self.skip_blanks();
        match self.peek() {
            None | Some('\n') => {}
            Some('#') => self.skip_comment(),
            Some(c) => return Err(format!("{name}: {c:?} after the value (one word only)")),
        }
        Ok((name, value))
    }

    fn name(&mut self) -> Result<String, String> {
        let length = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..length];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            let word: String = self.rest.chars().take(20).collect();
            return Err(format!("{word:?} does not start with a variable name"));
        }
        if name.len() > MAX_NAME {
            return Err(format!("a variable name longer than {MAX_NAME} bytes"));
        }
        self.rest = &self.rest[length..];
        Ok(name.to_string())
    }

    /// Quoted and unquoted pieces up to an unquoted blank, newline, `#` or the end.
    fn value(&mut self) -> Result<String, String> {
        let mut value = String::new();
        loop {
            match self.peek() {
                None | Some(' ' | '\t' | '\r' | '\n') => return Ok(value),
                Some('\'') => {
                    let start = self.line;
                    self.advance();
                    let end = self
                        .rest
                        .find('\'')
                        .ok_or_else(|| format!("the quote opened on line {start} never closes"))?;
                    value.push_str(&self.rest[..end]);
                    self.line += self.rest[..end].matches('\n').count();
                    self.rest = &self.rest[end + 1..];
                }
                Some('"') => {
                    let start = self.line;
                    self.advance();
                    loop {
                        let Some(c) = self.peek() else {
                            return Err(format!("the quote opened on line {start} never closes"));
                        };
                        self.advance();
                        match c {
                            '"' => break,
                            '\\' => match self.peek() {
                                Some(next @ ('"' | '\\' | '$' | '`')) => {
                                    value.push(next);
                                    self.advance();
                                }
                                Some('\n') => self.advance(),
                                _ => value.push('\\'),
                            },
                            c => value.push(c),
                        }
                    }
                }
                Some('\\') => {
                    self.advance();
                    match self.peek() {
                        None => return Err("a backslash ends the file".into()),
                        Some('\n') => self.advance(),
                        Some(c) => {
                            value.push(c);
                            self.advance();
                        }
                    }
                }
                Some(c @ ('$' | '`' | ';' | '|' | '&' | '<' | '>' | '(' | ')')) => {
                    return Err(format!(
                        "an unquoted {c:?} (shell syntax, not a plain value)"
                    ));
                }
                Some(c) => {
                    value.push(c);
                    self.advance();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<BTreeMap<String, String>, String> {
        parse("opennebula", "context.sh", text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn quoting_as_the_shell_reads_it() {
        let variables = read(concat!(
            "# Context variables generated by OpenNebula\n",
            "ETH0_IP='192.0.2.5'\n",
            "\n",
            "  export SET_HOSTNAME=\"node-1\"  # a comment\n",
            "QUOTE='it'\\''s'\n",
            "MULTI='line one\nline two'\n",
            "DOUBLE=\"a \\\"b\\\" \\$HOME \\\\ \\n\"\n",
            "PLAIN=a\\ b\n",
            "EMPTY= # nothing\n",
            "HASH=#x\n",
            "SPACED = 'x'\r\n",
            "ETH0_IP='192.0.2.6'\n",
            "AFTER=1",
        ))
        .unwrap();
        assert_eq!(variables["ETH0_IP"], "192.0.2.6");
        assert_eq!(variables["SET_HOSTNAME"], "node-1");
        assert_eq!(variables["QUOTE"], "it's");
        assert_eq!(variables["MULTI"], "line one\nline two");
        assert_eq!(variables["DOUBLE"], "a \"b\" $HOME \\ \\n");
        assert_eq!(variables["PLAIN"], "a b");
        assert_eq!(variables["EMPTY"], "");
        assert_eq!(variables["SPACED"], "x");
        assert_eq!(variables["HASH"], "#x");
        assert_eq!(variables["AFTER"], "1");
        assert_eq!(variables.len(), 10);
    }

    #[test]
    fn shell_syntax_and_broken_lines_are_errors_naming_the_line() {
        let cases = [
            (
                "A='1'\nB='open\n\n",
                "line 2: B: the quote opened on line 2 never closes",
            ),
            (
                "A=\"open",
                "line 1: A: the quote opened on line 1 never closes",
            ),
            ("A=1\nB=$(reboot)\n", "line 2: B: an unquoted '$'"),
            ("A=`id`", "an unquoted '`'"),
            ("A=1; B=2", "an unquoted ';'"),
            ("A='1' B='2'", "'B' after the value"),
            ("rm -rf /\n", "rm: no '='"),
            ("'A'=1", "does not start with a variable name"),
            ("9A=1", "does not start with a variable name"),
            ("A=1\\", "a backslash ends the file"),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err();
            assert!(error.contains("context.sh"), "{error}");
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let error = read(&format!("{}=1", "N".repeat(200))).unwrap_err();
        assert!(error.contains("longer than 128"), "{error}");
        let many: String = (0..=MAX_VARIABLES).map(|i| format!("V{i}=1\n")).collect();
        let error = read(&many).unwrap_err();
        assert!(error.contains("more than 4096 variables"), "{error}");
        let error = parse("opennebula", "context.sh", &vec![b'#'; MAX_FILE + 1])
            .unwrap_err()
            .to_string();
        assert!(error.contains("larger than"), "{error}");
        let error = parse("opennebula", "context.sh", b"A='\xff'")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not UTF-8"), "{error}");
    }
}
