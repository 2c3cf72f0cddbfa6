//! The web UI, embedded: serves the files Vite built from `ui/` with their content types. Paths that are not files
//! get `index.html` (the UI routes on the client), except under `/api/`, which stay JSON 404s.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../ui/dist");

/// A router with only a fallback, to be merged into (or used as the fallback of) the query-port router.
pub fn router() -> Router {
    Router::new().fallback(serve)
}

async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" {
        let body = r#"{"error":{"code":404,"message":"no such API endpoint"}}"#;
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let relative = path.trim_start_matches('/');
    match DIST.get_file(relative).filter(|_| !relative.is_empty()) {
        Some(file) => file_response(relative, file.contents()),
        None => match DIST.get_file("index.html") {
            Some(index) => file_response("index.html", index.contents()),
            None => (StatusCode::NOT_FOUND, "the web UI was not built into this binary").into_response(),
        },
    }
}

fn file_response(path: &str, bytes: &'static [u8]) -> Response {
    // Vite puts a content hash into every name under assets/, so those never change; index.html always may.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, String, String) {
        let res = router().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let header =
            |h| res.headers().get(h).map(|v: &HeaderValue| v.to_str().unwrap().to_string()).unwrap_or_default();
        let (ct, cache) = (header(header::CONTENT_TYPE), header(header::CACHE_CONTROL));
        let status = res.status();
        let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
        (status, ct, cache, body)
    }

    #[tokio::test]
    async fn root_and_client_routes_serve_index_html() {
        for path in ["/", "/trace/0123456789abcdef0123456789abcdef", "/compare?a=1&b=2"] {
            let (status, ct, cache, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(ct, "text/html; charset=utf-8");
            assert_eq!(cache, "no-cache");
            assert!(body.contains("<div id=\"root\">"), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn hashed_assets_have_their_type_and_a_long_cache() {
        let js = DIST.get_dir("assets").unwrap().files().find(|f| f.path().extension().is_some_and(|e| e == "js"));
        let path = format!("/{}", js.expect("a built script").path().display());
        let (status, ct, cache, _) = get(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "text/javascript; charset=utf-8");
        assert_eq!(cache, "public, max-age=31536000, immutable");
    }

    #[tokio::test]
    async fn unknown_api_paths_stay_json_404s() {
        let (status, ct, _, body) = get("/api/v1/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(ct, "application/json");
        assert!(body.contains("no such API endpoint"));
    }
}
