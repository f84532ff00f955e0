//! Requests that try to slip past a route's auth, proven against a real nginx
//! backend that normalises paths (`merge_slashes on`, dot segments, percent
//! decoding) and picks virtual hosts by `Host`: whatever the gateway routed, nginx
//! must not answer its protected location (`/admin`) or its protected virtual host
//! (`secure.example`) to a request without a token.
//!
//! Every request goes out as raw bytes (HTTP/1.1) or through the `h2` crate
//! (HTTP/2), so nothing is normalised on the client side. nginx echoes what it saw
//! in `X-Seen-*` headers; `-- --nocapture` prints the table.
//!
//! Also: `Upgrade: h2c` never reaches a backend, through a raw-TCP backend that
//! would accept it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmgate_tests::nginx::Nginx;
use wasmgate_tests::plugins::PluginDir;
use wasmgate_tests::{gateway, simple_config};
use Expect::{Refused, Unauthorized};

const SECRET: &str = "a-test-secret-long-enough-for-hs256";
/// How long one exchange may take before it counts as no answer.
const WAIT: Duration = Duration::from_secs(5);

// --- The backend and the gateway ------------------------------------------------

/// nginx with three virtual hosts on one port. The default one has a protected
/// `/admin` (exact, or with a `/` after it, as the gateway's segment-wise route
/// prefix `/admin` means it: nginx's plain `location /admin` would also take
/// `/adminx`, which no `/admin` route covers); `secure.example` is protected as a
/// whole; `api.internal` is where the `/api` route strips its prefix to, so that a
/// legitimate `/api/admin` is not a door into the default host's `/admin`.
async fn nginx_backend() -> Nginx {
    Nginx::start(|addr| {
        format!(
            r#"
    merge_slashes on;
    add_header X-Seen-Uri $uri always;
    add_header X-Seen-Request-Uri $request_uri always;
    add_header X-Seen-Host $host always;
    add_header X-Seen-Host-Header $http_host always;
    add_header X-Seen-Consumer $http_x_consumer_id always;
    add_header X-Seen-Forwarded $http_forwarded always;
    add_header X-Seen-Forwarded-Host $http_x_forwarded_host always;
    add_header X-Seen-Authz $http_authorization always;
    add_header X-Seen-Upgrade $http_upgrade always;
    add_header X-Seen-Http2-Settings $http_http2_settings always;
    add_header X-Seen-Content-Length $http_content_length always;

    server {{
        listen {addr} default_server;
        server_name _;
        location = /admin {{ return 200 "ADMIN"; }}
        location /admin/ {{ return 200 "ADMIN"; }}
        location /public {{ return 200 "PUBLIC"; }}
        location / {{ return 200 "OTHER"; }}
    }}
    server {{
        listen {addr};
        server_name secure.example;
        location / {{ return 200 "SECURE"; }}
    }}
    server {{
        listen {addr};
        server_name api.internal;
        location / {{ return 200 "API"; }}
    }}
"#
        )
    })
    .await
}

/// One listener; `/public` open, `/admin` behind jwt-auth, `/api` stripped to
/// `api.internal`, host `www.example` open, host `secure.example` behind jwt-auth.
fn config(nginx: SocketAddr, plugins: &std::path::Path) -> String {
    let jwt = format!(r#"{{ name = "jwt-auth", config = {{ keys = [ {{ alg = "HS256", secret = "{SECRET}" }} ] }} }}"#);
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "public"
listener = "web"
path_prefix = "/public"
upstream = "nginx"

[[route]]
name = "admin"
listener = "web"
path_prefix = "/admin"
upstream = "nginx"
plugins = [ {jwt} ]

[[route]]
name = "api"
listener = "web"
path_prefix = "/api"
strip_prefix = true
upstream = "nginx-api"

[[route]]
name = "www"
listener = "web"
host = "www.example"
upstream = "nginx"

[[route]]
name = "secure"
listener = "web"
host = "secure.example"
upstream = "nginx"
plugins = [ {jwt} ]

[[upstream]]
name = "nginx"
targets = [ {{ address = "{nginx}" }} ]
pass_host = "pass"

[[upstream]]
name = "nginx-api"
targets = [ {{ address = "{nginx}" }} ]
pass_host = "rewrite"
upstream_host = "api.internal"

[plugins]
dir = "{dir}"

[runtime]
workers = 2

[log]
access = false
"#,
        dir = plugins.display()
    )
}

