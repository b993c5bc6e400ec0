//! The Kafka wire protocol at the edge of the broker: framing with bounds,
//! the pre-decode guard, request decoding and response encoding.
//!
//! A request travels: [`FrameReader`] (length prefix checked against
//! `socket.request.max.bytes` before any allocation) → [`guard::check_request`]
//! (every count in the frame is backed by real bytes) → `kafka-protocol`
//! decoding → a handler → [`encode_response`].

pub mod guard;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes read from the socket at most per read call; a frame's buffer grows by
/// at most this much before the bytes have actually arrived, so a client that
/// announces a large frame and sends nothing costs no memory (only budget).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a connection's byte stream cannot be read further.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    #[error("frame length {length} exceeds socket.request.max.bytes {max}")]
    TooLarge { length: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// A frame and its share of the broker-wide request memory budget
/// (`queued.max.request.bytes`), held until the request is answered.
pub struct Frame {
    pub bytes: Bytes,
    pub budget: OwnedSemaphorePermit,
}

/// Reads length-prefixed frames into a reused buffer, charging them to
/// `budget`, a semaphore counting bytes shared by all connections. A frame's
/// whole length is reserved, at once, as soon as its length prefix is read
/// and before its body is; when requests in progress hold the budget, reading
/// waits, which pushes back on clients through TCP instead of growing memory.
/// Reserving whole frames (as Kafka's request memory pool does) means a
/// reader that waits holds nothing, so connections can never wait for each
/// other's partly read frames; reserving piece by piece could end with every
/// permit held by unfinished frames and nobody able to finish. A frame's
/// memory still grows only as its bytes arrive. (Up to one read chunk of the
/// next frame, and a frame's 4-byte prefix, can sit in a connection's buffer
/// uncharged.)
pub struct FrameReader<R> {
    reader: R,
    buf: BytesMut,
    frame_bytes_max: usize,
    budget: Arc<Semaphore>,
    /// What the frame being read holds of the budget; kept here so that a
    /// cancelled read loses nothing.
    reserved: Option<OwnedSemaphorePermit>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// `frame_bytes_max` must not exceed the budget's permits, or a frame of
    /// that size could never be read.
    pub fn new(reader: R, frame_bytes_max: usize, budget: Arc<Semaphore>) -> Self {
        FrameReader { reader, buf: BytesMut::with_capacity(8 * 1024), frame_bytes_max, budget, reserved: None }
    }

    /// The next whole frame without its length prefix, or `None` on a clean
    /// end of stream between frames. Cancel-safe: partial data and the
    /// frame's reservation stay with the reader.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(length) = self.announced_length()? {
                // The whole frame at once; every frame holds at least one permit so that empty frames count too.
                self.reserve(length.max(1)).await;
                let buffered = self.buf.len() - 4;
                if buffered >= length {
                    self.buf.advance(4);
                    let bytes = self.buf.split_to(length).freeze();
                    let budget = self.reserved.take().expect("reserved above");
                    return Ok(Some(Frame { bytes, budget }));
                }
                self.buf.reserve((length - buffered).min(READ_CHUNK_BYTES));
            } else {
                self.buf.reserve(READ_CHUNK_BYTES.min(4096));
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
            }
        }
    }

    /// Reserves `bytes` for the current frame (once per frame), waiting for budget.
    async fn reserve(&mut self, bytes: usize) {
        let held = self.reserved.as_ref().map_or(0, |p| p.num_permits());
        if held >= bytes {
            return;
        }
        let more = u32::try_from(bytes - held).expect("frame lengths are bounded by an i32");
        let permit = self.budget.clone().acquire_many_owned(more).await.expect("the budget is never closed");
        match &mut self.reserved {
            Some(reserved) => reserved.merge(permit),
            None => self.reserved = Some(permit),
        }
    }

    /// Changes the largest frame accepted from now on.
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: usize) {
        self.frame_bytes_max = frame_bytes_max;
    }

    fn announced_length(&self) -> Result<Option<usize>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let length = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength(length))?;
        if length > self.frame_bytes_max {
            return Err(FrameError::TooLarge { length, max: self.frame_bytes_max });
        }
        Ok(Some(length))
    }
}

/// A decoded request.
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

/// Why a frame that passed the guard could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {api_key:?} v{version}: {reason}")]
pub struct DecodeError {
    pub api_key: i16,
    pub version: i16,
    pub reason: String,
}

