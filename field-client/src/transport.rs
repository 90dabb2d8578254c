//! How the device reaches its server: HTTPS through rustls, or plain HTTP only where that
//! cannot leave the machine.
//!
//! An officer's password, tokens and records cross the mobile network, so the device speaks
//! HTTPS and trusts the platform's roots (`rustls-native-certs`, through reqwest) plus, when the
//! bureau runs its own CA, that CA's certificate given at enrollment (`--ca-cert`) and kept in
//! the device store with the server's address ([`Transport`]). Plain `http://` is refused before
//! anything is sent unless the server is on the loopback address (a test, a local proxy) or the
//! officer said `--insecure-http` at enrollment. Redirects are not followed, so that an answer
//! cannot send the device's credentials elsewhere.
//!
//! A TLS failure is told apart by its cause (unknown CA, wrong host name, expired certificate),
//! each with its own code, and is never retried: retrying cannot fix it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, ClientResult};

/// What the device trusts to reach its server, kept in the device store from enrollment on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transport {
    /// The bureau's own CA certificates (PEM), trusted beside the platform's roots.
    #[serde(default)]
    pub ca_certificate: Option<String>,
    /// Plain `http://` to a server that is not on the loopback address, explicitly allowed.
    #[serde(default)]
    pub insecure_http: bool,
}

/// Refuses a server address that is not `https://`, unless it is `http://` on the loopback
/// address or `transport` allows plain HTTP explicitly.
pub fn check_server_url(server: &str, transport: &Transport) -> ClientResult<()> {
    let url = reqwest::Url::parse(server)
        .map_err(|e| ClientError::InvalidInput { what: "server address".into(), detail: format!("{server}: {e}") })?;
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback || transport.insecure_http => Ok(()),
        "http" => Err(ClientError::InsecureServer { url: server.to_string() }),
        other => Err(ClientError::InvalidInput {
            what: "server address".into(),
            detail: format!("{server}: the scheme {other} is neither https nor http"),
        }),
    }
}

/// An HTTP client for the server at `server`, after [`check_server_url`].
pub fn http_client(
    server: &str,
    transport: &Transport,
    timeout: Duration,
    keep_alive: bool,
) -> ClientResult<reqwest::Client> {
    check_server_url(server, transport)?;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &transport.ca_certificate {
        for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| ClientError::InvalidInput { what: "CA certificate".into(), detail: e.to_string() })?
        {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if !keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().map_err(|e| ClientError::InvalidInput { what: "HTTP client".into(), detail: e.to_string() })
}

/// Checks that `pem` holds at least one certificate, as `--ca-cert` must.
pub fn check_ca_certificate(pem: &str) -> ClientResult<()> {
    let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| ClientError::InvalidInput { what: "CA certificate".into(), detail: e.to_string() })?;
    if certificates.is_empty() {
        return Err(ClientError::InvalidInput {
            what: "CA certificate".into(),
            detail: "no PEM certificate in it".into(),
        });
    }
    Ok(())
}

/// The device's error for a failed request: a TLS failure by its cause, anything else as the
/// network's.
pub fn network(error: reqwest::Error) -> ClientError {
    let detail = error.to_string();
    match tls_cause(&error) {
        Some(rustls::Error::InvalidCertificate(cause)) => {
            let detail = format!("{detail}: {cause}");
            match cause {
                rustls::CertificateError::UnknownIssuer => ClientError::TlsUnknownCa { detail },
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => {
                    ClientError::TlsWrongHost { detail }
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. }
                | rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. } => ClientError::TlsExpired { detail },
                _ => ClientError::TlsFailed { detail },
            }
        }
        Some(other) => ClientError::TlsFailed { detail: format!("{detail}: {other}") },
        None => ClientError::Network { detail },
    }
}

/// The rustls error somewhere in `error`'s chain of causes. An `io::Error` does not name the
/// error it wraps as its source, so each one met is opened as well.
fn tls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = tls_cause(inner)
        {
            return Some(found);
        }
        next = error.source();
    }
    None
}
