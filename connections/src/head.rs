//! Detaching a Socket.IO request's head from hyper's read buffer.
//!
//! hyper parses an HTTP/1 request head in place: the URI and every header value are slices
//! (`Bytes`) of the connection's read buffer, an 8 KiB+ allocation (`Buffered::read_buf`,
//! split off at the head and re-reserved). engineioxide keeps the head of every socket for its
//! whole life (`Socket::req_parts`), and axum adds a clone of the URI (`OriginalUri`), so
//! those few hundred bytes keep the whole buffer alive after the websocket upgrade: ~16 KiB
//! per socket. [`detach`] copies them into one small buffer before the request reaches
//! socketioxide, so hyper's buffer is freed when the connection is handed over.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Request};
use http::{HeaderValue, Uri};

/// The path prefix of the Socket.IO layer (see `req_path` in `Connections::new`).
pub(crate) const SOCKET_IO_PATH: &str = "/socket.io";

/// `req` with its URI and header values copied into one buffer of their exact size, when it
/// is a Socket.IO request (other requests are short-lived and left alone).
pub(crate) fn detach(mut req: Request) -> Request {
    if !req.uri().path().starts_with(SOCKET_IO_PATH) {
        return req;
    }
    let uri = req.uri().to_string();
    let size = uri.len() + req.headers().values().map(|v| v.len()).sum::<usize>();
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(uri.as_bytes());
    for v in req.headers().values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf = Bytes::from(buf);
    if let Ok(copy) = Uri::from_maybe_shared(buf.slice(..uri.len())) {
        if req.extensions().get::<OriginalUri>().is_some() {
            req.extensions_mut().insert(OriginalUri(copy.clone()));
        }
        *req.uri_mut() = copy;
    }
    let mut at = uri.len();
    for v in req.headers_mut().values_mut() {
        let end = at + v.len();
        // The bytes were a valid header value a moment ago; keep the original if not.
        if let Ok(mut copy) = HeaderValue::from_maybe_shared(buf.slice(at..end)) {
            copy.set_sensitive(v.is_sensitive());
            *v = copy;
        }
        at = end;
    }
    req
}

/// The axum middleware form of [`detach`].
pub(crate) async fn detach_layer(req: Request) -> Request {
    detach(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_io_head_is_copied_out_of_the_shared_buffer() {
        let shared = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocketBearer abc");
        let mut req = Request::new(axum::body::Body::empty());
        *req.uri_mut() = Uri::from_maybe_shared(shared.slice(..37)).unwrap();
        req.headers_mut().insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_maybe_shared(shared.slice(37..)).unwrap(),
        );
        req.headers_mut()
            .append("x-two", HeaderValue::from_static("a"));
        req.headers_mut()
            .append("x-two", HeaderValue::from_static("b"));
        let original = OriginalUri(req.uri().clone());
        req.extensions_mut().insert(original);

        let req = detach(req);
        let old = shared.as_ptr_range();
        assert!(!old.contains(&req.uri().path().as_ptr()));
        assert!(
            !old.contains(
                &req.headers()[http::header::AUTHORIZATION]
                    .as_bytes()
                    .as_ptr()
            )
        );
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.uri().query(), Some("EIO=4&transport=websocket"));
        assert_eq!(
            req.extensions().get::<OriginalUri>().map(|u| u.0.clone()),
            Some(req.uri().clone())
        );
        assert_eq!(req.headers()[http::header::AUTHORIZATION], "Bearer abc");
        let two: Vec<_> = req.headers().get_all("x-two").iter().collect();
        assert_eq!(two, ["a", "b"]);
    }

    #[test]
    fn other_requests_are_left_alone() {
        let mut req = Request::new(axum::body::Body::empty());
        *req.uri_mut() = Uri::from_static("/api/requests?x=1");
        let req = detach(req);
        assert_eq!(req.uri(), "/api/requests?x=1");
    }
}
