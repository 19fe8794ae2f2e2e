//! The HTTP front of `serve`: each request head is read and checked before
//! hyper parses it, so a request hyper would refuse with a bare status and an
//! empty body (a bad `Content-Length`, a control character in a header, a
//! URI or a head too long, a body over the limit) gets the command API's
//! JSON error body instead, like every other refusal.
//!
//! A connection stays keep-alive: after a valid head, exactly its
//! `Content-Length` bytes pass before the next head is read. A chunked body
//! (`Transfer-Encoding`) passes unchecked to hyper, and so does the rest of
//! its connection. A refused request is answered and its connection closed.
//!
//! Slow senders hold no connection for long: a head begun must be complete
//! within [`HEAD_TIMEOUT`] (else 408 `RequestTimeout`, closed), and a
//! connection waiting for its next request is closed after [`IDLE_TIMEOUT`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use lambda_http::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use outbox_lambda::ApiError;

/// The longest request head read, in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest request target, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most headers a request may carry.
pub const MAX_HEADERS: usize = 64;
/// How long a request head may take from its first byte to its blank line.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A listener whose connections are [`Guarded`].
pub struct GuardedListener {
    listener: TcpListener,
    max_body: u64,
}

impl GuardedListener {
    /// Guards `listener`'s connections, refusing bodies over `max_body` bytes.
    pub fn new(listener: TcpListener, max_body: u64) -> Self {
        Self { listener, max_body }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, address)) => return (Guarded::new(stream, self.max_body), address),
                // Out of file descriptors, or a connection reset before it was
                // accepted: wait a moment, as axum's own listener does.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// How the body after a valid head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: the rest of the connection passes unchecked.
    Unchecked,
}

/// Checks a complete request head (up to and including its blank line).
///
/// # Errors
/// The [`ApiError`] to answer instead.
pub fn check_head(head: &[u8], max_body: u64) -> Result<Framing, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ApiError::malformed("the request head is incomplete"))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "HeadersTooLarge",
                format!("a request carries at most {MAX_HEADERS} headers"),
            ))
        }
        Err(httparse::Error::Version) => {
            return Err(ApiError::new(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "HttpVersionNotSupported",
                "the request must be HTTP/1.0 or HTTP/1.1",
            ))
        }
        Err(error) => {
            return Err(ApiError::malformed(format!(
                "the request head is not valid HTTP: {error}"
            )))
        }
    }
    if request.path.is_some_and(|path| path.len() > MAX_URI_BYTES) {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "UriTooLong",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let mut lengths = values(request.headers, "content-length").peekable();
    let chunked = values(request.headers, "transfer-encoding")
        .next()
        .is_some();
    if chunked && lengths.peek().is_some() {
        return Err(ApiError::malformed(
            "a request carries Content-Length or Transfer-Encoding, not both",
        ));
    }
    if chunked {
        return Ok(Framing::Unchecked);
    }
    let mut length = None;
    for raw in lengths {
        let parsed = std::str::from_utf8(raw)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        match (parsed, length) {
            (None, _) => {
                return Err(ApiError::malformed(
                    "Content-Length must be a whole number of bytes",
                ))
            }
            (Some(value), Some(seen)) if value != seen => {
                return Err(ApiError::malformed(
                    "Content-Length is given twice, differently",
                ))
            }
            (Some(value), _) => length = Some(value),
        }
    }
    let length = length.unwrap_or(0);
    if length > max_body {
        return Err(too_large(max_body));
    }
    Ok(Framing::Length(length))
}

/// The values of the headers called `name`.
fn values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h [u8]> {
    headers
        .iter()
        .filter(move |header| header.name.eq_ignore_ascii_case(name))
        .map(|header| header.value)
}

/// The refusal of a body over `max_body` bytes.
pub fn too_large(max_body: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "TooLarge",
        format!("the body exceeds {max_body} bytes"),
    )
}

