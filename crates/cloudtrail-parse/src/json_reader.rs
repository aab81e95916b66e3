//! A pull reader of one record's JSON text, for the column builders.
//!
//! The builders ([`crate::columns`]) ask for what they expect next (a key, a string, a raw
//! value…) and the reader reads exactly that, checking JSON's grammar as it goes: there is no
//! token stream, no tree and no callback layer in between. Strings without escapes are handed
//! out as slices of the record; string ends are found 16 bytes at a time. Free-form values are
//! skipped (and checked) without a call per nested value, and handed out as their exact text.
//!
//! The text is a `&str`: the caller checks UTF-8 once per record, so the reader never does.

use std::borrow::Cow;

/// Why a record's text could not be read: where (the field's path, when known, and the byte)
/// and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}{what}{}",
    path.as_ref().map(|path| format!("{path}: ")).unwrap_or_default(),
    at.map(|at| format!(" at byte {at} of the record")).unwrap_or_default()
)]
pub struct JsonError {
    what: Cow<'static, str>,
    at: Option<usize>,
    /// The field the error is in, outermost first (`userIdentity.sessionContext`).
    path: Option<String>,
}

impl JsonError {
    /// An error about a value that is valid JSON but not what its column takes.
    pub fn custom(what: impl std::fmt::Display) -> Self {
        Self {
            what: Cow::Owned(what.to_string()),
            at: None,
            path: None,
        }
    }

    /// The error as seen from the object that holds `field`.
    pub fn in_field(mut self, field: &str) -> Self {
        self.path = Some(match self.path.take() {
            None => field.to_owned(),
            Some(inner) => format!("{field}.{inner}"),
        });
        self
    }
}

/// The JSON type of the next value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// A JSON number, as serde's data model has it: whole numbers as `u64` (or `i64` when
/// negative) when they fit, anything else as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
}

