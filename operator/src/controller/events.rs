//! Events: events.k8s.io Events about a stack, for phase changes, failures and the tuner's applied
//! decisions only (`update_status.rs` picks them). A failed Event never fails a reconcile; it is logged.
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Records Events about stacks under the operator's name.
#[derive(Clone)]
pub struct StackEvents {
    recorder: Option<Recorder>,
}

impl StackEvents {
    /// Events reported as `perfstack-operator`, instance `instance` (the pod name).
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: crate::MANAGER.into(),
            instance,
        };
        Self {
            recorder: Some(Recorder::new(client, reporter)),
        }
    }

    /// No Events at all (tests of other behaviour).
    pub fn disabled() -> Self {
        Self { recorder: None }
    }

    /// Publishes one Event about the object `regarding` (a stack).
    pub async fn publish(&self, regarding: &ObjectReference, reason: &str, note: &str, warning: bool) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, regarding).await {
            tracing::warn!(%error, reason, "could not record Event");
        }
    }
}
