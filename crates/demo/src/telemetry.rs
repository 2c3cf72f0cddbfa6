//! Instrumentation: one OpenTelemetry `SdkTracerProvider` per service (its own `service.name`), all fed by
//! `tracing` through one `tracing-opentelemetry` layer, and logs that carry trace id, span id and request id.
//!
//! The services share one process, so the layer's tracer routes each span to its service's provider by the
//! `shop.service` field every shop span declares (the field is removed before export).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, TraceContextExt, TraceId, TraceState, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, SamplingDecision, SamplingResult, SdkTracer, SdkTracerProvider, ShouldSample,
};
use tracing_opentelemetry::get_otel_context;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// The span field that names the service a span belongs to.
pub const SERVICE_FIELD: &str = "shop.service";

/// How a service's exporter reaches Clew; the shop uses all three so every OTLP path is exercised.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// Where Clew's OTLP receivers listen.
#[derive(Clone, Debug)]
pub struct OtlpEndpoints {
    pub grpc: String,
    pub http: String,
}

fn exporter(transport: Transport, endpoints: &OtlpEndpoints) -> anyhow::Result<SpanExporter> {
    let traces_url = format!("{}/v1/traces", endpoints.http);
    let exporter = match transport {
        Transport::Grpc => SpanExporter::builder().with_tonic().with_endpoint(&endpoints.grpc).build()?,
        Transport::HttpProtobuf => {
            SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).with_endpoint(traces_url).build()?
        }
        Transport::HttpJson => {
            SpanExporter::builder().with_http().with_protocol(Protocol::HttpJson).with_endpoint(traces_url).build()?
        }
    };
    Ok(exporter)
}

fn provider(service: &str, transport: Transport, endpoints: &OtlpEndpoints) -> anyhow::Result<SdkTracerProvider> {
    // Exports run on the tokio runtime (tonic and the async reqwest client need it); a short delay keeps the
    // demo's traces fresh in the UI.
    let batch = BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(500)).build();
    let processor = BatchSpanProcessor::builder(exporter(transport, endpoints)?, opentelemetry_sdk::runtime::Tokio)
        .with_batch_config(batch)
        .build();
    let resource = Resource::builder_empty()
        .with_service_name(service.to_string())
        .with_attributes([
            KeyValue::new("service.namespace", "shop"),
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "demo"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_sampler(SampleAllWithThreshold)
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// Keeps every span, and marks the traces it starts with OpenTelemetry's consistent-sampling threshold in
/// `tracestate` (`ot=th:0`: kept with probability 1), as probability samplers do. Children keep their parent's
/// tracestate, so it travels on the W3C hops and is lost on the B3 and Jaeger ones, which have no such header.
#[derive(Clone, Debug)]
struct SampleAllWithThreshold;

impl ShouldSample for SampleAllWithThreshold {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context.map(|cx| cx.span().span_context().clone()).filter(|sc| sc.is_valid());
        let trace_state = match parent {
            Some(parent) => parent.trace_state().clone(),
            None => TraceState::from_key_value([("ot", "th:0")]).unwrap_or_default(),
        };
        SamplingResult { decision: SamplingDecision::RecordAndSample, attributes: Vec::new(), trace_state }
    }
}

/// Routes each span to the tracer of the service named in its `shop.service` attribute.
#[derive(Clone)]
pub struct ShopTracer {
    tracers: Arc<HashMap<String, SdkTracer>>,
    fallback: SdkTracer,
}

impl Tracer for ShopTracer {
    type Span = opentelemetry_sdk::trace::Span;

    fn build_with_context(&self, mut builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        let service = builder.attributes.as_mut().and_then(|attributes| {
            let at = attributes.iter().position(|kv| kv.key.as_str() == SERVICE_FIELD)?;
            Some(attributes.remove(at).value.as_str().into_owned())
        });
        let tracer = service.and_then(|s| self.tracers.get(&s)).unwrap_or(&self.fallback);
        tracer.build_with_context(builder, parent_cx)
    }
}

/// Every service's provider; shut down to flush what is still buffered.
pub struct Telemetry {
    providers: Vec<(String, SdkTracerProvider)>,
}

impl Telemetry {
    /// Builds the providers and installs the global `tracing` subscriber (spans to OpenTelemetry, logs to `log_file`).
    pub fn install(
        services: &[(&str, Transport)],
        endpoints: &OtlpEndpoints,
        log_file: &Path,
    ) -> anyhow::Result<Telemetry> {
        let mut providers = Vec::new();
        let mut tracers = HashMap::new();
        for &(service, transport) in services {
            let provider = provider(service, transport, endpoints)?;
            tracers.insert(service.to_string(), provider.tracer("clew-demo"));
            providers.push((service.to_string(), provider));
        }
        let fallback = tracers.get(services[0].0).cloned().expect("at least one service");
        let tracer = ShopTracer { tracers: Arc::new(tracers), fallback };
        let otel = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_target(false)
            .with_threads(false)
            .with_location(false);
        let log = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Arc::new(File::create(log_file)?))
            .event_format(WithTraceIds(tracing_subscriber::fmt::format()));
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("clew_demo", tracing::Level::INFO)
            .with_default(tracing::Level::WARN);
        let subscriber = tracing_subscriber::registry().with(filter).with(otel).with(log);
        let dispatch = tracing::Dispatch::new(subscriber);
        let _ = LOG_DISPATCH.set(dispatch.downgrade());
        tracing::dispatcher::set_global_default(dispatch)?;
        Ok(Telemetry { providers })
    }

    /// Flushes and stops every provider; blocking, so it runs off the async workers.
    pub async fn shutdown(self) {
        let _ = tokio::task::spawn_blocking(move || {
            for (service, provider) in self.providers {
                if let Err(err) = provider.shutdown() {
                    eprintln!("flushing the spans of {service}: {err}");
                }
            }
        })
        .await;
    }
}

static LOG_DISPATCH: OnceLock<tracing::dispatcher::WeakDispatch> = OnceLock::new();

/// Prefixes every log line with the trace id, span id and request id of the span it was written in.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // The formatter runs inside the dispatcher, where `Span::current()` sees no subscriber: look the span's
        // OpenTelemetry context up through the dispatch itself.
        let dispatch = LOG_DISPATCH.get().and_then(|weak| weak.upgrade());
        let cx = match (ctx.lookup_current(), dispatch) {
            (Some(current), Some(dispatch)) => get_otel_context(&current.id(), &dispatch).unwrap_or_default(),
            _ => Context::new(),
        };
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            write!(writer, "trace_id={} span_id={} ", sc.trace_id(), sc.span_id())?;
        }
        if let Some(id) = cx.baggage().get("request.id") {
            write!(writer, "request_id={id} ")?;
        }
        self.0.format_event(ctx, writer, event)
    }
}
