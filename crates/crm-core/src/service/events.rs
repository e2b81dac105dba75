//! The recorder: every domain event the services write is built here.

use crate::case::{Case, CaseEventKind, CaseStatus};
use crate::customer::{Customer, OwnershipChange};
use crate::error::{Error, Result};
use crate::id::CustomerId;
use crate::interaction::Interaction;
use crate::notify::payload::{CasePayload, ErasedPayload, MergedPayload, StageChangedPayload};
use crate::notify::{DomainEvent, EntityRef, EventKind, OutboxMessage};
use crate::sales::{Opportunity, Outcome, StageChange};

/// Builds the domain events of a change as outbox messages, or nothing when events are off.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recorder {
    on: bool,
}

impl Recorder {
    pub(crate) fn new(on: bool) -> Self {
        Recorder { on }
    }

    /// Whether events are recorded.
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// The events of a stored customer change: created (at version 1) or updated, and
    /// owner changed when `ownership` is given.
    pub(crate) fn customer(
        &self,
        customer: &Customer,
        ownership: Option<&OwnershipChange>,
    ) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let entity = EntityRef::customer(customer.id);
        let (id, version, at) = (customer.id, customer.version, customer.updated_at);
        let record =
            serde_json::to_value(customer).map_err(|e| Error::encoding("a customer event", e))?;
        let kind = if version == 1 && ownership.is_none() {
            EventKind::CustomerCreated
        } else {
            EventKind::CustomerUpdated
        };
        let key = |kind: EventKind| format!("{}:{id}:{version}", kind.as_str());
        let mut out = vec![DomainEvent::message(
            kind,
            entity.clone(),
            &entity,
            version,
            at,
            record,
            key(kind),
        )?];
        if let Some(change) = ownership {
            let data = serde_json::to_value(change)
                .map_err(|e| Error::encoding("an ownership event", e))?;
            out.push(DomainEvent::message(
                EventKind::OwnerChanged,
                entity.clone(),
                &entity,
                version,
                at,
                data,
                key(EventKind::OwnerChanged),
            )?);
        }
        Ok(out)
    }

    /// `customer.merged` on the survivor, naming the customers merged into it.
    pub(crate) fn merged(
        &self,
        survivor: &Customer,
        merged: &[CustomerId],
    ) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let entity = EntityRef::customer(survivor.id);
        let data = serde_json::to_value(MergedPayload {
            survivor: survivor.id,
            merged: merged.to_vec(),
            customer: survivor.clone(),
        })
        .map_err(|e| Error::encoding("a merge event", e))?;
        Ok(vec![DomainEvent::message(
            EventKind::CustomerMerged,
            entity.clone(),
            &entity,
            survivor.version,
            survivor.updated_at,
            data,
            format!(
                "{}:{}:{}",
                EventKind::CustomerMerged.as_str(),
                survivor.id,
                survivor.version
            ),
        )?])
    }

    /// `customer.erased`, carrying nothing but the id.
    pub(crate) fn erased(&self, erased: &Customer) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let id = erased.id;
        let entity = EntityRef::customer(id);
        Ok(vec![DomainEvent::message(
            EventKind::CustomerErased,
            entity.clone(),
            &entity,
            erased.version,
            erased.updated_at,
            serde_json::to_value(ErasedPayload { customer: id })
                .map_err(|e| Error::encoding("an erasure event", e))?,
            format!("customer.erased:{id}:{}", erased.version),
        )?])
    }

    /// `interaction.logged` for each row, keyed by its idempotency key (so a re-sent
    /// interaction adds no event) and ordered with its customer's events.
    pub(crate) fn interactions(&self, rows: &[Interaction]) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        rows.iter()
            .map(|row| {
                let key =
                    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, row.key.to_string().as_bytes());
                let data = serde_json::to_value(row)
                    .map_err(|e| Error::encoding("an interaction event", e))?;
                DomainEvent::message(
                    EventKind::InteractionLogged,
                    EntityRef {
                        kind: "interaction".into(),
                        id: row.id.as_uuid(),
                    },
                    &EntityRef::customer(row.customer),
                    1,
                    row.recorded_at,
                    data,
                    format!("{}:{key}", EventKind::InteractionLogged.as_str()),
                )
            })
            .collect()
    }

    /// The event of a case's last change: opened or resolved (breaches are
    /// [`Recorder::case_breached`]).
    pub(crate) fn case(&self, case: &Case) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let Some(last) = case.events.last() else {
            return Ok(Vec::new());
        };
        let kind = match last.kind {
            CaseEventKind::Opened => EventKind::CaseOpened,
            CaseEventKind::StatusChange {
                to: CaseStatus::Resolved,
                ..
            } => EventKind::CaseResolved,
            _ => return Ok(Vec::new()),
        };
        let entity = case_ref(case);
        let data = serde_json::to_value(CasePayload {
            customer: case.customer,
            kind: case.kind.clone(),
            subject: case.subject.clone(),
            status: case.status,
            assignee: case.assignee,
        })
        .map_err(|e| Error::encoding("a case event", e))?;
        let key = format!("{}:{}:{}", kind.as_str(), case.id, case.version);
        Ok(vec![DomainEvent::message(
            kind,
            entity.clone(),
            &entity,
            case.version,
            last.at,
            data,
            key,
        )?])
    }

    /// The events of a stage move (or of a new deal): `opportunity.stage_changed` with the
    /// deal and the history entry, then `opportunity.won` with the order snapshot or
    /// `opportunity.lost` with the deal, ordered by the deal.
    pub(crate) fn opportunity(
        &self,
        deal: &Opportunity,
        change: &StageChange,
    ) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let entity = EntityRef::opportunity(deal.id);
        let encode = |v: serde_json::Result<serde_json::Value>| {
            v.map_err(|e| Error::encoding("an opportunity event", e))
        };
        let message = |kind: EventKind, data: serde_json::Value| {
            let key = format!("{}:{}:{}", kind.as_str(), deal.id, deal.version);
            DomainEvent::message(
                kind,
                entity.clone(),
                &entity,
                deal.version,
                change.at,
                data,
                key,
            )
        };
        let mut out = vec![message(
            EventKind::OpportunityStageChanged,
            encode(serde_json::to_value(StageChangedPayload {
                opportunity: deal.clone(),
                change: change.clone(),
            }))?,
        )?];
        match (&deal.won, deal.outcome) {
            (Some(snapshot), Outcome::Won) => out.push(message(
                EventKind::OpportunityWon,
                encode(serde_json::to_value(snapshot))?,
            )?),
            (_, Outcome::Lost) => out.push(message(
                EventKind::OpportunityLost,
                encode(serde_json::to_value(deal))?,
            )?),
            _ => {}
        }
        Ok(out)
    }

    /// `case.breached` at the case's next version, keyed by the alert.
    pub(crate) fn case_breached(
        &self,
        case: &Case,
        at: chrono::DateTime<chrono::Utc>,
        data: serde_json::Value,
        key: &str,
    ) -> Result<Vec<OutboxMessage>> {
        if !self.on {
            return Ok(Vec::new());
        }
        let entity = case_ref(case);
        Ok(vec![DomainEvent::message(
            EventKind::CaseBreached,
            entity.clone(),
            &entity,
            case.version.saturating_add(1),
            at,
            data,
            key.to_string(),
        )?])
    }
}

fn case_ref(case: &Case) -> EntityRef {
    EntityRef {
        kind: "case".into(),
        id: case.id.as_uuid(),
    }
}