/// An HS256 token for `sub`, valid for a minute.
fn token(sub: &str) -> String {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
    let claims = serde_json::json!({ "sub": sub, "exp": exp });
    let message = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    format!("{message}.{}", b64(&mac.finalize().into_bytes()))
}

// --- The cases -----------------------------------------------------------------

/// What the gateway should make of a request without a token.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `400` from the gateway; nginx never sees it.
    Refused,
    /// Routed to a jwt-auth route: `401`; nginx never sees it.
    Unauthorized,
    /// Forwarded: nginx answered from `body` (its location or virtual host) for
    /// the path `uri` (nginx's `$uri`), and the gateway forwarded exactly that
    /// path (`$request_uri` without the query is `uri`: nginx had nothing left
    /// to normalise).
    Backend { body: &'static str, uri: &'static str },
}

/// A further expectation on what nginx saw.
type Check = fn(&Answer) -> Result<(), String>;

enum Send {
    /// Raw HTTP/1.x bytes on a new connection.
    H1(Vec<u8>),
    /// One HTTP/2 (h2c, prior knowledge) request: `:authority`, `:path`, headers.
    H2 { authority: String, path: String, headers: Vec<(&'static str, String)> },
}

struct Case {
    name: String,
    send: Send,
    expect: Expect,
    check: Option<Check>,
}

impl Case {
    fn raw(name: impl Into<String>, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
        Case { name: name.into(), send: Send::H1(bytes.into()), expect, check: None }
    }

    /// `GET target` with `Host: www.example`.
    fn get(target: &str, expect: Expect) -> Case {
        Case::raw(target, get(target, "www.example", ""), expect)
    }

    fn h2(
        name: impl Into<String>,
        authority: &str,
        path: &str,
        headers: &[(&'static str, &str)],
        expect: Expect,
    ) -> Case {
        let send = Send::H2 {
            authority: authority.to_owned(),
            path: path.to_owned(),
            headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        };
        Case { name: name.into(), send, expect, check: None }
    }

    fn check(mut self, check: Check) -> Case {
        self.check = Some(check);
        self
    }
}

/// `GET target HTTP/1.1` with this `Host` and any extra header lines (each ending in CRLF).
fn get(target: &str, host: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

const fn backend(body: &'static str, uri: &'static str) -> Expect {
    Expect::Backend { body, uri }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Controls: the plain routes.
        Case::get("/public", backend("PUBLIC", "/public")),
        Case::get("/admin", Unauthorized),
        Case::get("/api/admin", backend("API", "/admin")),
        Case::get("/other", backend("OTHER", "/other")),
        // Dot segments, plain and encoded: resolved before routing.
        Case::get("/public/../admin", Unauthorized),
        Case::get("/public/./../admin", Unauthorized),
        Case::get("/public/%2e%2e/admin", Unauthorized),
        Case::get("/public/%2E%2E/admin", Unauthorized),
        Case::get("/public/.%2e/admin", Unauthorized),
        Case::get("/public/%2e./admin", Unauthorized),
        Case::get("/public/x/%2E%2E/%2E%2E/admin", Unauthorized),
        Case::get("/public/../../../../admin", Unauthorized),
        Case::get("/%2e%2e/admin", Unauthorized),
        Case::get("/admin/../public", backend("PUBLIC", "/public")),
        Case::get("/public/..", backend("OTHER", "/")),
        Case::get("/public/%2e", backend("PUBLIC", "/public/")),
        Case::get("/public?x=/../admin", backend("PUBLIC", "/public")),
        // Encoded separators: refused.
        Case::get("/public/%2E%2E%2Fadmin", Refused),
        Case::get("/public/..%2fadmin", Refused),
        Case::get("/public/..%2Fadmin", Refused),
        Case::get("/public/%2e%2e%2fadmin", Refused),
        Case::get("/public%2f..%2fadmin", Refused),
        Case::get("/%2fadmin", Refused),
        Case::get("/public/..%5cadmin", Refused),
        Case::get("/public/%2e%2e%5cadmin", Refused),
        // Raw backslashes.
        Case::get("/public/..\\admin", Refused),
        Case::get("/public\\..\\admin", Refused),
        // Double encoding.
        Case::get("/public/%252e%252e/admin", Refused),
        Case::get("/public/%25252e/admin", Refused),
        // Path parameters on dot segments (Tomcat's `..;`).
        Case::get("/public/..;/admin", Refused),
        Case::get("/public/.;/../admin", Refused),
        Case::get("/public/%2e%2e%3b/admin", Refused),
        Case::get("/public;/../admin", Unauthorized),
        // Control characters and invalid encodings.
        Case::get("/public/%00/../admin", Refused),
        Case::get("/public/%0a/../admin", Refused),
        Case::get("/public/%09/../admin", Refused),
        Case::get("/public/%7f/../admin", Refused),
        Case::get("/public/%u002e%u002e/admin", Refused),
        // Empty segments: merged, as nginx does, before the dot segments.
        Case::get("/public//../admin", Unauthorized),
        Case::get("/public/..//admin", Unauthorized),
        Case::get("//admin", Unauthorized),
        Case::get("///admin", Unauthorized),
        // Through the stripped prefix.
        Case::get("/api/../admin", Unauthorized),
        Case::get("/api//admin", backend("API", "/admin")),
        Case::get("/api/%2e%2e/admin", Unauthorized),
        Case::get("/api/.%2E/admin", Unauthorized),
        Case::get("/api/..;/admin", Refused),
        Case::get("/api/%2fadmin", Refused),
        Case::get("/api///admin", backend("API", "/admin")),
        // Case and encoded unreserved characters.
        Case::get("/ADMIN", backend("OTHER", "/ADMIN")),
        Case::get("/adminx", backend("OTHER", "/adminx")),
        // `;` ends a segment for routing (docs/security.md): Tomcat would serve
        // these from /admin; nginx serves them as written (OTHER) when forwarded.
        Case::get("/admin;x", Unauthorized),
        Case::get("/admin;x/y", Unauthorized),
        Case::get("/adm%69n", Unauthorized),
        Case::get("/%61dmin", Unauthorized),
        Case::get("/public/../%61dmin", Unauthorized),
        Case::get("/p%75blic", backend("PUBLIC", "/public")),
    ];

    // Overlong paths that climb back to /admin.
    let climb = format!("/public{}{}/admin", "/a".repeat(4096), "/..".repeat(4097));
    cases.push(Case::raw("8 KiB of /a, then /.. back to /admin", get(&climb, "www.example", ""), Unauthorized));
    let climb = format!("{}{}/admin", "/a".repeat(2048), "/%2e%2e".repeat(2048));
    cases.push(Case::raw("4 KiB of /a, then /%2e%2e back to /admin", get(&climb, "www.example", ""), Unauthorized));

    // The authority: absolute-form, Host spellings, HTTP/1.0.
    cases.extend([
        Case::raw(
            "absolute http://www.example/admin, Host secure.example",
            get("http://www.example/admin", "secure.example", ""),
            Unauthorized,
        ),
        Case::raw(
            "absolute http://www.example/x, Host secure.example",
            get("http://www.example/x", "secure.example", ""),
            backend("OTHER", "/x"),
        )
        .check(host_header_is_www),
        Case::raw(
            "absolute http://WWW.EXAMPLE/x, Host secure.example",
            get("http://WWW.EXAMPLE/x", "secure.example", ""),
            backend("OTHER", "/x"),
        )
        .check(host_header_is_www),
        Case::raw(
            "absolute http://secure.example/x, Host www.example",
            get("http://secure.example/x", "www.example", ""),
            Unauthorized,
        ),
        Case::raw("absolute http://user@www.example/x", get("http://user@www.example/x", "www.example", ""), Refused),
        Case::raw(
            "absolute http://www.example@secure.example/x",
            get("http://www.example@secure.example/x", "www.example", ""),
            Refused,
        ),
        Case::raw("Host secure.example. (trailing dot)", get("/x", "secure.example.", ""), Unauthorized),
        Case::raw("Host SECURE.EXAMPLE", get("/x", "SECURE.EXAMPLE", ""), Unauthorized),
        Case::raw("Host secure.example:1 (a port)", get("/x", "secure.example:1", ""), Unauthorized),
        Case::raw("Host www.example. (trailing dot)", get("/x", "www.example.", ""), backend("OTHER", "/x"))
            .check(host_header_is_www),
        Case::raw("Host WWW.Example", get("/x", "WWW.Example", ""), backend("OTHER", "/x")).check(host_header_is_www),
        Case::raw(
            "Host www.example + X-Forwarded-Host secure.example",
            get("/x", "www.example", "X-Forwarded-Host: secure.example\r\n"),
            backend("OTHER", "/x"),
        )
        .check(host_header_is_www),
        Case::raw("two Host headers", get("/x", "www.example", "Host: secure.example\r\n"), Refused),
        Case::raw("Host www.example@secure.example", get("/x", "www.example@secure.example", ""), Refused),
        Case::raw(
            "CONNECT secure.example:80",
            "CONNECT secure.example:80 HTTP/1.1\r\nHost: secure.example:80\r\n\r\n",
            Refused,
        ),
        Case::raw(
            "OPTIONS *, Host secure.example",
            "OPTIONS * HTTP/1.1\r\nHost: secure.example\r\nConnection: close\r\n\r\n",
            Refused,
        ),
        Case::raw("HTTP/1.0 without Host, /public", "GET /public HTTP/1.0\r\n\r\n", backend("PUBLIC", "/public")),
    ]);

    // HTTP/2: :authority against host, the same spellings, paths.
    cases.extend([
        Case::h2(
            "h2 :authority www.example + host secure.example",
            "www.example",
            "/x",
            &[("host", "secure.example")],
            Refused,
        ),
        Case::h2(
            "h2 :authority www.example + host www.example",
            "www.example",
            "/x",
            &[("host", "www.example")],
            backend("OTHER", "/x"),
        )
        .check(host_header_is_www),
        Case::h2("h2 :authority secure.example", "secure.example", "/x", &[], Unauthorized),
        Case::h2("h2 :authority SECURE.EXAMPLE", "SECURE.EXAMPLE", "/x", &[], Unauthorized),
        Case::h2("h2 :authority secure.example.", "secure.example.", "/x", &[], Unauthorized),
        Case::h2("h2 :authority user@www.example", "user@www.example", "/x", &[], Refused),
        Case::h2("h2 no :authority, host secure.example", "", "/x", &[("host", "secure.example")], Unauthorized),
        Case::h2("h2 /public/../admin", "www.example", "/public/../admin", &[], Unauthorized),
        Case::h2("h2 /public/%2e%2e/admin", "www.example", "/public/%2e%2e/admin", &[], Unauthorized),
        Case::h2("h2 /public/..%2fadmin", "www.example", "/public/..%2fadmin", &[], Refused),
        Case::h2("h2 //admin", "www.example", "//admin", &[], Unauthorized),
    ]);

    // Headers the gateway owns.
    cases.extend([
        Case::raw(
            "X-Consumer-Id: forged on /public",
            get("/public", "www.example", "X-Consumer-Id: forged\r\n"),
            backend("PUBLIC", "/public"),
        ),
        Case::raw(
            "Forwarded: for=1.2.3.4 on /public",
            get("/public", "www.example", "Forwarded: for=1.2.3.4\r\n"),
            backend("PUBLIC", "/public"),
        )
        .check(forwarded_is_appended),
        Case::raw(
            "two Authorization headers on /admin",
            get("/admin", "www.example", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"),
            Refused,
        ),
        Case::raw(
            "Content-Length: 005 POST /public",
            "POST /public HTTP/1.1\r\nHost: www.example\r\nContent-Length: 005\r\nConnection: close\r\n\r\nhello",
            backend("PUBLIC", "/public"),
        )
        .check(content_length_is_canonical),
        Case::raw("Upgrade: h2c on /public", h2c_upgrade("/public"), backend("PUBLIC", "/public")).check(no_upgrade),
    ]);
    cases
}

fn host_header_is_www(answer: &Answer) -> Result<(), String> {
    match answer.header("x-seen-host-header") {
        Some("www.example") => Ok(()),
        other => Err(format!("nginx saw Host {other:?}, not the routed `www.example`")),
    }
}

fn forwarded_is_appended(answer: &Answer) -> Result<(), String> {
    let seen = answer.header("x-seen-forwarded").unwrap_or_default();
    match seen.strip_prefix("for=1.2.3.4") {
        Some(rest) if rest.contains("127.0.0.1") => Ok(()),
        _ => Err(format!("nginx saw Forwarded {seen:?}, not the client's with the real client appended")),
    }
}

fn content_length_is_canonical(answer: &Answer) -> Result<(), String> {
    match answer.header("x-seen-content-length") {
        Some("5") => Ok(()),
        other => Err(format!("nginx saw Content-Length {other:?}, not `5`")),
    }
}

fn no_upgrade(answer: &Answer) -> Result<(), String> {
    match (answer.header("x-seen-upgrade"), answer.header("x-seen-http2-settings")) {
        (None, None) => Ok(()),
        seen => Err(format!("nginx saw Upgrade/HTTP2-Settings {seen:?}")),
    }
}

/// What must hold for every case, whatever its expectation: nginx never answered
/// from a protected place, and never saw a consumer the client named.
fn invariant(answer: &Answer) -> Result<(), String> {
    if answer.by_nginx() && (answer.body == "ADMIN" || answer.body == "SECURE") {
        return Err(format!("nginx answered {} without a token", answer.body));
    }
    if let Some(consumer) = answer.header("x-seen-consumer") {
        return Err(format!("nginx saw X-Consumer-Id {consumer:?}"));
    }
    Ok(())
}

fn verdict(case: &Case, answer: &Answer) -> Result<(), String> {
    invariant(answer)?;
    match case.expect {
        Refused | Unauthorized => {
            let status = if matches!(case.expect, Refused) { 400 } else { 401 };
            if answer.status != status || answer.by_nginx() {
                return Err(format!("expected the gateway's {status}, got {}", answer.describe()));
            }
        }
        Expect::Backend { body, uri } => {
            let seen_uri = answer.header("x-seen-uri");
            if answer.status != 200 || !answer.by_nginx() || answer.body != body || seen_uri != Some(uri) {
                return Err(format!("expected nginx's {body} for {uri}, got {}", answer.describe()));
            }
            let request_uri = answer.header("x-seen-request-uri").unwrap_or_default();
            let forwarded = request_uri.split('?').next().unwrap_or_default();
            if forwarded != uri {
                return Err(format!("forwarded {request_uri:?}, which nginx normalised to {uri:?}"));
            }
        }
    }
    match case.check {
        Some(check) => check(answer),
        None => Ok(()),
    }
}

// --- The tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_reaches_admin_or_the_secure_host_without_a_token() {
    let nginx = nginx_backend().await;
    let plugins = PluginDir::with(&[("jwt-auth", "jwt-auth")]);
    let gw = gateway(&config(nginx.addr, plugins.path()));
    let addr = gw.local_addr("web").unwrap();

    // Controls: with a token the same gateway does reach ADMIN and SECURE, so
    // the table below can tell a stop from a pass.
    let bearer = format!("Authorization: Bearer {}\r\n", token("alice"));
    let admin = exchange_h1(addr, &get("/admin", "www.example", &bearer)).await;
    let secure = exchange_h1(addr, &get("/x", "secure.example", &bearer)).await;
    let secure_h2 =
        exchange_h2(addr, "secure.example", "/x", &[("authorization", format!("Bearer {}", token("alice")))]).await;
    for (what, answer, body) in [
        ("/admin", &admin, "ADMIN"),
        ("secure.example", &secure, "SECURE"),
        ("h2 secure.example", &secure_h2, "SECURE"),
    ] {
        assert!(
            answer.status == 200
                && answer.by_nginx()
                && answer.body == body
                && answer.header("x-seen-consumer") == Some("alice"),
            "control {what} with a token: {}",
            answer.describe()
        );
    }

    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for case in &cases {
        let answer = match &case.send {
            Send::H1(bytes) => exchange_h1(addr, bytes).await,
            Send::H2 { authority, path, headers } => exchange_h2(addr, authority, path, headers).await,
        };
        let verdict = verdict(case, &answer);
        if let Err(reason) = &verdict {
            wrong.push(format!("{}: {reason}", short(&case.name)));
        }
        rows.push(row(case, &answer, &verdict));
    }

    println!("\n| case | expected | status | nginx body | X-Seen-Uri | X-Seen-Host | X-Seen-Request-Uri | also seen | verdict |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!("\n{} cases, {} as expected", cases.len(), cases.len() - wrong.len());
    let log = nginx.error_log();
    if !log.is_empty() {
        println!("\nnginx error log:\n{log}");
    }
    assert!(wrong.is_empty(), "{} of {} cases went wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

/// `Upgrade: h2c` is not forwarded (a backend would switch protocols under the
/// gateway's feet); `Upgrade: websocket` still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_never_reaches_a_backend() {
    let backend = UpgradingBackend::start().await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    // Control: offered h2c directly, the backend does switch.
    let direct = exchange_h1(backend.addr, &h2c_upgrade("/direct")).await;
    assert_eq!(direct.status, 101, "{}", direct.describe());
    backend.heads.lock().unwrap().clear();

    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut buffer = Vec::new();
    client.write_all(&h2c_upgrade("/first")).await.unwrap();
    let first = read_response(&mut client, &mut buffer).await;
    assert_eq!((first.status, first.body.as_str()), (200, "ok"), "{}", first.describe());
    // The connection is still plain HTTP/1.1.
    client.write_all(b"GET /second HTTP/1.1\r\nHost: www.example\r\n\r\n").await.unwrap();
    let second = read_response(&mut client, &mut buffer).await;
    assert_eq!((second.status, second.body.as_str()), (200, "ok"), "{}", second.describe());

    let heads = backend.heads();
    assert_eq!(heads.len(), 2, "{heads:#?}");
    for head in &heads {
        let head = head.to_ascii_lowercase();
        assert!(!is_h2c_upgrade(&head) && !head.contains("http2-settings"), "the backend saw:\n{head}");
    }

    // The allowlist keeps websocket: its Upgrade does reach the backend.
    let websocket = exchange_h1(
        addr,
        b"GET /ws HTTP/1.1\r\nHost: www.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert_eq!(websocket.status, 200, "{}", websocket.describe());
    let heads = backend.heads();
    let ws = heads.last().unwrap().to_ascii_lowercase();
    assert!(ws.contains("upgrade: websocket"), "the backend saw:\n{ws}");
}

/// `GET path` offering an upgrade to h2c, as curl's `--http2` does.
fn h2c_upgrade(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: www.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
         HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    .into_bytes()
}

fn is_h2c_upgrade(head: &str) -> bool {
    head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade") && value.to_ascii_lowercase().contains("h2c")
        })
    })
}

/// A raw-TCP backend that records every request head and accepts an h2c upgrade
/// (`101`) when offered one; anything else gets `200 ok`.
struct UpgradingBackend {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl UpgradingBackend {
    async fn start() -> UpgradingBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(UpgradingBackend::serve(stream, recorded.clone()));
            }
        });
        UpgradingBackend { addr, heads, task }
    }

