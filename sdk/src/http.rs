//! What a plugin sees and returns: requests, response heads, responses.

use crate::headers::{Edits, Headers};
use crate::query;

/// The request on its way upstream. Changes made through its methods are
/// sent back to the gateway as edits; an untouched request costs nothing to
/// return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Part,
    path: Part,
    query: Option<Part>,
    /// Also holds, before the header lines, the bytes `Part::Packed` points
    /// into.
    headers: Headers,
    /// Whether anything was changed.
    modified: bool,
    method_changed: bool,
    target_changed: bool,
    /// Changes for the response, applied when it comes back through this
    /// plugin.
    response_edits: Edits,
}

impl Request {
    /// A request for tests: `target` is a path with an optional `?query`.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(Part::Own(query.to_owned()))),
            None => (target, None),
        };
        Self::from_parts(
            Part::Own(method.to_owned()),
            Part::Own(path.to_owned()),
            query,
            Headers::new(),
        )
    }

    /// The request from the parts of a WIT `request-head`: `Part::Packed`
    /// ranges point into the prefix of `headers`.
    pub(crate) fn from_parts(
        method: Part,
        path: Part,
        query: Option<Part>,
        headers: Headers,
    ) -> Self {
        Self {
            method,
            path,
            query,
            headers,
            modified: false,
            method_changed: false,
            target_changed: false,
            response_edits: Edits::default(),
        }
    }

    /// The WIT `edits` for the request and for the response.
    pub(crate) fn into_edits(mut self) -> (Vec<u8>, Vec<u8>) {
        let headers = self.headers.take_edits();
        if !self.method_changed && !self.target_changed {
            return (headers.into_bytes(), self.response_edits.into_bytes());
        }
        let mut edits = Edits::default();
        if self.method_changed {
            edits.set_pseudo("method", self.method().as_bytes());
        }
        if self.target_changed {
            let mut target = self.path().to_owned();
            if let Some(query) = self.query() {
                target.push('?');
                target.push_str(query);
            }
            edits.set_pseudo("path", target.as_bytes());
        }
        edits.extend(headers);
        (edits.into_bytes(), self.response_edits.into_bytes())
    }

    /// Sets header `name` on the response (replacing its values) when it
    /// comes back through this plugin, whether the upstream, the gateway (an
    /// error) or a later plugin produced it, and on this plugin's own answer:
    /// for headers
    /// known at request time (a rate limiter's remaining count), with no
    /// response phase needed.
    pub fn set_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.response_edits.set(name, value.as_ref());
    }

    /// Puts the response headers asked for so far (`set_response_header` and
    /// friends) on `answer`, the response this plugin answers with itself, so
    /// that they are not lost; a header the answer sets itself wins. The
    /// framing headers stay the gateway's, as everywhere.
    pub(crate) fn response_headers_onto(&self, answer: &mut Headers) {
        let own: Vec<String> = answer.iter().map(|(name, _)| name.to_owned()).collect();
        for (op, name, value) in self.response_edit_lines() {
            if own.contains(&name) {
                continue;
            }
            match op {
                b'=' => answer.set(&name, &value),
                b'+' => answer.append(&name, &value),
                _ => {
                    answer.remove(&name);
                }
            }
        }
    }

    /// The response edits asked for so far, as (op `=`/`+`/`-`, name,
    /// value), without those of the framing headers, which the gateway
    /// ignores: what the gateway replays on the response.
    pub(crate) fn response_edit_lines(&self) -> impl Iterator<Item = (u8, String, String)> + '_ {
        self.response_edits.as_bytes().split(|&b| b == b'\n').filter_map(|line| {
            let (&op, rest) = line.split_first()?;
            let text = String::from_utf8_lossy(rest);
            let (name, value) = text.split_once(':').unwrap_or((&text, ""));
            (!crate::gateway_managed_header(name)).then(|| (op, name.to_owned(), value.to_owned()))
        })
    }

    /// Adds a value of header `name` to the response, like
    /// [`Request::set_response_header`].
    pub fn append_response_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.response_edits.append(name, value.as_ref());
    }

    /// Removes header `name` from the response, like
    /// [`Request::set_response_header`].
    pub fn remove_response_header(&mut self, name: &str) {
        self.response_edits.remove(name);
    }

    /// The response changes asked for so far, as WIT `edits` lines (for tests).
    pub fn response_edits(&self) -> &[u8] {
        self.response_edits.as_bytes()
    }

    /// Adds a header (builder style, for tests).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Whether the plugin changed anything.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The text of `part`.
    fn text<'a>(&'a self, part: &'a Part) -> &'a str {
        match part {
            Part::Own(text) => text,
            // Checked to be UTF-8 when the head was unpacked.
            Part::Packed(at, end) => self
                .headers
                .prefix()
                .get(*at..*end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or_default(),
        }
    }

    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    pub fn set_method(&mut self, method: &str) {
        self.modified = true;
        self.method_changed = true;
        self.method = Part::Own(method.to_owned());
    }

    /// The path, starting with `/`, percent-encoded as received.
    pub fn path(&self) -> &str {
        self.text(&self.path)
    }

    /// Sets the path; it must start with `/` and hold no spaces or control
    /// characters, or the gateway refuses it (counted as this plugin's error).
    /// A `?` or `#` in it is part of the path, so it is percent-encoded
    /// (`%3F`, `%23`); change the query with [`Request::set_query`].
    pub fn set_path(&mut self, path: &str) {
        self.modified = true;
        self.target_changed = true;
        let path = match path.contains(['?', '#']) {
            true => path.replace('?', "%3F").replace('#', "%23"),
            false => path.to_owned(),
        };
        self.path = Part::Own(path);
    }

    /// The raw query, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|part| self.text(part))
    }

    pub fn set_query(&mut self, query: Option<&str>) {
        self.modified = true;
        self.target_changed = true;
        self.query = query.map(|q| Part::Own(q.to_owned()));
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query().map(query::pairs).unwrap_or_default()
    }

    /// The first decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query::param(self.query()?, name)
    }

    /// Sets query parameter `name` (replacing its values), re-encoding the
    /// whole query.
    pub fn set_query_param(&mut self, name: &str, value: &str) {
        let mut pairs = self.query_pairs();
        pairs.retain(|(k, _)| k != name);
        pairs.push((name.to_owned(), value.to_owned()));
        let raw = query::build(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.set_query(Some(&raw));
    }

    /// Removes query parameter `name`; true if it was there.
    pub fn remove_query_param(&mut self, name: &str) -> bool {
        let mut pairs = self.query_pairs();
        let before = pairs.len();
        pairs.retain(|(k, _)| k != name);
        if pairs.len() == before {
            return false;
        }
        let raw = query::build(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.set_query((!raw.is_empty()).then_some(raw.as_str()));
        true
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Mutable headers (marks the request modified).
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.modified = true;
        &mut self.headers
    }

    /// The first value of header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers_mut().set(name, value);
    }

    pub fn append_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers_mut().append(name, value);
    }

    pub fn remove_header(&mut self, name: &str) -> bool {
        if !self.headers.contains(name) {
            return false;
        }
        self.headers_mut().remove(name)
    }
}

