//! A minimal HTTP/1.1 server side for the same port as gRPC: `GET /health`, `/version`,
//! `/metrics` and the like. Requests are parsed here; the server answers them through
//! `Handler::on_http1` with an [`Http1Response`].
//!
//! Supported: request line + headers up to 16 KiB, `Content-Length` bodies up to 1 MiB,
//! keep-alive (HTTP/1.1 default; `Connection: close` and HTTP/1.0 close). Not supported:
//! chunked request bodies (501) and pipelining beyond sequential processing.

#![warn(missing_docs)]

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// A parsed HTTP/1.x request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http1Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target, e.g. `/health`.
    pub path: String,
    /// Headers with lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body (empty without Content-Length).
    pub body: Vec<u8>,
}

impl Http1Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http1Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Content-Type header value.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

impl Http1Response {
    /// A response with the given parts.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Http1Response {
            status,
            content_type: content_type.to_string(),
            body: body.into(),
        }
    }

    /// 404 Not Found.
    pub fn not_found() -> Self {
        Http1Response::new(404, "text/plain; charset=utf-8", "404 page not found\n")
    }
}

/// Result of trying to parse a request from buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// Need more bytes.
    Incomplete,
    /// A complete request.
    Request {
        /// The request.
        request: Http1Request,
        /// Bytes of the buffer it used.
        consumed: usize,
        /// Whether the connection stays open after the response.
        keep_alive: bool,
    },
    /// Malformed or unsupported: answer with this status and close.
    Error(u16),
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses one request from the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Parse {
    let Some(head_end) = find_head_end(buf) else {
        return if buf.len() > MAX_HEAD {
            Parse::Error(431)
        } else {
            Parse::Incomplete
        };
    };
    if head_end > MAX_HEAD {
        return Parse::Error(431);
    }
    let Ok(head) = std::str::from_utf8(&buf[..head_end - 4]) else {
        return Parse::Error(400);
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parse::Error(400);
    };
    if method.is_empty() || !path.starts_with('/') && path != "*" {
        return Parse::Error(400);
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Parse::Error(505),
    };
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Error(400);
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name.is_empty() || name.contains(' ') {
            return Parse::Error(400);
        }
        match name.as_str() {
            "content-length" => match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => content_length = n,
                Ok(_) => return Parse::Error(413),
                Err(_) => return Parse::Error(400),
            },
            "transfer-encoding" => return Parse::Error(501),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            _ => {}
        }
        headers.push((name, value));
    }
    if buf.len() < head_end + content_length {
        return Parse::Incomplete;
    }
    Parse::Request {
        request: Http1Request {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body: buf[head_end..head_end + content_length].to_vec(),
        },
        consumed: head_end + content_length,
        keep_alive,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Serializes a response.
pub fn write_response(resp: &Http1Response, keep_alive: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n",
            resp.status,
            reason(resp.status),
            resp.content_type,
            resp.body.len(),
            if keep_alive {
                ""
            } else {
                "Connection: close\r\n"
            }
        )
        .as_bytes(),
    );
    out.extend_from_slice(&resp.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_get_and_body() {
        let raw = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /v3/kv/range HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let Parse::Request {
            request,
            consumed,
            keep_alive,
        } = parse_request(raw)
        else {
            panic!()
        };
        assert_eq!(
            (request.method.as_str(), request.path.as_str(), keep_alive),
            ("GET", "/health", true)
        );
        assert_eq!(request.header("host"), Some("x"));
        let Parse::Request {
            request,
            keep_alive,
            ..
        } = parse_request(&raw[consumed..])
        else {
            panic!()
        };
        assert_eq!((request.body.as_slice(), keep_alive), (&b"{}"[..], false));
    }

    #[test]
    fn bad_requests() {
        assert_eq!(parse_request(b"GET /x HTTP/1.1\r\n"), Parse::Incomplete);
        assert_eq!(parse_request(b"GARBAGE\r\n\r\n"), Parse::Error(400));
        assert_eq!(parse_request(b"GET / HTTP/9\r\n\r\n"), Parse::Error(505));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n"),
            Parse::Error(400)
        );
        assert_eq!(parse_request(&vec![b'a'; MAX_HEAD + 1]), Parse::Error(431));
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parse::Error(501)
        );
    }
}