    async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = find(&buffer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                buffer.drain(..end + 4);
                let upgrade = is_h2c_upgrade(&head);
                heads.lock().unwrap().push(head);
                let reply: &[u8] = if upgrade {
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                };
                if stream.write_all(reply).await.is_err() {
                    return;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for UpgradingBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- Exchanges and answers -----------------------------------------------------

/// An answer as the client got it (`status` 0: none).
struct Answer {
    status: u16,
    /// Names in lower case, in order.
    headers: Vec<(String, String)>,
    body: String,
    /// Why there is no (complete) answer.
    error: Option<String>,
}

impl Answer {
    fn failed(error: impl std::fmt::Display) -> Answer {
        Answer { status: 0, headers: Vec::new(), body: String::new(), error: Some(error.to_string()) }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// nginx produced this answer (the gateway passed it on). nginx's own `400`
    /// for a request it cannot parse has no `X-Seen-*` headers, only `Server`.
    fn by_nginx(&self) -> bool {
        self.header("x-seen-request-uri").is_some() || self.header("server").is_some_and(|s| s.starts_with("nginx"))
    }

    fn describe(&self) -> String {
        let from = if self.by_nginx() { "nginx" } else { "gateway" };
        match &self.error {
            Some(error) if self.status == 0 => format!("no answer ({error})"),
            _ => format!("{} from {from}, body {:?}", self.status, short(&self.body)),
        }
    }
}

/// One table row.
fn row(case: &Case, answer: &Answer, verdict: &Result<(), String>) -> String {
    let seen = |name: &str| answer.header(name).map(short).unwrap_or_else(|| "-".into());
    let expected = match case.expect {
        Refused => "400".to_owned(),
        Unauthorized => "401".to_owned(),
        Expect::Backend { body, uri } => format!("{body} {uri}"),
    };
    let status = match (&answer.error, answer.status) {
        (Some(error), 0) => format!("none ({})", short(error)),
        (_, status) => status.to_string(),
    };
    let body = if answer.by_nginx() { short(&answer.body) } else { "-".into() };
    let gateway = (!answer.by_nginx() && answer.status != 0).then(|| {
        // `400 Bad Request: bad request: <reason>`: the reason.
        let reason = answer.body.trim().rsplit(": ").next().unwrap_or_default();
        format!("gateway: {}", short(reason))
    });
    let also: Vec<String> = [
        ("Host", "x-seen-host-header"),
        ("XFH", "x-seen-forwarded-host"),
        ("Forwarded", "x-seen-forwarded"),
        ("Consumer", "x-seen-consumer"),
        ("Upgrade", "x-seen-upgrade"),
        ("CL", "x-seen-content-length"),
    ]
    .iter()
    .filter_map(|(label, name)| answer.header(name).map(|v| format!("{label}: {}", short(v))))
    .chain(gateway)
    .collect();
    let verdict = match verdict {
        Ok(()) => "ok".to_owned(),
        Err(reason) => format!("**WRONG**: {reason}"),
    };
    format!(
        "| {} | {expected} | {status} | {body} | {} | {} | {} | {} | {verdict} |",
        short(&case.name),
        seen("x-seen-uri"),
        seen("x-seen-host"),
        seen("x-seen-request-uri"),
        also.join(", ")
    )
}

/// Long values (the overlong paths) cut for the table; `|` escaped.
fn short(text: &str) -> String {
    let text = text.replace('|', "\\|").replace(['\r', '\n'], " ");
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

async fn exchange_h1(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return Answer::failed(format!("connect: {e}")),
    };
    // The gateway may answer and close before reading all of an overlong request.
    let _ = stream.write_all(bytes).await;
    read_response(&mut stream, &mut Vec::new()).await
}

/// Reads one HTTP/1.x response from `stream`; `buffer` keeps what was read past
/// it, for the next response on the same connection.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Answer {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((answer, used)) = parse_response(buffer, false) {
            buffer.drain(..used);
            return answer;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buffer.extend_from_slice(&chunk[..n]),
            Ok(result) => {
                return match parse_response(buffer, true) {
                    Some((answer, _)) => answer,
                    None if buffer.is_empty() => Answer::failed(match result {
                        Ok(_) => "closed without an answer".to_owned(),
                        Err(e) => e.to_string(),
                    }),
                    None => Answer::failed(format!("incomplete: {:?}", short(&String::from_utf8_lossy(buffer)))),
                }
            }
            Err(_) => return Answer::failed(format!("no answer within {WAIT:?}")),
        }
    }
}

/// One complete response at the start of `bytes` and its length; with `eof`, a
/// response without a length ends where the bytes do.
fn parse_response(bytes: &[u8], eof: bool) -> Option<(Answer, usize)> {
    let head_end = find(bytes, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse::<u16>().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let answer = |body: &[u8]| Answer {
        status,
        headers: headers.clone(),
        body: String::from_utf8_lossy(body).into_owned(),
        error: None,
    };
    let rest = &bytes[head_end + 4..];
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Some((answer(b""), head_end + 4));
    }
    if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = find(&rest[at..], b"\r\n")?;
            let size_text = String::from_utf8_lossy(&rest[at..at + line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at += line_end + 2;
            if size == 0 {
                let trailers_end = match rest[at..].starts_with(b"\r\n") {
                    true => 2,
                    false => find(&rest[at..], b"\r\n\r\n")? + 4,
                };
                return Some((answer(&body), head_end + 4 + at + trailers_end));
            }
            if rest.len() < at + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    }
    if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        return (rest.len() >= length).then(|| (answer(&rest[..length]), head_end + 4 + length));
    }
    eof.then(|| (answer(rest), bytes.len()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/2 request with prior knowledge on a new connection.
async fn exchange_h2(addr: SocketAddr, authority: &str, path: &str, headers: &[(&'static str, String)]) -> Answer {
    match tokio::time::timeout(WAIT, try_exchange_h2(addr, authority, path, headers)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => Answer::failed(error),
        Err(_) => Answer::failed(format!("no answer within {WAIT:?}")),
    }
}

async fn try_exchange_h2(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    headers: &[(&'static str, String)],
) -> Result<Answer, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let (client, connection) = h2::client::handshake(tcp).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.map_err(|e| format!("ready: {e}"))?;
    // Without an authority the URI is the path alone, and h2 sends no `:authority`.
    let uri = match authority {
        "" => path.to_owned(),
        _ => format!("http://{authority}{path}"),
    };
    let mut request = http::Request::builder().method("GET").uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request.body(()).map_err(|e| format!("request: {e}"))?;
    let (response, _) = client.send_request(request, true).map_err(|e| format!("send: {e}"))?;
    let response = response.await.map_err(|e| format!("response: {e}"))?;
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.map_err(|e| format!("body: {e}"))?;
        let _ = body.flow_control().release_capacity(data.len());
        bytes.extend_from_slice(&data);
    }
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        error: None,
    })
}
