//! Feeds the adaptive sampler from the write path: a [`SpanSink`] that counts root spans per service and
//! operation, decoding only the root spans (and their resource, for `service.name`), then forwards the batch.

use std::sync::Arc;

use clew_model::otlp::{Resource, Span};
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink, service_name};
use futures::future::BoxFuture;
use prost::Message;

use super::adaptive::AdaptiveSampler;

pub struct RootObserver {
    adaptive: Arc<AdaptiveSampler>,
    next: Arc<dyn SpanSink>,
}

impl RootObserver {
    pub fn new(adaptive: Arc<AdaptiveSampler>, next: Arc<dyn SpanSink>) -> Self {
        Self { adaptive, next }
    }

    /// Calls `observe_root` for each root span of the batch.
    pub fn observe(adaptive: &AdaptiveSampler, batch: &SpanBatch) {
        let request = batch.request();
        let index = batch.index();
        let mut services: Vec<Option<Option<String>>> = vec![None; index.groups.len()];
        for facts in index.spans.iter().filter(|f| f.parent_span_id_len == 0) {
            let group = facts.group as usize;
            let Some(slot) = services.get_mut(group) else { continue };
            let service = slot.get_or_insert_with(|| {
                let range = index.groups[group].resource.clone()?;
                let resource = Resource::decode(&request[range.start as usize..range.end as usize]).ok()?;
                service_name(Some(&resource)).map(str::to_string)
            });
            let Some(service) = service.as_deref() else { continue };
            if let Ok(span) = Span::decode(&request[facts.range.start as usize..facts.range.end as usize]) {
                adaptive.observe_root(service, &span.name);
            }
        }
    }
}

impl SpanSink for RootObserver {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        Self::observe(&self.adaptive, &batch);
        self.next.consume(batch)
    }
}
