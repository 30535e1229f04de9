//! Plain HTTP/1.1 `GET` on the peer port, for members that are joining a cluster.
//!
//! A member started with `--initial-cluster-state existing` (after `etcdctl member add`) knows
//! neither its own member id nor the cluster id, so it cannot send a valid [`Hello`]. Like
//! etcd, which does `GET <peerURL>/members` against an existing member, it first asks over
//! the peer URL with ordinary HTTP. The peer listener therefore also answers HTTP `GET`s:
//!
//! * a connection whose first four bytes are `GET ` (instead of the `KEELPEER` magic) is an
//!   HTTP request; its head is read (at most [`MAX_REQUEST_HEAD_BYTES`], within the
//!   handshake timeout) and parsed by [`parse_request_head`];
//! * the request path (without any `?query`) is passed to the installed [`HttpHandler`]
//!   (see `PeerTransportConfig::http` and `PeerTransport::set_http_handler`); its
//!   [`HttpReply`] is written with `Content-Length` and `Connection: close`, and the
//!   connection is closed. No handler, or a handler returning `None`, gives `404`;
//! * a malformed or oversized head gets `400`, a head that does not arrive in time `408`, a
//!   handler that panics or returns an unusable reply `500`. Nothing here panics on input.
//!
//! The other direction is [`http_get`], a small blocking client used by the joining member.
//!
//! [`Hello`]: super::handshake::Hello

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers) the peer listener accepts.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 << 10;
/// Longest response head [`http_get`] accepts.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 64 << 10;
/// Largest response body [`http_get`] accepts.
pub const MAX_RESPONSE_BODY_BYTES: usize = 16 << 20;

/// Answers one HTTP `GET` on the peer port. The argument is the request path without the
/// query (e.g. `"/members"`); `None` answers `404 Not Found`. Called on a transport thread,
/// so it must not block for long.
pub type HttpHandler = Arc<dyn Fn(&str) -> Option<HttpReply> + Send + Sync>;

/// The response an [`HttpHandler`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code, 100..=599 (anything else is answered with `500`).
    pub status: u16,
    /// Value of the `Content-Type` header (must not contain control characters).
    pub content_type: String,
    /// The body, sent with a `Content-Length`.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A reply with any status.
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        HttpReply {
            status,
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// `200 OK` with `Content-Type: application/json`.
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        HttpReply::new(200, "application/json", body)
    }

    /// A `text/plain` error reply with the status's reason phrase as body.
    pub fn plain_status(status: u16) -> Self {
        HttpReply::new(
            status,
            "text/plain; charset=utf-8",
            format!("{}\n", reason_phrase(status)),
        )
    }
}

/// Why a request or response head was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpHeadError {
    /// The head is longer than the limit.
    TooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// The input ends before the blank line that closes the head.
    Incomplete,
    /// The request or status line is malformed; the text says how.
    BadStartLine(&'static str),
    /// The method is not `GET`.
    NotGet,
    /// The request target is not an origin-form path (`/...` of visible ASCII).
    BadTarget,
    /// The HTTP version is not `HTTP/1.0` or `HTTP/1.1`.
    BadVersion,
    /// A header line is malformed (no colon, bad name, control characters, folding).
    BadHeader,
    /// `Content-Length` is not a number, or two of them disagree.
    BadContentLength,
    /// A `Transfer-Encoding` other than `identity` or `chunked`.
    UnsupportedTransferEncoding,
}

impl fmt::Display for HttpHeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpHeadError::TooLarge { max } => write!(f, "HTTP head longer than {max} bytes"),
            HttpHeadError::Incomplete => write!(f, "HTTP head is incomplete (no blank line)"),
            HttpHeadError::BadStartLine(how) => write!(f, "malformed HTTP start line: {how}"),
            HttpHeadError::NotGet => write!(f, "HTTP method is not GET"),
            HttpHeadError::BadTarget => {
                write!(f, "HTTP request target is not a path starting with '/'")
            }
            HttpHeadError::BadVersion => write!(f, "HTTP version is not HTTP/1.0 or HTTP/1.1"),
            HttpHeadError::BadHeader => write!(f, "malformed HTTP header line"),
            HttpHeadError::BadContentLength => write!(f, "invalid or conflicting Content-Length"),
            HttpHeadError::UnsupportedTransferEncoding => {
                write!(f, "unsupported Transfer-Encoding")
            }
        }
    }
}

