//! SMTP connection settings.

use std::time::Duration;

use crm_core::{EmailAddress, Error, Result};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};

/// How the connection to the server is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    StartTls,
    /// TLS from the first byte ("SMTPS"), usually port 465.
    ImplicitTls,
    /// No encryption at all: only for a local test server. Chosen only through
    /// [`SmtpConfig::plain_dangerous`].
    PlainDangerous,
}

/// Where and how to send: server, security, credentials, sender, limits.
///
/// `Debug` output shows the user name but never the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// The sender's display name.
    pub from_name: String,
    /// The sender's address (also the envelope sender).
    pub from_email: EmailAddress,
    /// Time allowed for each SMTP command and the connection (default 30 s).
    pub timeout: Duration,
    /// Most pooled connections (default 4).
    pub pool_size: u32,
    /// The domain part of Message-IDs (default: the sender's domain).
    pub message_id_domain: String,
    credentials: Option<(String, String)>,
    extra_roots: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from_email", &self.from_email)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("password", &self.credentials.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl SmtpConfig {
    fn new(host: &str, port: u16, security: Security, from_name: &str, from: &str) -> Result<Self> {
        if host.trim().is_empty() {
            return Err(Error::validation("host", "must not be empty"));
        }
        let from_email = EmailAddress::parse_field(from, "from")?;
        let domain = from_email
            .as_str()
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| host.to_string());
        Ok(SmtpConfig {
            host: host.to_string(),
            port,
            security,
            from_name: super::header_safe(from_name),
            from_email,
            timeout: Duration::from_secs(30),
            pool_size: 4,
            message_id_domain: domain,
            credentials: None,
            extra_roots: Vec::new(),
        })
    }

    /// A server reached with STARTTLS on port 587, sending as `from_name <from>`.
    /// Errors: validation on `host` or `from`.
    pub fn starttls(host: &str, from_name: &str, from: &str) -> Result<Self> {
        Self::new(host, 587, Security::StartTls, from_name, from)
    }

    /// A server reached with implicit TLS on port 465.
    /// Errors: validation on `host` or `from`.
    pub fn implicit_tls(host: &str, from_name: &str, from: &str) -> Result<Self> {
        Self::new(host, 465, Security::ImplicitTls, from_name, from)
    }

    /// A server reached without any encryption: for a local development or test server
    /// only, never across a network. Errors: validation on `host` or `from`.
    pub fn plain_dangerous(host: &str, port: u16, from_name: &str, from: &str) -> Result<Self> {
        Self::new(host, port, Security::PlainDangerous, from_name, from)
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Authenticates with a user name and password (PLAIN or LOGIN, as the server offers).
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// Sets the timeout of each SMTP step.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the most pooled connections.
    pub fn with_pool_size(mut self, pool_size: u32) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Sets the domain part of Message-IDs.
    pub fn with_message_id_domain(mut self, domain: &str) -> Self {
        self.message_id_domain = domain.to_string();
        self
    }

    /// Also trusts the certificate authority in `pem` (a company's own CA, a test CA), on
    /// top of the Mozilla roots. Errors: validation on `root_certificate` if it is not a
    /// PEM certificate.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self> {
        Certificate::from_pem(pem)
            .map_err(|e| Error::validation("root_certificate", e.to_string()))?;
        self.extra_roots.push(pem.to_vec());
        Ok(self)
    }

    /// The TLS parameters: the host name to verify and the roots to trust.
    pub(crate) fn tls_parameters(&self) -> Result<TlsParameters> {
        let mut builder = TlsParameters::builder(self.host.clone());
        for pem in &self.extra_roots {
            let cert = Certificate::from_pem(pem)
                .map_err(|e| Error::validation("root_certificate", e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| Error::validation("host", e.to_string()))
    }

    pub(crate) fn lettre_credentials(&self) -> Option<Credentials> {
        self.credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.clone()))
    }

    pub(crate) fn sender_mailbox(&self) -> Result<Mailbox> {
        let address = self
            .from_email
            .as_str()
            .parse()
            .map_err(|e| Error::validation("from", format!("{e}")))?;
        let name = (!self.from_name.is_empty()).then(|| self.from_name.clone());
        Ok(Mailbox::new(name, address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = SmtpConfig::starttls("smtp.example.com", "CRM", "crm@example.com")
            .unwrap()
            .with_credentials("crm-user", "s3cret-Pa55");
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("s3cret-Pa55"), "{shown}");
        assert!(
            shown.contains("crm-user") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn bad_sender_or_host_names_the_field() {
        let e = SmtpConfig::starttls("smtp.example.com", "CRM", "not an address").unwrap_err();
        assert_eq!(e.field(), Some("from"));
        let e = SmtpConfig::implicit_tls(" ", "CRM", "crm@example.com").unwrap_err();
        assert_eq!(e.field(), Some("host"));
    }

    #[test]
    fn ports_follow_the_security_mode() {
        let from = "crm@example.com";
        assert_eq!(SmtpConfig::starttls("h", "", from).unwrap().port, 587);
        assert_eq!(SmtpConfig::implicit_tls("h", "", from).unwrap().port, 465);
        let plain = SmtpConfig::plain_dangerous("localhost", 2525, "", from).unwrap();
        assert_eq!(
            (plain.port, plain.security),
            (2525, Security::PlainDangerous)
        );
        assert_eq!(plain.message_id_domain, "example.com");
    }
}
