//! Which caches a write retires, decided here once for every write path (create, PATCH and DELETE
//! of users, projects and tasks, whether through a plain statement or a transaction with a job
//! request): the row's cached entity (L1 here, L2 and every replica's L1 through Redis), the list
//! totals of its table, and what a delete changes elsewhere (the tasks of a deleted user or project).
use super::{Cache, entities};
use crate::db::{
    resource::Resource,
    tasks::Task,
    totals::{ListTotals, Table},
};

/// A write to one row, once it has ended (committed or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A row was inserted: lists change, no cached entity can hold it yet.
    Created,
    /// Row `id` was changed.
    Updated(i64),
    /// Row `id` was deleted, and with it (set to null or cascaded) `dependent_tasks`, when the
    /// resource has dependent tasks at all.
    Deleted {
        id: i64,
        dependent_tasks: Option<Vec<i64>>,
    },
}

/// Retires what `write` to a row of `R` made stale. Call it after every write, whatever its
/// outcome: a write that failed after commit must not leave the old value behind, and a retirement
/// of something unchanged only costs a reload.
pub async fn retire<R: Resource>(cache: &Cache, totals: &ListTotals, write: &Write) {
    totals.wrote(R::TABLE);
    if let Write::Deleted {
        dependent_tasks: Some(_),
        ..
    } = write
    {
        // The tasks lost their assignee or went with their project: task lists change too.
        totals.wrote(Table::Tasks);
    }
    match write {
        Write::Created => {}
        Write::Updated(id) => entities::evict::<R>(cache, *id).await,
        Write::Deleted { id, dependent_tasks } => {
            entities::evict::<R>(cache, *id).await;
            for task in dependent_tasks.iter().flatten() {
                entities::evict::<Task>(cache, *task).await;
            }
        }
    }
}
