//! The console's session: a token drawn at start and embedded in every form
//! of the page, and the check every action passes first. An action is refused
//! (403) unless it carries the token, and unless the browser's own headers say
//! it comes from the console's page: an `Origin` naming another origin than
//! the console's own, or a `Sec-Fetch-Site` other than `same-origin` (or
//! `none`, a request the user typed), is another site's doing.

use std::hash::{BuildHasher, RandomState};

use axum::http::HeaderMap;

/// The console's secret for one run.
#[derive(Clone)]
pub struct Session {
    token: String,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The form carried no token, or another one.
    #[error("the action carries no valid session token: reload the console and try again")]
    Token,
    /// The browser says another site sent it.
    #[error("the action comes from another site ({0})")]
    CrossSite(String),
}

impl Session {
    /// A session with a fresh 128-bit token: two SipHash outputs under keys
    /// std draws from the operating system's random source.
    pub fn new() -> Self {
        let token = (0..2u8)
            .map(|n| {
                format!(
                    "{:016x}",
                    RandomState::new().hash_one((n, std::process::id()))
                )
            })
            .collect();
        Self { token }
    }

    /// The token, for the page's forms.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Checks an action's `headers` and the `token` its form carried.
    ///
    /// # Errors
    /// [`Refused`] when the token is missing or wrong, or the request came
    /// from another site.
    pub fn check(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), Refused> {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|value| value.to_str().unwrap_or("(not text)"))
        };
        if let Some(site) = header("sec-fetch-site") {
            if !matches!(site, "same-origin" | "none") {
                return Err(Refused::CrossSite(format!("Sec-Fetch-Site: {site}")));
            }
        }
        if let Some(origin) = header("origin") {
            let own = header("host").map(|host| format!("http://{host}"));
            if own.as_deref() != Some(origin) {
                return Err(Refused::CrossSite(format!("Origin: {origin}")));
            }
        }
        match token {
            Some(given) if same(given.as_bytes(), self.token.as_bytes()) => Ok(()),
            _ => Err(Refused::Token),
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `a` and `b` are equal, in a time that does not tell where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A panic is how these tests fail.

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_the_token_from_the_console_s_own_page_passes() {
        let session = Session::new();
        let token = session.token().to_owned();
        assert_eq!(token.len(), 32);
        assert_ne!(token, Session::new().token(), "a token per run");
        let own = headers(&[
            ("host", "127.0.0.1:3001"),
            ("origin", "http://127.0.0.1:3001"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(session.check(&own, Some(&token)), Ok(()));
        assert_eq!(session.check(&HeaderMap::new(), Some(&token)), Ok(()));
        assert_eq!(session.check(&own, None), Err(Refused::Token));
        assert_eq!(session.check(&own, Some("0")), Err(Refused::Token));
        let foreign = headers(&[
            ("host", "127.0.0.1:3001"),
            ("origin", "http://evil.example"),
        ]);
        assert!(matches!(
            session.check(&foreign, Some(&token)),
            Err(Refused::CrossSite(_))
        ));
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(matches!(
            session.check(&cross, Some(&token)),
            Err(Refused::CrossSite(_))
        ));
    }
}
