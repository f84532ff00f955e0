//! Header values with variables: `${client_ip}`, `${request_id}`,
//! `${route}`, `${consumer}`. `$$` is a literal `$`.

use wasmgate_sdk::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    ClientIp,
    RequestId,
    Route,
    Consumer,
}

/// A parsed header value.
#[derive(Debug, Clone)]
pub struct Template(Vec<Part>);

impl Template {
    pub fn parse(at: &str, text: &str) -> Result<Template, String> {
        let bad = |why: &str| format!("invalid config at `{at}`: {why}");
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some(body) = rest.strip_prefix('{') else {
                return Err(bad(
                    "`$` starts a variable like `${client_ip}` (write `$$` for a `$`)",
                ));
            };
            let Some(end) = body.find('}') else {
                return Err(bad("unclosed `${`"));
            };
            let part = match &body[..end] {
                "client_ip" => Part::ClientIp,
                "request_id" => Part::RequestId,
                "route" => Part::Route,
                "consumer" => Part::Consumer,
                other => {
                    return Err(bad(&format!(
                        "unknown variable `{other}` (known: client_ip, request_id, route, consumer)"
                    )))
                }
            };
            if !literal.is_empty() {
                check_text(&literal).map_err(&bad)?;
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &body[end + 1..];
        }
        literal.push_str(rest);
        check_text(&literal).map_err(&bad)?;
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    /// Whether the value uses `${request_id}`.
    pub fn uses_request_id(&self) -> bool {
        self.0.contains(&Part::RequestId)
    }

    /// The value for this request. `request_id` is the request's
    /// `x-request-id` header, or what the request-id plugin left in scratch.
    pub fn render(&self, request: Option<&Request>, cx: &Context) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::ClientIp => {
                    if let Some(ip) = cx.client_ip() {
                        out.push_str(&ip.to_string());
                    }
                }
                Part::RequestId => {
                    let id = cx.scratch_get("request_id").or_else(|| {
                        request
                            .and_then(|r| r.header("x-request-id"))
                            .map(str::to_owned)
                    });
                    out.push_str(&id.unwrap_or_default());
                }
                Part::Route => out.push_str(&cx.route()),
                Part::Consumer => out.push_str(&cx.scratch_get("consumer").unwrap_or_default()),
            }
        }
        out
    }
}

/// The gateway refuses header values with control characters other than
/// tab: refused here, at load, instead of failing every request.
fn check_text(text: &str) -> Result<(), &'static str> {
    match text.chars().any(|c| c.is_ascii_control() && c != '\t') {
        true => Err("header values may not hold control characters (CR, LF, NUL, ...)"),
        false => Ok(()),
    }
}
