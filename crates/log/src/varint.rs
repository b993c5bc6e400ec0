//! Zigzag varints and varlongs, the integer encoding of records inside a v2 record batch.
//!
//! Decoders return `None` on truncated or over-long input instead of panicking, because their input is untrusted.

/// Decodes a zigzag varint (at most 5 bytes). Returns the value and the bytes it used.
pub fn read_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(5) {
        if i == 4 && byte > 0x0f {
            return None;
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i32) ^ -((value & 1) as i32);
            return Some((decoded, i + 1));
        }
    }
    None
}

/// Decodes a zigzag varlong (at most 10 bytes). Returns the value and the bytes it used.
pub fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        if i == 9 && byte > 0x01 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Some((decoded, i + 1));
        }
    }
    None
}

/// Appends `value` as a zigzag varint.
pub fn write_varint(value: i32, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `value` as a zigzag varlong.
pub fn write_varlong(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Goal: every i32/i64 survives an encode/decode roundtrip and the decoder reports the exact length used.
        #[test]
        fn varint_roundtrip(v in any::<i32>()) {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            prop_assert_eq!(read_varint(&out), Some((v, out.len())));
        }

        #[test]
        fn varlong_roundtrip(v in any::<i64>()) {
            let mut out = Vec::new();
            write_varlong(v, &mut out);
            prop_assert_eq!(read_varlong(&out), Some((v, out.len())));
        }

        // Goal: arbitrary bytes never panic the decoders.
        #[test]
        fn decoders_total(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _decoded_int = read_varint(&bytes);
            let _decoded_long = read_varlong(&bytes);
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(read_varlong(&[0xff; 10]), None);
        assert_eq!(read_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(read_varint(&[0x02]), Some((1, 1)));
    }
}
