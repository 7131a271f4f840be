//! Finds ids that exist on the server by reading the list endpoints, so the mix never guesses.
//! Samples pages spread across each collection (first, last and evenly between).
use serde::Deserialize;

use super::{
    client::{ApiClient, ClientError},
    mix::Dataset,
};

/// Page size used while discovering (the API's maximum).
const PAGE_LIMIT: u64 = 100;
/// Pages read per collection.
const SAMPLE_PAGES: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("GET {path} failed")]
    Request {
        path: String,
        #[source]
        source: ClientError,
    },
    #[error("GET {path} answered {status}")]
    Status { path: String, status: u16 },
    #[error("GET {path} returned a body that is not a page of items with ids")]
    Shape {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the API has no {0}; seed it first (`perfstack-app seed`)")]
    Empty(&'static str),
}

#[derive(Debug, Deserialize)]
struct Page {
    data: Vec<Item>,
    pagination: Pagination,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    #[serde(default)]
    total: Option<u64>,
}

/// Ids sampled from `/users`, `/projects` and `/tasks`. Fails when there are no users or projects.
pub async fn discover(client: &ApiClient) -> Result<Dataset, DiscoverError> {
    let (user_ids, _) = sample(client, "/api/v1/users").await?;
    let (project_ids, total_projects) = sample(client, "/api/v1/projects").await?;
    let (task_ids, total_tasks) = sample(client, "/api/v1/tasks").await?;
    if user_ids.is_empty() {
        return Err(DiscoverError::Empty("users"));
    }
    if project_ids.is_empty() {
        return Err(DiscoverError::Empty("projects"));
    }
    Ok(Dataset {
        user_ids,
        project_ids,
        task_ids,
        total_tasks,
        total_projects,
    })
}

/// Reads the first page for the total, then up to [`SAMPLE_PAGES`] pages spread to the last.
async fn sample(client: &ApiClient, collection: &str) -> Result<(Vec<i64>, u64), DiscoverError> {
    let first = fetch(client, collection, 1).await?;
    let total = first.pagination.total.unwrap_or(first.data.len() as u64);
    let mut ids: Vec<i64> = first.data.iter().map(|i| i.id).collect();
    for page in pages_to_sample(total) {
        let more = fetch(client, collection, page).await?;
        ids.extend(more.data.iter().map(|i| i.id));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok((ids, total))
}

/// Pages after the first, spread evenly up to the last page.
fn pages_to_sample(total: u64) -> Vec<u64> {
    let last = total.div_ceil(PAGE_LIMIT).max(1);
    let mut pages: Vec<u64> = (1..SAMPLE_PAGES)
        .map(|k| 1 + (last - 1) * k / (SAMPLE_PAGES - 1))
        .filter(|&p| p > 1)
        .collect();
    pages.dedup();
    pages
}

async fn fetch(client: &ApiClient, collection: &str, page: u64) -> Result<Page, DiscoverError> {
    let path = format!("{collection}?page={page}&limit={PAGE_LIMIT}");
    let answer = client
        .send(http::Method::GET, &path, None)
        .await
        .map_err(|source| DiscoverError::Request {
            path: path.clone(),
            source,
        })?;
    if !answer.status.is_success() {
        return Err(DiscoverError::Status {
            path,
            status: answer.status.as_u16(),
        });
    }
    serde_json::from_slice(&answer.body).map_err(|source| DiscoverError::Shape { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_spread_to_the_last_page() {
        assert_eq!(pages_to_sample(0), Vec::<u64>::new());
        assert_eq!(pages_to_sample(100), Vec::<u64>::new());
        assert_eq!(pages_to_sample(250), vec![2, 3]);
        assert_eq!(pages_to_sample(100_000), vec![250, 500, 750, 1000]);
    }
}