/// Decodes a frame that [`guard::check_request`] accepted.
pub fn decode_request(frame: Bytes, summary: &guard::FrameSummary) -> Result<Request, DecodeError> {
    let err = |reason: String| DecodeError { api_key: summary.api_key, version: summary.api_version, reason };
    let api_key = ApiKey::try_from(summary.api_key).map_err(|_| err("unknown api key".into()))?;
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, summary.header_version).map_err(|e| err(e.to_string()))?;
    let body = RequestKind::decode(api_key, &mut buf, summary.api_version).map_err(|e| err(e.to_string()))?;
    Ok(Request { header, api_key, body })
}

/// Encodes a response with its length prefix and header. ApiVersions responses
/// always use header v0, so a client that does not yet know our versions can
/// read them (KIP-511).
pub fn encode_response(api_key: ApiKey, version: i16, correlation_id: i32, body: &ResponseKind) -> Bytes {
    let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(version) };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header.encode(&mut buf, header_version).expect("response headers always encode");
    if let Err(e) = body.encode(&mut buf, version) {
        // Our responses are built from validated data; an encoding failure is a bug.
        panic!("cannot encode {api_key:?} v{version} response: {e}");
    }
    let length = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&length.to_be_bytes());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames_of(input: Vec<u8>, max: usize) -> Vec<Result<Option<Bytes>, String>> {
        let mut reader = FrameReader::new(&input[..], max, Arc::new(Semaphore::new(1 << 20)));
        let mut out = Vec::new();
        loop {
            let r = reader.next_frame().await.map(|f| f.map(|f| f.bytes)).map_err(|e| e.to_string());
            let done = !matches!(r, Ok(Some(_)));
            out.push(r);
            if done {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn reads_frames_and_clean_eof() {
        let mut input = vec![0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0];
        input.extend_from_slice(&[0, 0, 0, 1, b'z']);
        let frames = frames_of(input, 100).await;
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].as_ref().unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(frames[1].as_ref().unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(frames[2].as_ref().unwrap().as_deref(), Some(&b"z"[..]));
        assert!(matches!(frames[3], Ok(None)));
    }

    #[tokio::test]
    async fn rejects_bad_lengths_and_truncation() {
        let frames = frames_of(vec![0xff, 0xff, 0xff, 0xfe], 100).await;
        assert!(frames[0].as_ref().unwrap_err().contains("negative"));
        let frames = frames_of(vec![0x7f, 0xff, 0xff, 0xff], 100).await;
        assert!(frames[0].as_ref().unwrap_err().contains("exceeds"));
        let frames = frames_of(vec![0, 0, 0, 10, 1, 2], 100).await;
        assert!(frames[0].as_ref().unwrap_err().contains("middle"));
        let frames = frames_of(vec![0, 0], 100).await;
        assert!(frames[0].as_ref().unwrap_err().contains("middle"));
    }

    /// A connection that delivers at most 64 KiB per read and is not ready every other time it is polled, so two
    /// readers polled together interleave.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        ready: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            self.ready = false;
            let n = (self.data.len() - self.pos).min(64 * 1024).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    // Goal: frames that together exceed the budget never deadlock: each reader reserves its whole frame before
    // reading it, so a waiting reader holds nothing. Method: a 2 MiB budget and two connections whose 1.5 MiB
    // frames have fully arrived; both readers run at once; one must get its frame, and the other once the first
    // frame (and its share of the budget) is dropped. Charging bytes as they arrive let both readers stall at about
    // 1 MiB each.
    #[tokio::test]
    async fn frames_larger_than_half_the_budget_do_not_deadlock() {
        const LENGTH: usize = 1_536 * 1024;
        let budget = Arc::new(Semaphore::new(2 << 20));
        let mut frame = (LENGTH as i32).to_be_bytes().to_vec();
        frame.resize(4 + LENGTH, 7);
        let trickle = || Trickle { data: frame.clone(), pos: 0, ready: false };
        let (mut a, mut b) =
            (FrameReader::new(trickle(), LENGTH, budget.clone()), FrameReader::new(trickle(), LENGTH, budget.clone()));
        let limit = std::time::Duration::from_secs(5);
        let first = tokio::time::timeout(limit, async {
            tokio::select! {
                got = a.next_frame() => (got, true),
                got = b.next_frame() => (got, false),
            }
        })
        .await
        .expect("one reader gets its frame");
        let (got, from_a) = first;
        let got = got.unwrap().expect("a frame");
        assert_eq!(got.bytes.len(), LENGTH);
        drop(got);
        let other = if from_a { b.next_frame() } else { a.next_frame() };
        let second =
            tokio::time::timeout(limit, other).await.expect("the other reader gets its frame once the budget is free");
        assert_eq!(second.unwrap().expect("a frame").bytes.len(), LENGTH);
    }
}
