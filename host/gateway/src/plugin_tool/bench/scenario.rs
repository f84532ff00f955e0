//! The request and the upstream's response a bench runs, from the flags.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use http::{request, response, HeaderMap, Method, StatusCode};

use super::super::load::arg_bytes;
use super::BenchArgs;

/// What each benchmarked request starts from (cloned per request, untimed).
pub struct Scenario {
    pub request: request::Parts,
    pub response: response::Parts,
    /// The upstream's body, for the plugins that ask to rewrite it.
    pub response_body: Bytes,
}

impl Scenario {
    pub fn from_args(args: &BenchArgs) -> Result<Scenario, String> {
        let method = Method::from_bytes(args.method.as_bytes())
            .map_err(|_| format!("--method: `{}` is not a method", args.method))?;
        if !args.path.starts_with('/') {
            return Err(format!("--path: `{}` must start with `/`", args.path));
        }
        let uri = args.path.parse::<http::Uri>().map_err(|e| format!("--path: `{}`: {e}", args.path))?;
        let mut headers = headers_of(&args.headers, "--header")?;
        if !headers.contains_key(HOST) {
            headers.insert(HOST, HeaderValue::from_static("localhost"));
        }
        if let Some(body) = &args.body {
            // Plugins see the request's head only: the body counts by its length.
            headers.insert(CONTENT_LENGTH, HeaderValue::from(arg_bytes(body, "--body")?.len()));
        }
        let (mut request, ()) = http::Request::new(()).into_parts();
        request.method = method;
        request.uri = uri;
        request.headers = headers;

        let status = StatusCode::from_u16(args.status)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or_else(|| format!("--status: {} is not a status from 200 to 599", args.status))?;
        let response_body = Bytes::from(match &args.response_body {
            Some(body) => arg_bytes(body, "--response-body")?,
            None => Vec::new(),
        });
        let mut response_headers = headers_of(&args.response_headers, "--response-header")?;
        response_headers.insert(CONTENT_LENGTH, HeaderValue::from(response_body.len()));
        let (mut response, ()) = http::Response::new(()).into_parts();
        response.status = status;
        response.headers = response_headers;
        Ok(Scenario { request, response, response_body })
    }

    /// One line saying what is sent and what the upstream answers.
    pub fn describe(&self) -> String {
        let target = self.request.uri.path_and_query().map_or("/", |p| p.as_str());
        format!(
            "{} {target} ({} headers); upstream answers {} ({} headers, {} body bytes)",
            self.request.method,
            self.request.headers.len(),
            self.response.status.as_u16(),
            self.response.headers.len(),
            self.response_body.len()
        )
    }
}

/// `name: value` lines as a header map, in order (repeats are appended).
fn headers_of(lines: &[String], flag: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("{flag}: `{line}` is not `name: value`"));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{flag}: `{}` is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("{flag}: the value of `{name}` holds a character a header cannot"))?;
        headers.append(name, value);
    }
    Ok(headers)
}
