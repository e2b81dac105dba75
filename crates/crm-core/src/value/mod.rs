//! Validated values: constructing one from bad input is a [`Error::Validation`](crate::Error)
//! naming the field, never a panic. Deserialising validates too (`serde(try_from)`).

mod attribute;
mod email;
pub(crate) mod money;
mod phone;
mod text;

pub use attribute::{AttrKey, AttrValue, Attributes};
pub use email::EmailAddress;
pub use money::{Currency, Money};
pub use phone::PhoneNumber;
pub use text::{DisplayName, ExternalRef, SourceSystem, StageKey, Tag};
