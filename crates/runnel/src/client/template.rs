//! Record output for `runnel consume`: a `--format` template such as
//! `%k=%s\n`, or one JSON object per record, and the base64 codec that JSON
//! falls back to for bytes that are not UTF-8 (also read by
//! `runnel produce --format json`).

use std::io::{self, Write};

use anyhow::bail;
use base64::Engine as _;
use serde::Serialize;

/// One record as the consume command sees it; headers keep their order and
/// may repeat a key.
pub struct RecordView<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch, or -1 when the record has none.
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// A parsed `--format` template.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Key,
    Value,
    Partition,
    Offset,
    Topic,
    Headers,
    Timestamp,
}

impl Template {
    /// Parses `%k %s %p %o %t %h %T`, `%%` for a percent sign and the escapes
    /// `\n \t \r \\`. Anything else after `%` or `\` is an error, so a typo
    /// does not silently print the wrong thing.
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let field = match chars.next() {
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some('k') => Piece::Key,
                        Some('s') => Piece::Value,
                        Some('p') => Piece::Partition,
                        Some('o') => Piece::Offset,
                        Some('t') => Piece::Topic,
                        Some('h') => Piece::Headers,
                        Some('T') => Piece::Timestamp,
                        Some(other) => bail!("--format: unknown field %{other} (known: %k %s %p %o %t %h %T %%)"),
                        None => bail!("--format: a lone % at the end (write %% for a percent sign)"),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(field);
                }
                '\\' => match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('r') => literal.push(b'\r'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => bail!("--format: unknown escape \\{other} (known: \\n \\t \\r \\\\)"),
                    None => bail!("--format: a lone \\ at the end (write \\\\ for a backslash)"),
                },
                c => literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces })
    }

    /// Writes one record. A missing key or value prints as nothing; headers
    /// print as `k=v` joined by commas.
    pub fn write(&self, out: &mut impl Write, record: &RecordView<'_>) -> io::Result<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.write_all(bytes)?,
                Piece::Key => out.write_all(record.key.unwrap_or_default())?,
                Piece::Value => out.write_all(record.value.unwrap_or_default())?,
                Piece::Partition => write!(out, "{}", record.partition)?,
                Piece::Offset => write!(out, "{}", record.offset)?,
                Piece::Topic => out.write_all(record.topic.as_bytes())?,
                Piece::Timestamp => write!(out, "{}", record.timestamp_ms)?,
                Piece::Headers => {
                    for (i, (key, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(key.as_bytes())?;
                        out.write_all(b"=")?;
                        out.write_all(value.unwrap_or_default())?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// How the byte fields of a JSON record are written.
pub const ENCODING_UTF8: &str = "utf-8";
pub const ENCODING_BASE64: &str = "base64";

/// The JSON form of one record. `encoding` applies to key, value and header
/// values together: all are UTF-8 text, or, when any of them is not valid
/// UTF-8, all are base64.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    encoding: &'static str,
    key: Option<String>,
    value: Option<String>,
    headers: serde_json::Map<String, serde_json::Value>,
}

/// Writes one record as a JSON object on one line. When a header key repeats,
/// the last value wins in the object.
pub fn write_json(out: &mut impl Write, record: &RecordView<'_>) -> io::Result<()> {
    let fields = || record.key.into_iter().chain(record.value).chain(record.headers.iter().filter_map(|h| h.1));
    let utf8 = fields().all(|b| std::str::from_utf8(b).is_ok());
    let text = |b: &[u8]| if utf8 { String::from_utf8_lossy(b).into_owned() } else { base64_encode(b) };
    let headers = record
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.map_or(serde_json::Value::Null, |v| serde_json::Value::String(text(v)))))
        .collect();
    let json = JsonRecord {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp_ms,
        encoding: if utf8 { ENCODING_UTF8 } else { ENCODING_BASE64 },
        key: record.key.map(text),
        value: record.value.map(text),
        headers,
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.write_all(b"\n")
}

/// Standard base64 (RFC 4648 section 4) with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 with or without padding; rejects other characters.
pub fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| anyhow::anyhow!("invalid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> RecordView<'a> {
        RecordView {
            topic: "t",
            partition: 2,
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            key,
            value,
            headers: vec![("a", Some(b"1")), ("b", None)],
        }
    }

    fn render(template: &str, record: &RecordView<'_>) -> String {
        let mut out = Vec::new();
        Template::parse(template).unwrap().write(&mut out, record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_field_and_escape_renders() {
        let r = record(Some(b"k"), Some(b"v"));
        assert_eq!(render("%t/%p@%o %T %k=%s [%h] 100%%\\t\\\\\\n", &r), "t/2@7 1700000000000 k=v [a=1,b=] 100%\t\\\n");
        assert_eq!(render("%k|%s", &record(None, None)), "|");
    }

    #[test]
    fn unknown_fields_and_escapes_are_rejected() {
        assert!(Template::parse("%x").is_err());
        assert!(Template::parse("abc%").is_err());
        assert!(Template::parse("\\q").is_err());
        assert!(Template::parse("\\").is_err());
    }

    #[test]
    fn json_uses_base64_only_when_some_field_is_not_utf8() {
        let mut out = Vec::new();
        write_json(&mut out, &record(Some(b"k"), None)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["encoding"], "utf-8");
        assert_eq!(v["key"], "k");
        assert!(v["value"].is_null());
        assert_eq!(v["headers"]["a"], "1");
        assert!(v["headers"]["b"].is_null());
        assert_eq!(v["offset"], 7);

        let mut out = Vec::new();
        write_json(&mut out, &record(Some(b"k"), Some(&[0xff, 0x00]))).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["encoding"], "base64");
        assert_eq!(v["key"], "aw==");
        assert_eq!(base64_decode(v["value"].as_str().unwrap()).unwrap(), vec![0xff, 0x00]);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors_and_round_trips() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
        assert!(base64_decode("Zm9v!").is_err());
        assert!(base64_decode("Z").is_err());
    }
}
