//! Message templates per tenant and locale.

use std::collections::BTreeSet;

use crm_core::notify::{Envelope, Locale, TemplateName};
use crm_core::{Error, Result, TenantId};
use minijinja::{Environment, UndefinedBehavior};

/// The parts of one template: subject, plain text, and optionally HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateParts {
    subject: String,
    text: String,
    html: Option<String>,
}

impl TemplateParts {
    /// A subject and a plain-text body (minijinja syntax: `{{ customer }}`).
    pub fn new(subject: &str, text: &str) -> Self {
        TemplateParts {
            subject: subject.to_string(),
            text: text.to_string(),
            html: None,
        }
    }

    /// Adds an HTML body; the message then carries both (multipart/alternative).
    pub fn html(mut self, html: &str) -> Self {
        self.html = Some(html.to_string());
        self
    }
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line (before header sanitising).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, if the template has one.
    pub html: Option<String>,
}

/// Templates by tenant (or for every tenant), name and locale (or for any locale).
///
/// Variables that the data does not define are errors (a message is never sent with a
/// hole in it); write `{{ x | default("") }}` for optional ones.
pub struct Templates {
    env: Environment<'static>,
    known: BTreeSet<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.known)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn key(scope: Option<TenantId>, locale: Option<&str>, name: &str) -> String {
    let scope = scope.map_or_else(|| "*".to_string(), |t| t.to_string());
    format!("{scope}/{}/{name}", locale.unwrap_or("*"))
}

