//! Rewrites responses: status, headers, and the body (regex rules, then a
//! template). Gzip bodies are decoded, rewritten and encoded again;
//! possible streams are left alone unless configured.

mod config;
#[cfg(test)]
mod tests;

use std::io::{Read, Write};

use wasmgate_sdk::prelude::*;

use config::{Config, Plan, TooLarge};

/// Scratch key: the body of this response is gzip.
const GZIP: &str = "response-rewrite.gzip";

pub struct ResponseRewrite(Plan);

impl ResponseRewrite {
    /// Whether this response's body should be rewritten.
    fn wants_body(&self, head: &ResponseHead, cx: &Context) -> Result<bool, Response> {
        let plan = &self.0;
        let content_type = head
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !plan.content_types.is_empty()
            && !plan
                .content_types
                .iter()
                .any(|c| content_type.starts_with(c.as_str()))
        {
            return Ok(false);
        }
        let length = head
            .header("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        let stream = content_type.starts_with("text/event-stream") || length.is_none();
        if stream && !plan.rewrite_streaming {
            return Ok(false);
        }
        match head
            .header("content-encoding")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("identity") => {}
            Some("gzip") => cx.scratch_set(GZIP, "1"),
            Some(other) => {
                cx.debug(&format!("body left alone: content-encoding {other}"));
                return Ok(false);
            }
        }
        if length.is_some_and(|l| l > plan.cap) {
            cx.warn(&format!(
                "response body of {} bytes exceeds max_body_bytes {}",
                length.unwrap_or_default(),
                plan.cap
            ));
            return match plan.too_large {
                TooLarge::Pass => Ok(false),
                TooLarge::Fail => Err(Response::json(
                    502,
                    &json!({ "error": "response too large to rewrite", "max_body_bytes": plan.cap }),
                )),
            };
        }
        Ok(true)
    }

    fn rewrite(&self, body: &str) -> String {
        let mut text = body.to_owned();
        for (re, replace) in &self.0.regex {
            text = re.replace_all(&text, replace.as_str()).into_owned();
        }
        match &self.0.template {
            Some(pieces) => pieces.join(text.as_str()),
            None => text,
        }
    }
}

fn gunzip(body: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip body does not decode: {e}"))?;
    if out.len() > cap {
        return Err(format!("decoded body exceeds max_body_bytes {cap}"));
    }
    Ok(out)
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

impl Plugin for ResponseRewrite {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        Ok(Self(config.validate()?))
    }

    fn on_response(&self, head: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        let plan = &self.0;
        if let Some(status) = plan.status {
            head.set_status(status);
        }
        for name in &plan.remove {
            head.remove_header(name);
        }
        for (name, value) in &plan.set {
            head.set_header(name, value.as_str());
        }
        for (name, value) in &plan.add {
            head.append_header(name, value.as_str());
        }
        if !plan.rewrites_body {
            return ResponseFlow::Continue;
        }
        match self.wants_body(head, cx) {
            Ok(true) => ResponseFlow::RewriteBody,
            Ok(false) => ResponseFlow::Continue,
            Err(response) => ResponseFlow::Replace(response),
        }
    }

    fn on_response_body(&self, body: Vec<u8>, cx: &Context) -> Vec<u8> {
        let gzipped = cx.scratch_remove(GZIP).is_some();
        let decoded = if gzipped {
            match gunzip(&body, self.0.cap) {
                Ok(decoded) => decoded,
                Err(why) => {
                    cx.error(&format!("body left alone: {why}"));
                    return body;
                }
            }
        } else if body.len() > self.0.cap {
            cx.error(&format!(
                "body left alone: {} bytes exceed max_body_bytes {}",
                body.len(),
                self.0.cap
            ));
            return body;
        } else {
            body
        };
        let Ok(text) = std::str::from_utf8(&decoded) else {
            cx.warn("body left alone: not UTF-8");
            return if gzipped {
                gzip(&decoded).unwrap_or_default()
            } else {
                decoded
            };
        };
        let rewritten = self.rewrite(text).into_bytes();
        if gzipped {
            gzip(&rewritten).unwrap_or_default()
        } else {
            rewritten
        }
    }
}

export_plugin!(ResponseRewrite);