impl std::error::Error for HttpHeadError {}

/// The standard reason phrase of a status code (`"Unknown"` for codes without one here).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Splits a head into lines (ending in `\n`, an optional `\r` before it removed) up to the
/// blank line that ends it. Errors if there is no blank line.
fn head_lines(head: &[u8]) -> Result<Vec<&[u8]>, HttpHeadError> {
    let mut lines = Vec::new();
    let mut rest = head;
    loop {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(HttpHeadError::Incomplete);
        };
        let mut line = &rest[..nl];
        if let [body @ .., b'\r'] = line {
            line = body;
        }
        rest = &rest[nl + 1..];
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Checks the header lines (everything after the start line); calls `each(name, value)` with
/// the value's surrounding whitespace trimmed.
fn check_headers<'a>(
    lines: &[&'a [u8]],
    mut each: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), HttpHeadError>,
) -> Result<(), HttpHeadError> {
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpHeadError::BadHeader)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // RFC 9110 §5.6.2 token characters; this also rejects obsolete line folding (a line
        // starting with whitespace) and whitespace before the colon (RFC 9112 §5.1).
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if name.is_empty() || !name.iter().all(token) {
            return Err(HttpHeadError::BadHeader);
        }
        // Field values: visible characters, spaces, tabs and obs-text; no other controls.
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(HttpHeadError::BadHeader);
        }
        each(name, value.trim_ascii())?;
    }
    Ok(())
}

/// Parses a request head (the bytes up to and including the blank line) and returns the
/// request path without the query. Only `GET` with an origin-form target (`/...`) and
/// HTTP/1.0 or HTTP/1.1 is accepted; lines may end in `\r\n` or `\n`. Never panics.
pub fn parse_request_head(head: &[u8]) -> Result<&str, HttpHeadError> {
    if head.len() > MAX_REQUEST_HEAD_BYTES {
        return Err(HttpHeadError::TooLarge {
            max: MAX_REQUEST_HEAD_BYTES,
        });
    }
    let lines = head_lines(head)?;
    let (request_line, headers) = lines
        .split_first()
        .ok_or(HttpHeadError::BadStartLine("empty request"))?;
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpHeadError::BadStartLine(
            "expected \"GET <path> HTTP/1.1\"",
        ));
    };
    if method != b"GET" {
        return Err(HttpHeadError::NotGet);
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(HttpHeadError::BadVersion);
    }
    if target.first() != Some(&b'/') || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(HttpHeadError::BadTarget);
    }
    check_headers(headers, |_, _| Ok(()))?;
    let path = match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => &target[..end],
        None => target,
    };
    // Visible ASCII was checked above, so this cannot fail; map it anyway rather than unwrap.
    std::str::from_utf8(path).map_err(|_| HttpHeadError::BadTarget)
}

/// What [`parse_response_head`] found in a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code (100..=599).
    pub status: u16,
    /// The `Content-Length`, if present.
    pub content_length: Option<u64>,
    /// Whether the body uses `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