impl Templates {
    /// No templates yet.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates {
            env,
            known: BTreeSet::new(),
        }
    }

    /// Adds (or replaces) template `name` for `tenant` (`None`: every tenant) in `locale`
    /// (`None`: any locale). Each part is compiled now.
    ///
    /// Errors: validation on `template` or `locale`, or on `template.subject`,
    /// `template.text` or `template.html` with the syntax error.
    pub fn add(
        &mut self,
        tenant: Option<TenantId>,
        name: &str,
        locale: Option<&str>,
        parts: TemplateParts,
    ) -> Result<()> {
        let name = TemplateName::parse(name)?;
        let locale = locale.map(Locale::parse).transpose()?;
        let base = key(tenant, locale.as_ref().map(Locale::as_str), name.as_str());
        let mut sources = vec![
            (
                format!("{base}/subject.txt"),
                parts.subject,
                "template.subject",
            ),
            (format!("{base}/text.txt"), parts.text, "template.text"),
        ];
        if let Some(html) = parts.html {
            sources.push((format!("{base}/body.html"), html, "template.html"));
        }
        // Compile every part before storing any, so a bad part leaves the set unchanged.
        for (_, source, field) in &sources {
            self.env
                .template_from_str(source)
                .map_err(|e| Error::validation(*field, e.to_string()))?;
        }
        self.env.remove_template(&format!("{base}/body.html"));
        for (name, source, field) in sources {
            self.env
                .add_template_owned(name, source)
                .map_err(|e| Error::validation(field, e.to_string()))?;
        }
        self.known.insert(base);
        Ok(())
    }

    /// The key of the most specific template for `name` in `tenant` and `locale`.
    fn find(&self, tenant: TenantId, name: &str, locale: Option<&Locale>) -> Option<&str> {
        let mut locales: Vec<Option<&str>> = Vec::new();
        if let Some(locale) = locale {
            locales.push(Some(locale.as_str()));
            if locale.language() != locale.as_str() {
                locales.push(Some(locale.language()));
            }
        }
        locales.push(None);
        for scope in [Some(tenant), None] {
            for locale in &locales {
                if let Some(found) = self.known.get(&key(scope, *locale, name)) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Renders the envelope's template with its data plus `recipient` (`name`, `email`).
    ///
    /// Errors: permanent [`Error::Notify`] when no template fits or rendering fails.
    pub fn render(&self, tenant: TenantId, envelope: &Envelope) -> Result<Rendered> {
        let name = envelope.notification.template.as_str();
        let base = self.find(tenant, name, envelope.locale()).ok_or_else(|| {
            Error::notify(
                true,
                format!("no template {name:?} for this tenant and locale"),
            )
        })?;
        let mut context = match &envelope.notification.data {
            serde_json::Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        context.insert(
            "recipient".into(),
            serde_json::json!({
                "name": envelope.to.name,
                "email": envelope.to.email.as_ref().map(|e| e.as_str()),
            }),
        );
        let context = minijinja::Value::from_serialize(&context);
        let render = |part: &str| -> Result<Option<String>> {
            let Ok(template) = self.env.get_template(&format!("{base}/{part}")) else {
                return Ok(None);
            };
            template
                .render(&context)
                .map(Some)
                .map_err(|e| Error::notify(true, format!("template {name:?} ({part}): {e}")))
        };
        Ok(Rendered {
            subject: render("subject.txt")?.unwrap_or_default(),
            text: render("text.txt")?.unwrap_or_default(),
            html: render("body.html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::notify::{Addressee, Notification, Recipient};
    use crm_core::{EmailAddress, MessageId};

    fn envelope(template: &str, locale: Option<&str>, data: serde_json::Value) -> Envelope {
        let mut builder = Notification::builder(
            Recipient::Email(EmailAddress::parse("a@example.com").unwrap()),
            template,
            "k",
        )
        .data(data);
        if let Some(l) = locale {
            builder = builder.locale(l);
        }
        Envelope {
            message_id: MessageId::new(),
            notification: builder.build().unwrap(),
            to: Addressee {
                name: Some("Ann".into()),
                email: Some(EmailAddress::parse("a@example.com").unwrap()),
                phone: None,
                locale: None,
            },
        }
    }

    #[test]
    fn most_specific_template_wins() {
        let (mine, other) = (TenantId::new(), TenantId::new());
        let mut t = Templates::new();
        t.add(None, "hello", None, TemplateParts::new("any", "any"))
            .unwrap();
        t.add(None, "hello", Some("zh"), TemplateParts::new("zh", "zh"))
            .unwrap();
        t.add(
            Some(mine),
            "hello",
            Some("zh-CN"),
            TemplateParts::new("mine zh-CN", "x"),
        )
        .unwrap();
        let subject = |tenant, locale| {
            t.render(tenant, &envelope("hello", locale, serde_json::json!({})))
                .unwrap()
                .subject
        };
        assert_eq!(subject(mine, Some("zh-CN")), "mine zh-CN");
        assert_eq!(subject(other, Some("zh-CN")), "zh", "language fallback");
        assert_eq!(subject(mine, Some("zh-TW")), "zh");
        assert_eq!(subject(mine, Some("de")), "any");
        assert_eq!(subject(mine, None), "any");
        let missing = t.render(mine, &envelope("nope", None, serde_json::json!({})));
        assert!(missing.unwrap_err().is_permanent());
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let mut t = Templates::new();
        t.add(
            None,
            "n",
            None,
            TemplateParts::new("Re: {{ who }}", "Hi {{ who }}, {{ recipient.name }}")
                .html("<p>{{ who }}</p>"),
        )
        .unwrap();
        let r = t
            .render(
                TenantId::new(),
                &envelope("n", None, serde_json::json!({"who": "<b>&"})),
            )
            .unwrap();
        assert_eq!(r.subject, "Re: <b>&");
        assert_eq!(r.text, "Hi <b>&, Ann");
        assert_eq!(r.html.as_deref(), Some("<p>&lt;b&gt;&amp;</p>"));
    }

    #[test]
    fn bad_syntax_and_missing_data_are_reported() {
        let mut t = Templates::new();
        let e = t
            .add(None, "n", None, TemplateParts::new("ok", "{{ unclosed"))
            .unwrap_err();
        assert_eq!(e.field(), Some("template.text"));
        let e = t
            .add(None, "Bad Name", None, TemplateParts::new("", ""))
            .unwrap_err();
        assert_eq!(e.field(), Some("template"));
        t.add(None, "n", None, TemplateParts::new("{{ missing }}", ""))
            .unwrap();
        let e = t
            .render(TenantId::new(), &envelope("n", None, serde_json::json!({})))
            .unwrap_err();
        assert!(e.is_permanent(), "{e}");
    }
}
