//! The indexes the queries rely on (docs/indexes.md says which query of the API each one serves,
//! with its plan): [`DESIGN`], the seven of the performance design document under its names and
//! definitions, and [`OWN`], the project's own where a query is better served by another
//! definition. `migrate` builds them concurrently and records each definition on its index
//! (`COMMENT ON INDEX`), so that a definition changed in this file is rebuilt on the next run.

/// One index: its name, its table and what follows the table in its definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub table: &'static str,
    /// Method and key, e.g. `(email) WHERE status = 'active'` or `USING gin (...)`.
    pub key: &'static str,
    /// 1 for the definition the first versions built, which recorded nothing on the index; bumped
    /// when the definition under this name changes, so that an unrecorded index of an older
    /// version is rebuilt only when its definition really changed.
    pub revision: u32,
}

/// Suffix of the name a changed definition is built under before it replaces the old index.
const STAGING_SUFFIX: &str = "_next";

impl IndexSpec {
    /// `CREATE INDEX CONCURRENTLY` of this definition under `name` (the index's or the staging name).
    pub fn create_sql(&self, name: &str) -> String {
        format!("CREATE INDEX CONCURRENTLY {name} ON {} {}", self.table, self.key)
    }

    /// `DROP INDEX CONCURRENTLY IF EXISTS` of `name`.
    pub fn drop_sql(name: &str) -> String {
        format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")
    }

    /// What `migrate` records on the index it built: the revision and the definition.
    pub fn record(&self) -> String {
        format!("perfstack r{}: {} {}", self.revision, self.table, self.key)
    }

    /// `COMMENT ON INDEX name IS '<record>'`.
    pub fn comment_sql(&self, name: &str) -> String {
        format!(
            "COMMENT ON INDEX {name} IS '{}'",
            self.record().replace('\'', "''")
        )
    }

    /// The name a changed definition is built under while the old index still serves queries.
    pub fn staging_name(&self) -> String {
        format!("{}{STAGING_SUFFIX}", self.name)
    }

    /// Whether an index found with `recorded` on it (its comment, `None` when it has none) has
    /// this definition. An index without a record was built by a version that recorded nothing,
    /// from the first revision.
    pub fn matches(&self, recorded: Option<&str>) -> bool {
        match recorded {
            Some(recorded) => recorded == self.record(),
            None => self.revision == 1,
        }
    }
}

/// The seven indexes of the design document, as it defines them.
pub const DESIGN: [IndexSpec; 7] = [
    IndexSpec {
        name: "idx_users_email_active",
        table: "users",
        key: "(email) WHERE status = 'active'",
        revision: 1,
    },
    IndexSpec {
        name: "idx_users_username_lower",
        table: "users",
        key: "(lower(username))",
        revision: 1,
    },
    IndexSpec {
        name: "idx_projects_owner_status",
        table: "projects",
        key: "(owner_id, status)",
        revision: 1,
    },
    IndexSpec {
        name: "idx_projects_created_at_desc",
        table: "projects",
        key: "(created_at DESC)",
        revision: 1,
    },
    // Revision 1 was `(project_id, status, priority DESC)`; the DESC variant is now
    // idx_tasks_project_priority_desc, without the status.
    IndexSpec {
        name: "idx_tasks_project_status_priority",
        table: "tasks",
        key: "(project_id, status, priority)",
        revision: 2,
    },
    // Revision 1 was `(assignee_id, due_date)` over every task; that one is now
    // idx_tasks_assignee_due_date_all.
    IndexSpec {
        name: "idx_tasks_assignee_due_date",
        table: "tasks",
        key: "(assignee_id, due_date) WHERE due_date IS NOT NULL",
        revision: 2,
    },
    // Revision 1 was the full-text GIN, now idx_tasks_fulltext.
    IndexSpec {
        name: "idx_tasks_search",
        table: "tasks",
        key: "(project_id, status) INCLUDE (title, description)",
        revision: 2,
    },
];

/// The project's own indexes, for queries of the API the design's seven cannot serve well.
pub const OWN: [IndexSpec; 3] = [
    // `?q=` over all tasks: the covering b-tree needs a project and scans its rows.
    IndexSpec {
        name: "idx_tasks_fulltext",
        table: "tasks",
        key: "USING gin (to_tsvector('english', title || ' ' || coalesce(description, '')))",
        revision: 1,
    },
    // A project's tasks without a status, most urgent first: read in list order, no sort.
    IndexSpec {
        name: "idx_tasks_project_priority_desc",
        table: "tasks",
        key: "(project_id, priority DESC, id)",
        revision: 1,
    },
    // A user's tasks, undated ones included (the design's index leaves them out); also what
    // deleting a user (`ON DELETE SET NULL`) looks its tasks up with.
    IndexSpec {
        name: "idx_tasks_assignee_due_date_all",
        table: "tasks",
        key: "(assignee_id, due_date)",
        revision: 1,
    },
];

/// Every index, in the order `migrate` builds them: the project's own first, so that a query
/// served by an index whose definition moved under a new name (the GIN that was
/// idx_tasks_search) has its new index before the old one is replaced.
pub fn all() -> impl Iterator<Item = &'static IndexSpec> {
    OWN.iter().chain(DESIGN.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_leave_room_for_the_staging_suffix() {
        let mut names: Vec<&str> = all().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DESIGN.len() + OWN.len());
        // PostgreSQL cuts identifiers at 63 bytes.
        assert!(all().all(|spec| spec.staging_name().len() <= 63));
    }

    #[test]
    fn a_record_matches_only_its_own_revision_and_definition() {
        let search = DESIGN[6];
        assert!(search.matches(Some(&search.record())));
        assert!(
            !search.matches(None),
            "an unrecorded idx_tasks_search is the old GIN"
        );
        assert!(!search.matches(Some("perfstack r1: tasks USING gin (...)")));
        assert!(DESIGN[0].matches(None), "unchanged since the first version");
        assert_eq!(
            DESIGN[0].comment_sql("idx_users_email_active"),
            "COMMENT ON INDEX idx_users_email_active IS \
             'perfstack r1: users (email) WHERE status = ''active'''"
        );
    }
}
