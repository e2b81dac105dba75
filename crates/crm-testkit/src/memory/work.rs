//! Cases, tasks and KPI rules of the in-memory store.

use super::*;

#[async_trait]
impl CaseStore for MemoryStore {
    async fn insert_case(
        &self,
        tenant: TenantId,
        case: &Case,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        if !s.customers.contains_key(&(tenant, case.customer)) {
            return Err(not_found(case.customer));
        }
        if s.cases.contains_key(&(tenant, case.id)) {
            return Err(Error::Duplicate {
                entity: "case",
                key: format!("id {}", case.id),
            });
        }
        s.check_outbox(tenant, &outbox)?;
        s.cases.insert((tenant, case.id), case.clone());
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn get_case(&self, tenant: TenantId, id: CaseId) -> Result<Case> {
        self.lock()
            .cases
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| Error::not_found("case", id))
    }

    async fn update_case(
        &self,
        tenant: TenantId,
        case: &Case,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        let current = s
            .cases
            .get(&(tenant, case.id))
            .ok_or_else(|| Error::not_found("case", case.id))?;
        if current.version != expected_version {
            return Err(Error::stale_write(
                "case",
                case.id,
                expected_version,
                Some(current.version),
            ));
        }
        s.check_outbox(tenant, &outbox)?;
        s.cases.insert((tenant, case.id), case.clone());
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn list_cases(
        &self,
        tenant: TenantId,
        query: &CaseQuery,
        page: &PageRequest,
    ) -> Result<Page<Case>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_case).transpose()?;
        let s = self.lock();
        let rows: Vec<Case> = s
            .cases
            .range((tenant, after.unwrap_or(CaseId::from_bytes([0; 16])))..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), c)| Some(*id) != after && query.matches(c))
            .take(page.limit as usize + 1)
            .map(|(_, c)| c.clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |c| {
            Cursor::case(c.id)
        }))
    }
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn insert_task(&self, tenant: TenantId, task: &Task) -> Result<()> {
        let mut s = self.lock();
        match task.subject {
            TaskSubject::Customer(c) if !s.customers.contains_key(&(tenant, c)) => {
                return Err(not_found(c))
            }
            TaskSubject::Case(c) if !s.cases.contains_key(&(tenant, c)) => {
                return Err(Error::not_found("case", c))
            }
            _ => {}
        }
        if s.tasks.contains_key(&(tenant, task.id)) {
            return Err(Error::Duplicate {
                entity: "task",
                key: format!("id {}", task.id),
            });
        }
        s.tasks.insert((tenant, task.id), task.clone());
        Ok(())
    }

    async fn get_task(&self, tenant: TenantId, id: TaskId) -> Result<Task> {
        self.lock()
            .tasks
            .get(&(tenant, id))
            .cloned()
            .ok_or_else(|| Error::not_found("task", id))
    }

    async fn update_task(
        &self,
        tenant: TenantId,
        task: &Task,
        expected_version: u64,
        options: WriteOptions,
    ) -> Result<()> {
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        let current = s
            .tasks
            .get(&(tenant, task.id))
            .ok_or_else(|| Error::not_found("task", task.id))?;
        if current.version != expected_version {
            return Err(Error::stale_write(
                "task",
                task.id,
                expected_version,
                Some(current.version),
            ));
        }
        s.check_outbox(tenant, &outbox)?;
        s.tasks.insert((tenant, task.id), task.clone());
        s.write_outbox(tenant, outbox);
        Ok(())
    }

    async fn list_tasks(
        &self,
        tenant: TenantId,
        query: &TaskQuery,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        page.validate()?;
        let after = page.after.as_ref().map(Cursor::as_task).transpose()?;
        let s = self.lock();
        let rows: Vec<Task> = s
            .tasks
            .range((tenant, after.unwrap_or(TaskId::from_bytes([0; 16])))..)
            .take_while(|((t, _), _)| *t == tenant)
            .filter(|((_, id), task)| Some(*id) != after && query.matches(task))
            .take(page.limit as usize + 1)
            .map(|(_, task)| task.clone())
            .collect();
        Ok(Page::from_overfetch(rows, page.limit, |t| {
            Cursor::task(t.id)
        }))
    }
}