/// `error` as a complete HTTP/1.1 response that closes the connection.
fn response_bytes(error: &ApiError) -> Vec<u8> {
    let body = error.body();
    let status = error.status();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes()
}

/// Where a connection is.
#[derive(Debug)]
enum Phase {
    /// Reading a request head.
    Head,
    /// Handing hyper `head` bytes of a checked head, then its body.
    Forward { head: usize, then: Framing },
    /// Handing hyper this many more body bytes.
    Body(u64),
    /// Handing hyper the rest of the connection unchecked.
    Unchecked,
    /// Writing a refusal, then closing.
    Refuse { response: Vec<u8>, written: usize },
    /// Closed.
    Done,
}

/// A connection whose request heads are checked before hyper reads them.
pub struct Guarded<S> {
    inner: S,
    max_body: u64,
    buffer: Vec<u8>,
    phase: Phase,
    timeouts: (Duration, Duration),
    /// When the head being read (or waited for) must be complete, and
    /// whether it has begun.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, bool)>,
}

impl<S> Guarded<S> {
    /// Guards `inner`, refusing bodies over `max_body` bytes, with
    /// [`HEAD_TIMEOUT`] and [`IDLE_TIMEOUT`].
    pub fn new(inner: S, max_body: u64) -> Self {
        Self::with_timeouts(inner, max_body, HEAD_TIMEOUT, IDLE_TIMEOUT)
    }

    /// Guards `inner` with a time limit for a head (from its first byte) and
    /// for the wait before one.
    pub fn with_timeouts(inner: S, max_body: u64, head: Duration, idle: Duration) -> Self {
        Self {
            inner,
            max_body,
            buffer: Vec::new(),
            phase: Phase::Head,
            timeouts: (head, idle),
            deadline: None,
        }
    }

