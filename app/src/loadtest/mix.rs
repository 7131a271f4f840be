//! The weighted mix of API calls a virtual user makes, drawn with a seeded RNG over the ids that
//! discovery found. Pure: produces request descriptions, sends nothing.
use rand::{Rng, seq::IndexedRandom};
use serde_json::json;

/// One kind of API call. The weights give a read-heavy mix (~85 % reads and lists, ~15 % writes),
/// the shape of a task tracker used by people rather than by batch jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    GetTask,
    GetProject,
    GetUser,
    ListProjectTasks,
    ListAssigneeTasks,
    ListTasks,
    ListProjects,
    CreateTask,
    PatchTask,
    /// `POST /reports` (a background job). Not in [`WEIGHTS`]: only `--report-pct` asks for it, so
    /// the default mix stays the one the benchmarks measure.
    CreateReport,
}

/// `(operation, weight)`; weights sum to 100 so they read as percentages.
pub const WEIGHTS: [(Operation, u32); 9] = [
    (Operation::GetTask, 25),
    (Operation::GetProject, 10),
    (Operation::GetUser, 10),
    (Operation::ListProjectTasks, 15),
    (Operation::ListAssigneeTasks, 10),
    (Operation::ListTasks, 8),
    (Operation::ListProjects, 7),
    (Operation::CreateTask, 10),
    (Operation::PatchTask, 5),
];

impl Operation {
    pub const ALL: [Operation; 10] = [
        Self::GetTask,
        Self::GetProject,
        Self::GetUser,
        Self::ListProjectTasks,
        Self::ListAssigneeTasks,
        Self::ListTasks,
        Self::ListProjects,
        Self::CreateTask,
        Self::PatchTask,
        Self::CreateReport,
    ];

    /// Stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetTask => "getTask",
            Self::GetProject => "getProject",
            Self::GetUser => "getUser",
            Self::ListProjectTasks => "listProjectTasks",
            Self::ListAssigneeTasks => "listAssigneeTasks",
            Self::ListTasks => "listTasks",
            Self::ListProjects => "listProjects",
            Self::CreateTask => "createTask",
            Self::PatchTask => "patchTask",
            Self::CreateReport => "createReport",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Ids that exist on the server, sampled across each collection by discovery, plus totals.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub user_ids: Vec<i64>,
    pub project_ids: Vec<i64>,
    pub task_ids: Vec<i64>,
    pub total_tasks: u64,
    pub total_projects: u64,
}

/// Page size used for list calls (what a UI asks for).
pub const LIST_LIMIT: u64 = 20;
/// Deepest page a list call asks for: people page forward a little, not to page 5,000.
const DEEPEST_PAGE: u64 = 10;

/// A request to send: method, path below the base URL, JSON body for writes.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub operation: Operation,
    pub method: http::Method,
    pub path: String,
    pub body: Option<serde_json::Value>,
}

