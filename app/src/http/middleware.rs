//! Middleware around every route: compression, and problem+json for every error response,
//! including the ones axum and tower produce themselves (405, 413, ...).
use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, header},
    response::Response,
};
use http_body_util::BodyExt;
use tower_http::{
    CompressionLevel,
    compression::{
        CompressionLayer,
        predicate::{NotForContentType, Predicate, SizeAbove},
    },
};

use super::error::{PROBLEM_JSON, problem};

/// Responses smaller than this are sent uncompressed.
pub const COMPRESS_ABOVE_BYTES: u16 = 1024;
/// Request header that turns compression off for one request.
pub const NO_COMPRESSION_HEADER: &str = "x-no-compression";
/// Longest plain-text error body that is carried over into a problem's `detail`.
const MAX_DETAIL_BYTES: usize = 1024;

/// Header carrying the request id (taken from the client when it sends one).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request-id header's name.
pub fn request_id_header() -> HeaderName {
    HeaderName::from_static(REQUEST_ID_HEADER)
}

/// Compression (gzip, brotli) of answers above [`COMPRESS_ABOVE_BYTES`], never of gRPC, images or
/// event streams, at `level` (`--compression-level`).
pub fn compression(level: CompressionLevel) -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(COMPRESS_ABOVE_BYTES)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .quality(level)
        .compress_when(predicate)
}

/// The span every request runs in, a child of the caller's trace when it sent a W3C `traceparent`
/// (and traces are exported). The query string stays out: it can hold emails.
pub fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The route template, never the raw path (ids would make every span name unique).
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(crate::metrics::http::UNMATCHED_ROUTE, |matched| matched.as_str());
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = id,
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
    );
    perfstack_otel::set_parent_from_headers(&span, request.headers());
    span
}

/// Hides `Accept-Encoding` from the compression layer when the client sent `x-no-compression`.
pub async fn honor_no_compression(mut request: Request) -> Request {
    if request.headers().contains_key(NO_COMPRESSION_HEADER) {
        request.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    request
}

/// Turns any 4xx/5xx without a JSON body (axum's own rejections, empty 404/405, plain-text
/// errors of layers) into problem+json, keeping its headers (e.g. `Allow` on a 405) and a
/// short plain-text body as the detail. JSON error bodies (problems, `/health`) pass as they are.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime == "application/json" || mime.ends_with("+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let small = http_body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n <= MAX_DETAIL_BYTES as u64);
    let detail = if small {
        match body.collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).trim().to_owned(),
            Err(_) => String::new(),
        }
    } else {
        String::new()
    };
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        detail
    };
    let mut converted = problem(status, detail, None);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            converted.headers_mut().insert(name, value.clone());
        }
    }
    converted
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    converted
}