#[async_trait]
impl KpiRuleStore for MemoryStore {
    async fn insert_kpi_rule(&self, tenant: TenantId, rule: &KpiRule) -> Result<()> {
        let mut s = self.lock();
        let key = (tenant, rule.key.clone());
        if s.kpi_rules.contains_key(&key) {
            return Err(Error::Duplicate {
                entity: "kpi rule",
                key: format!("key {}", rule.key),
            });
        }
        let stored = StoredKpiRule {
            rule: rule.clone(),
            version: 1,
        };
        s.kpi_rules.insert(key, stored);
        Ok(())
    }

    async fn update_kpi_rule(
        &self,
        tenant: TenantId,
        rule: &KpiRule,
        expected_version: u64,
    ) -> Result<()> {
        let mut s = self.lock();
        let stored = s
            .kpi_rules
            .get_mut(&(tenant, rule.key.clone()))
            .ok_or_else(|| Error::not_found("kpi rule", &rule.key))?;
        if stored.version != expected_version {
            return Err(Error::stale_write(
                "kpi rule",
                &rule.key,
                expected_version,
                Some(stored.version),
            ));
        }
        *stored = StoredKpiRule {
            rule: rule.clone(),
            version: expected_version + 1,
        };
        Ok(())
    }

    async fn delete_kpi_rule(&self, tenant: TenantId, key: &TemplateName) -> Result<()> {
        self.lock()
            .kpi_rules
            .remove(&(tenant, key.clone()))
            .map(|_| ())
            .ok_or_else(|| Error::not_found("kpi rule", key))
    }

    async fn kpi_rules(&self, tenant: TenantId) -> Result<Vec<StoredKpiRule>> {
        Ok(self
            .lock()
            .kpi_rules
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|(_, r)| r.clone())
            .collect())
    }
}

impl MemoryStore {
    /// [`CustomerStore::hand_over`]: every version checked before anything changes.
    pub(super) fn apply_hand_over(
        &self,
        tenant: TenantId,
        plan: &HandOver,
        options: WriteOptions,
    ) -> Result<()> {
        plan.check()?;
        let outbox = options.into_outbox()?;
        let mut s = self.lock();
        s.check_outbox(tenant, &outbox)?;
        for h in &plan.customers {
            let id = h.customer.id;
            let current = s
                .customers
                .get(&(tenant, id))
                .ok_or_else(|| not_found(id))?;
            if current.version != h.expected_version {
                return Err(Error::stale_write(
                    "customer",
                    id,
                    h.expected_version,
                    Some(current.version),
                ));
            }
            s.check_refs_free(tenant, &h.customer)?;
        }
        for (case, expected) in &plan.cases {
            let current = s.cases.get(&(tenant, case.id)).map(|c| c.version);
            if current != Some(*expected) {
                return Err(Error::stale_write("case", case.id, *expected, current));
            }
        }
        for (task, expected) in &plan.tasks {
            let current = s.tasks.get(&(tenant, task.id)).map(|t| t.version);
            if current != Some(*expected) {
                return Err(Error::stale_write("task", task.id, *expected, current));
            }
        }
        for h in &plan.customers {
            let c = &h.customer;
            let old_refs = s.customers[&(tenant, c.id)].external_ids.clone();
            for r in old_refs {
                s.customer_refs.remove(&(tenant, r));
            }
            for r in &c.external_ids {
                s.customer_refs.insert((tenant, r.clone()), c.id);
            }
            s.customers.insert((tenant, c.id), c.clone());
            s.audit
                .insert((tenant, c.id, h.audit.version), h.audit.clone());
            s.ownership
                .entry((tenant, c.id))
                .or_default()
                .push(h.ownership.clone());
        }
        for (case, _) in &plan.cases {
            s.cases.insert((tenant, case.id), case.clone());
        }
        for (task, _) in &plan.tasks {
            s.tasks.insert((tenant, task.id), task.clone());
        }
        s.hand_over_grants(tenant, &plan.grants);
        s.write_outbox(tenant, outbox);
        Ok(())
    }
}
