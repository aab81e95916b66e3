//! Decoding a log object: gzip (detected by its magic bytes, every member read) or plain JSON,
//! then framing the document `{"Records":[…]}` into one record's JSON text at a time.
//!
//! The framer reads the decompressed stream in chunks and keeps at most one record (plus a read
//! chunk) in memory, so memory stays flat whatever the file size. It only finds where each
//! record starts and ends (tracking strings, escapes and nesting depth); the record itself is
//! parsed once, by the column builders' reader (`json_reader`), straight into Arrow builders.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use crate::container_scan::{BLOCK, ContainerScan, Step};

/// Limits that keep hostile input from taking unbounded memory or stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON text of one record, in bytes.
    pub max_record_bytes: usize,
    /// Deepest nesting of objects and arrays, counted from the document root.
    pub max_depth: usize,
    /// Largest object as stored (gzip), in bytes; checked before reading when the size is
    /// known, and while reading.
    pub max_object_bytes: u64,
    /// Most JSON bytes one object may decompress to: a gzip bomb stops here.
    pub max_json_bytes: u64,
    /// Most records one object may hold.
    pub max_records: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // CloudTrail caps an event at 256 KB; leave ample room for future growth.
        Self {
            max_record_bytes: 16 << 20,
            max_depth: 100,
            // CloudTrail delivers every ~5 minutes; its largest files are tens of MB (hundreds
            // of MB of JSON), far below these.
            max_object_bytes: 4 << 30,
            max_json_bytes: 4 << 30,
            max_records: 10_000_000,
        }
    }
}

/// Why a log object could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read or decompress: {0}")]
    Io(#[from] io::Error),
    #[error("the object is empty (no JSON document)")]
    Empty,
    #[error("not a CloudTrail log: {what} at byte {offset} of the JSON text")]
    Syntax { what: &'static str, offset: u64 },
    #[error("the JSON text ends early (truncated) at byte {offset}")]
    Truncated { offset: u64 },
    #[error("not a CloudTrail log: the document has no \"Records\" array")]
    NoRecords,
    #[error("record {index} is not a JSON object")]
    NotAnObject { index: u64 },
    #[error("record {index} nests objects/arrays deeper than {limit} levels")]
    TooDeep { index: u64, limit: usize },
    #[error("record {index} is larger than {limit} bytes")]
    RecordTooLarge { index: u64, limit: usize },
    #[error(
        "the object decompresses to more than {limit} bytes of JSON, with nothing committed \
         (raise CLOUDTRAIL_DELTA_MAX_JSON_BYTES or --max-json-bytes to ingest it)"
    )]
    TooMuchJson { limit: u64 },
    #[error(
        "the object holds more than {limit} records, with nothing committed (raise \
         CLOUDTRAIL_DELTA_MAX_RECORDS or --max-records to ingest it)"
    )]
    TooManyRecords { limit: u64 },
}

/// Wraps `input` in a gzip decoder when it starts with the gzip magic bytes.
pub fn decompressed(mut input: impl Read + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match input.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let input = io::Cursor::new(magic).take(got as u64).chain(input);
    Ok(if magic[..got] == [0x1f, 0x8b] {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    })
}

const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Before the document's opening brace.
    Start,
    /// Inside the document object, before a key (or its closing brace).
    Key { first: bool },
    /// Inside `Records`, before an element (or the closing bracket).
    Element { first: bool },
    /// After the document's closing brace.
    Done,
}

/// Splits a `{"Records":[…]}` document into the JSON text of each record.
pub struct RecordFramer<R> {
    input: R,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    /// End of data in `buf`.
    end: usize,
    /// Bytes dropped from the front of `buf` so far (for error offsets).
    consumed: u64,
    eof: bool,
    state: State,
    records_found: bool,
    index: u64,
    limits: Limits,
}

impl<R: Read> RecordFramer<R> {
    pub fn new(input: R, limits: Limits) -> Self {
        Self {
            input,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            consumed: 0,
            eof: false,
            state: State::Start,
            records_found: false,
            index: 0,
            limits,
        }
    }

    /// The input, to read what follows (after the document: nothing but its end).
    pub fn into_input(self) -> R {
        self.input
    }