/// Method, path or query of a [`Request`]: where the gateway packed it (a
/// byte range of the head, checked to be UTF-8), or what the plugin set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Packed(usize, usize),
    Own(String),
}

/// Status and headers of the response on its way back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    status: u16,
    headers: Headers,
    /// Whether anything was changed (only then are edits sent back).
    modified: bool,
    status_changed: bool,
}

impl ResponseHead {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            modified: false,
            status_changed: false,
        }
    }

    /// The response head from the fields of the WIT `response-head`.
    pub(crate) fn from_parts(status: u16, headers: Headers) -> Self {
        Self {
            status,
            headers,
            modified: false,
            status_changed: false,
        }
    }

    /// The head of `response` as the gateway would send it to a plugin,
    /// and its body (for the test harness).
    pub(crate) fn from_response(response: Response) -> (Self, Vec<u8>) {
        let Response {
            status,
            mut headers,
            body,
        } = response;
        let _ = headers.take_edits();
        (Self::from_parts(status, headers), body)
    }

    /// The response this head leads, with `body` (for the test harness).
    pub(crate) fn into_response(mut self, body: Vec<u8>) -> Response {
        let _ = self.headers.take_edits();
        Response {
            status: self.status,
            headers: self.headers,
            body,
        }
    }

    /// The WIT `edits` for the changes made.
    pub(crate) fn into_edits(mut self) -> Vec<u8> {
        let headers = self.headers.take_edits();
        if !self.status_changed {
            return headers.into_bytes();
        }
        let mut edits = Edits::default();
        edits.set_pseudo("status", self.status.to_string().as_bytes());
        edits.extend(headers);
        edits.into_bytes()
    }

    /// Adds a header (builder style, for tests).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(name, value);
        self
    }

    pub fn is_modified(&self) -> bool {
        self.modified
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status (200..=599, or the gateway refuses it).
    pub fn set_status(&mut self, status: u16) {
        self.modified = true;
        self.status_changed = true;
        self.status = status;
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        self.modified = true;
        &mut self.headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers_mut().set(name, value);
    }

    pub fn append_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers_mut().append(name, value);
    }

    pub fn remove_header(&mut self, name: &str) -> bool {
        if !self.headers.contains(name) {
            return false;
        }
        self.headers_mut().remove(name)
    }
}

/// A complete response: one a plugin answers with (`RequestFlow::Respond`,
/// `ResponseFlow::Replace`), or, in tests, the upstream's
/// ([`testing::Harness::run`](crate::testing::Harness::run)). The gateway
/// sets `content-length`. Read and change it through methods, as a
/// [`ResponseHead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body)
    }

    /// An `application/json` response with `value` encoded (`{}` if it
    /// cannot be). Any `serde::Serialize` value will do; the prelude's
    /// [`json!`](crate::json::json!) builds one in place, with no dependency
    /// to add: `Response::json(403, &json!({ "error": "forbidden" }))`.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(body)
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status (200..=599 for an answer, or the gateway refuses it).
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The first value of header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers.set(name, value);
    }

    pub fn append_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.headers.append(name, value);
    }

    pub fn remove_header(&mut self, name: &str) -> bool {
        self.headers.remove(name)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// The body as text, if it is UTF-8 (handy in tests).
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// Status, headers and body, taken apart.
    pub fn into_parts(self) -> (u16, Headers, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

/// What `on_request` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFlow {
    /// Go on to the next plugin and the upstream (with the request as the
    /// plugin left it).
    Continue,
    /// Answer now: later plugins and the upstream are skipped.
    Respond(Response),
}

/// What `on_response` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFlow {
    /// Pass the response on (with the head as the plugin left it).
    Continue,
    /// Pass it on and call `on_response_body` with the whole body.
    RewriteBody,
    /// Send this response instead of the upstream's.
    Replace(Response),
}
