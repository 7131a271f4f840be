//! The seven indexes the queries rely on (docs/indexes.md says which query each one serves).
//! `migrate` builds them concurrently; the names and definitions are part of the contract.

/// One index: its name and what follows `ON` in its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    /// Table, method and key, e.g. `users (email) WHERE status = 'active'`.
    pub on: &'static str,
}

impl IndexSpec {
    pub fn create_sql(&self) -> String {
        format!("CREATE INDEX CONCURRENTLY {} ON {}", self.name, self.on)
    }

    pub fn drop_sql(&self) -> String {
        format!("DROP INDEX CONCURRENTLY IF EXISTS {}", self.name)
    }
}

pub const INDEXES: &[IndexSpec] = &[
    IndexSpec {
        name: "idx_users_email_active",
        on: "users (email) WHERE status = 'active'",
    },
    IndexSpec {
        name: "idx_users_username_lower",
        on: "users (lower(username))",
    },
    IndexSpec {
        name: "idx_projects_owner_status",
        on: "projects (owner_id, status)",
    },
    IndexSpec {
        name: "idx_projects_created_at_desc",
        on: "projects (created_at DESC)",
    },
    IndexSpec {
        name: "idx_tasks_project_status_priority",
        on: "tasks (project_id, status, priority DESC)",
    },
    IndexSpec {
        name: "idx_tasks_assignee_due_date",
        on: "tasks (assignee_id, due_date)",
    },
    IndexSpec {
        name: "idx_tasks_search",
        on: "tasks USING gin (to_tsvector('english', title || ' ' || coalesce(description, '')))",
    },
];
