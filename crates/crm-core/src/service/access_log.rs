//! The access-log service: who took what out of the system, and who took unusually much.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tracing::instrument;

use super::Ctx;
use crate::access::{
    unusual_access, AccessEntry, Action, DailyUsage, RecordKind, UnusualAccess, UnusualRule,
};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::ports::{AccessStore, Capability};

/// The access log of one tenant ([`crate::access`]): every read of unmasked contact points
/// and every export through a principal-scoped handle, counted per user and UTC day
/// against the roles' daily quotas. From
/// [`TenantCrm::access_log`](super::TenantCrm::access_log).
///
/// On a scoped handle a principal reads its own entries and those of the users its roles
/// reach for reading customers (a manager its team's); daily use and the unusual-access
/// report are the system handle's.
#[derive(Clone)]
pub struct AccessLog {
    ctx: Ctx,
    access_store: Arc<dyn AccessStore>,
}

debug_by_tenant!(AccessLog);

impl AccessLog {
    /// Most entries one call returns.
    pub const MAX_ENTRIES: usize = 10_000;
    /// Most days one usage query spans.
    pub const MAX_DAYS: u64 = 366;

    pub(super) fn new(ctx: Ctx, access_store: Arc<dyn AccessStore>) -> Self {
        AccessLog { ctx, access_store }
    }

    /// The log, newest first: entries at or after `since`, of `user` when given, at most
    /// `limit` (1 to [`AccessLog::MAX_ENTRIES`]).
    ///
    /// Errors: validation of `limit`; [`Error::Forbidden`] on a scoped handle for all
    /// users, or a user its roles do not reach; [`Error::Unsupported`] without
    /// [`Capability::AccessLog`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn entries(
        &self,
        user: Option<UserId>,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AccessEntry>> {
        self.ctx.need(Capability::AccessLog, "access_log")?;
        if !(1..=Self::MAX_ENTRIES).contains(&limit) {
            return Err(Error::validation(
                "limit",
                format!("1 to {}", Self::MAX_ENTRIES),
            ));
        }
        if let Some(v) = self.ctx.principal() {
            let reached = user.is_some_and(|u| {
                u == v.user()
                    || v.reach(RecordKind::Customers, Action::Read)
                        .covers(Some(u), None)
            });
            if !reached {
                let whose =
                    user.map_or_else(|| "of everyone".to_string(), |u| format!("of user {u}"));
                return Err(Error::forbidden("read the access log", whose));
            }
        }
        self.access_store
            .access_log(self.ctx.tenant, user, since, limit)
            .await
    }

    /// Every user's daily use from `from` to `to` (UTC days, both included, at most
    /// [`AccessLog::MAX_DAYS`]).
    ///
    /// Errors: validation of `to`; [`Error::Forbidden`] on a scoped handle;
    /// [`Error::Unsupported`] without [`Capability::AccessLog`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn usage(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailyUsage>> {
        self.ctx.system_only("access_log.usage")?;
        self.ctx.need(Capability::AccessLog, "daily_usage")?;
        let days = to.signed_duration_since(from).num_days();
        if days < 0 || days >= Self::MAX_DAYS as i64 {
            return Err(Error::validation(
                "to",
                format!("from `from` on, spanning at most {} days", Self::MAX_DAYS),
            ));
        }
        self.access_store
            .daily_usage(self.ctx.tenant, from, to)
            .await
    }

    /// The users who took far more on `day` than they usually do (see
    /// [`unusual_access`]), largest first.
    ///
    /// Errors: validation of `rule`; as [`AccessLog::usage`].
    #[instrument(skip(self), fields(tenant = %self.ctx.tenant))]
    pub async fn unusual(&self, day: NaiveDate, rule: &UnusualRule) -> Result<Vec<UnusualAccess>> {
        self.ctx.system_only("access_log.unusual")?;
        self.ctx.need(Capability::AccessLog, "daily_usage")?;
        rule.validate()?;
        // At most 367 days: the rule bounds its window.
        let from = day
            .checked_sub_days(chrono::Days::new(u64::from(rule.lookback_days)))
            .unwrap_or(NaiveDate::MIN);
        let usage = self
            .access_store
            .daily_usage(self.ctx.tenant, from, day)
            .await?;
        unusual_access(&usage, day, rule)
    }
}