/// Parses a response head (the bytes up to and including the blank line). Never panics.
pub fn parse_response_head(head: &[u8]) -> Result<ResponseHead, HttpHeadError> {
    if head.len() > MAX_RESPONSE_HEAD_BYTES {
        return Err(HttpHeadError::TooLarge {
            max: MAX_RESPONSE_HEAD_BYTES,
        });
    }
    let lines = head_lines(head)?;
    let (status_line, headers) = lines
        .split_first()
        .ok_or(HttpHeadError::BadStartLine("empty response"))?;
    // "HTTP/1.1 200 OK": version, space, three digits, then a space and a reason (optional).
    let (version, rest) = status_line.split_at(status_line.len().min(8));
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(HttpHeadError::BadVersion);
    }
    let digits = match rest {
        [b' ', d @ ..] if d.len() == 3 || (d.len() > 3 && d[3] == b' ') => &d[..3],
        _ => {
            return Err(HttpHeadError::BadStartLine(
                "expected \"HTTP/1.1 <3-digit status> <reason>\"",
            ))
        }
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpHeadError::BadStartLine("status code is not 3 digits"));
    }
    let status = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(HttpHeadError::BadStartLine("status code outside 100..=599"));
    }
    let mut content_length = None;
    let mut chunked = false;
    check_headers(headers, |name, value| {
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(HttpHeadError::BadContentLength)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(HttpHeadError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else if !value.eq_ignore_ascii_case(b"identity") {
                return Err(HttpHeadError::UnsupportedTransferEncoding);
            }
        }
        Ok(())
    })?;
    Ok(ResponseHead {
        status,
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
        content_length: if chunked { None } else { content_length },
        chunked,
    })
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Why [`read_head`] stopped.
#[derive(Debug)]
pub(crate) enum ReadHeadError {
    /// No blank line within the limit.
    TooLarge,
    /// The connection ended before the blank line.
    Closed,
    /// Read error (including a timeout).
    Io(io::Error),
}

/// Position just past the blank line ending a head in `buf`, if `buf` holds one.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).enumerate().find_map(|(i, w)| match w {
        [b'\n', b'\n'] => Some(i + 2),
        [b'\n', b'\r'] if buf.get(i + 2) == Some(&b'\n') => Some(i + 3),
        _ => None,
    })
}

/// Reads from `reader` into `buf` (which may already hold the first bytes) until `buf` holds
/// a complete head, never letting `buf` grow beyond `max` bytes. Returns the head's length;
/// bytes after it (the start of a body) stay in `buf`.
pub(crate) fn read_head(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, ReadHeadError> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(buf) {
            return Ok(end);
        }
        let room = max.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Err(ReadHeadError::TooLarge);
        }
        match reader.read(&mut chunk[..room]) {
            Ok(0) => return Err(ReadHeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadHeadError::Io(e)),
        }
    }
}

/// Reads a request head with `reader`, bounded by [`MAX_REQUEST_HEAD_BYTES`], and parses it;
/// `first` are bytes already read from the connection (e.g. `b"GET "`). Returns the path.
/// Exposed for tests of random byte streams; the transport uses it with a deadline on the
/// socket.
pub fn read_request_path(reader: &mut impl Read, first: &[u8]) -> Result<String, HttpHeadError> {
    read_request_path_io(reader, first).map_err(|e| match e {
        RequestHeadError::Head(e) => e,
        RequestHeadError::Io(_) => HttpHeadError::Incomplete,
    })
}

/// A request head could not be read ([`RequestHeadError::Io`]) or is invalid.
#[derive(Debug)]
pub(crate) enum RequestHeadError {
    Head(HttpHeadError),
    Io(io::Error),
}

pub(crate) fn read_request_path_io(
    reader: &mut impl Read,
    first: &[u8],
) -> Result<String, RequestHeadError> {
    let mut buf = first.to_vec();
    let end = match read_head(reader, &mut buf, MAX_REQUEST_HEAD_BYTES) {
        Ok(end) => end,
        Err(ReadHeadError::TooLarge) => {
            return Err(RequestHeadError::Head(HttpHeadError::TooLarge {
                max: MAX_REQUEST_HEAD_BYTES,
            }))
        }
        Err(ReadHeadError::Closed) => {
            return Err(RequestHeadError::Head(HttpHeadError::Incomplete))
        }
        Err(ReadHeadError::Io(e)) => return Err(RequestHeadError::Io(e)),
    };
    parse_request_head(&buf[..end])
        .map(str::to_string)
        .map_err(RequestHeadError::Head)
}