    /// Whether the head being read (or waited for) ran out of time; a head's
    /// clock starts at its first byte, an idle one's when the wait began.
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let begun = !self.buffer.is_empty();
        let (head, idle) = self.timeouts;
        let restart = match &self.deadline {
            None => true,
            Some((_, was_begun)) => begun && !was_begun,
        };
        if restart {
            let limit = if begun { head } else { idle };
            self.deadline = Some((Box::pin(tokio::time::sleep(limit)), begun));
        }
        self.deadline
            .as_mut()
            .is_some_and(|(sleep, _)| sleep.as_mut().poll(cx).is_ready())
    }

    /// Moves up to `limit` buffered bytes into `out`; how many.
    fn give(&mut self, out: &mut ReadBuf<'_>, limit: usize) -> usize {
        let count = limit.min(out.remaining()).min(self.buffer.len());
        out.put_slice(&self.buffer[..count]);
        self.buffer.drain(..count);
        count
    }

    /// The end of the head in the buffer, after its blank line.
    fn head_end(&self) -> Option<usize> {
        self.buffer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|at| at + 4)
    }

    fn refuse(&mut self, error: &ApiError) {
        tracing::info!(
            status = error.status().as_u16(),
            code = error.code(),
            "request refused before its handler"
        );
        self.phase = Phase::Refuse {
            response: response_bytes(error),
            written: 0,
        };
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Done => return Poll::Ready(Ok(())),
                Phase::Refuse { response, written } => {
                    while *written < response.len() {
                        let sent = ready!(
                            Pin::new(&mut this.inner).poll_write(cx, &response[*written..])
                        )?;
                        if sent == 0 {
                            break;
                        }
                        *written += sent;
                    }
                    let _ = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                    this.phase = Phase::Done;
                }
                Phase::Forward { head, then } => {
                    let (left, then) = (*head, *then);
                    if left == 0 {
                        this.phase = match then {
                            Framing::Length(length) => Phase::Body(length),
                            Framing::Unchecked => Phase::Unchecked,
                        };
                        continue;
                    }
                    let given = this.give(out, left);
                    this.phase = Phase::Forward {
                        head: left - given,
                        then,
                    };
                    return Poll::Ready(Ok(()));
                }
                Phase::Body(0) => this.phase = Phase::Head,
                Phase::Body(left) => {
                    let left_now = *left;
                    let limit = usize::try_from(left_now).unwrap_or(usize::MAX);
                    let given = if this.buffer.is_empty() {
                        // Read into an initialised part of `out`, so that
                        // advancing over what was read is always allowed.
                        let room = out.remaining().min(limit);
                        let mut limited = ReadBuf::new(out.initialize_unfilled_to(room));
                        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                        let read = limited.filled().len();
                        out.advance(read);
                        if read == 0 {
                            return Poll::Ready(Ok(()));
                        }
                        read
                    } else {
                        this.give(out, limit)
                    };
                    this.phase = Phase::Body(left_now - given as u64);
                    return Poll::Ready(Ok(()));
                }
                Phase::Unchecked => {
                    if this.buffer.is_empty() {
                        return Pin::new(&mut this.inner).poll_read(cx, out);
                    }
                    this.give(out, usize::MAX);
                    return Poll::Ready(Ok(()));
                }
                Phase::Head => {
                    if let Some(end) = this.head_end() {
                        this.deadline = None;
                        match check_head(&this.buffer[..end], this.max_body) {
                            Ok(then) => this.phase = Phase::Forward { head: end, then },
                            Err(error) => this.refuse(&error),
                        }
                        continue;
                    }
                    if this.timed_out(cx) {
                        this.deadline = None;
                        if this.buffer.is_empty() {
                            this.phase = Phase::Done;
                            return Poll::Ready(Ok(()));
                        }
                        this.refuse(&ApiError::new(
                            StatusCode::REQUEST_TIMEOUT,
                            "RequestTimeout",
                            format!(
                                "the request head did not arrive whole within {} s",
                                this.timeouts.0.as_secs_f64()
                            ),
                        ));
                        continue;
                    }
                    if this.buffer.len() > MAX_HEAD_BYTES {
                        this.refuse(&ApiError::new(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                            "HeadersTooLarge",
                            format!("the request head is longer than {MAX_HEAD_BYTES} bytes"),
                        ));
                        continue;
                    }
                    let mut chunk = [0u8; 8192];
                    let mut read = ReadBuf::new(&mut chunk);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                    if read.filled().is_empty() {
                        // The peer closed: what it sent of a head is no request.
                        this.phase = Phase::Done;
                        return Poll::Ready(Ok(()));
                    }
                    this.buffer.extend_from_slice(read.filled());
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: u64 = 1024 * 1024;

    fn code(head: &[u8]) -> (u16, &'static str) {
        let error = check_head(head, LIMIT).unwrap_err();
        (error.status().as_u16(), error.code())
    }

    #[test]
    fn heads_hyper_would_refuse_bare_are_refused_with_a_code() {
        assert_eq!(
            code(b"POST /repairs HTTP/1.1\r\ncontent-length: ten\r\n\r\n"),
            (400, "MalformedRequest")
        );
        assert_eq!(
            code(b"POST /repairs HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n"),
            (400, "MalformedRequest")
        );
        assert_eq!(
            code(b"POST /repairs HTTP/1.1\r\nx-note: a\x01b\r\n\r\n"),
            (400, "MalformedRequest")
        );
        assert_eq!(
            code(b"POST /repairs HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"),
            (400, "MalformedRequest")
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES));
        assert_eq!(code(long.as_bytes()), (414, "UriTooLong"));
        let many: String = (0..=MAX_HEADERS).map(|n| format!("x-{n}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(code(many.as_bytes()), (431, "HeadersTooLarge"));
        assert_eq!(
            code(b"POST /repairs HTTP/1.1\r\ncontent-length: 1048577\r\n\r\n"),
            (413, "TooLarge")
        );
        assert_eq!(
            check_head(b"POST /r HTTP/1.1\r\nContent-Length: 2\r\n\r\n", LIMIT).unwrap(),
            Framing::Length(2)
        );
        assert_eq!(
            check_head(b"GET /r HTTP/1.1\r\n\r\n", LIMIT).unwrap(),
            Framing::Length(0)
        );
        assert_eq!(
            check_head(
                b"POST /r HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
                LIMIT
            )
            .unwrap(),
            Framing::Unchecked
        );
    }

    /// What the guarded side hands on, and what its peer receives back.
    async fn through(sent: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut guarded = Guarded::new(server, LIMIT);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(sent).await.unwrap();
        client_write.shutdown().await.unwrap();
        let mut passed = Vec::new();
        guarded.read_to_end(&mut passed).await.unwrap();
        drop(guarded);
        let mut answered = Vec::new();
        client_read.read_to_end(&mut answered).await.unwrap();
        (passed, answered)
    }

    #[tokio::test]
    async fn valid_requests_pass_whole_one_after_another_and_a_bad_one_is_answered_in_json() {
        let first = b"POST /a HTTP/1.1\r\ncontent-length: 4\r\n\r\nbody";
        let second = b"GET /b HTTP/1.1\r\n\r\n";
        let bad = b"POST /c HTTP/1.1\r\ncontent-length: x\r\n\r\n";
        let sent = [&first[..], second, bad].concat();
        let (passed, answered) = through(&sent).await;
        assert_eq!(passed, [&first[..], second].concat());
        let answer = String::from_utf8(answered).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        assert!(answer.ends_with(r#""code":"MalformedRequest","message":"Content-Length must be a whole number of bytes"}}"#), "{answer}");
    }

    /// A sender that trickles a head is answered 408 and cut off once the
    /// head's time is up; one that sends nothing is closed after the idle time.
    #[tokio::test]
    async fn a_slow_head_is_refused_and_an_idle_connection_closed() {
        let short = Duration::from_millis(200);
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut guarded = Guarded::with_timeouts(server, LIMIT, short, 4 * short);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(b"GET /a HTTP/1.1\r\nhost")
            .await
            .unwrap();
        let mut passed = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), guarded.read_to_end(&mut passed));
        read.await.expect("the guard gives up on the head").unwrap();
        assert!(passed.is_empty());
        drop(guarded);
        let mut answered = Vec::new();
        client_read.read_to_end(&mut answered).await.unwrap();
        let answer = String::from_utf8(answered).unwrap();
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains(r#""code":"RequestTimeout""#), "{answer}");

        let (_idle_client, server) = tokio::io::duplex(1 << 20);
        let mut guarded = Guarded::with_timeouts(server, LIMIT, short, 4 * short);
        let started = tokio::time::Instant::now();
        let mut passed = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), guarded.read_to_end(&mut passed));
        read.await
            .expect("the guard closes an idle connection")
            .unwrap();
        assert!(started.elapsed() >= 4 * short, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_body_arriving_after_its_head_is_read_straight_from_the_connection() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut guarded = Guarded::new(server, LIMIT);
        let head = b"POST /a HTTP/1.1\r\ncontent-length: 10\r\n\r\n";
        client.write_all(head).await.unwrap();
        let mut passed = vec![0u8; head.len()];
        guarded.read_exact(&mut passed).await.unwrap();
        assert_eq!(passed, head);
        client
            .write_all(b"0123456789GET /b HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        guarded.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"0123456789GET /b HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_head_longer_than_the_limit_is_refused_before_it_ends() {
        let sent = format!(
            "GET / HTTP/1.1\r\nx-big: {}",
            "a".repeat(MAX_HEAD_BYTES + 1)
        );
        let (passed, answered) = through(sent.as_bytes()).await;
        assert!(passed.is_empty());
        assert!(String::from_utf8(answered)
            .unwrap()
            .contains("HeadersTooLarge"));
    }
}
