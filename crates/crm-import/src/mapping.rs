//! Column mappings and import options.

use super::*;

/// An attribute read from a column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeColumn {
    /// The CSV column.
    pub column: String,
    /// The attribute it fills.
    pub key: AttrKey,
    /// How the text is read: `Text`, `Number`, `Bool` (`true`/`false`), `Date`
    /// (`YYYY-MM-DD`); other types are refused by the mapping check.
    pub ty: AttrType,
}

/// Which columns of a customer file hold what. Empty cells are absent values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerMapping {
    /// The source system the file comes from (its ids become external ids).
    pub source: String,
    /// The column with the customer's id in that system (required in every row).
    pub external_id: String,
    /// The column with the display name (needed for customers not yet known).
    pub name: Option<String>,
    /// The column with `person` or `organization`.
    pub kind: Option<String>,
    /// Columns with email addresses.
    pub emails: Vec<String>,
    /// Columns with phone numbers (international form).
    pub phones: Vec<String>,
    /// The column with the lifecycle stage (`lead`, `active`, ...).
    pub lifecycle: Option<String>,
    /// The column with tags, separated by `;`.
    pub tags: Option<String>,
    /// Attribute columns.
    pub attributes: Vec<AttributeColumn>,
    /// How rows are matched to customers other systems created (see
    /// [`crm_core::sync`]).
    pub natural_keys: Vec<NaturalKey>,
    /// The column with the name of the organisation a person works at: the organisation
    /// (found, or registered under the external id `company:<name in lower case>` of the
    /// source) becomes the person's account (see [`import_customers`](crate::import_customers)).
    #[serde(default)]
    pub company: Option<String>,
}

impl CustomerMapping {
    /// A mapping for files of `source` whose ids are in column `external_id`.
    pub fn new(source: &str, external_id: &str) -> Self {
        CustomerMapping {
            source: source.to_string(),
            external_id: external_id.to_string(),
            name: None,
            kind: None,
            emails: Vec::new(),
            phones: Vec::new(),
            lifecycle: None,
            tags: None,
            attributes: Vec::new(),
            natural_keys: Vec::new(),
            company: None,
        }
    }

    /// The company column.
    pub fn company(mut self, column: &str) -> Self {
        self.company = Some(column.to_string());
        self
    }

    /// The name column.
    pub fn name(mut self, column: &str) -> Self {
        self.name = Some(column.to_string());
        self
    }

    /// The kind column.
    pub fn kind(mut self, column: &str) -> Self {
        self.kind = Some(column.to_string());
        self
    }

    /// Adds an email column.
    pub fn email(mut self, column: &str) -> Self {
        self.emails.push(column.to_string());
        self
    }

    /// Adds a phone column.
    pub fn phone(mut self, column: &str) -> Self {
        self.phones.push(column.to_string());
        self
    }

    /// The lifecycle column.
    pub fn lifecycle(mut self, column: &str) -> Self {
        self.lifecycle = Some(column.to_string());
        self
    }

    /// The tags column (`;`-separated).
    pub fn tags(mut self, column: &str) -> Self {
        self.tags = Some(column.to_string());
        self
    }

    /// Adds an attribute column.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when `key` is not a valid attribute key.
    pub fn attribute(mut self, column: &str, key: &str, ty: AttrType) -> Result<Self> {
        self.attributes.push(AttributeColumn {
            column: column.to_string(),
            key: AttrKey::parse(key)?,
            ty,
        });
        Ok(self)
    }

    /// Matches rows to existing customers by this natural key too.
    pub fn natural_key(mut self, key: NaturalKey) -> Self {
        self.natural_keys.push(key);
        self
    }

    pub(crate) fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("external_id", self.external_id.as_str())];
        out.extend(self.name.as_deref().map(|c| ("name", c)));
        out.extend(self.kind.as_deref().map(|c| ("kind", c)));
        out.extend(self.emails.iter().map(|c| ("emails", c.as_str())));
        out.extend(self.phones.iter().map(|c| ("phones", c.as_str())));
        out.extend(self.lifecycle.as_deref().map(|c| ("lifecycle", c)));
        out.extend(self.tags.as_deref().map(|c| ("tags", c)));
        out.extend(self.company.as_deref().map(|c| ("company", c)));
        out.extend(
            self.attributes
                .iter()
                .map(|a| ("attributes", a.column.as_str())),
        );
        out
    }
}

/// Which columns of an interaction file hold what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InteractionMapping {
    /// The source system the file comes from.
    pub source: String,
    /// The column with the interaction's id in that system: its idempotency key.
    pub external_id: String,
    /// The source system whose customer ids the file uses (often the same).
    pub customer_source: String,
    /// The column with the customer's id in `customer_source`.
    pub customer: String,
    /// The column with the channel (`email`, `phone`, `store`, ...).
    pub channel: String,
    /// The column with the kind (`purchase`, `complaint`, ...).
    pub kind: String,
    /// The column with the direction (`inbound`, `outbound`); absent: the kind's default.
    pub direction: Option<String>,
    /// The column with when it happened: RFC 3339, or a date (`YYYY-MM-DD`, midnight UTC).
    pub occurred_at: String,
    /// The columns with an amount and its ISO 4217 currency.
    pub amount: Option<(String, String)>,
    /// The column with a subject line.
    pub subject: Option<String>,
}

impl InteractionMapping {
    /// The required columns; `customer_source` defaults to `source`.
    pub fn new(
        source: &str,
        external_id: &str,
        customer: &str,
        channel: &str,
        kind: &str,
        occurred_at: &str,
    ) -> Self {
        InteractionMapping {
            source: source.to_string(),
            external_id: external_id.to_string(),
            customer_source: source.to_string(),
            customer: customer.to_string(),
            channel: channel.to_string(),
            kind: kind.to_string(),
            direction: None,
            occurred_at: occurred_at.to_string(),
            amount: None,
            subject: None,
        }
    }

    /// Customer ids from another source system than the file's.
    pub fn customer_source(mut self, source: &str) -> Self {
        self.customer_source = source.to_string();
        self
    }

    /// The direction column.
    pub fn direction(mut self, column: &str) -> Self {
        self.direction = Some(column.to_string());
        self
    }

    /// The amount and currency columns.
    pub fn amount(mut self, amount: &str, currency: &str) -> Self {
        self.amount = Some((amount.to_string(), currency.to_string()));
        self
    }

    /// The subject column.
    pub fn subject(mut self, column: &str) -> Self {
        self.subject = Some(column.to_string());
        self
    }

    pub(crate) fn columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("external_id", self.external_id.as_str()),
            ("customer", self.customer.as_str()),
            ("channel", self.channel.as_str()),
            ("kind", self.kind.as_str()),
            ("occurred_at", self.occurred_at.as_str()),
        ];
        out.extend(self.direction.as_deref().map(|c| ("direction", c)));
        if let Some((a, c)) = &self.amount {
            out.push(("amount", a.as_str()));
            out.push(("amount", c.as_str()));
        }
        out.extend(self.subject.as_deref().map(|c| ("subject", c)));
        out
    }
}

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Valid rows written per batch (default 500; at most 10,000).
    pub batch_size: usize,
    /// Field delimiter (default `,`).
    pub delimiter: u8,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_size: 500,
            delimiter: b',',
        }
    }
}