/// Encodes a complete response: status line, `Content-Type`, `Content-Length`,
/// `Connection: close`, blank line, body. A reply with a status outside 100..=599 or a
/// content type with control characters is replaced by a `500`.
pub fn encode_response(reply: &HttpReply) -> Vec<u8> {
    let usable = (100..=599).contains(&reply.status)
        && !reply.content_type.bytes().any(|b| b < 0x20 || b == 0x7f);
    if !usable {
        return encode_response(&HttpReply::plain_status(500));
    }
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason_phrase(reply.status),
        reply.content_type,
        reply.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&reply.body);
    out
}

/// A socket reader that gives every read only the time left until a deadline, so a peer
/// dribbling one byte at a time cannot hold the connection longer than the deadline.
pub(crate) struct DeadlineReader<'a> {
    pub stream: &'a TcpStream,
    pub deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

fn invalid_data(addr: SocketAddr, path: &str, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("GET http://{addr}{path}: {what}"),
    )
}

/// Adds the request context to an I/O error (timeouts become `TimedOut`).
fn with_context(addr: SocketAddr, path: &str, e: io::Error) -> io::Error {
    let kind = match e.kind() {
        ErrorKind::WouldBlock => ErrorKind::TimedOut,
        kind => kind,
    };
    io::Error::new(kind, format!("GET http://{addr}{path}: {e}"))
}

/// Performs one blocking HTTP/1.1 `GET path` against `addr` (with `Connection: close`) and
/// returns the status code and body. `timeout` bounds the whole exchange (connect, request,
/// response). The body is framed by `Content-Length`, by chunked encoding, or by the end of
/// the connection, and may be at most [`MAX_RESPONSE_BODY_BYTES`].
///
/// Errors are `io::Error`s whose message names the URL and the problem: `InvalidInput` for
/// a bad path, `TimedOut`, `UnexpectedEof` when the server closes early, `InvalidData` for
/// a malformed or oversized response, and the socket's own errors. Never panics.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<(u16, Vec<u8>)> {
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("GET http://{addr}{path}: the path must start with '/' and be visible ASCII"),
        ));
    }
    let deadline = Instant::now() + timeout;
    let ctx = |e| with_context(addr, path, e);
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(ctx)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left)).map_err(ctx)?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nUser-Agent: keel\r\nConnection: close\r\n\r\n"
    );
    (&stream).write_all(request.as_bytes()).map_err(ctx)?;

    let mut reader = DeadlineReader {
        stream: &stream,
        deadline,
    };
    let mut buf = Vec::new();
    let end = match read_head(&mut reader, &mut buf, MAX_RESPONSE_HEAD_BYTES) {
        Ok(end) => end,
        Err(ReadHeadError::TooLarge) => {
            return Err(invalid_data(
                addr,
                path,
                format!("response head longer than {MAX_RESPONSE_HEAD_BYTES} bytes"),
            ))
        }
        Err(ReadHeadError::Closed) => {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "GET http://{addr}{path}: connection closed before a complete response head ({} bytes received)",
                    buf.len()
                ),
            ))
        }
        Err(ReadHeadError::Io(e)) => return Err(ctx(e)),
    };
    let head = parse_response_head(&buf[..end]).map_err(|e| invalid_data(addr, path, e))?;
    let already = buf.split_off(end);
    let body = if head.chunked {
        read_chunked(&mut reader, already)
    } else {
        read_body(&mut reader, already, head.content_length)
    };
    let body = body.map_err(|e| match e {
        BodyError::Io(e) => ctx(e),
        BodyError::Eof(what) => io::Error::new(
            ErrorKind::UnexpectedEof,
            format!("GET http://{addr}{path}: connection closed early: {what}"),
        ),
        BodyError::Invalid(what) => invalid_data(addr, path, what),
    })?;
    Ok((head.status, body))
}

enum BodyError {
    Io(io::Error),
    Eof(String),
    Invalid(String),
}

fn too_large(len: u64) -> BodyError {
    BodyError::Invalid(format!(
        "response body of {len}+ bytes exceeds the limit of {MAX_RESPONSE_BODY_BYTES} bytes"
    ))
}

