//! The admin console: one page served at `/admin`, its stylesheet, ES modules and the
//! vendored Socket.IO browser client, all built into the binary with `include_str!` (no build
//! step, no CDN, works offline). The page logs in over REST, then lives on the admin's socket.
//!
//! Every answer carries a strict Content-Security-Policy (`'self'` only, no inline script or
//! style), `nosniff` and `no-referrer`; the page builds its DOM with `textContent`, never
//! with HTML strings, so data shown on it cannot inject markup.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use kernel::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Same origin only: scripts, styles, images, fetch and the socket (`'self'` covers `ws:`
/// to the same host in current browsers); no frames, no plugins, no forms posting elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/admin/console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../console/console.css"),
    },
    Asset {
        path: "/admin/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/app.js"),
    },
    Asset {
        path: "/admin/api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/api.js"),
    },
    Asset {
        path: "/admin/dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/dom.js"),
    },
    Asset {
        path: "/admin/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../console/icon.svg"),
    },
    Asset {
        path: "/admin/vendor/socket.io.esm.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/vendor/socket.io.esm.min.js"),
    },
    Asset {
        path: "/admin/vendor/socket.io-client.LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../console/vendor/socket.io-client.LICENSE"),
    },
];

const INDEX: &str = include_str!("../console/index.html");

/// `/admin` (the page), `/admin/` (redirects to it) and its assets. Not part of the OpenAPI
/// document: it is a page, not an API.
pub fn router() -> OpenApiRouter<AppState> {
    let mut r = OpenApiRouter::new()
        .route(
            "/admin",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }));
    for a in ASSETS {
        r = r.route(
            a.path,
            get(move || async move { page(a.content_type, a.body) }),
        );
    }
    r
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // The binary is the version: revalidate, so an upgrade is seen on the next load.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
