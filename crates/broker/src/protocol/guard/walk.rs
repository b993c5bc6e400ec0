//! The bounded walk over a request frame that the guard runs before decoding.
//!
//! The walk reads every length, count and tag the way the `kafka-protocol`
//! decoder will read them, but only moves a position through the borrowed
//! frame: it never allocates, recurses only as deep as the schema nests, and
//! touches each byte a bounded number of times. An array count is compared
//! with the bytes left before any element is walked, because the decoder
//! reserves room for the whole count up front.

use super::schema::{Field, Kind};
use super::GuardError;

type Result<T> = std::result::Result<T, GuardError>;

const TRUNCATED: GuardError = GuardError::Malformed("frame ends inside a field");

/// A read position in a borrowed frame.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `len` bytes, or `past_end` if the frame is shorter.
    pub(super) fn take(&mut self, len: usize, past_end: GuardError) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(past_end);
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.bytes[start..self.pos])
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N, TRUNCATED)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16> {
        self.fixed().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32> {
        self.fixed().map(i32::from_be_bytes)
    }

    /// An unsigned varint of at most five bytes. The decoder stops after five
    /// bytes and drops bits past 32; the guard refuses such values instead,
    /// since no encoder writes them.
    fn uvarint(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let [byte] = self.fixed::<1>()?;
            if i == 4 && byte > 0x0f {
                break;
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(GuardError::Malformed("varint longer than 32 bits"))
    }
}

/// What a length prefix measures; it selects the non-compact width and the
/// error messages.
#[derive(Clone, Copy)]
enum Shape {
    String,
    Bytes,
    Array,
}

impl Shape {
    fn null(self) -> GuardError {
        GuardError::Malformed(match self {
            Shape::String => "null string in a non-nullable field",
            Shape::Bytes => "null bytes in a non-nullable field",
            Shape::Array => "null array in a non-nullable field",
        })
    }

    fn negative(self) -> GuardError {
        GuardError::Malformed(match self {
            Shape::String => "negative string length",
            Shape::Bytes => "negative bytes length",
            Shape::Array => "negative array length",
        })
    }
}

/// The version being walked and whether it is flexible (KIP-482: compact
/// lengths, and a tagged-field section closing every struct).
#[derive(Clone, Copy)]
pub(super) struct Walk {
    pub version: i16,
    pub flexible: bool,
}

impl Walk {
    /// Walks a struct: its fields present in this version, in order, then its
    /// tagged-field section in flexible versions.
    pub(super) fn fields(self, cur: &mut Cursor<'_>, fields: &[Field]) -> Result<()> {
        for field in fields {
            if field.tag.is_some() || !field.present_in(self.version) {
                continue;
            }
            if let Err(error) = self.kind(cur, &field.kind) {
                tracing::debug!(field = field.name, version = self.version, %error, "request field rejected");
                return Err(error);
            }
        }
        if self.flexible {
            self.tagged_section(cur, fields)?;
        }
        Ok(())
    }

    pub(super) fn kind(self, cur: &mut Cursor<'_>, kind: &Kind) -> Result<()> {
        match *kind {
            Kind::Int8 | Kind::Bool => cur.take(1, TRUNCATED).map(drop),
            Kind::Int16 => cur.take(2, TRUNCATED).map(drop),
            Kind::Int32 => cur.take(4, TRUNCATED).map(drop),
            Kind::Int64 | Kind::Float64 => cur.take(8, TRUNCATED).map(drop),
            Kind::Uuid => cur.take(16, TRUNCATED).map(drop),
            Kind::String => self.string(cur, false),
            Kind::NullableString => self.string(cur, true),
            Kind::Bytes => self.bytes(cur, false),
            Kind::NullableBytes | Kind::Records => self.bytes(cur, true),
            Kind::Array(element) => self.array(cur, element, false),
            Kind::NullableArray(element) => self.array(cur, element, true),
            Kind::Struct(fields) => self.fields(cur, fields),
            // The decoder reads an INT8 and decodes the struct only when it is 1.
            Kind::NullableStruct(fields) => match cur.take(1, TRUNCATED)?[0] {
                1 => self.fields(cur, fields),
                _ => Ok(()),
            },
        }
    }

    /// Reads a length or count prefix: INT16 (strings) or INT32 (bytes,
    /// arrays) with -1 for null, or in flexible versions an unsigned varint
    /// holding the length plus one, with 0 for null. `None` means null.
    fn length(self, cur: &mut Cursor<'_>, shape: Shape, nullable: bool) -> Result<Option<usize>> {
        let length = match (self.flexible, shape) {
            (true, _) => i64::from(cur.uvarint()?) - 1,
            (false, Shape::String) => i64::from(cur.i16()?),
            (false, Shape::Bytes | Shape::Array) => i64::from(cur.i32()?),
        };
        match length {
            -1 if nullable => Ok(None),
            -1 => Err(shape.null()),
            n => usize::try_from(n).map(Some).map_err(|_| shape.negative()),
        }
    }

    fn string(self, cur: &mut Cursor<'_>, nullable: bool) -> Result<()> {
        let Some(length) = self.length(cur, Shape::String, nullable)? else {
            return Ok(());
        };
        let past_end = GuardError::Malformed("string runs past the end of the frame");
        let text = cur.take(length, past_end)?;
        // The decoder turns strings into `StrBytes`, which refuses invalid
        // UTF-8; checking here keeps "accepted" meaning "decodes".
        std::str::from_utf8(text).map_err(|_| GuardError::Malformed("string is not valid utf-8"))?;
        Ok(())
    }

    fn bytes(self, cur: &mut Cursor<'_>, nullable: bool) -> Result<()> {
        if let Some(length) = self.length(cur, Shape::Bytes, nullable)? {
            cur.take(length, GuardError::Malformed("bytes run past the end of the frame"))?;
        }
        Ok(())
    }

    fn array(self, cur: &mut Cursor<'_>, element: &Kind, nullable: bool) -> Result<()> {
        let Some(count) = self.length(cur, Shape::Array, nullable)? else {
            return Ok(());
        };
        // Each element takes at least `min_bytes` bytes, so a count that the
        // rest of the frame cannot hold is refused before walking anything.
        let min_bytes = self.min_bytes(element).max(1);
        if count > cur.remaining() / min_bytes {
            return Err(GuardError::Malformed("array count exceeds the remaining bytes"));
        }
        for _ in 0..count {
            self.kind(cur, element)?;
        }
        Ok(())
    }

    /// The fewest bytes a value of `kind` takes in this version. Nested arrays
    /// count as their (empty) prefix, so this costs only the direct fields.
    pub(super) fn min_bytes(self, kind: &Kind) -> usize {
        let prefix = |non_compact: usize| if self.flexible { 1 } else { non_compact };
        match *kind {
            Kind::Int8 | Kind::Bool => 1,
            Kind::Int16 => 2,
            Kind::Int32 => 4,
            Kind::Int64 | Kind::Float64 => 8,
            Kind::Uuid => 16,
            Kind::String | Kind::NullableString => prefix(2),
            Kind::Bytes | Kind::NullableBytes | Kind::Records => prefix(4),
            Kind::Array(_) | Kind::NullableArray(_) => prefix(4),
            Kind::NullableStruct(_) => 1,
            Kind::Struct(fields) => {
                let body: usize = fields
                    .iter()
                    .filter(|field| field.tag.is_none() && field.present_in(self.version))
                    .map(|field| self.min_bytes(&field.kind))
                    .sum();
                body + usize::from(self.flexible)
            }
        }
    }

    /// Walks a tagged-field section: an unsigned varint count, then per field
    /// an unsigned varint tag, an unsigned varint size and that many bytes.
    /// Unknown tags are skipped by size (KIP-482); tags the decoder knows are
    /// walked with their schema.
    pub(super) fn tagged_section(self, cur: &mut Cursor<'_>, fields: &[Field]) -> Result<()> {
        let count = cur.uvarint()?;
        // A tagged field takes at least two bytes: its tag and its size.
        if usize::try_from(count).map_or(true, |count| count > cur.remaining() / 2) {
            return Err(GuardError::Malformed("tagged field count exceeds the remaining bytes"));
        }
        for _ in 0..count {
            let tag = cur.uvarint()?;
            let size = cur.uvarint()?;
            let past_end = GuardError::Malformed("tagged field runs past the end of the frame");
            let content = cur.take(size as usize, past_end)?;
            if let Some(field) = fields.iter().find(|field| field.tag == Some(tag)) {
                self.known_tagged(field, content)?;
            }
        }
        Ok(())
    }

    /// The decoder reads a known tagged field by its type and ignores the
    /// size, and refuses a known tag outside the field's versions. The content
    /// must therefore fill the size exactly, or the decoder would go on
    /// reading at a different position than the guard.
    fn known_tagged(self, field: &Field, content: &[u8]) -> Result<()> {
        if !field.present_in(self.version) {
            return Err(GuardError::Malformed("tagged field is not valid in this version"));
        }
        let mut inner = Cursor::new(content);
        self.kind(&mut inner, &field.kind)?;
        if inner.remaining() != 0 {
            return Err(GuardError::Malformed("tagged field size does not match its content"));
        }
        Ok(())
    }
}
