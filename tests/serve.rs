//! `relatent serve`: the JSON API over real HTTP (every endpoint and every error), and the page
//! in a real headless Chromium.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// A tiny trained and evaluated dSprites run, made once for the whole file.
fn tiny_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-tiny");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        common::run_tiny("dsprites", &dir).0
    })
}

/// A running `relatent serve` on a free port; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(run: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relatent"))
            .args(["serve", run.to_str().unwrap(), "--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let start = line.find("http://").unwrap_or_else(|| panic!("no address in {line:?}"));
        let base = line[start..].split_whitespace().next().unwrap().trim_end_matches('/');
        Server { child, base: base.to_string() }
    }

    /// Status and body of a request (JSON bodies parsed, others as their length).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let request = ureq::request(method, &format!("{}{path}", self.base));
        let response = match body {
            None => request.call(),
            Some(text) => request.set("Content-Type", "application/json").send_string(text),
        };
        let response = match response {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let json = response.content_type() == "application/json";
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
        let value = if json { serde_json::from_slice(&bytes).unwrap() } else { json!(bytes.len()) };
        (status, value)
    }

    /// The status line answering a POST that announces a 9 MiB body (sent no further: the
    /// server must refuse it from the header alone).
    fn announce_huge_body(&self) -> String {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        let head = format!(
            "POST /api/encode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            9 << 20
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reply = Vec::new();
        // The server closes the connection after answering (Connection: close).
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(&body.to_string()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a JSON error with `status` whose message contains `needle`.
fn assert_error((status, body): (u16, Value), expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let message = body["error"].as_str().unwrap_or_else(|| panic!("no error in {body}"));
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

/// A PNG of a w×h grey gradient, base64 as the page sends it.
fn png_data_uri(w: u32, h: u32) -> String {
    let image =
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[test]
fn api_answers_every_endpoint() {
    let server = Server::start(tiny_run());
    let (status, page) = server.get("/");
    assert_eq!((status, page.as_u64().unwrap() > 1000), (200, true));

    let (status, summary) = server.get("/api/summary");
    assert_eq!(status, 200);
    assert_eq!(summary["task"], "dsprites");
    assert_eq!(summary["latent"], 8);
    assert_eq!(summary["components"].as_array().unwrap().len(), 27);
    assert_eq!(summary["components"][0]["short"], "square/left/top");
    assert_eq!(summary["relations"][0]["name"], "move_left");
    assert!(summary["eval"]["classification"].is_array());
    assert!(!summary["curves"].as_array().unwrap().is_empty());

    let (status, png) = server.get("/api/components/26/mean.png");
    assert_eq!((status, png.as_u64().unwrap() > 50), (200, true));

    let (status, directions) = server.get("/api/components/3/directions");
    assert_eq!(status, 200);
    let dirs = directions["directions"].as_array().unwrap();
    assert_eq!((dirs.len(), dirs[0]["vector"].as_array().unwrap().len()), (8, 8));
    let sd: Vec<f64> = dirs.iter().map(|d| d["sd"].as_f64().unwrap()).collect();
    assert!(sd.windows(2).all(|w| w[0] >= w[1]), "widest first: {sd:?}");

    let (status, gallery) = server.get("/api/test-images?component=4&limit=2");
    assert_eq!(status, 200);
    let images = gallery["images"].as_array().unwrap();
    assert!(!images.is_empty() && images.iter().all(|i| i["component"] == 4));
    let item = images[0]["item"].as_u64().unwrap();

    let (status, encoded) = server.post("/api/encode", &json!({ "item": item }));
    assert_eq!(status, 200, "{encoded}");
    let code = encoded["code"].clone();
    assert_eq!(code.as_array().unwrap().len(), 8);
    assert!(encoded["placement"]["confidence"].as_f64().unwrap() <= 1.0);
    assert!(encoded["ood"]["score"].is_number());
    assert!(encoded["reconstruction"].as_str().unwrap().starts_with("data:image/png;base64,"));

    // The user's own image, of another size, is resized like folder data.
    let (status, upload) = server.post("/api/encode", &json!({ "image": png_data_uri(20, 30) }));
    assert_eq!(status, 200, "{upload}");
    assert_eq!(upload["code"].as_array().unwrap().len(), 8);

    let (status, decoded) = server.post("/api/decode", &json!({ "codes": [code, code] }));
    assert_eq!(status, 200);
    assert_eq!(decoded["images"].as_array().unwrap().len(), 2);
    assert_eq!(decoded["images"][0], decoded["images"][1]);
    assert_eq!(decoded["placements"][0], encoded["placement"]);

    let (status, applied) =
        server.post("/api/apply", &json!({ "relation": "move_right", "code": code }));
    assert_eq!(status, 200, "{applied}");
    let outputs = applied["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["code"].as_array().unwrap().len(), 8);
    assert!(outputs[0]["placement"]["short"].is_string());
}

#[test]
fn api_rejects_bad_requests_with_json_errors() {
    let server = Server::start(tiny_run());
    let code = vec![0.0; 8];
    assert_error(server.get("/api/nothing"), 404, "no such page");
    assert_error(server.get("/api/components/27/mean.png"), 404, "no component '27'");
    assert_error(server.get("/api/components/x/directions"), 404, "no component 'x'");
    assert_error(server.get("/api/test-images?component=99"), 404, "no component '99'");
    assert_error(server.get("/api/test-images?limit=0"), 400, "limit must be 1 to 64");
    assert_error(server.post("/api/encode", &json!({})), 400, "exactly one of");
    assert_error(server.post("/api/encode", &json!({"item": 1, "image": "x"})), 400, "exactly one");
    assert_error(server.post("/api/encode", &json!({"item": 999_999})), 404, "no test image");
    assert_error(server.post("/api/encode", &json!({"image": "%%%"})), 400, "not base64");
    assert_error(server.post("/api/encode", &json!({"image": "AAAA"})), 400, "not a readable");
    assert_error(server.post("/api/encode", &json!({"items": 1})), 400, "unknown field");
    assert_error(server.call("POST", "/api/encode", Some("{not json")), 400, "bad request body");
    assert_error(server.post("/api/decode", &json!({"codes": []})), 400, "give 1 to 256 codes");
    assert_error(server.post("/api/decode", &json!({"codes": [[1.0]]})), 400, "8 finite numbers");
    let many = vec![code.clone(); 257];
    assert_error(server.post("/api/decode", &json!({ "codes": many })), 400, "got 257");
    let apply = |body: Value| server.post("/api/apply", &body);
    assert_error(apply(json!({"relation": "fly", "code": code})), 404, "unknown relation 'fly'");
    let extra = json!({"relation": "move_up", "code": code, "operands": [code]});
    assert_error(apply(extra), 400, "takes 0 further operand(s), got 1");
    let operator = json!({"relation": "move_up", "code": code, "operator": code});
    assert_error(apply(operator), 400, "not selected by an operator");
    assert_error(apply(json!({"relation": "move_up", "code": [0.0]})), 400, "8 finite numbers");

    let reply = server.announce_huge_body();
    assert!(reply.starts_with("HTTP/1.1 413"), "a body over the limit: {reply}");
    assert!(reply.contains("the limit is 8388608"), "a JSON error: {reply}");

    // The server is still answering, and answers several clients at once.
    let answers: Vec<u16> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..8)
            .map(|_| s.spawn(|| server.post("/api/decode", &json!({"codes": [code]})).0))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(answers, vec![200; 8]);
}

#[test]
fn serve_refuses_a_run_it_cannot_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::relatent(&["serve", dir.path().to_str().unwrap()]);
    common::assert_user_error(&out, "cannot serve");
}

/// Chromium's path: Debian's `chromium` package (`.ci/run` installs it when missing).
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn page_works_in_a_real_browser() {
    use headless_chrome::{Browser, LaunchOptions};
    let Some(chromium) = chromium() else {
        eprintln!("SKIPPED: the browser test needs Chromium (apt-get install chromium)");
        return;
    };
    let server = Server::start(tiny_run());
    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .sandbox(false)
        .window_size(Some((1280, 1200)))
        .build()
        .unwrap();
    let browser = Browser::new(options).unwrap();
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));
    tab.navigate_to(&format!("{}/", server.base)).unwrap().wait_until_navigated().unwrap();
    let eval = |script: &str| tab.evaluate(script, true).unwrap().value.unwrap_or(Value::Null);
    let wait_for = |script: &str| {
        for _ in 0..200 {
            if eval(script) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "never true: {script}; page error: {}",
            eval("document.getElementById('error').textContent")
        );
    };

    // Prior means: one <img> per component, alt and caption in factor terms, each loaded.
    wait_for("document.querySelectorAll('#prior-means img').length === 27");
    wait_for(
        "[...document.querySelectorAll('#prior-means img')].every(i => i.complete && i.naturalWidth === 64)",
    );
    let alts = eval("[...document.querySelectorAll('#prior-means img')].map(i => i.alt).join(',')");
    assert!(alts.as_str().unwrap().starts_with("square/left/top,square/left/middle"), "{alts}");
    let caption = eval("document.querySelector('#prior-means figcaption').textContent");
    assert_eq!(caption, "square/left/top");

    // The first gallery image is chosen on load; a relation adds a captioned strip image.
    wait_for("document.querySelectorAll('#strip figure').length === 1");
    let before = eval("document.querySelectorAll('#strip figure').length");
    assert_eq!(before, 1);
    eval("document.querySelector('button[data-relation=\"move_right\"]').click()");
    wait_for("document.querySelectorAll('#strip figure').length === 2");
    let caption = eval("document.querySelectorAll('#strip figcaption')[1].textContent");
    assert!(caption.as_str().unwrap().starts_with("move_right → "), "{caption}");
    eval("document.getElementById('undo').click()");
    wait_for("document.querySelectorAll('#strip figure').length === 1");

    // A slider decodes as it moves.
    wait_for("document.querySelectorAll('input.slider').length >= 8");
    eval("window.before = document.getElementById('slider-image').src");
    eval(
        "const s = document.querySelector('input.slider'); s.value = 1; s.dispatchEvent(new Event('input'))",
    );
    wait_for("document.getElementById('slider-image').src !== window.before");
    assert_eq!(eval("document.getElementById('error').textContent"), "");
}
