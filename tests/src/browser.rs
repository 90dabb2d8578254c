//! A real browser for the console's tests: Debian's headless Chromium driven through
//! ChromeDriver (WebDriver) by fantoccini.
//!
//! `chromium` and `chromium-driver` are installed by the README's test command (`.ci/test`);
//! `FIELDSYNC_CHROMEDRIVER` and `FIELDSYNC_CHROMIUM` name other programs. One browser runs at a
//! time in a test process: the machine has two cores and each scene starts its own.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// One browser at a time.
static BROWSER_SLOT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// A headless Chromium with its ChromeDriver, stopped when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    screenshots: PathBuf,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium in `lang` (`zh-CN` or `en-US`); screenshots go
    /// to `screenshots`.
    pub async fn start(screenshots: &Path, lang: &str) -> Browser {
        let slot = BROWSER_SLOT.acquire().await.expect("the browser slot");
        let driver_program = std::env::var("FIELDSYNC_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium = std::env::var("FIELDSYNC_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&driver_program)
            .arg(format!("--port={port}"))
            // Its own process group, so that the browsers it starts stop with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {driver_program} ({e}): the browser tests need Debian's chromium and \
                     chromium-driver, which the README's test command (bash .ci/test) installs"
                )
            });
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", format!("--lang={lang}"), "--no-first-run",
                ],
                "prefs": { "intl.accept_languages": lang },
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), serde_json::json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last_error = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone()).capabilities(capabilities.clone()).connect(&driver_url).await {
                Ok(client) => {
                    std::fs::create_dir_all(screenshots).unwrap();
                    return Browser { client, driver, driver_url, screenshots: screenshots.to_path_buf(), _slot: slot };
                }
                Err(error) => last_error = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ChromeDriver did not start a browser: {last_error}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The current path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// The element `css`, waited for up to ten seconds.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Signs in through the console's sign-in page.
    pub async fn sign_in(&self, base: &str, officer_id: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill("#officer_id", officer_id).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
        let signed_in = self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#logout")).await;
        if signed_in.is_err() {
            self.screenshot(&format!("sign-in-failed-{officer_id}")).await;
            panic!("{officer_id} did not sign in: at {} with {}", self.path().await, self.source().await);
        }
    }

    /// Saves a screenshot of the page as `<name>.png` for a person to look at.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The browser's console messages of level SEVERE since the last call (errors, refused
    /// resources, policy violations).
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&serde_json::json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the browser session and ChromeDriver.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Stops ChromeDriver and every browser it started (its process group).
    fn drop(&mut self) {
        // A negative pid names the process group the driver leads (`process_group(0)` above).
        if let Ok(group) = i32::try_from(self.driver.id())
            && group > 1
        {
            // SAFETY: kill(2) with a process group id and a signal number; no memory is touched.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