/// Draws one operation by weight.
pub fn pick_operation(rng: &mut impl Rng) -> Operation {
    let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (op, weight) in WEIGHTS {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Operation::GetTask
}

/// Draws the next request of the default mix (see [`next_request_with`]).
pub fn next_request(rng: &mut impl Rng, data: &Dataset, sequence: u64) -> RequestSpec {
    next_request_with(rng, data, sequence, 0)
}

/// Draws the next request: `report_pct` percent of them (0-100) are report jobs
/// ([`Operation::CreateReport`] on a random project), the rest follow [`WEIGHTS`]. Needs at least
/// one user and one project (discovery guarantees it); operations on tasks fall back to listing a
/// project's tasks when no task exists yet.
pub fn next_request_with(rng: &mut impl Rng, data: &Dataset, sequence: u64, report_pct: u32) -> RequestSpec {
    let op = if report_pct > 0 && rng.random_range(0..100) < report_pct {
        Operation::CreateReport
    } else {
        pick_operation(rng)
    };
    let user = data.user_ids.choose(rng).copied().unwrap_or(1);
    let project = data.project_ids.choose(rng).copied().unwrap_or(1);
    let task = data.task_ids.choose(rng).copied();
    let get = |operation, path: String| RequestSpec {
        operation,
        method: http::Method::GET,
        path,
        body: None,
    };
    match (op, task) {
        (Operation::GetTask, Some(id)) => get(op, format!("/api/v1/tasks/{id}")),
        (Operation::GetProject, _) => get(op, format!("/api/v1/projects/{project}")),
        (Operation::GetUser, _) => get(op, format!("/api/v1/users/{user}")),
        (Operation::ListAssigneeTasks, _) => {
            get(op, format!("/api/v1/users/{user}/tasks?limit={LIST_LIMIT}"))
        }
        (Operation::ListTasks, _) => {
            let page = random_page(rng, data.total_tasks);
            get(op, format!("/api/v1/tasks?page={page}&limit={LIST_LIMIT}"))
        }
        (Operation::ListProjects, _) => {
            let page = random_page(rng, data.total_projects);
            get(op, format!("/api/v1/projects?page={page}&limit={LIST_LIMIT}"))
        }
        (Operation::CreateTask, _) => RequestSpec {
            operation: op,
            method: http::Method::POST,
            path: "/api/v1/tasks".to_owned(),
            body: Some(json!({
                "projectId": project,
                "title": format!("load test task {sequence}"),
                "description": "created by perfstack-app loadtest",
                "priority": rng.random_range(0..=4),
                "assigneeId": user,
                "dueDate": format!("2027-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28)),
            })),
        },
        (Operation::CreateReport, _) => RequestSpec {
            operation: op,
            method: http::Method::POST,
            path: "/api/v1/reports".to_owned(),
            body: Some(json!({ "type": "projectTaskStats", "parameters": { "projectId": project } })),
        },
        (Operation::PatchTask, Some(id)) => {
            let status = ["todo", "in_progress", "review", "done"]
                .choose(rng)
                .copied()
                .unwrap_or("todo");
            RequestSpec {
                operation: op,
                method: http::Method::PATCH,
                path: format!("/api/v1/tasks/{id}"),
                body: Some(json!({ "status": status, "priority": rng.random_range(0..=4) })),
            }
        }
        // A project's tasks, sometimes filtered by status; also the fallback for task operations
        // on a dataset without tasks.
        (Operation::ListProjectTasks | Operation::GetTask | Operation::PatchTask, _) => {
            let path = if rng.random_bool(0.3) {
                let status = ["todo", "in_progress", "review", "done"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("todo");
                format!("/api/v1/projects/{project}/tasks?status={status}&limit={LIST_LIMIT}")
            } else {
                format!("/api/v1/projects/{project}/tasks?limit={LIST_LIMIT}")
            };
            get(Operation::ListProjectTasks, path)
        }
    }
}

/// A page number in `1..=min(pages, DEEPEST_PAGE)`.
fn random_page(rng: &mut impl Rng, total: u64) -> u64 {
    let pages = total.div_ceil(LIST_LIMIT).clamp(1, DEEPEST_PAGE);
    rng.random_range(1..=pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn data() -> Dataset {
        Dataset {
            user_ids: vec![3, 7],
            project_ids: vec![11],
            task_ids: vec![101, 102, 103],
            total_tasks: 1000,
            total_projects: 1,
        }
    }

    #[test]
    fn weights_are_percentages() {
        assert_eq!(WEIGHTS.iter().map(|(_, w)| w).sum::<u32>(), 100);
        // Every operation but the opt-in report job has a weight.
        assert_eq!(WEIGHTS.len() + 1, Operation::ALL.len());
        assert!(!WEIGHTS.iter().any(|(op, _)| *op == Operation::CreateReport));
    }

    #[test]
    fn draws_follow_the_weights() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 9];
        for _ in 0..100_000 {
            counts[pick_operation(&mut rng).index()] += 1;
        }
        for (op, weight) in WEIGHTS {
            let share = f64::from(counts[op.index()]) / 1000.0;
            assert!((share - f64::from(weight)).abs() < 1.0, "{op:?}: {share}%");
        }
    }

    #[test]
    fn same_seed_same_requests() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|i| next_request(&mut rng, &data(), i))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn requests_use_only_discovered_ids() {
        let mut rng = StdRng::seed_from_u64(3);
        for i in 0..2_000 {
            let r = next_request(&mut rng, &data(), i);
            match r.operation {
                Operation::GetTask | Operation::PatchTask => {
                    assert!(
                        ["/api/v1/tasks/101", "/api/v1/tasks/102", "/api/v1/tasks/103"]
                            .contains(&r.path.as_str())
                    );
                }
                Operation::CreateTask => {
                    let body = r.body.unwrap();
                    assert_eq!(body["projectId"], 11);
                    assert!([3, 7].contains(&body["assigneeId"].as_i64().unwrap()));
                }
                Operation::ListTasks => {
                    let page: u64 = r
                        .path
                        .split("page=")
                        .nth(1)
                        .unwrap()
                        .split('&')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((1..=DEEPEST_PAGE).contains(&page));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn report_jobs_come_only_when_asked_for() {
        let mut rng = StdRng::seed_from_u64(9);
        let none =
            (0..2_000).filter(|i| next_request(&mut rng, &data(), *i).operation == Operation::CreateReport);
        assert_eq!(none.count(), 0);
        let mut rng = StdRng::seed_from_u64(9);
        let reports: Vec<_> = (0..10_000)
            .map(|i| next_request_with(&mut rng, &data(), i, 5))
            .filter(|r| r.operation == Operation::CreateReport)
            .collect();
        assert!(
            (400..600).contains(&reports.len()),
            "{} of 10,000 at 5 %",
            reports.len()
        );
        assert_eq!(reports[0].method, http::Method::POST);
        assert_eq!(reports[0].body.as_ref().unwrap()["parameters"]["projectId"], 11);
    }

    #[test]
    fn task_operations_fall_back_to_lists_without_tasks() {
        let empty = Dataset {
            task_ids: vec![],
            ..data()
        };
        let mut rng = StdRng::seed_from_u64(5);
        for i in 0..500 {
            let r = next_request(&mut rng, &empty, i);
            assert!(!matches!(r.operation, Operation::GetTask | Operation::PatchTask));
        }
    }
}