/// The character of the one-letter escape whose letter is `byte` (every escape but `\u`).
#[inline]
fn simple_escape(byte: u8) -> Option<char> {
    Some(match byte {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

/// The most containers a raw value may nest (the framer allows 100 for the whole record).
const MAX_RAW_DEPTH: usize = 256;

/// Reads one JSON text, value by value.
pub struct JsonReader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Just after `{` or `[`: the next member or element has no comma before it.
    after_open: bool,
}

impl<'a> JsonReader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            after_open: false,
        }
    }

    fn error(&self, what: &'static str) -> JsonError {
        JsonError {
            what: Cow::Borrowed(what),
            at: Some(self.pos),
            path: None,
        }
    }

    /// Skips whitespace and gives the byte after it, not consumed.
    #[inline]
    fn skip_whitespace(&mut self) -> Option<u8> {
        while let Some(&byte) = self.bytes.get(self.pos) {
            match byte {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                _ => return Some(byte),
            }
        }
        None
    }

    /// The type of the next value, which is not consumed.
    #[inline]
    pub fn peek(&mut self) -> Result<Next, JsonError> {
        match self.skip_whitespace() {
            Some(b'"') => Ok(Next::String),
            Some(b'{') => Ok(Next::Object),
            Some(b'[') => Ok(Next::Array),
            Some(b'-' | b'0'..=b'9') => Ok(Next::Number),
            Some(b't' | b'f') => Ok(Next::Bool),
            Some(b'n') => Ok(Next::Null),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("the record ends where a value is expected")),
        }
    }

    /// Reads `null`.
    pub fn read_null(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        self.literal(b"null")
    }

    /// Reads `true` or `false`.
    pub fn read_bool(&mut self) -> Result<bool, JsonError> {
        match self.skip_whitespace() {
            Some(b't') => self.literal(b"true").map(|()| true),
            _ => self.literal(b"false").map(|()| false),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Reads a number.
    pub fn read_number(&mut self) -> Result<Number, JsonError> {
        self.skip_whitespace();
        let start = self.pos;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let mut whole = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.required_digits()?;
            whole = false;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            self.required_digits()?;
            whole = false;
        }
        let text = &self.text[start..self.pos];
        if whole {
            // Whole numbers that overflow 64 bits become floats, as in serde_json.
            if negative {
                if let Ok(value) = text.parse::<i64>() {
                    return Ok(Number::Negative(value));
                }
            } else if let Ok(value) = text.parse::<u64>() {
                return Ok(Number::Unsigned(value));
            }
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Number::Float(value)),
            _ => Err(JsonError {
                what: Cow::Borrowed("number out of range"),
                at: Some(start),
                path: None,
            }),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(self.error("invalid number"));
        }
        Ok(())
    }

    /// Reads a string: a slice of the record when it has no escapes.
    #[inline]
    pub fn read_str(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.bytes.get(self.pos) != Some(&b'"') && self.skip_whitespace() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        self.string_here()
    }

    /// Reads the string whose opening quote is the next byte.
    #[inline]
    fn string_here(&mut self) -> Result<Cow<'a, str>, JsonError> {
        let start = self.pos + 1;
        let end = self.string_stop(start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                // SAFETY: `start` follows a quote and `end` is a quote, both ASCII, so both
                // are char boundaries of the str, and start <= end <= its length.
                Ok(Cow::Borrowed(unsafe {
                    self.text.get_unchecked(start..end)
                }))
            }
            Some(b'\\') => self.read_escaped(start, end).map(Cow::Owned),
            _ => {
                self.pos = end;
                Err(self.string_error())
            }
        }
    }

    /// The error at a string's stop that is neither a quote nor a backslash.
    fn string_error(&self) -> JsonError {
        if self.pos < self.bytes.len() {
            self.error("control character in a string")
        } else {
            self.error("the record ends inside a string")
        }
    }

    /// Reads the rest of a string from its first escape at `at`, `start` being its first byte.
    fn read_escaped(&mut self, start: usize, mut at: usize) -> Result<String, JsonError> {
        let mut out = String::with_capacity(at - start + 16);
        out.push_str(&self.text[start..at]);
        loop {
            match self.bytes.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos = at;
                    let (c, len) = self.escape(at)?;
                    out.push(c);
                    at += len;
                }
                _ => {
                    self.pos = at;
                    return Err(self.string_error());
                }
            }
            let stop = self.string_stop(at);
            out.push_str(&self.text[at..stop]);
            at = stop;
        }
    }

    /// The character of the escape whose backslash is at `at`, and the length of its text.
    fn escape(&self, at: usize) -> Result<(char, usize), JsonError> {
        match self.bytes.get(at + 1) {
            Some(&byte) => match simple_escape(byte) {
                Some(c) => Ok((c, 2)),
                None if byte == b'u' => self.unicode_escape(at),
                None => Err(self.error("invalid escape in a string")),
            },
            None => Err(self.error("the record ends inside a string")),
        }
    }

    /// The character of the `\uXXXX` escape at `at` (two of them for a surrogate pair), and
    /// the length of its text.
    fn unicode_escape(&self, at: usize) -> Result<(char, usize), JsonError> {
        let unit = |at: usize| -> Option<u32> {
            // Four hex digits exactly: from_str_radix alone would also take a leading '+'.
            let hex = self.bytes.get(at + 2..at + 6)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
        };
        let Some(first) = unit(at) else {
            return Err(self.error("invalid \\u escape in a string"));
        };
        match first {
            0xD800..=0xDBFF => {
                let low = match self.bytes.get(at + 6..at + 8) {
                    Some(b"\\u") => unit(at + 6),
                    _ => None,
                };
                match low {
                    Some(low @ 0xDC00..=0xDFFF) => {
                        let code = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
                        let c = char::from_u32(code).expect("a surrogate pair is a char");
                        Ok((c, 12))
                    }
                    _ => Err(self.error("lone surrogate in a \\u escape")),
                }
            }
            0xDC00..=0xDFFF => Err(self.error("lone surrogate in a \\u escape")),
            code => Ok((char::from_u32(code).expect("not a surrogate"), 6)),
        }
    }

    /// The offset of the first quote, backslash or control character at or after `at` (the
    /// text's length when there is none).
    #[inline]
    fn string_stop(&self, mut at: usize) -> usize {
        let bytes = self.bytes;
        #[cfg(target_arch = "x86_64")]
        while at + 16 <= bytes.len() {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
                _mm_or_si128, _mm_set1_epi8,
            };
            // SAFETY: SSE2 is part of x86_64's baseline; the load reads the 16 bytes at `at`,
            // which are inside `bytes` (checked above), and needs no alignment.
            let stops = unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().add(at).cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // A byte below 0x20 is the one whose unsigned maximum with 0x1F is 0x1F.
                let low = _mm_set1_epi8(0x1F);
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if stops != 0 {
                return at + stops.trailing_zeros() as usize;
            }
            at += 16;
        }
        while let Some(&byte) = bytes.get(at) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                return at;
            }
            at += 1;
        }
        at
    }

    /// Skips a string (checking its escapes), the reader standing on its opening quote.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        let mut at = self.pos + 1;
        loop {
            at = self.string_stop(at);
            match self.bytes.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos = at;
                    // The common escapes inline (JSON text in a string escapes every quote);
                    // the rest, and the errors, in `escape`.
                    at += match self.bytes.get(at + 1).copied().and_then(simple_escape) {
                        Some(_) => 2,
                        None => self.escape(at)?.1,
                    };
                }
                _ => {
                    self.pos = at;
                    return Err(self.string_error());
                }
            }
        }
    }

    /// Reads any value and gives its exact text, having checked its grammar.
    pub fn read_raw(&mut self) -> Result<&'a str, JsonError> {
        self.skip_whitespace();
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.text[start..self.pos])
    }

    /// Skips one value of any kind, nested containers included, without recursion.
    fn skip_value(&mut self) -> Result<(), JsonError> {
        // One bit per open container: 1 for an object.
        let mut objects = [0u64; MAX_RAW_DEPTH / 64];
        let mut depth = 0usize;
        'value: loop {
            match self.peek()? {
                Next::String => self.skip_string()?,
                Next::Number => {
                    self.read_number()?;
                }
                Next::Bool => {
                    self.read_bool()?;
                }
                Next::Null => self.read_null()?,
                kind @ (Next::Object | Next::Array) => {
                    if depth == MAX_RAW_DEPTH {
                        return Err(self.error("a value nested too deeply"));
                    }
                    let object = kind == Next::Object;
                    let bit = 1u64 << (depth % 64);
                    if object {
                        objects[depth / 64] |= bit;
                    } else {
                        objects[depth / 64] &= !bit;
                    }
                    depth += 1;
                    self.pos += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.skip_whitespace() == Some(close) {
                        self.pos += 1;
                        depth -= 1;
                    } else {
                        if object {
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                }
            }
            // After a value: close the containers it ends, or go on to the next member.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let top = depth - 1;
                let object = objects[top / 64] & (1u64 << (top % 64)) != 0;
                match self.skip_whitespace() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ if object => return Err(self.error("expected ',' or '}' in an object")),
                    _ => return Err(self.error("expected ',' or ']' in an array")),
                }
                self.pos += 1;
                depth -= 1;
            }
        }
    }

    /// Skips a member's key and its colon.
    fn member_key(&mut self) -> Result<(), JsonError> {
        if self.skip_whitespace() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        self.skip_string()?;
        self.colon()
    }

    #[inline]
    fn colon(&mut self) -> Result<(), JsonError> {
        if self.bytes.get(self.pos) == Some(&b':') {
            self.pos += 1;
            return Ok(());
        }
        if self.skip_whitespace() != Some(b':') {
            return Err(self.error("expected ':' after a key"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Enters an object; its members are then read with [`JsonReader::next_key`].
    pub fn begin_object(&mut self) -> Result<(), JsonError> {
        self.open(b'{', "expected an object")
    }

    /// Enters an array; its elements are then read after each [`JsonReader::next_element`].
    pub fn begin_array(&mut self) -> Result<(), JsonError> {
        self.open(b'[', "expected an array")
    }

    fn open(&mut self, bracket: u8, what: &'static str) -> Result<(), JsonError> {
        if self.skip_whitespace() != Some(bracket) {
            return Err(self.error(what));
        }
        self.pos += 1;
        self.after_open = true;
        Ok(())
    }

    /// The key of the next member of the object being read (its value is read next), or
    /// `None` at the object's end.
    #[inline]
    pub fn next_key(&mut self) -> Result<Option<Cow<'a, str>>, JsonError> {
        if !self.next_member()? {
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// Whether the object being read has another member, whose key is read next (with
    /// [`JsonReader::key_is`] or [`JsonReader::key`]).
    #[inline]
    pub fn next_member(&mut self) -> Result<bool, JsonError> {
        self.more(b'}', "expected ',' or '}' in an object")
    }

    /// Reads the next member's key and colon if they are written exactly as `quoted` (the
    /// key in quotes, then the colon: `"eventName":`), and tells whether they were; reads
    /// nothing otherwise. With a constant `quoted` this is a few word compares, where
    /// [`JsonReader::key`] scans the string and the caller matches it against every name.
    #[inline(always)]
    pub fn key_is(&mut self, quoted: &'static [u8]) -> bool {
        let end = self.pos + quoted.len();
        match self.bytes.get(self.pos..end) {
            Some(text) if text == quoted => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// Reads the next member's key and its colon.
    #[inline]
    pub fn key(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.bytes.get(self.pos) != Some(&b'"') && self.skip_whitespace() != Some(b'"') {
            return Err(self.error("expected a key"));
        }
        let key = self.string_here()?;
        self.colon()?;
        Ok(key)
    }

    /// Whether the array being read has another element (read next).
    pub fn next_element(&mut self) -> Result<bool, JsonError> {
        self.more(b']', "expected ',' or ']' in an array")
    }

    /// Whether another member or element follows in the container being read, whose closing
    /// bracket is `close`: consumes the comma before it, or the closing bracket.
    #[inline]
    fn more(&mut self, close: u8, what: &'static str) -> Result<bool, JsonError> {
        let byte = self.skip_whitespace();
        if byte == Some(close) {
            self.pos += 1;
            self.after_open = false;
            return Ok(false);
        }
        if std::mem::take(&mut self.after_open) {
            return Ok(true);
        }
        if byte == Some(b',') {
            self.pos += 1;
            return Ok(true);
        }
        Err(self.error(what))
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The text from `start` to the reader's position.
    pub fn text_since(&self, start: usize) -> &'a str {
        &self.text[start..self.pos]
    }

    /// Checks that nothing but whitespace follows.
    pub fn end(&mut self) -> Result<(), JsonError> {
        match self.skip_whitespace() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters after the record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<&str, JsonError> {
        let mut reader = JsonReader::new(text);
        let raw = reader.read_raw()?;
        reader.end()?;
        Ok(raw)
    }

    #[test]
    fn raw_values_agree_with_serde_json_on_validity() {
        let cases = [
            r#"{"a":[1,2,{"b":null}],"c":"x\"y","d":-1.5e3}"#,
            r#"  [ ]  "#,
            r#"{}"#,
            r#"{ "a" : { } , "b" : [ [ ] ] }"#,
            r#""\ud83d\ude00 \u00e9 \n""#,
            "0",
            "-0.0",
            "true",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"[1,]"#,
            r#"[1 2]"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"01"#,
            r#"1."#,
            r#"-"#,
            r#"1e"#,
            r#""\x""#,
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\u+123""#,
            r#""\ud83d\u+e00""#,
            "\"a\u{1}b\"",
            r#"{"a":1}}"#,
            r#"{"a":1"#,
            r#""abc"#,
            r#"[{"a":[}]"#,
            r#"{1:2}"#,
            "",
            "nul",
        ];
        for case in cases {
            let ours = raw(case);
            let theirs = serde_json::from_str::<serde_json::Value>(case);
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "{case:?}: {ours:?} / {theirs:?}"
            );
            if let Ok(text) = ours {
                assert_eq!(text, case.trim(), "{case:?}");
            }
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let text = r#"["plain and long enough to need two blocks", "tab\there \u00e9\ud83d\ude00 \"q\" \\ \/"]"#;
        let mut reader = JsonReader::new(text);
        reader.begin_array().unwrap();
        assert!(reader.next_element().unwrap());
        let plain = reader.read_str().unwrap();
        assert!(matches!(
            plain,
            Cow::Borrowed("plain and long enough to need two blocks")
        ));
        assert!(reader.next_element().unwrap());
        let escaped = reader.read_str().unwrap();
        assert_eq!(escaped, "tab\there é😀 \"q\" \\ /");
        assert!(!reader.next_element().unwrap());
        reader.end().unwrap();
    }

    #[test]
    fn strings_stop_at_control_characters_in_every_position() {
        for at in 0..40 {
            let mut text = "x".repeat(40);
            text.replace_range(at..=at, "\n");
            let quoted = format!("\"{text}\"");
            let error = JsonReader::new(&quoted).read_str().unwrap_err();
            assert_eq!(error.at, Some(at + 1), "{error}");
            assert!(error.to_string().contains("control character"), "{error}");
        }
    }

    #[test]
    fn numbers_follow_serdes_data_model() {
        let read = |text: &str| JsonReader::new(text).read_number();
        assert_eq!(read("42"), Ok(Number::Unsigned(42)));
        assert_eq!(read("-42"), Ok(Number::Negative(-42)));
        assert_eq!(read("18446744073709551615"), Ok(Number::Unsigned(u64::MAX)));
        assert_eq!(
            read("18446744073709551616"),
            Ok(Number::Float(1.8446744073709552e19))
        );
        assert_eq!(
            read("-9223372036854775809"),
            Ok(Number::Float(-9.223372036854776e18))
        );
        assert_eq!(read("1.5"), Ok(Number::Float(1.5)));
        assert_eq!(read("1E2"), Ok(Number::Float(100.0)));
        assert!(read("1e400").is_err());
        assert!(read("+1").is_err());
    }

    #[test]
    fn a_guessed_key_is_taken_only_when_written_exactly() {
        let mut reader = JsonReader::new(r#"{"ab":1,"a":2,"a" :3,"\u0061":4}"#);
        reader.begin_object().unwrap();
        assert!(reader.next_member().unwrap());
        // Neither a prefix of the key nor a longer key matches, and a miss reads nothing.
        assert!(!reader.key_is(br#""a":"#));
        assert!(!reader.key_is(br#""abc":"#));
        assert!(reader.key_is(br#""ab":"#));
        assert_eq!(reader.read_number(), Ok(Number::Unsigned(1)));
        assert!(reader.next_member().unwrap());
        assert!(reader.key_is(br#""a":"#));
        assert_eq!(reader.read_number(), Ok(Number::Unsigned(2)));
        // Spelt otherwise, the key is read as it is.
        for value in [3, 4] {
            assert!(reader.next_member().unwrap());
            assert!(!reader.key_is(br#""a":"#));
            assert_eq!(reader.key().as_deref(), Ok("a"));
            assert_eq!(reader.read_number(), Ok(Number::Unsigned(value)));
        }
        assert!(!reader.next_member().unwrap());
        reader.end().unwrap();
    }

    #[test]
    fn objects_are_read_member_by_member() {
        let text = r#" { "a" : 1 , "b\n" : { } , "c" : [ ] } "#;
        let mut reader = JsonReader::new(text);
        reader.begin_object().unwrap();
        assert_eq!(reader.next_key().unwrap().as_deref(), Some("a"));
        assert_eq!(reader.read_number(), Ok(Number::Unsigned(1)));
        assert_eq!(reader.next_key().unwrap().as_deref(), Some("b\n"));
        reader.begin_object().unwrap();
        assert_eq!(reader.next_key().unwrap(), None);
        assert_eq!(reader.next_key().unwrap().as_deref(), Some("c"));
        let start = reader.position();
        reader.begin_array().unwrap();
        assert!(!reader.next_element().unwrap());
        assert_eq!(reader.text_since(start), " [ ]");
        assert_eq!(reader.next_key().unwrap(), None);
        reader.end().unwrap();

        for bad in [
            r#"{"a":1 "b":2}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
        ] {
            let mut reader = JsonReader::new(bad);
            reader.begin_object().unwrap();
            let result = (|| {
                while reader.next_key()?.is_some() {
                    reader.read_raw()?;
                }
                Ok::<_, JsonError>(())
            })();
            assert!(result.is_err(), "{bad}");
        }
    }
}