/// Reads until `body` holds `want` bytes (or, with `want == None`, until the connection ends).
fn read_body(
    reader: &mut impl Read,
    mut body: Vec<u8>,
    want: Option<u64>,
) -> Result<Vec<u8>, BodyError> {
    let max = MAX_RESPONSE_BODY_BYTES as u64;
    if want.is_some_and(|n| n > max) {
        return Err(too_large(want.unwrap_or(0)));
    }
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let len = body.len() as u64;
        if let Some(n) = want {
            if len >= n {
                // Extra bytes after the declared body are ignored (the connection closes).
                body.truncate(n as usize);
                return Ok(body);
            }
        } else if len > max {
            return Err(too_large(len));
        }
        match reader.read(&mut chunk) {
            Ok(0) => {
                return match want {
                    Some(n) => Err(BodyError::Eof(format!("{len} of {n} body bytes received"))),
                    None => Ok(body),
                }
            }
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(BodyError::Io(e)),
        }
    }
}

/// Bytes read from a connection and not yet consumed, for the chunked decoder.
struct Buffered<'r, R: Read> {
    reader: &'r mut R,
    input: Vec<u8>,
    pos: usize,
}

impl<R: Read> Buffered<'_, R> {
    /// Reads until at least `n` unconsumed bytes are buffered.
    fn fill(&mut self, n: usize) -> Result<(), BodyError> {
        let mut chunk = [0u8; 16 << 10];
        while self.input.len() - self.pos < n {
            match self.reader.read(&mut chunk) {
                Ok(0) => return Err(BodyError::Eof("inside a chunked body".to_string())),
                Ok(k) => self.input.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(BodyError::Io(e)),
            }
        }
        Ok(())
    }

    /// Consumes one line and returns it without its line end; lines are at most 4 KiB.
    fn line(&mut self) -> Result<Vec<u8>, BodyError> {
        loop {
            let rest = &self.input[self.pos..];
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let mut line = rest[..nl].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.pos += nl + 1;
                return Ok(line);
            }
            if rest.len() > 4096 {
                return Err(BodyError::Invalid("chunk header line too long".to_string()));
            }
            let have = rest.len();
            self.fill(have + 1)?;
        }
    }

    /// Consumes `n` bytes.
    fn take(&mut self, n: usize) -> Result<&[u8], BodyError> {
        self.fill(n)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.input[start..start + n])
    }
}

/// Decodes a chunked body (RFC 9112 §7.1): `<hex size>[;ext]\r\n<data>\r\n` ... `0\r\n`,
/// then optional trailer lines and a blank line.
fn read_chunked(reader: &mut impl Read, already: Vec<u8>) -> Result<Vec<u8>, BodyError> {
    let mut input = Buffered {
        reader,
        input: already,
        pos: 0,
    };
    let mut body = Vec::new();
    loop {
        let size_line = input.line()?;
        let hex = match size_line.iter().position(|&b| b == b';') {
            Some(semi) => &size_line[..semi],
            None => &size_line[..],
        }
        .trim_ascii();
        let size = (!hex.is_empty() && hex.len() <= 15 && hex.iter().all(u8::is_ascii_hexdigit))
            .then(|| {
                hex.iter().fold(0u64, |n, &d| {
                    (n << 4) | u64::from((d as char).to_digit(16).unwrap_or(0))
                })
            })
            .ok_or_else(|| BodyError::Invalid("malformed chunk size".to_string()))?;
        if size == 0 {
            // Trailer fields until the blank line.
            while !input.line()?.is_empty() {}
            return Ok(body);
        }
        let total = body.len() as u64 + size;
        if total > MAX_RESPONSE_BODY_BYTES as u64 {
            return Err(too_large(total));
        }
        body.extend_from_slice(input.take(size as usize)?);
        if !input.line()?.is_empty() {
            return Err(BodyError::Invalid(
                "chunk data not followed by a line end".to_string(),
            ));
        }
        // Drop consumed input so the buffer stays small.
        if input.pos > (64 << 10) {
            input.input.drain(..input.pos);
            input.pos = 0;
        }
    }
}
