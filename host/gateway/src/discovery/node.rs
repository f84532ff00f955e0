//! What one ZooKeeper child node announces: its data, or when that is empty its
//! name, is `host:port` or JSON `{ "address": "host:port", "weight": 5 }`.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// `host:port` as the node wrote it.
    pub authority: String,
    pub weight: Option<u32>,
}

#[derive(Deserialize)]
struct Json {
    address: String,
    weight: Option<u32>,
}

pub fn parse_node(name: &str, data: &[u8]) -> Result<Announced, String> {
    let text = std::str::from_utf8(data).map_err(|_| "data is not UTF-8".to_owned())?.trim();
    let announced = if text.starts_with('{') {
        let json: Json = serde_json::from_str(text).map_err(|e| format!("data is not the expected JSON: {e}"))?;
        Announced { authority: json.address, weight: json.weight }
    } else if !text.is_empty() {
        Announced { authority: text.to_owned(), weight: None }
    } else {
        Announced { authority: name.to_owned(), weight: None }
    };
    let port_ok = announced
        .authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !port_ok {
        return Err(format!("`{}` is not host:port", announced.authority));
    }
    if let Some(w) = announced.weight {
        if !(1..=10_000).contains(&w) {
            return Err(format!("weight {w} is not between 1 and 10000"));
        }
    }
    Ok(announced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_data_and_json_forms() {
        let plain = parse_node("127.0.0.1:2003", b"").unwrap();
        assert_eq!(plain, Announced { authority: "127.0.0.1:2003".into(), weight: None });
        let data = parse_node("server-0000000001", b" 127.0.0.1:2004\n").unwrap();
        assert_eq!(data.authority, "127.0.0.1:2004");
        let json = parse_node("x", br#"{ "address": "backend.local:80", "weight": 20 }"#).unwrap();
        assert_eq!(json, Announced { authority: "backend.local:80".into(), weight: Some(20) });
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(parse_node("server-1", b"").is_err());
        assert!(parse_node("x", b"127.0.0.1").is_err());
        assert!(parse_node("x", br#"{ "address": "127.0.0.1:1", "weight": 0 }"#).is_err());
        assert!(parse_node("x", b"{ nope").is_err());
    }
}
