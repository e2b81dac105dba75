//! The core's errors as a hierarchy of Python exceptions, with the details as attributes.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(_native, CrmError, PyException, "Any error of the CRM core.");
pyo3::create_exception!(
    _native,
    ValidationError,
    CrmError,
    "Bad input: `field` names it, `reason` says why. Nothing was written."
);
pyo3::create_exception!(
    _native,
    NotFoundError,
    CrmError,
    "No such record: `entity` and `id`."
);
pyo3::create_exception!(
    _native,
    ConflictError,
    CrmError,
    "The record changed since it was read: `expected` and `actual` versions."
);
pyo3::create_exception!(
    _native,
    DuplicateError,
    CrmError,
    "A record with the same unique key exists: `entity` and `key`."
);
pyo3::create_exception!(
    _native,
    ForbiddenError,
    CrmError,
    "The caller may not do this: `action` on `record`."
);
pyo3::create_exception!(
    _native,
    UnsupportedError,
    CrmError,
    "The store cannot do this."
);
pyo3::create_exception!(
    _native,
    StorageError,
    CrmError,
    "The store failed (or was busy): try again later."
);

pyo3::create_exception!(
    _native,
    DeliveryRefused,
    CrmError,
    "Raise it from a notifier or event callable to refuse a message for good (a dead letter); any other exception is retried later."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CrmError", py.get_type::<CrmError>())?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("DuplicateError", py.get_type::<DuplicateError>())?;
    m.add("ForbiddenError", py.get_type::<ForbiddenError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("DeliveryRefused", py.get_type::<DeliveryRefused>())?;
    Ok(())
}

/// Sets attributes on a new exception.
fn with(err: PyErr, attributes: &[(&str, Py<PyAny>)]) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        for (name, v) in attributes {
            // An attribute that cannot be set leaves the message, which says it all too.
            let _ = value.setattr(*name, v);
        }
    });
    err
}

/// The Python exception for a core error.
pub fn to_py(e: crm::Error) -> PyErr {
    use crm::Error as E;
    let message = e.to_string();
    Python::attach(|py| {
        let text = |s: &str| s.into_pyobject(py).map(|o| o.into_any().unbind());
        let num = |n: u64| n.into_pyobject(py).map(|o| o.into_any().unbind());
        let built: PyResult<PyErr> = (|| {
            Ok(match &e {
                E::Validation { field, reason } => with(
                    ValidationError::new_err(message.clone()),
                    &[("field", text(field)?), ("reason", text(reason)?)],
                ),
                E::NotFound { entity, id } => with(
                    NotFoundError::new_err(message.clone()),
                    &[("entity", text(entity)?), ("id", text(id)?)],
                ),
                E::Conflict {
                    entity,
                    id,
                    expected,
                    actual,
                } => with(
                    ConflictError::new_err(message.clone()),
                    &[
                        ("entity", text(entity)?),
                        ("id", text(id)?),
                        ("expected", num(*expected)?),
                        ("actual", num(*actual)?),
                    ],
                ),
                E::Duplicate { entity, key } => with(
                    DuplicateError::new_err(message.clone()),
                    &[("entity", text(entity)?), ("key", text(key)?)],
                ),
                E::Forbidden { action, record } => with(
                    ForbiddenError::new_err(message.clone()),
                    &[("action", text(action)?), ("record", text(record)?)],
                ),
                E::Unsupported { .. } => UnsupportedError::new_err(message.clone()),
                E::Storage { .. } | E::Contention { .. } | E::Corrupt { .. } | E::Io { .. } => {
                    StorageError::new_err(message.clone())
                }
                _ => CrmError::new_err(message.clone()),
            })
        })();
        built.unwrap_or_else(|_| CrmError::new_err(message))
    })
}

/// A validation error raised by the bindings themselves (a bad argument).
pub fn invalid(field: &str, reason: impl Into<String>) -> PyErr {
    to_py(crm::Error::validation(field, reason.into()))
}
