//! A browser's view of the console without the browser: a cookie-keeping HTTP client that signs
//! in through the sign-in form and posts forms with the page's CSRF token, for the console's
//! form tests (refusals, escaping) where a real browser adds nothing.

/// A signed-in (or anonymous) console client.
pub struct ConsoleClient {
    pub base: String,
    pub client: reqwest::Client,
}

/// A page as answered: its status, its `Location` when it redirects, and its HTML.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> Option<String> {
        let at = self.html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.html[at..].split('"').next()?.to_string())
    }
}

impl ConsoleClient {
    /// A client with no session. It keeps cookies and does not follow redirects, so that tests
    /// see where the console sends the browser.
    pub fn anonymous(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        ConsoleClient { base: base.to_string(), client }
    }

    /// Signs in through the sign-in form; panics unless the console accepts the password.
    pub async fn sign_in(base: &str, officer_id: &str, password: &str) -> Self {
        let console = Self::anonymous(base);
        let answer = console.post_raw("/login", &[("officer_id", officer_id), ("password", password)]).await;
        assert_eq!(answer.status, 303, "signing in as {officer_id}: {answer:?}");
        console
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.expect("the console answers");
        Self::page(response).await
    }

    /// Posts `fields` as a form, with nothing added.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response =
            self.client.post(format!("{}{path}", self.base)).form(fields).send().await.expect("the console answers");
        Self::page(response).await
    }

    /// Posts `fields` as a form with the session's CSRF token, read from the start page.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get("/").await.csrf().expect("a signed-in page carries a CSRF token");
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    async fn page(response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let html = response.text().await.unwrap_or_default();
        Page { status, location, html }
    }
}