    /// How many records were returned so far.
    pub fn records_read(&self) -> u64 {
        self.index
    }

    /// Total decompressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed + self.end as u64
    }

    /// The next record's JSON text, or None after the document has been read to its end.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    match self.skip_ws()? {
                        None if self.offset() == 0 => return Err(DecodeError::Empty),
                        None => return Err(self.truncated()),
                        Some(b'{') => self.pos += 1,
                        Some(_) => return Err(self.syntax("expected '{' opening the document")),
                    }
                    self.state = State::Key { first: true };
                }
                State::Key { first } => {
                    match self.skip_ws()? {
                        Some(b'}') => {
                            self.pos += 1;
                            return self.finish_document();
                        }
                        Some(b',') if !first => {
                            self.pos += 1;
                            self.skip_ws()?;
                        }
                        Some(b'"') if first => {}
                        None => return Err(self.truncated()),
                        Some(_) => return Err(self.syntax("expected a key or '}' in the document")),
                    }
                    let is_records = self.read_key()?;
                    match self.skip_ws()? {
                        Some(b':') => self.pos += 1,
                        None => return Err(self.truncated()),
                        Some(_) => return Err(self.syntax("expected ':' after a key")),
                    }
                    if is_records {
                        if self.records_found {
                            return Err(self.syntax("a second \"Records\" key"));
                        }
                        match self.skip_ws()? {
                            Some(b'[') => self.pos += 1,
                            None => return Err(self.truncated()),
                            Some(_) => return Err(self.syntax("\"Records\" is not an array")),
                        }
                        self.records_found = true;
                        self.state = State::Element { first: true };
                    } else {
                        // Another key beside Records: skip its value.
                        self.skip_ws()?;
                        let len = self.scan_value(None)?;
                        self.pos += len;
                        self.state = State::Key { first: false };
                    }
                }
                State::Element { first } => {
                    match self.skip_ws()? {
                        Some(b']') => {
                            self.pos += 1;
                            self.state = State::Key { first: false };
                            continue;
                        }
                        Some(b',') if !first => {
                            self.pos += 1;
                            self.skip_ws()?;
                        }
                        None => return Err(self.truncated()),
                        Some(_) if first => {}
                        Some(_) => return Err(self.syntax("expected ',' or ']' between records")),
                    }
                    match self.peek() {
                        Some(b'{') => {}
                        None => return Err(self.truncated()),
                        Some(_) => return Err(DecodeError::NotAnObject { index: self.index }),
                    }
                    if self.index >= self.limits.max_records {
                        return Err(DecodeError::TooManyRecords {
                            limit: self.limits.max_records,
                        });
                    }
                    let len = self.scan_value(Some(self.index))?;
                    // The scan stops a record early only when it outgrows the buffer; one
                    // that was wholly read is held to the same limit here.
                    if len > self.limits.max_record_bytes {
                        return Err(DecodeError::RecordTooLarge {
                            index: self.index,
                            limit: self.limits.max_record_bytes,
                        });
                    }
                    let start = self.pos;
                    self.pos += len;
                    self.index += 1;
                    self.state = State::Element { first: false };
                    return Ok(Some(&self.buf[start..start + len]));
                }
            }
        }
    }

    fn finish_document(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.skip_ws()?.is_some() {
            return Err(self.syntax("data after the end of the document"));
        }
        if !self.records_found {
            return Err(DecodeError::NoRecords);
        }
        self.state = State::Done;
        Ok(None)
    }

    fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    fn syntax(&self, what: &'static str) -> DecodeError {
        DecodeError::Syntax {
            what,
            offset: self.offset(),
        }
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated {
            offset: self.bytes_read(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf[..self.end].get(self.pos).copied()
    }

    /// Reads more input, keeping the unread data. Returns false at the end of the input;
    /// fails once more than [`Limits::max_json_bytes`] were read.
    fn fill(&mut self) -> Result<bool, DecodeError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.consumed += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.end < CHUNK {
            self.buf.resize(self.end + CHUNK, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    if self.bytes_read() > self.limits.max_json_bytes {
                        return Err(DecodeError::TooMuchJson {
                            limit: self.limits.max_json_bytes,
                        });
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Skips whitespace; returns the next byte without consuming it (None at end of input).
    fn skip_ws(&mut self) -> Result<Option<u8>, DecodeError> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    b => return Ok(Some(b)),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Reads a key string at `pos` (which holds its opening quote); true when it is `Records`.
    fn read_key(&mut self) -> Result<bool, DecodeError> {
        let len = self.scan_value(None)?;
        let is_records = &self.buf[self.pos..self.pos + len] == b"\"Records\"";
        self.pos += len;
        Ok(is_records)
    }

    /// Finds the length of the JSON value starting at `pos` (reading more input as needed).
    ///
    /// `record` is the record index when the value is a record (for limits and errors).
    fn scan_value(&mut self, record: Option<u64>) -> Result<usize, DecodeError> {
        let limit = self.limits;
        let too_large = |index: Option<u64>| DecodeError::RecordTooLarge {
            index: index.unwrap_or_default(),
            limit: limit.max_record_bytes,
        };
        let first = match self.peek() {
            Some(b) => b,
            None => return Err(self.truncated()),
        };
        // Depth of the document around this value: 1 inside the root object, 2 inside Records.
        let base_depth = if record.is_some() { 2 } else { 1 };
        if first == b'{' || first == b'[' {
            return self.scan_container(record, limit.max_depth.saturating_sub(base_depth));
        }
        let mut i = 0usize; // offset from pos of the next byte to look at
        let mut depth = 0usize;
        let mut in_string = false;
        loop {
            let data = &self.buf[self.pos..self.end];
            while i < data.len() {
                if in_string {
                    match find_quote_or_escape(&data[i..]) {
                        None => i = data.len(),
                        Some(j) => {
                            let at = i + j;
                            if data[at] == b'\\' {
                                if at + 1 >= data.len() {
                                    // The escaped byte is not read yet: look again after a fill.
                                    i = at;
                                    break;
                                }
                                i = at + 2;
                            } else {
                                i = at + 1;
                                in_string = false;
                                if depth == 0 {
                                    return Ok(i);
                                }
                            }
                        }
                    }
                    continue;
                }
                match data[i] {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        if base_depth + depth > limit.max_depth {
                            return Err(self.too_deep(record));
                        }
                    }
                    b'}' | b']' => {
                        if depth == 0 {
                            // The end of a scalar value (the enclosing container closes).
                            return Ok(i);
                        }
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 && first != b'"' => {
                        return Ok(i);
                    }
                    _ => {}
                }
                i += 1;
            }
            if i > limit.max_record_bytes {
                return Err(too_large(record));
            }
            if !self.fill()? {
                return match (depth, in_string, first) {
                    // A scalar may end exactly at the end of input (malformed document anyway).
                    (0, false, b) if b != b'{' && b != b'[' && b != b'"' => Ok(i),
                    _ => Err(self.truncated()),
                };
            }
        }
    }

    /// Finds the length of the object or array starting at `pos`, in which at most
    /// `max_depth` containers may be open at once, 64 bytes at a time (see
    /// [`crate::container_scan`]).
    fn scan_container(
        &mut self,
        record: Option<u64>,
        max_depth: usize,
    ) -> Result<usize, DecodeError> {
        let mut scan = ContainerScan::new(max_depth);
        let mut i = 0usize; // offset from pos of the next block
        loop {
            let (at, step) = scan.blocks(&self.buf[self.pos + i..self.end]);
            i += at;
            match step {
                Step::End(end) => return Ok(i + end + 1),
                Step::TooDeep => return Err(self.too_deep(record)),
                Step::More => {}
            }
            if i > self.limits.max_record_bytes {
                return Err(DecodeError::RecordTooLarge {
                    index: record.unwrap_or_default(),
                    limit: self.limits.max_record_bytes,
                });
            }
            if !self.fill()? {
                // The input ends within the next block: scan what is left of it, padded
                // with spaces (which change nothing).
                let rest = &self.buf[self.pos + i..self.end];
                let mut block = [b' '; BLOCK];
                block[..rest.len()].copy_from_slice(rest);
                return match scan.block(&block) {
                    Step::End(at) if at < rest.len() => Ok(i + at + 1),
                    Step::TooDeep => Err(self.too_deep(record)),
                    _ => Err(self.truncated()),
                };
            }
        }
    }

    fn too_deep(&self, record: Option<u64>) -> DecodeError {
        match record {
            Some(index) => DecodeError::TooDeep {
                index,
                limit: self.limits.max_depth,
            },
            None => self.syntax("nesting too deep"),
        }
    }
}

/// The offset in `data` of its first `"` or `\\`, if any.
///
/// Most strings of a record are short (keys, ids, ARNs), where a call into memchr costs more
/// than the search: the first `INLINE_SCAN` (32) bytes are looked at here, eight at a time, and
/// only longer strings go on in memchr.
#[inline]
fn find_quote_or_escape(data: &[u8]) -> Option<usize> {
    const INLINE_SCAN: usize = 32;
    let inline = data.len().min(INLINE_SCAN);
    let mut at = 0;
    while at + 8 <= inline {
        let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"));
        let hits = bytes_equal(word, b'"') | bytes_equal(word, b'\\');
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', &data[at..]).map(|found| at + found)
}

/// The high bit of each byte of `word` that equals `byte`, and no other bit (exact: the sum
/// cannot carry from one byte into the next).
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    !(((x & !HIGH).wrapping_add(!HIGH)) | x) & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(json: &[u8]) -> Result<Vec<String>, DecodeError> {
        records_with(json, Limits::default())
    }

    fn records_with(json: &[u8], limits: Limits) -> Result<Vec<String>, DecodeError> {
        let mut framer = RecordFramer::new(json, limits);
        let mut out = Vec::new();
        while let Some(r) = framer.next_record()? {
            out.push(String::from_utf8_lossy(r).into_owned());
        }
        Ok(out)
    }

    /// A reader that returns one byte per read, to exercise every refill boundary.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !buf.is_empty() => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn finds_quotes_and_escapes_at_every_offset() {
        for len in 0..80 {
            for at in 0..len {
                for found in [b'"', b'\\'] {
                    let mut data = vec![b'a'; len];
                    data[at] = found;
                    // Neighbours that differ from the byte sought by one bit: the high one,
                    // and the lowest.
                    if at > 0 {
                        data[at - 1] = found ^ 0x80;
                    }
                    if at + 1 < len {
                        data[at + 1] = found ^ 0x01;
                    }
                    assert_eq!(find_quote_or_escape(&data), Some(at), "len {len} at {at}");
                }
            }
            assert_eq!(find_quote_or_escape(&vec![b'a'; len]), None);
        }
    }

    #[test]
    fn frames_compact_and_pretty_documents() {
        let compact = br#"{"Records":[{"a":1},{"b":"x}\"{"},{"c":[{"d":{}}]}]}"#;
        let expected = [r#"{"a":1}"#, r#"{"b":"x}\"{"}"#, r#"{"c":[{"d":{}}]}"#];
        assert_eq!(records(compact).unwrap(), expected);
        let pretty = b"\n{\n  \"Records\" : [\n    {\"a\":1} ,\n\t{\"b\":\"x}\\\"{\"},{\"c\":[{\"d\":{}}]}\n  ]\n}\n";
        assert_eq!(records(pretty).unwrap(), expected);
        let mut framer = RecordFramer::new(Trickle(compact), Limits::default());
        let mut got = Vec::new();
        while let Some(r) = framer.next_record().unwrap() {
            got.push(String::from_utf8(r.to_vec()).unwrap());
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn skips_other_keys_and_accepts_empty_records() {
        let json = br#"{"x":{"Records":[1]},"n":-1.5e3,"s":"]","t":true,"Records":[],"z":null}"#;
        assert_eq!(records(json).unwrap(), Vec::<String>::new());
        let json = br#"{"Records":[{"a":1}],"after":[1,2]}"#;
        assert_eq!(records(json).unwrap(), [r#"{"a":1}"#]);
    }

    #[test]
    fn rejects_what_is_not_a_log() {
        assert!(matches!(records(b""), Err(DecodeError::Empty)));
        assert!(matches!(
            records(b"  \n"),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(records(b"[1]"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(records(b"hello"), Err(DecodeError::Syntax { .. })));
        assert!(matches!(
            records(br#"{"records":[]}"#),
            Err(DecodeError::NoRecords)
        ));
        assert!(matches!(records(br#"{}"#), Err(DecodeError::NoRecords)));
        assert!(matches!(
            records(br#"{"Records":{}}"#),
            Err(DecodeError::Syntax { .. })
        ));
        assert!(matches!(
            records(br#"{"Records":[{"a":1},2]}"#),
            Err(DecodeError::NotAnObject { index: 1 })
        ));
        assert!(matches!(
            records(br#"{"Records":[{"a":1}"#),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            records(br#"{"Records":[{"a":"1"#),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            records(br#"{"Records":[{"a":1}]}x"#),
            Err(DecodeError::Syntax { .. })
        ));
        assert!(matches!(
            records(br#"{"Records":[{"a":1} {"b":2}]}"#),
            Err(DecodeError::Syntax { .. })
        ));
        assert!(matches!(
            records(br#"{"Records":[],"Records":[]}"#),
            Err(DecodeError::Syntax { .. })
        ));
    }

    #[test]
    fn enforces_depth_and_size_limits() {
        let deep = format!(r#"{{"Records":[{}{}]}}"#, "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            records(deep.as_bytes()),
            Err(DecodeError::NotAnObject { index: 0 })
        ));
        let deep = format!(
            r#"{{"Records":[{{"a":{}1{}}}]}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(matches!(
            records(deep.as_bytes()),
            Err(DecodeError::TooDeep {
                index: 0,
                limit: 100
            })
        ));
        let big = format!(r#"{{"Records":[{{"a":"{}"}}]}}"#, "x".repeat(CHUNK * 3));
        let limits = Limits {
            max_record_bytes: CHUNK,
            ..Limits::default()
        };
        assert!(matches!(
            records_with(big.as_bytes(), limits),
            Err(DecodeError::RecordTooLarge { index: 0, .. })
        ));
        assert_eq!(records(big.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn enforces_json_and_record_count_limits() {
        // Whitespace between records counts as much as records do: a document padded with
        // megabytes of it stops at the bound.
        let padded = format!(
            r#"{{"Records":[{{"a":1}},{}{{"b":2}}]}}"#,
            " ".repeat(CHUNK * 4)
        );
        let limits = Limits {
            max_json_bytes: CHUNK as u64 * 2,
            ..Limits::default()
        };
        assert!(matches!(
            records_with(padded.as_bytes(), limits),
            Err(DecodeError::TooMuchJson { limit }) if limit == CHUNK as u64 * 2
        ));
        let exact = Limits {
            max_json_bytes: padded.len() as u64,
            ..Limits::default()
        };
        assert_eq!(records_with(padded.as_bytes(), exact).unwrap().len(), 2);

        let three = br#"{"Records":[{},{},{}]}"#;
        let two = Limits {
            max_records: 2,
            ..Limits::default()
        };
        assert!(matches!(
            records_with(three, two),
            Err(DecodeError::TooManyRecords { limit: 2 })
        ));
        let enough = Limits {
            max_records: 3,
            ..Limits::default()
        };
        assert_eq!(records_with(three, enough).unwrap().len(), 3);
    }

    #[test]
    fn reads_every_gzip_member_and_plain_json() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let doc = br#"{"Records":[{"a":1},{"b":2}]}"#;
        let (head, tail) = doc.split_at(14);
        let mut gz = Vec::new();
        for part in [head, tail] {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(part).unwrap();
            gz.extend(enc.finish().unwrap());
        }
        let read = |bytes: Vec<u8>| {
            let mut framer = RecordFramer::new(
                decompressed(io::Cursor::new(bytes)).unwrap(),
                Limits::default(),
            );
            let mut n = 0;
            while framer.next_record()?.is_some() {
                n += 1;
            }
            Ok::<_, DecodeError>(n)
        };
        assert_eq!(read(gz.clone()).unwrap(), 2);
        assert_eq!(read(doc.to_vec()).unwrap(), 2);
        gz.truncate(gz.len() - 10);
        assert!(matches!(
            read(gz),
            Err(DecodeError::Io(_)) | Err(DecodeError::Truncated { .. })
        ));
        let mut corrupt = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0];
        corrupt.extend_from_slice(b"garbage garbage");
        assert!(matches!(read(corrupt), Err(DecodeError::Io(_))));
    }
}
