//! The load tester's ledger (`--ledger FILE`): one JSON line per write the API acknowledged, so that
//! a fault test can compare what clients were promised with what the stack holds afterwards (every
//! created task still in PostgreSQL, every accepted job finished once). Reads are not recorded.
use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    sync::Mutex,
    time::Duration,
};

use super::mix::Operation;

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub operation: Operation,
    pub status: u16,
    /// The task created or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    /// The job a report request was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// When the answer arrived, from the start of the run.
    pub at_ms: u64,
}

/// What an answer acknowledged, if it was a successful write: pure, over the request's path and
/// the answer's status and body. A 2xx write whose body lacks the id it should carry is still
/// recorded (with no id), so it shows in the count.
pub fn acknowledged(
    operation: Operation,
    path: &str,
    status: u16,
    body: &[u8],
    at: Duration,
) -> Option<Entry> {
    if !(200..300).contains(&status) {
        return None;
    }
    let json = || serde_json::from_slice::<serde_json::Value>(body).ok();
    let (task_id, job_id) = match operation {
        Operation::CreateTask => (json().and_then(|v| v["id"].as_i64()), None),
        Operation::PatchTask => (path.rsplit('/').next().and_then(|id| id.parse().ok()), None),
        Operation::CreateReport => (None, json().and_then(|v| v["jobId"].as_str().map(str::to_owned))),
        _ => return None,
    };
    Some(Entry {
        operation,
        status,
        task_id,
        job_id,
        at_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The file the entries go to, shared by every virtual user.
#[derive(Debug)]
pub struct Ledger {
    out: Mutex<BufWriter<File>>,
}

impl Ledger {
    /// Creates (or truncates) the file, and the folders it lives in.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Self {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    /// Appends one line. A failed write is reported once per call on stderr and does not stop the run.
    pub fn record(&self, entry: &Entry) {
        let Ok(mut out) = self.out.lock() else { return };
        let written = serde_json::to_writer(&mut *out, entry)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(err) = written {
            eprintln!("ledger: could not write an entry: {err}");
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.flush(),
            Err(_) => Err(std::io::Error::other("the ledger's lock was poisoned")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Duration = Duration::from_millis(1500);

    #[test]
    fn successful_writes_are_recorded_with_their_ids() {
        let created = acknowledged(
            Operation::CreateTask,
            "/api/v1/tasks",
            201,
            br#"{"id":42,"title":"t"}"#,
            AT,
        );
        assert_eq!(created.as_ref().and_then(|e| e.task_id), Some(42));
        assert_eq!(created.map(|e| e.at_ms), Some(1500));
        let patched = acknowledged(Operation::PatchTask, "/api/v1/tasks/7", 200, b"{}", AT);
        assert_eq!(patched.and_then(|e| e.task_id), Some(7));
        let report = acknowledged(
            Operation::CreateReport,
            "/api/v1/reports",
            202,
            br#"{"jobId":"j-1"}"#,
            AT,
        );
        assert_eq!(report.and_then(|e| e.job_id).as_deref(), Some("j-1"));
    }

    #[test]
    fn failures_and_reads_are_not() {
        assert_eq!(
            acknowledged(Operation::CreateTask, "/api/v1/tasks", 503, b"{}", AT),
            None
        );
        assert_eq!(
            acknowledged(Operation::GetTask, "/api/v1/tasks/1", 200, b"{}", AT),
            None
        );
    }

    #[test]
    fn an_acknowledgement_without_its_id_still_counts() {
        let entry = acknowledged(Operation::CreateTask, "/api/v1/tasks", 201, b"not json", AT);
        assert_eq!(entry.map(|e| e.task_id), Some(None));
    }

    #[test]
    fn entries_are_json_lines() {
        let dir = std::env::temp_dir().join(format!("perfstack-ledger-{}", std::process::id()));
        let path = dir.join("not-there-yet").join("ledger.jsonl");
        let ledger = Ledger::create(&path).unwrap();
        for id in [1, 2] {
            let body = format!(r#"{{"id":{id}}}"#);
            ledger.record(
                &acknowledged(Operation::CreateTask, "/api/v1/tasks", 201, body.as_bytes(), AT).unwrap(),
            );
        }
        ledger.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["taskId"], 2);
        assert_eq!(lines[0]["operation"], "createTask");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
